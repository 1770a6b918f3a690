package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startWith runs `mailroom serve` with extra arguments and environment.
func startWith(t *testing.T, args []string, env ...string) *instance {
	t.Helper()
	inst := startProcess(t, binary(t), args, env)
	return inst
}

// stripeSign signs like the README's openssl line: HMAC-SHA256 of "ts.body".
func stripeSign(secret string, ts int64, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.%s", ts, body)
	return fmt.Sprintf("t=%d,v1=%s", ts, hex.EncodeToString(m.Sum(nil)))
}

func postStripe(t *testing.T, addr, body, sig string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/e/stripe", strings.NewReader(body))
	req.Header.Set("Stripe-Signature", sig)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
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

// TestReadmeTour walks the README's tour against the real binary and the
// example config: a signed Stripe webhook is delivered, a repeat is a
// duplicate, a tampered body is a recorded 401, a down destination gets
// retries until it comes back, and the API shows the attempts.
func TestReadmeTour(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	var (
		mu       sync.Mutex
		received []string
		down     atomic.Bool
	)
	sinkSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("webhook-signature") == "" || r.Header.Get("X-Mailroom-Env") != "demo" {
			http.Error(w, "unsigned or missing header", http.StatusBadRequest)
			return
		}
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		received = append(received, string(b))
		mu.Unlock()
	}))
	defer sinkSrv.Close()
	waitReceived := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			got := len(received)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("destination received %d, want %d", got, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	dir := t.TempDir()
	inst := startWith(t, []string{"serve", "--config", "../../examples/mailroom.yaml", "--listen", "127.0.0.1:0"},
		"MAILROOM_DB=sqlite://"+filepath.Join(dir, "tour.db"), "BILLING_URL="+sinkSrv.URL+"/hooks",
		"STRIPE_WEBHOOK_SECRET=")
	if !strings.Contains(inst.logs.String(), "config file ../../examples/mailroom.yaml") {
		t.Errorf("first log line does not name the config:\n%s", inst.logs)
	}

	body := `{"id":"evt_tour_1","type":"checkout.session.completed","data":{"object":{"id":"cs_test_1","payment_link":"plink_1"}}}`
	sig := stripeSign("whsec_demo_stripe_secret", time.Now().Unix(), body)
	code, out := postStripe(t, inst.addr, body, sig)
	if code != 200 || out["duplicate"] != false || out["event_id"] == "" {
		t.Fatalf("signed webhook: %d %v", code, out)
	}
	eventID := out["event_id"].(string)
	waitReceived(1)

	code, out = postStripe(t, inst.addr, body, sig)
	if code != 200 || out["duplicate"] != true {
		t.Fatalf("repeat: %d %v", code, out)
	}
	tampered := strings.Replace(body, "plink_1", "plink_2", 1)
	if code, out = postStripe(t, inst.addr, tampered, sig); code != 401 {
		t.Fatalf("tampered body: %d %v", code, out)
	}
	// A type the connection's filter does not match is kept but not routed.
	other := `{"id":"evt_tour_0","type":"invoice.paid"}`
	if code, out = postStripe(t, inst.addr, other, stripeSign("whsec_demo_stripe_secret", time.Now().Unix(), other)); code != 200 {
		t.Fatalf("unrouted event: %d %v", code, out)
	}
	ignoredID := out["event_id"].(string)

	// The destination goes down: the delivery is retried until it is back.
	down.Store(true)
	body2 := strings.Replace(body, "evt_tour_1", "evt_tour_2", 1)
	code, out = postStripe(t, inst.addr, body2, stripeSign("whsec_demo_stripe_secret", time.Now().Unix(), body2))
	if code != 200 {
		t.Fatalf("second webhook: %d %v", code, out)
	}
	event2 := out["event_id"].(string)
	api := "http://" + inst.addr + "/api/v1"
	var deliveries struct {
		Data []struct {
			ID       string `json:"id"`
			Status   string `json:"status"`
			Attempts int    `json:"attempts"`
		} `json:"data"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		getJSON(t, api+"/deliveries?status=pending", &deliveries)
		if len(deliveries.Data) == 1 && deliveries.Data[0].Attempts >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retries of the pending delivery: %+v", deliveries)
		}
		time.Sleep(100 * time.Millisecond)
	}
	down.Store(false)
	waitReceived(2)

	var detail struct {
		Status   string `json:"status"`
		Attempts []struct {
			Status int `json:"status_code"`
		} `json:"attempts"`
	}
	// The sink has the body before mailroom records the attempt's outcome.
	waitUntil(t, "the delivery to leave pending", func() bool {
		getJSON(t, api+"/deliveries/"+deliveries.Data[0].ID, &detail)
		return detail.Status != "pending"
	})
	if detail.Status != "succeeded" || len(detail.Attempts) < 3 {
		t.Fatalf("delivery detail: %+v", detail)
	}

	var events struct {
		Data []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"data"`
	}
	getJSON(t, api+"/events?source=stripe", &events)
	status := map[string]string{}
	for _, e := range events.Data {
		status[e.ID] = e.Status
	}
	if len(events.Data) != 3 || status[ignoredID] != "ignored" || status[eventID] == "" || status[event2] == "" {
		t.Fatalf("events: %+v", events.Data)
	}
	var requests struct {
		Data []struct {
			Status     string `json:"status"`
			HTTPStatus int    `json:"http_status"`
			Reason     string `json:"reason"`
		} `json:"data"`
	}
	getJSON(t, api+"/requests?source=stripe&status=rejected", &requests)
	if len(requests.Data) != 1 || requests.Data[0].HTTPStatus != 401 || requests.Data[0].Reason == "" {
		t.Fatalf("rejected requests: %+v", requests.Data)
	}
}

// TestServeDefaultsAndBadInput starts on the embedded default, checks the
// health endpoints and that hostile clients get clear answers while the
// process keeps serving.
func TestServeDefaultsAndBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	inst := startWith(t, []string{"serve", "--listen", "127.0.0.1:0", "--db", "sqlite://" + filepath.Join(dir, "d.db")})
	first, _, _ := strings.Cut(inst.logs.String(), "\n")
	if !strings.Contains(first, "embedded default config") {
		t.Errorf("first log line does not say it runs on the default: %s", first)
	}
	base := "http://" + inst.addr

	// A slow client that never finishes its headers holds no one up.
	slow, err := net.Dial("tcp", inst.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /e/x HTTP/1.1\r\nHost: x\r\n")

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	// Unknown source.
	resp, err := http.Post(base+"/e/nope", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown source: %d", resp.StatusCode)
	}
	// Huge headers.
	req, _ := http.NewRequest(http.MethodPost, base+"/e/nope", strings.NewReader("x"))
	req.Header.Set("X-Huge", strings.Repeat("a", 200<<10))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("huge headers: %d", resp.StatusCode)
	}
	// Add a source through the API, then send invalid UTF-8 and an empty body.
	src := `{"name":"raw","verify":{"type":"none"}}`
	resp, err = http.Post(base+"/api/v1/sources", "application/json", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create source: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, b := range [][]byte{{0xff, 0xfe, 'x'}, nil} {
		for {
			resp, err = http.Post(base+"/e/raw/some/suffix?q=1", "application/octet-stream", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // the catalog reloads asynchronously
		}
		if resp.StatusCode != 200 {
			t.Errorf("body %q: %d", b, resp.StatusCode)
		}
	}
	var reqs struct {
		Data []struct {
			Path string `json:"path"`
		} `json:"data"`
	}
	getJSON(t, base+"/api/v1/requests?source=raw", &reqs)
	if len(reqs.Data) != 2 || !strings.HasSuffix(reqs.Data[0].Path, "/some/suffix") {
		t.Errorf("requests: %+v", reqs.Data)
	}
}

// TestBadConfigNamesTheField checks that a typo in the config file stops
// the process with a message naming the file, line and field.
func TestBadConfigNamesTheField(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	os.WriteFile(path, []byte("listen: 127.0.0.1:0\nsources:\n  - name: s\n    verfy: {type: none}\n"), 0o600)
	out, err := exec.Command(binary(t), "serve", "--config", path).CombinedOutput()
	if err == nil {
		t.Fatalf("started with a bad config:\n%s", out)
	}
	if !strings.Contains(string(out), "bad.yaml:4") || !strings.Contains(string(out), "verfy") {
		t.Errorf("error does not name file, line and field:\n%s", out)
	}
}
