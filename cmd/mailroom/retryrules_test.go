package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRetryRulesOverBinary runs the binary with a Stripe source and a
// destination that always answers 503 (its own policy: 3 attempts), and a
// connection created through the API whose retry rules say
// payment_intent.* is retried for an hour every 50ms and ping never. A
// ping dies after its one attempt, with the rule and the reason on the
// delivery (API and `mailroom deliveries show`), while a
// payment_intent.succeeded goes on past the destination's 3 attempts,
// pending. Across a restart (the connection lives only in the database)
// the payment_intent keeps being retried, and a new ping dies after one
// attempt again.
func TestRetryRulesOverBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const secret = "whsec_retry_rules"
	var mu sync.Mutex
	hits := map[string]int{} // by event type
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Type string }
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		hits[body.Type]++
		mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(sink.Close)
	dir := t.TempDir()
	cfgPath := writeYAML(t, dir, fmt.Sprintf(`storage: sqlite://%s/m.db
sources:
  - name: stripe
    verify: {type: stripe, secret: %s}
destinations:
  - name: billing
    url: %s/hooks
    retry: {max_attempts: 3, initial: 20ms, max: 50ms}
`, dir, secret, sink.URL))
	bin := binary(t)
	inst := start(t, bin, cfgPath)
	api := func(inst *instance) string { return "http://" + inst.addr + "/api/v1" }

	conn := `{"id": "stripe-to-billing", "source": "stripe", "destination": "billing", "retry": [
		{"types": ["payment_intent.*"], "max_age": "1h", "schedule": ["50ms"]},
		{"types": ["ping"], "max_attempts": 1}]}`
	resp, err := http.Post(api(inst)+"/connections", "application/json", strings.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create connection: %d", resp.StatusCode)
	}

	type retry struct {
		Policy, Decision, Reason string
		EventType                string `json:"event_type"`
		MaxAttempts              int    `json:"max_attempts"`
	}
	// delivery is a delivery as GET /deliveries/{id} shows it.
	type delivery struct {
		ID, Status string
		Attempts   int `json:"attempt_count"`
		Retry      *retry
	}
	send := func(inst *instance, id, typ string) delivery {
		t.Helper()
		body := fmt.Sprintf(`{"id":%q,"type":%q,"data":{"object":{}}}`, id, typ)
		code, out := postStripe(t, inst.addr, body, stripeSign(secret, time.Now().Unix(), body))
		if code != http.StatusOK {
			t.Fatalf("ingest %s: %d %v", typ, code, out)
		}
		var page struct{ Data []struct{ ID string } }
		getJSON(t, api(inst)+"/deliveries?event_id="+out["event_id"].(string), &page)
		if len(page.Data) != 1 {
			t.Fatalf("%s made %d deliveries", typ, len(page.Data))
		}
		return delivery{ID: page.Data[0].ID}
	}
	get := func(inst *instance, id string) delivery {
		var d delivery
		getJSON(t, api(inst)+"/deliveries/"+id, &d)
		return d
	}
	waitUntil := func(inst *instance, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, inst.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	checkPing := func(inst *instance, id string) {
		t.Helper()
		var d delivery
		waitUntil(inst, "the ping to die", func() bool { d = get(inst, id); return d.Status == "dead" })
		if d.Attempts != 1 {
			t.Errorf("ping died after %d attempts, want 1", d.Attempts)
		}
		if r := d.Retry; r == nil || r.Policy != "connection stripe-to-billing retry[1]" || r.EventType != "ping" ||
			r.MaxAttempts != 1 || r.Decision != "dead" || r.Reason != "1 of 1 attempts made" {
			t.Errorf("ping delivery shows retry %+v", d.Retry)
		}
	}

	ping := send(inst, "evt_ping_1", "ping")
	pay := send(inst, "evt_pay_1", "payment_intent.succeeded")
	other := send(inst, "evt_other_1", "invoice.paid")
	checkPing(inst, ping.ID)
	var d delivery
	waitUntil(inst, "the payment_intent to pass the destination's 3 attempts", func() bool { d = get(inst, pay.ID); return d.Attempts >= 6 })
	if d.Status != "pending" || d.Retry == nil || d.Retry.Policy != "connection stripe-to-billing retry[0]" || d.Retry.Decision != "retry" {
		t.Errorf("payment_intent after %d attempts: %s, retry %+v; want pending under retry[0]", d.Attempts, d.Status, d.Retry)
	}
	waitUntil(inst, "the invoice to die by the destination's policy", func() bool { d = get(inst, other.ID); return d.Status == "dead" })
	if d.Attempts != 3 || d.Retry == nil || d.Retry.Policy != "destination billing" || d.Retry.Reason != "3 of 3 attempts made" {
		t.Errorf("invoice.paid: %d attempts, retry %+v; want 3 by the destination's policy", d.Attempts, d.Retry)
	}

	// The operator's view of why the ping died.
	var out bytes.Buffer
	cli := exec.Command(bin, "deliveries", "show", ping.ID, "--server", "http://"+inst.addr)
	cli.Stdout, cli.Stderr = &out, &out
	if err := cli.Run(); err != nil {
		t.Fatalf("deliveries show: %v\n%s", err, out.String())
	}
	if want := "Retry:        connection stripe-to-billing retry[1] (types ping, event type ping): max_attempts 1"; !strings.Contains(out.String(), want) ||
		!strings.Contains(out.String(), "dead: 1 of 1 attempts made") {
		t.Errorf("deliveries show:\n%s\nwant a line %q ... dead: 1 of 1 attempts made", out.String(), want)
	}

	// Restart: the rules live on the connection row.
	stopInstance(t, inst)
	before := sinkCount(&mu, hits, "payment_intent.succeeded")
	inst = start(t, bin, cfgPath)
	waitUntil(inst, "the payment_intent to be retried after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return hits["payment_intent.succeeded"] >= before+3
	})
	if d = get(inst, pay.ID); d.Status != "pending" {
		t.Errorf("payment_intent after the restart: %s", d.Status)
	}
	checkPing(inst, send(inst, "evt_ping_2", "ping").ID)
	mu.Lock()
	defer mu.Unlock()
	if hits["ping"] != 2 {
		t.Errorf("the receiver got %d pings, want one per ping event", hits["ping"])
	}
}

// sinkCount reads hits[typ] under mu.
func sinkCount(mu *sync.Mutex, hits map[string]int, typ string) int {
	mu.Lock()
	defer mu.Unlock()
	return hits[typ]
}
