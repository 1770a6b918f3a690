package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPaymentStory runs the example end to end: the real mailroom binary
// on SQLite, the fake payments API and the MCP server on loopback, and the
// agent calling create_payment_link as a task. The customer pays; the
// agent hears notifications/tasks/status and reads the paid session with
// tasks/result.
func TestPaymentStory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the mailroom binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mailroom := startMailroom(t)

	payLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- serve(serveCtx, payLn, mcpLn, mailroom, "", "whsec_demo_stripe_secret", io.Discard) }()
	t.Cleanup(func() {
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	pr, pw := io.Pipe()
	agentDone := make(chan error, 1)
	go func() {
		agentDone <- runAgent(ctx, "http://"+mcpLn.Addr().String()+"/mcp", 4200, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("agent ended early: %v", <-agentDone)
		}
		t.Log("agent:", lines.Text())
		return lines.Text()
	}

	created := next()
	m := regexp.MustCompile(`^task (task_\w+) working: waiting for the customer to pay (plink_\w+) at (\S+)$`).FindStringSubmatch(created)
	if m == nil {
		t.Fatalf("first line %q is not a working task with a payment link", created)
	}
	taskID, link := m[1], m[2]

	// The customer pays: the payments API sends the signed webhook.
	resp, err := http.Post("http://"+payLn.Addr().String()+"/v1/payment_links/"+link+"/pay", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pay: %d %s", resp.StatusCode, body)
	}

	if got := next(); !strings.HasPrefix(got, "notification: task "+taskID+" completed") {
		t.Fatalf("want a completed notification, got %q", got)
	}
	res, ok := strings.CutPrefix(next(), "result: ")
	if !ok {
		t.Fatal("no result line")
	}
	var result struct {
		StructuredContent struct {
			Status string `json:"status"`
			Event  struct {
				Type string `json:"type"`
				Body struct {
					Data struct {
						Object struct {
							PaymentLink   string `json:"payment_link"`
							PaymentStatus string `json:"payment_status"`
							AmountTotal   int64  `json:"amount_total"`
						} `json:"object"`
					} `json:"data"`
				} `json:"body"`
			} `json:"event"`
		} `json:"structuredContent"`
		Meta map[string]any `json:"_meta"`
	}
	if err := json.Unmarshal([]byte(res), &result); err != nil {
		t.Fatalf("result %s: %v", res, err)
	}
	obj := result.StructuredContent.Event.Body.Data.Object
	if result.StructuredContent.Status != "matched" || result.StructuredContent.Event.Type != "checkout.session.completed" ||
		obj.PaymentLink != link || obj.PaymentStatus != "paid" || obj.AmountTotal != 4200 {
		t.Fatalf("result is not the paid session of %s: %s", link, res)
	}
	if rel, _ := result.Meta["io.modelcontextprotocol/related-task"].(map[string]any); rel["taskId"] != taskID {
		t.Fatalf("result _meta does not name the task: %v", result.Meta)
	}
	if err := <-agentDone; err != nil {
		t.Fatalf("agent: %v", err)
	}

	// mailroom recorded it: the task is completed by the event.
	var task struct {
		Status, Owner, Tool string
		EventID             string `json:"event_id"`
	}
	getJSON(t, mailroom+"/api/v1/tasks/"+taskID, &task)
	if task.Status != "completed" || task.Tool != "create_payment_link" || task.EventID == "" {
		t.Fatalf("mailroom task: %+v", task)
	}
}

// startMailroom builds and runs mailroom with a stripe source on SQLite.
func startMailroom(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailroom")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/mailroom").CombinedOutput(); err != nil {
		t.Fatalf("build mailroom: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "mailroom.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
storage: sqlite://%s/mailroom.db
sources:
  - name: stripe
    verify: {type: stripe, secret: whsec_demo_stripe_secret}
`, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "MAILROOM_API_TOKEN=", "MAILROOM_LOG_LEVEL=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg=listening addr=(\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("mailroom did not start listening within 30s")
		return ""
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
