package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mailroomhq/mailroom/internal/trigger"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// TestTriggerAgainstExampleConfig sends one sample of every provider with
// `mailroom trigger` to the real binary running the example config, and
// checks that each is accepted and recorded with its type.
func TestTriggerAgainstExampleConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	inst := startWith(t, []string{"serve", "--config", "../../examples/mailroom.yaml", "--listen", "127.0.0.1:0",
		"--db", "sqlite://" + filepath.Join(dir, "m.db")}, "BILLING_URL=http://127.0.0.1:1/hooks")
	server := "http://" + inst.addr
	cases := []struct {
		args   []string
		source string
		typ    string
	}{
		{[]string{"stripe", "checkout.session.completed", "--set", "data.object.payment_link=plink_trig"}, "stripe", "checkout.session.completed"},
		{[]string{"github", "pull_request", "--set", "action=closed"}, "github", "pull_request"},
		{[]string{"shopify", "orders/create"}, "shopify", "orders/create"},
		{[]string{"standard-webhooks", "--type", "invoice.paid"}, "app", "invoice.paid"},
	}
	for _, c := range cases {
		cmd := exec.Command(binary(t), append([]string{"trigger"}, c.args...)...)
		cmd.Env = append(cmd.Environ(), "MAILROOM_SERVER="+server)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("trigger %v: %v\n%s", c.args, err, out)
		}
		if !strings.Contains(string(out), ": 200 OK") {
			t.Fatalf("trigger %v: %s", c.args, out)
		}
		var page struct {
			Data []struct {
				Type string `json:"type"`
			} `json:"data"`
		}
		getJSON(t, server+"/api/v1/events?source="+c.source, &page)
		if len(page.Data) != 1 || page.Data[0].Type != c.typ {
			t.Fatalf("events of %s: %+v, want one %s", c.source, page.Data, c.typ)
		}
	}

	// A wrong secret is refused by the server and exits non-zero.
	cmd := exec.Command(binary(t), "trigger", "stripe", "charge.refunded", "--secret", "whsec_wrong", "--to", server+"/e/stripe")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Fatalf("wrong secret: err %v, output %s", err, out)
	}
	out, err := exec.Command(binary(t), "trigger", "--list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "payment_intent.payment_failed") || !strings.Contains(string(out), "fulfillments/create") {
		t.Fatalf("--list: %v\n%s", err, out)
	}
	out, err = exec.Command(binary(t), "trigger", "stripe", "nope").CombinedOutput()
	if code := exitCodeOf(err); code != exitUsage {
		t.Fatalf("unknown event: exit %d, want %d\n%s", code, exitUsage, out)
	}
}

func exitCodeOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestTriggerEveryProvider runs the real binary with a source for every
// provider of the verify table (its demo config), sends one sample of each
// with `mailroom trigger`, and checks that each is accepted and recorded
// with its event type. AWS SNS is left out here: its verifier fetches
// certificates from AWS only; internal/trigger covers it with a loopback
// certificate.
func TestTriggerEveryProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	type source struct {
		Name   string        `yaml:"name"`
		Verify verify.Config `yaml:"verify"`
	}
	var cfg struct {
		Sources []source `yaml:"sources"`
	}
	var providers []trigger.Provider
	for _, p := range trigger.Providers() {
		if p.Name == "aws-sns" {
			continue
		}
		providers = append(providers, p)
		cfg.Sources = append(cfg.Sources, source{Name: p.Source, Verify: p.Verify})
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "providers.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	inst := startWith(t, []string{"serve", "--config", path, "--listen", "127.0.0.1:0", "--db", "sqlite://" + filepath.Join(dir, "m.db")})
	server := "http://" + inst.addr

	out, err := exec.Command(binary(t), "trigger", "--list").CombinedOutput()
	if err != nil {
		t.Fatalf("--list: %v\n%s", err, out)
	}
	named := 0
	for _, row := range verify.Providers() {
		if row.Generic {
			continue
		}
		named++
		if !strings.Contains(string(out), "\n"+row.Name+": ") && !strings.HasPrefix(string(out), row.Name+": ") {
			t.Errorf("trigger --list does not show %s", row.Name)
		}
	}
	if named < 30 {
		t.Errorf("%d named providers, want at least 30", named)
	}

	for _, p := range providers {
		ev := "invoice.paid"
		if len(p.Events) > 0 {
			ev = p.Events[0]
		}
		cmd := exec.Command(binary(t), "trigger", p.Name, ev)
		cmd.Env = append(cmd.Environ(), "MAILROOM_SERVER="+server)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), ": 200 OK") {
			t.Errorf("trigger %s %s: %v\n%s", p.Name, ev, err, out)
			continue
		}
		var page struct {
			Data []struct {
				Type string `json:"type"`
			} `json:"data"`
		}
		getJSON(t, server+"/api/v1/events?source="+p.Source, &page)
		if len(page.Data) != 1 || page.Data[0].Type != ev {
			t.Errorf("events of %s: %+v, want one %s", p.Source, page.Data, ev)
		}
	}

	// Slack checks the endpoint with a signed url_verification: the
	// source answers the challenge itself and records a handshake.
	slack, err := trigger.Lookup("slack")
	if err != nil {
		t.Fatal(err)
	}
	m := &verify.Message{Body: []byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`), Now: time.Now()}
	if err := verify.Sign(slack.Verify, m); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, server+"/e/"+slack.Source, bytes.NewReader(m.Body))
	req.Header = m.Header
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(answer) != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("url_verification answered %d %q", resp.StatusCode, answer)
	}
	var reqs struct {
		Data []struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"data"`
	}
	getJSON(t, server+"/api/v1/requests?source="+slack.Source+"&status=handshake", &reqs)
	if len(reqs.Data) != 1 || !strings.Contains(reqs.Data[0].Reason, "url_verification") {
		t.Fatalf("handshake requests: %+v", reqs.Data)
	}
}
