package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mailroomhq/mailroom/internal/store"
)

// createToken creates a token of role through the API with the admin
// token and returns it with its id.
func (b *browserServer) createToken(t *testing.T, role string) (secret, id string) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.url+"/api/v1/tokens", strings.NewReader(`{"name":"`+role+` in the browser","role":"`+role+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a %s token: %d %v", role, resp.StatusCode, err)
	}
	return out.Token, out.ID
}

// TestBrowserRoles logs in to the dashboard in headless Chromium with a
// viewer token: the event and destinations pages show no retry, replay,
// pause or resume button, and a retry forged from the page (same origin,
// the session's valid CSRF token) is refused with 403 and changes nothing.
// Then an operator token, on the same pages, sees the buttons and its
// retry works, recorded in the audit log under its token.
func TestBrowserRoles(t *testing.T) {
	exe := chromiumPath(t)
	b := startServer(t)
	_, evID := b.ingestStripe(t, "evt_roles_1", "checkout.session.completed", "cs_test_roles")
	select {
	case <-b.attempts:
	case <-time.After(15 * time.Second):
		t.Fatal("the dispatcher made no attempt")
	}
	ds, err := b.store.DeliveryList(context.Background(), &store.DeliveryListParams{EventID: evID})
	if err != nil || len(ds) != 1 || ds[0].Status != store.DeliveryDead {
		t.Fatalf("delivery after the failed attempt: %+v, %v", ds, err)
	}
	dlv := ds[0].ID
	viewer, viewerID := b.createToken(t, "viewer")
	operator, operatorID := b.createToken(t, "operator")

	var chromeLog strings.Builder
	var logMu sync.Mutex
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
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
	if err := chromedp.Do(ctx); err != nil {
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("start chromium: %v\n%s", err, chromeLog.String())
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("step %q: %v", name, err)
		}
	}
	count := func(sel string) int {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := chromedp.Run(sctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	login := func(token string) {
		t.Helper()
		step("log in",
			chromedp.Navigate(b.url+"/ui/login?next=/ui/events/"+evID),
			chromedp.WaitVisible(css("#token")),
			chromedp.SendKeys(css("#token"), token),
			chromedp.Click(css(".login button[type=submit]")),
			chromedp.WaitVisible(css("#event-id")),
			chromedp.WaitVisible(css("#"+dlv)),
		)
	}

	login(viewer)
	if who := text("#who"); !strings.Contains(who, "viewer") {
		t.Errorf("header says %q, want the viewer's role", who)
	}
	if n := count("button.retry") + count("#replay"); n != 0 {
		t.Errorf("a viewer sees %d retry or replay buttons on the event page", n)
	}
	step("destinations", chromedp.Navigate(b.url+"/ui/destinations"), chromedp.WaitVisible(css("#dest-billing")))
	if n := count("#dest-billing button"); n != 0 {
		t.Errorf("a viewer sees %d pause or resume buttons", n)
	}
	// Forge the retry the page does not offer: a same-origin form post
	// with the session's own CSRF token (from the log-out form).
	sctx, cancelForge := context.WithTimeout(ctx, 10*time.Second)
	forged, err := chromedp.Run(sctx, chromedp.Evaluate[string](`(async () => {
		const csrf = document.querySelector('form.logout input[name=csrf]').value;
		const r = await fetch('/ui/deliveries/`+dlv+`/retry', {method: 'POST', redirect: 'manual',
			headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'csrf=' + encodeURIComponent(csrf)});
		return r.status + ' ' + (await r.text());
	})()`, chromedp.EvalAwaitPromise))
	cancelForge()
	if err != nil || !strings.HasPrefix(forged, "403 ") || !strings.Contains(forged, "forbidden: POST /ui/deliveries/{id}/retry needs the operate permission") {
		t.Errorf("forged retry as a viewer: %.300q, %v; want 403 from the guard", forged, err)
	}
	if d, err := b.store.DeliveryGetByID(context.Background(), dlv); err != nil || d.Status != store.DeliveryDead || d.Attempts != 1 {
		t.Errorf("after the forged retry the delivery is %+v, %v; want it dead after 1 attempt", d, err)
	}
	if es, err := b.store.AuditList(context.Background(), &store.AuditListParams{TokenID: viewerID}); err != nil || len(es) != 0 {
		t.Errorf("audit entries of the viewer: %+v, %v; want none (refused)", es, err)
	}

	step("log out", chromedp.Click(css("form.logout button")), chromedp.WaitVisible(css("#token")))
	login(operator)
	if n := count("#" + dlv + " button.retry"); n != 1 {
		t.Fatalf("an operator sees %d retry buttons on the delivery, want 1", n)
	}
	step("retry as the operator",
		chromedp.Click(css(`#`+dlv+` button.retry`)),
		chromedp.WaitVisible(css(`.flash`)),
		chromedp.WaitVisible(css(`#`+dlv+`[data-status="succeeded"]`)),
	)
	es, err := b.store.AuditList(context.Background(), &store.AuditListParams{TokenID: operatorID})
	if err != nil || len(es) != 1 || es[0].Action != "POST /ui/deliveries/{id}/retry" || es[0].Target != dlv || es[0].Actor != "operator in the browser" {
		t.Fatalf("audit entries of the operator: %+v, %v", es, err)
	}
	if !strings.Contains(string(es[0].Before), `"status":"dead"`) || !strings.Contains(string(es[0].After), `"status":"pending"`) {
		t.Errorf("audit before/after: %s / %s", es[0].Before, es[0].After)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
