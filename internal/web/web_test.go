package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/httpguard"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/verify"
	"github.com/mailroomhq/mailroom/internal/web"
)

const testToken = "dash-test-token"

// Secrets seeded into the catalog; no page may show them.
const (
	verifySecret  = "whsec_never_shown_1"
	signingSecret = "sign_never_shown_2"
	headerSecret  = "bearer_never_shown_3"
	bodyMarker    = "cs_test_marker_42"
)

type testBundle struct {
	store *sqlite.Store
	cat   *catalog.Catalog
	web   *web.Server
	srv   *httptest.Server
	// client keeps cookies and does not follow redirects.
	client *http.Client
}

func setup(t testing.TB, token string) *testBundle {
	t.Helper()
	s := sqlitetest.Open(t, nil)
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, &catalog.Options{Refresh: time.Hour})
	w := web.New(s, cat, &web.Options{Token: token})
	mux := http.NewServeMux()
	w.Register(mux)
	// The guard cmd/mailroom puts in front of the dashboard, so that the
	// cross-site cases below see what production does.
	srv := httptest.NewServer(httpguard.New(&httpguard.Options{Listen: "127.0.0.1:0", Forms: []string{"/ui/"}}).Handler(mux))
	t.Cleanup(srv.Close)
	t.Cleanup(w.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	return &testBundle{store: s, cat: cat, web: w, srv: srv, client: client}
}

// fixture is what seed created.
type fixture struct {
	eventID, requestID, deliveryID, rejectedID, dupID string
}

// seed creates a stripe source routed to billing, one event whose delivery
// died after a 500, a duplicate of it, a rejected request and an open task.
func (b *testBundle) seed(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	s := b.store
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SourceUpsert(ctx, &store.Source{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: verifySecret}, Description: "Stripe account"}))
	must(s.DestinationUpsert(ctx, &store.Destination{
		Name: "billing", URL: "http://127.0.0.1:9/hooks", RateLimit: "5/s", MaxConcurrency: 3,
		Sign: store.SignConfig{Type: "standard-webhooks", Secret: signingSecret}, Headers: map[string]string{"Authorization": headerSecret},
	}))
	must(s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "billing"}))
	must(b.cat.Load(ctx))

	body := `{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"id":"` + bodyMarker + `"}}}`
	in := func() *store.RequestIngestParams {
		return &store.RequestIngestParams{
			Request: &store.Request{Source: "stripe", ReceivedAt: time.Now(), Method: "POST", Path: "/e/stripe",
				Headers: http.Header{"Content-Type": {"application/json"}, "Stripe-Signature": {"t=1,v1=abc"}},
				Body:    []byte(body), RemoteAddr: "203.0.113.7:5000", HTTPStatus: 200},
			Event:      &store.Event{Type: "checkout.session.completed", DedupKey: "evt_1"},
			Deliveries: []*store.Delivery{{Destination: "billing", ConnectionID: "stripe->billing"}},
		}
	}
	res, err := s.RequestIngest(ctx, in())
	must(err)
	dup, err := s.RequestIngest(ctx, in())
	must(err)
	now := time.Now()
	claimed, err := s.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Destination: "billing", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 1})
	must(err)
	if len(claimed) != 1 {
		t.Fatalf("claimed %d deliveries", len(claimed))
	}
	must(s.AttemptRecord(ctx, &store.AttemptRecordParams{
		Attempt: &store.Attempt{DeliveryID: claimed[0].ID, EventID: claimed[0].EventID, Destination: "billing", Number: claimed[0].Attempts,
			StartedAt: now, DurationMS: 12.5, StatusCode: 500, ResponseBody: []byte(`{"error":"upstream exploded"}`), Error: "HTTP 500"},
		Status: store.DeliveryDead, Now: now,
		Retry: &store.RetryApplied{Policy: "connection stripe->billing retry[0]", EventType: "checkout.session.completed",
			Types: []string{"checkout.*"}, MaxAttempts: 1, Decision: "dead", Reason: "1 of 1 attempts made"},
	}))
	rej, err := s.RequestInsert(ctx, &store.Request{Source: "stripe", ReceivedAt: time.Now(), Method: "POST", Path: "/e/stripe",
		Body: []byte(`{"forged":true}`), BodySize: 10 << 20, BodySHA256: "5e1f0c", Status: store.RequestRejected, Reason: "signature mismatch", HTTPStatus: 401})
	must(err)
	must(s.TaskCreate(ctx, &store.Task{ID: "task_open_1", Owner: "agent", Protocol: "2025-11-25", Tool: "create_payment_link",
		Wait: &store.TaskWait{Source: "stripe", Type: "checkout.session.completed", Since: now}}))
	return &fixture{eventID: res.EventID, requestID: res.RequestID, deliveryID: res.DeliveryIDs[0], rejectedID: rej, dupID: dup.RequestID}
}

func (b *testBundle) get(t testing.TB, path string) (*http.Response, string) {
	t.Helper()
	resp, err := b.client.Get(b.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// post sends a same-origin form post, as a browser would.
func (b *testBundle) post(t testing.TB, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *testBundle) login(t testing.TB) {
	t.Helper()
	resp, body := b.post(t, "/ui/login", url.Values{"token": {testToken}, "next": {"/"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token from a page.
func (b *testBundle) csrf(t testing.TB, path string) string {
	t.Helper()
	_, body := b.get(t, path)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field on %s", path)
	}
	return m[1]
}

func TestLogin(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)

	resp, _ := b.get(t, "/ui/events?source=stripe")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login?next="+url.QueryEscape("/ui/events?source=stripe") {
		t.Fatalf("without session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.get(t, "/ui/stream")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stream without session: %d", resp.StatusCode)
	}
	resp, body := b.get(t, "/ui/login")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Fatalf("login page: %d", resp.StatusCode)
	}

	resp, body = b.post(t, "/ui/login", url.Values{"token": {"wrong"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not a valid token") {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("wrong token set cookies %v", resp.Cookies())
	}

	resp, _ = b.post(t, "/ui/login", url.Values{"token": {testToken}, "next": {"//evil.example/x"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d, Location %q (an off-site next must become /)", resp.StatusCode, resp.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == web.SessionCookie {
			c = ck
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || strings.Contains(c.Value, testToken) {
		t.Fatalf("session cookie = %+v", c)
	}
	if resp, _ := b.get(t, "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("overview after login: %d", resp.StatusCode)
	}

	// A tampered cookie is no session.
	other := setup(t, testToken)
	u, _ := url.Parse(other.srv.URL)
	tampered := *c
	tampered.Value = strings.Replace(c.Value, ".", ".x", 1)
	other.client.Jar.SetCookies(u, []*http.Cookie{&tampered})
	if resp, _ := other.get(t, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("tampered cookie: %d", resp.StatusCode)
	}
	// Nor is a cookie signed by another process's key.
	other.client.Jar.SetCookies(u, []*http.Cookie{c})
	if resp, _ := other.get(t, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("cookie from another server: %d", resp.StatusCode)
	}

	// Log out clears the cookie.
	token := b.csrf(t, "/")
	resp, _ = b.post(t, "/ui/logout", url.Values{"csrf": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := b.get(t, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
}

func TestOpenModeNeedsNoLogin(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	f := b.seed(t)
	resp, body := b.get(t, "/")
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "Log out") {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
	if resp, _ := b.get(t, "/ui/login"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login page in open mode: %d, want a redirect", resp.StatusCode)
	}
	// Actions still need the session's CSRF token.
	if resp, _ := b.post(t, "/ui/deliveries/"+f.deliveryID+"/retry", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("retry without csrf: %d", resp.StatusCode)
	}
	token := b.csrf(t, "/ui/events/"+f.eventID)
	if resp, _ := b.post(t, "/ui/deliveries/"+f.deliveryID+"/retry", url.Values{"csrf": {token}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("retry with csrf: %d", resp.StatusCode)
	}
}

func TestCSRFAndOrigin(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	f := b.seed(t)
	b.login(t)
	token := b.csrf(t, "/ui/events/"+f.eventID)
	path := "/ui/deliveries/" + f.deliveryID + "/retry"
	for _, tt := range []struct {
		name string
		form url.Values
		hdr  map[string]string
		want int
	}{
		{"no token", url.Values{}, nil, http.StatusForbidden},
		{"wrong token", url.Values{"csrf": {"x" + token}}, nil, http.StatusForbidden},
		{"cross-site fetch", url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign origin", url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"same origin with token", url.Values{"csrf": {token}}, nil, http.StatusSeeOther},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := b.post(t, path, tt.form, tt.hdr)
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	d, err := b.store.DeliveryGetByID(context.Background(), f.deliveryID)
	if err != nil || d.Status != store.DeliveryPending {
		t.Errorf("after the accepted retry: %+v, %v", d, err)
	}
	// A cross-site login post is refused too (login CSRF).
	resp, _ := b.post(t, "/ui/login", url.Values{"token": {testToken}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login: %d", resp.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	for _, path := range []string{"/ui/login", "/"} {
		resp, _ := b.get(t, path)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
	_, body := b.get(t, "/ui/login")
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, " onclick=") {
		t.Error("page has inline script or style, which the CSP blocks")
	}
	// Static files are served without a session.
	for _, f := range []string{"app.js", "style.css"} {
		resp, _ := b.get(t, "/ui/static/"+f)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", f, resp.StatusCode)
		}
	}
}

// TestPages renders every page with seeded data and checks what an
// operator needs is on it and no secret is.
func TestPages(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	f := b.seed(t)
	b.login(t)
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/", []string{"Overview", `id="ingest-rate"`, `id="error-rate"`, "billing", `id="open-tasks">1<`}},
		{"/ui/requests", []string{f.requestID, f.rejectedID, "signature mismatch", "duplicate", `data-live="created"`}},
		{"/ui/requests/" + f.rejectedID, []string{"rejected", "signature mismatch", "HTTP 401", "forged", "POST /e/stripe<",
			"Only the first 15 of 10485760 bytes were kept", "<code>5e1f0c</code>"}},
		{"/ui/events", []string{f.eventID, "checkout.session.completed", "1 dead"}},
		{"/ui/events/" + f.eventID, []string{
			"Replay event", "Retry delivery", f.deliveryID, "HTTP 500", "upstream exploded", "12.5 ms",
			"verified", "stripe signature matched", "key <code>evt_1</code>", "1 later duplicate dropped", f.dupID,
			"Stripe-Signature", "&#34;id&#34;: &#34;" + bodyMarker, "203.0.113.7",
			"Retry policy: connection stripe-&gt;billing retry[0] (types checkout.*, event type checkout.session.completed): max_attempts 1; dead: 1 of 1 attempts made",
		}},
		{"/ui/destinations", []string{`id="dest-billing"`, "failing", "5/s", "Pause", "standard-webhooks", "1 dead", "Managed by</dt><dd>the API"}},
		{"/ui/sources", []string{"/e/stripe", "data-copy=", "Copy", "stripe", "billing"}},
		{"/ui/tasks", []string{"task_open_1", "create_payment_link", "working", "waiting for stripe"}},
		{"/ui/tasks?status=open", []string{"task_open_1"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := b.get(t, tt.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, secret := range []string{verifySecret, signingSecret, headerSecret, testToken, "t=1,v1=abc"} {
				if strings.Contains(body, secret) {
					t.Errorf("page shows secret %q", secret)
				}
			}
		})
	}
	for _, path := range []string{"/ui/events/evt_nope", "/ui/requests/req_nope"} {
		if resp, _ := b.get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestEventPageShowsDedupError checks that an event accepted without
// deduplication, because its source's key could not be computed, says why.
func TestEventPageShowsDedupError(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	b.login(t)
	res, err := b.store.RequestIngest(context.Background(), &store.RequestIngestParams{
		Request: &store.Request{Source: "twilio", ReceivedAt: time.Now(), Method: "POST", Path: "/e/twilio", Body: []byte("Body=hi")},
		Event:   &store.Event{DedupError: "dedup key not computed, accepted without deduplication: no such key: MessageSid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.get(t, "/ui/events/"+res.EventID)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="dedup-error">dedup key not computed, accepted without deduplication: no such key: MessageSid<`) {
		t.Errorf("event page (%d) lacks the dedup error:\n%s", resp.StatusCode, body)
	}
	resp, body = b.get(t, "/ui/events")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `title="dedup key not computed, accepted without deduplication: no such key: MessageSid">not deduplicated<`) {
		t.Errorf("event list (%d) does not mark the event as not deduplicated:\n%s", resp.StatusCode, body)
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	f := b.seed(t)
	b.login(t)
	for _, tt := range []struct {
		path    string
		want    bool
		wantRej bool
	}{
		{"/ui/events?q=" + bodyMarker, true, false},
		{"/ui/events?q=no-such-text", false, false},
		{"/ui/events?where=" + url.QueryEscape("data.object.id="+bodyMarker), true, false},
		{"/ui/events?where=" + url.QueryEscape(`data.object.id="`+bodyMarker+`"`) + "&q=checkout", true, false},
		{"/ui/events?where=" + url.QueryEscape("data.object.id=cs_other"), false, false},
		{"/ui/events?where=" + url.QueryEscape("type=checkout.session.completed") + "&source=github", false, false},
		{"/ui/events?type=checkout.session.completed&source=stripe", true, false},
		{"/ui/events?type=other", false, false},
		{"/ui/events?status=ignored", false, false},
		{"/ui/events?range=15m", true, false},
		{"/ui/events?until=2001-01-01T00:00", false, false},
		{"/ui/requests?status=rejected", false, true},
		{"/ui/requests?q=forged", false, true},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := b.get(t, tt.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			id := f.eventID
			if strings.HasPrefix(tt.path, "/ui/requests") {
				id = f.requestID
			}
			if got := strings.Contains(body, `data-id="`+id+`"`); got != tt.want {
				t.Errorf("row %s shown = %v, want %v", id, got, tt.want)
			}
			if got := strings.Contains(body, `data-id="`+f.rejectedID+`"`); got != tt.wantRej {
				t.Errorf("rejected row shown = %v, want %v", got, tt.wantRej)
			}
		})
	}
	resp, body := b.get(t, "/ui/events?since=yesterday")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "since") {
		t.Errorf("bad since: %d", resp.StatusCode)
	}
	resp, body = b.get(t, "/ui/events?where="+url.QueryEscape("data..id=1"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "empty key") {
		t.Errorf("bad where: %d", resp.StatusCode)
	}
	// The live tail asks for the rows alone.
	resp, body = b.get(t, "/ui/events?partial=rows&q="+bodyMarker)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "<html") || !strings.Contains(body, f.eventID) {
		t.Errorf("partial rows: %d %q", resp.StatusCode, body)
	}
}

func TestPaging(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	b.login(t)
	ctx := context.Background()
	var ids []string
	for i := range web.PageSize + 5 {
		res, err := b.store.RequestIngest(ctx, &store.RequestIngestParams{
			Request: &store.Request{Source: "s", ReceivedAt: time.Now(), Method: "POST", Path: "/e/s", Body: []byte("{}")},
			Event:   &store.Event{Type: "t", DedupKey: string(rune('a'+i%26)) + time.Now().String()},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.EventID)
	}
	_, body := b.get(t, "/ui/events")
	m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, ids[len(ids)-1]) || strings.Contains(body, `data-id="`+ids[0]+`"`) {
		t.Fatal("first page: want the newest rows and a next link")
	}
	next := strings.ReplaceAll(m[1], "&amp;", "&")
	_, body = b.get(t, next)
	if !strings.Contains(body, `data-id="`+ids[0]+`"`) || strings.Contains(body, `rel="next"`) || strings.Contains(body, `data-live=`) {
		t.Error("second page: want the oldest rows, no next link, no live tail")
	}
}

func TestActions(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	f := b.seed(t)
	b.login(t)
	ctx := context.Background()
	token := b.csrf(t, "/ui/events/"+f.eventID)

	resp, _ := b.post(t, "/ui/deliveries/"+f.deliveryID+"/retry", url.Values{"csrf": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/events/"+f.eventID+"?flash=retried") {
		t.Fatalf("retry: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if d, _ := b.store.DeliveryGetByID(ctx, f.deliveryID); d.Status != store.DeliveryPending {
		t.Errorf("after retry: status %s", d.Status)
	}
	_, body := b.get(t, resp.Header.Get("Location"))
	if !strings.Contains(body, "queued for another attempt") || !strings.Contains(body, "data-pending") {
		t.Error("event page after retry lacks the flash or the pending marker")
	}

	resp, _ = b.post(t, "/ui/events/"+f.eventID+"/replay", url.Values{"csrf": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "flash=replayed&n=1") {
		t.Fatalf("replay: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ds, _ := b.store.DeliveryList(ctx, &store.DeliveryListParams{EventID: f.eventID})
	if len(ds) != 2 {
		t.Errorf("after replay: %d deliveries, want 2", len(ds))
	}

	resp, _ = b.post(t, "/ui/destinations/billing/pause", url.Values{"csrf": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("pause: %d", resp.StatusCode)
	}
	if d, _ := b.store.DestinationGet(ctx, "billing"); !d.Paused {
		t.Error("not paused")
	}
	if !b.cat.Current().Destinations["billing"].Paused {
		t.Error("catalog not reloaded after pause")
	}
	_, body = b.get(t, "/ui/destinations")
	if !strings.Contains(body, "Resume") || !strings.Contains(body, "paused from the dashboard") {
		t.Error("destinations page does not show the pause")
	}
	resp, _ = b.post(t, "/ui/destinations/billing/resume", url.Values{"csrf": {token}}, nil)
	if d, _ := b.store.DestinationGet(ctx, "billing"); resp.StatusCode != http.StatusSeeOther || d.Paused {
		t.Errorf("resume: %d, paused %v", resp.StatusCode, d.Paused)
	}

	for _, path := range []string{"/ui/deliveries/dlv_nope/retry", "/ui/events/evt_nope/replay", "/ui/destinations/nope/pause"} {
		if resp, _ := b.post(t, path, url.Values{"csrf": {token}}, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestStream(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	b.login(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/ui/stream", nil)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(resp.Body)
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("first line %q, %v", line, err)
	}
	// The handler subscribes right after the greeting, so a first event
	// may come too early: keep ingesting until one comes through.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, err := b.store.RequestIngest(ctx, &store.RequestIngestParams{
				Request: &store.Request{Source: "s", ReceivedAt: time.Now(), Method: "POST", Path: "/e/s", Body: []byte("{}")},
				Event:   &store.Event{Type: "t"},
			})
			if err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		if line == "event: created\n" {
			data, _ := rd.ReadString('\n')
			var ev struct{ ID, Source string }
			if err := json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &ev); err != nil || ev.Source != "s" || !strings.HasPrefix(ev.ID, "evt_") {
				t.Fatalf("data %q: %v", data, err)
			}
			break
		}
	}
	cancel()
	<-done

	// Close ends open streams.
	req2, _ := http.NewRequest("GET", b.srv.URL+"/ui/stream", nil)
	resp2, err := b.client.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	b.web.Close()
	if _, err := io.Copy(io.Discard, resp2.Body); err != nil {
		t.Errorf("stream after Close: %v", err)
	}
}

// TestCircuitShown: a destination whose circuit breaker is open says so on
// the destinations page (with its reason and next probe) and the overview.
func TestCircuitShown(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	b.seed(t)
	ctx := context.Background()
	d, err := b.store.DestinationGet(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	d.CircuitBreaker = store.CircuitBreaker{Failures: 5}
	if err := b.store.DestinationUpsert(ctx, d); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	open := store.CircuitState{State: store.CircuitOpen, Since: now, ProbeAt: now.Add(time.Minute), Opens: 1, Reason: "5 failed attempts in a row"}
	if moved, err := b.store.DestinationSetCircuit(ctx, "billing", store.CircuitState{}, open); err != nil || !moved {
		t.Fatalf("open circuit: %v, %v", moved, err)
	}
	b.login(t)
	_, body := b.get(t, "/ui/destinations")
	for _, w := range []string{"Circuit open", "5 failed attempts in a row", "next probe at", "opens after 5 failures in a row · open"} {
		if !strings.Contains(body, w) {
			t.Errorf("destinations page lacks %q", w)
		}
	}
	if _, body := b.get(t, "/"); !strings.Contains(body, "s-circuit-open") {
		t.Error("overview does not show the open circuit")
	}
}

// TestRegisterDisabled: where the dashboard is off, its pages say why.
func TestRegisterDisabled(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	web.RegisterDisabled(mux, "set api.token")
	for _, path := range []string{"/", "/ui/events"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "dashboard disabled: set api.token") {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}
