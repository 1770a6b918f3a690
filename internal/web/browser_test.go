package web_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/chromedp/chromedp"

	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/verify"
	"github.com/mailroomhq/mailroom/internal/web"
)

const stripeSecret = "whsec_browser_test"

// chromiumPath finds the browser, or skips the test (fails it under CI,
// where .ci/run installs the Debian package chromium).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true: .ci/run should have installed the Debian package chromium")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the browser test")
	return ""
}

// artifactDir is where screenshots go: $MAILROOM_TEST_ARTIFACTS/web, or a
// temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("MAILROOM_TEST_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, "web")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browserServer is the real thing on loopback: ingest, API and dashboard
// on one mux, SQLite, and the dispatcher delivering to a sink.
type browserServer struct {
	store *sqlite.Store
	url   string
	// attempts receives each delivery attempt's outcome.
	attempts chan string
	sinkHits atomic.Int32
}

func startServer(t *testing.T) *browserServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "mailroom.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browserServer{store: s, attempts: make(chan string, 16)}

	// The sink fails the first delivery, then accepts.
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if b.sinkHits.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"billing is warming up"}`)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))

	for _, err := range []error{
		s.SourceUpsert(ctx, &store.Source{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: stripeSecret}, Description: "Stripe test account"}),
		// One automatic attempt, so the failure leaves the delivery dead
		// for the operator to retry.
		s.DestinationUpsert(ctx, &store.Destination{Name: "billing", URL: sink.URL + "/hooks", RateLimit: "10/s", MaxConcurrency: 2,
			Retry: store.RetryPolicy{MaxAttempts: 1}}),
		s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "billing", Filter: `body.type.startsWith("checkout.")`}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, nil)
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ingest.New(s, cat, nil).Register(mux)
	api.New(s, cat, &api.Options{Token: testToken}).Register(mux)
	dash := web.New(s, cat, &web.Options{Token: testToken})
	dash.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.RegisterOnShutdown(dash.Close)
	srv.Start()
	b.url = srv.URL

	d := deliver.New(s, &deliver.Options{
		PollInterval: 100 * time.Millisecond,
		OnAttempt: func(a store.Attempt, outcome string) {
			select {
			case b.attempts <- outcome:
			default:
			}
		},
	})
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	wg.Go(func() { cat.Run(ctx) })
	t.Cleanup(func() {
		dash.Close()
		srv.Close()
		cancel()
		wg.Wait()
		sink.Close()
		s.Close()
	})
	return b
}

// ingestStripe posts a Stripe-signed webhook and returns the ids mailroom
// answered with.
func (b *browserServer) ingestStripe(t *testing.T, id, typ, marker string) (requestID, eventID string) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"type":%q,"data":{"object":{"id":%q,"payment_link":"plink_1"}}}`, id, typ, marker)
	ts := fmt.Sprint(time.Now().Unix())
	m := hmac.New(sha256.New, []byte(stripeSecret))
	io.WriteString(m, ts+"."+body)
	req, _ := http.NewRequest("POST", b.url+"/e/stripe", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", "t="+ts+",v1="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		RequestID string `json:"request_id"`
		EventID   string `json:"event_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.EventID == "" {
		t.Fatalf("ingest: %d %+v %v", resp.StatusCode, out, err)
	}
	return out.RequestID, out.EventID
}

// TestBrowser drives the dashboard in headless Chromium the way an
// operator answers "did the webhook for payment X arrive, and why did its
// delivery fail": log in, find the event by a body search, open it, retry
// the failed delivery and watch the new attempt appear; then visit every
// page, at desktop and phone width, with a screenshot of each.
func TestBrowser(t *testing.T) {
	exe := chromiumPath(t)
	dir := artifactDir(t)
	b := startServer(t)

	const marker = "cs_test_browser_7Qx"
	// A decoy that no connection routes, for the search to leave out.
	b.ingestStripe(t, "evt_browser_0", "invoice.paid", "in_test_decoy")
	reqID, evID := b.ingestStripe(t, "evt_browser_1", "checkout.session.completed", marker)
	select {
	case outcome := <-b.attempts:
		t.Logf("first attempt: %s", outcome)
	case <-time.After(15 * time.Second):
		t.Fatal("the dispatcher made no attempt")
	}
	ds, err := b.store.DeliveryList(context.Background(), &store.DeliveryListParams{EventID: evID})
	if err != nil || len(ds) != 1 || ds[0].Status != store.DeliveryDead {
		t.Fatalf("delivery after the failed attempt: %+v, %v", ds, err)
	}
	dlv := ds[0].ID

	var chromeLog strings.Builder
	var logMu sync.Mutex
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these Chromium reaches for the network at start and hangs
		// on a closed one.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(lockedWriter{&logMu, &chromeLog}),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	// The first Do starts the browser and binds it to ctx, so it gets no
	// timeout of its own; each step below does.
	if err := chromedp.Do(ctx); err != nil {
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("start chromium: %v\n%s", err, chromeLog.String())
	}

	shots := 0
	shot := func(name string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		shots++
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d-%s.png", shots, name)), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			loc, _ := chromedp.Run(lctx, chromedp.Location())
			t.Errorf("step %q (at %s): %v", name, loc, err)
			shot("failed-" + name)
			t.FailNow()
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	step("open the dashboard", chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(css("#token")))
	shot("login")
	step("log in",
		chromedp.SendKeys(css("#token"), testToken),
		chromedp.Click(css(".login button[type=submit]")),
		chromedp.WaitVisible(css("#ingest-rate")),
	)
	shot("overview")

	step("find the event by a body search",
		chromedp.Navigate(b.url+"/ui/events"),
		chromedp.WaitVisible(css(`input[name="q"]`)),
		chromedp.SendKeys(css(`input[name="q"]`), marker),
		chromedp.Click(css(`.filters button[type=submit]`)),
		// The filtered page, not the one the form was on.
		chromedp.WaitVisible(css(`input[name="q"][value="`+marker+`"]`)),
		chromedp.WaitVisible(css(`tr[data-id="`+evID+`"]`)),
	)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("table#rows tr[data-id]").length`)); err != nil || n != 1 {
		t.Errorf("filtered list has %d rows (%v), want 1", n, err)
	}
	shot("events-filtered")

	step("open the event",
		chromedp.Click(css(`tr[data-id="`+evID+`"] a.event-link`)),
		chromedp.WaitVisible(css("#event-id")),
		chromedp.WaitVisible(css(`#`+dlv+`[data-status="dead"]`)),
	)
	if got := text(`#` + dlv + ` tr.attempt[data-n="1"]`); !strings.Contains(got, "503") {
		t.Errorf("first attempt row %q lacks the 503", got)
	}
	if got := text("main"); !strings.Contains(got, "stripe signature matched") || !strings.Contains(got, "evt_browser_1") {
		t.Errorf("event page lacks the verification result or dedup key:\n%s", got)
	}
	shot("event-dead-delivery")

	step("retry the delivery and see the new attempt",
		chromedp.Click(css(`#`+dlv+` button.retry`)),
		chromedp.WaitVisible(css(`.flash`)),
		chromedp.WaitVisible(css(`#`+dlv+` tr.attempt[data-n="2"]`)),
		chromedp.WaitVisible(css(`#`+dlv+`[data-status="succeeded"]`)),
	)
	if got := text(`#` + dlv + ` tr.attempt[data-n="2"]`); !strings.Contains(got, "200") {
		t.Errorf("second attempt row %q lacks the 200", got)
	}
	shot("event-retried")

	step("live tail shows a new event without reload",
		chromedp.Navigate(b.url+"/ui/events"),
		chromedp.WaitVisible(css(".live.on")),
	)
	_, ev2 := b.ingestStripe(t, "evt_browser_2", "checkout.session.completed", "cs_test_live")
	step("wait for the new row", chromedp.WaitVisible(css(`tr[data-id="`+ev2+`"]`)))
	shot("events-live")

	step("requests", chromedp.Navigate(b.url+"/ui/requests"), chromedp.WaitVisible(css(`tr[data-id="`+reqID+`"]`)))
	shot("requests")
	step("request detail", chromedp.Navigate(b.url+"/ui/requests/"+reqID), chromedp.WaitVisible(css("pre.body")))
	shot("request")

	step("pause a destination",
		chromedp.Navigate(b.url+"/ui/destinations"),
		chromedp.WaitVisible(css(`#dest-billing button.pause`)),
		chromedp.Click(css(`#dest-billing button.pause`)),
		chromedp.WaitVisible(css(`#dest-billing button.resume`)),
	)
	shot("destinations-paused")
	step("resume it",
		chromedp.Click(css(`#dest-billing button.resume`)),
		chromedp.WaitVisible(css(`#dest-billing button.pause`)),
	)
	shot("destinations")

	step("sources and copy the ingest URL",
		chromedp.Navigate(b.url+"/ui/sources"),
		chromedp.WaitVisible(css(`#src-stripe button.copy`)),
		chromedp.Click(css(`#src-stripe button.copy`)),
	)
	if got := text(`#src-stripe .url`); !strings.Contains(got, b.url+"/e/stripe") {
		t.Errorf("ingest URL cell %q", got)
	}
	shot("sources")

	now := time.Now()
	if err := b.store.TaskCreate(context.Background(), &store.Task{ID: "task_browser_1", Owner: "agent", Protocol: "2025-11-25",
		Tool: "create_payment_link", Wait: &store.TaskWait{Source: "stripe", Since: now}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.TaskUpdate(context.Background(), &store.TaskUpdateParams{ID: "task_browser_1", Status: store.TaskCompleted,
		EventID: evID, Result: json.RawMessage(`{"content":[]}`), Now: now}); err != nil {
		t.Fatal(err)
	}
	step("tasks link to the event that completed them",
		chromedp.Navigate(b.url+"/ui/tasks"),
		chromedp.WaitVisible(css(`tr[data-id="task_browser_1"] a[href="/ui/events/`+evID+`"]`)),
	)
	shot("tasks")

	// Phone width: every page fits without sideways scrolling of the page
	// itself (wide tables scroll inside their own box).
	step("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, p := range []struct{ name, path, sel string }{
		{"phone-overview", "/", "#ingest-rate"},
		{"phone-events", "/ui/events", "table#rows"},
		{"phone-event", "/ui/events/" + evID, "#event-id"},
		{"phone-destinations", "/ui/destinations", "#dest-billing"},
		{"phone-sources", "/ui/sources", "#src-stripe"},
		{"phone-tasks", "/ui/tasks", "table#rows"},
	} {
		step(p.name, chromedp.Navigate(b.url+p.path), chromedp.WaitVisible(css(p.sel)))
		fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth + 1`))
		if err != nil || !fits {
			t.Errorf("%s: page wider than the phone screen (%v)", p.name, err)
		}
		shot(p.name)
	}
	t.Logf("%d screenshots in %s", shots, dir)
}

// lockedWriter serialises writes from Chromium's output goroutine.
type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
