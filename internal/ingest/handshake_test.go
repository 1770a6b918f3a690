package ingest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// providerBundle serves ingest over a real SQLite store with sources of
// the named providers.
type providerBundle struct {
	store *sqlite.Store
	url   string
}

func setupProviders(t *testing.T) *providerBundle {
	t.Helper()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	for _, src := range []*store.Source{
		{Name: "slack", Verify: verify.Config{Type: "slack", Secret: "slack-signing-secret"}},
		{Name: "meta", Verify: verify.Config{Type: "meta", Secret: "app-secret", VerifyToken: "tok"}},
		{Name: "gitlab", Verify: verify.Config{Type: "gitlab", Secret: "gl-token"}},
		{Name: "twilio", Verify: verify.Config{Type: "twilio", Secret: "auth-token"}},
	} {
		if err := s.SourceUpsert(ctx, src); err != nil {
			t.Fatal(err)
		}
	}
	return &providerBundle{store: s, url: serveIngest(t, s, nil)}
}

// serveIngest serves ingest (with opts) over s's catalog on loopback and
// returns its base URL.
func serveIngest(t *testing.T, s store.Store, opts *ingest.Options) string {
	t.Helper()
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, nil)
	if err := cat.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ingest.New(s, cat, opts).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// send sends a request signed for cfg (unless cfg.Type is empty) and
// returns the status and body of the answer.
func (b *providerBundle) send(t *testing.T, method, path string, cfg verify.Config, header http.Header, body string) (int, string) {
	t.Helper()
	m := &verify.Message{Method: method, URL: b.url + path, Header: header.Clone(), Body: []byte(body), Now: time.Now()}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	if cfg.Type != "" {
		if err := verify.Sign(cfg, m); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, m.URL, strings.NewReader(string(m.Body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = m.Header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got)
}

// lastRequest returns the newest request recorded for source.
func (b *providerBundle) lastRequest(t *testing.T, source string) *store.Request {
	t.Helper()
	reqs, err := b.store.RequestList(context.Background(), &store.RequestListParams{Source: source, Limit: 1})
	if err != nil || len(reqs) == 0 {
		t.Fatalf("RequestList(%s) = %v, %v", source, reqs, err)
	}
	full, err := b.store.RequestGetByID(context.Background(), reqs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return full
}

// TestHandshakeAnsweredAndRecorded checks that the source answers a
// provider's endpoint check itself, records it as a request with status
// handshake, and makes no event of it.
func TestHandshakeAnsweredAndRecorded(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	slack := verify.Config{Type: "slack", Secret: "slack-signing-secret"}

	code, body := b.send(t, "POST", "/e/slack", slack, http.Header{"Content-Type": {"application/json"}},
		`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	if code != 200 || body != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("url_verification answered %d %q", code, body)
	}
	rec := b.lastRequest(t, "slack")
	if rec.Status != store.RequestHandshake || rec.HTTPStatus != 200 || !strings.Contains(rec.Reason, "url_verification") || rec.EventID != "" {
		t.Fatalf("recorded %+v, want a handshake with no event", rec)
	}
	evs, err := b.store.EventList(context.Background(), &store.EventListParams{Source: "slack", Limit: 10})
	if err != nil || len(evs) != 0 {
		t.Fatalf("events after a handshake: %v, %v", evs, err)
	}

	// An ordinary event still becomes one.
	if code, body := b.send(t, "POST", "/e/slack", slack, http.Header{"Content-Type": {"application/json"}},
		`{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}`); code != 200 {
		t.Fatalf("event answered %d %s", code, body)
	}
	if rec := b.lastRequest(t, "slack"); rec.Status != store.RequestAccepted {
		t.Fatalf("event recorded as %s", rec.Status)
	}

	// A forged check is refused and recorded as such.
	forged := verify.Config{Type: "slack", Secret: "not-the-secret"}
	if code, _ := b.send(t, "POST", "/e/slack", forged, nil, `{"type":"url_verification","challenge":"c"}`); code != 401 {
		t.Fatalf("forged url_verification answered %d, want 401", code)
	}
	if rec := b.lastRequest(t, "slack"); rec.Status != store.RequestRejected || !strings.Contains(rec.Reason, "handshake refused") {
		t.Fatalf("forged handshake recorded as %+v", rec)
	}
}

// TestGETOnlyForHandshakes checks Meta's GET check, and that any other GET
// is a recorded 405.
func TestGETOnlyForHandshakes(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"tok"}, "hub.challenge": {"1158201444"}}.Encode()
	if code, body := b.send(t, "GET", "/e/meta?"+q, verify.Config{}, nil, ""); code != 200 || body != "1158201444" {
		t.Fatalf("hub.challenge answered %d %q", code, body)
	}
	if rec := b.lastRequest(t, "meta"); rec.Status != store.RequestHandshake || rec.Method != "GET" {
		t.Fatalf("recorded %+v", rec)
	}
	if code, _ := b.send(t, "GET", "/e/slack", verify.Config{}, nil, ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("plain GET answered %d, want 405", code)
	}
	if rec := b.lastRequest(t, "slack"); rec.Status != store.RequestRejected || rec.HTTPStatus != 405 {
		t.Fatalf("plain GET recorded as %+v", rec)
	}
}

// TestTokenIsMaskedAtRest checks that a provider's token header (GitLab's)
// and Authorization are stored masked, and its signature headers are not.
func TestTokenIsMaskedAtRest(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer abc"}, "X-Gitlab-Event": {"Push Hook"}}
	if code, body := b.send(t, "POST", "/e/gitlab", verify.Config{Type: "gitlab", Secret: "gl-token"}, h, `{"object_kind":"push"}`); code != 200 {
		t.Fatalf("answered %d %s", code, body)
	}
	rec := b.lastRequest(t, "gitlab")
	if rec.Headers.Get("X-Gitlab-Token") != redact.Mask || rec.Headers.Get("Authorization") != redact.Mask || rec.Headers.Get("X-Gitlab-Event") != "Push Hook" {
		t.Fatalf("stored headers %v", rec.Headers)
	}
}

// TestSignedURLRebuiltFromRequest checks that a scheme that signs the URL
// (Twilio) verifies against the URL rebuilt from the request: its Host,
// and https when a proxy says so in X-Forwarded-Proto.
func TestSignedURLRebuiltFromRequest(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	cfg := verify.Config{Type: "twilio", Secret: "auth-token"}
	form := "CallSid=CA1&CallStatus=completed"
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

	if code, body := b.send(t, "POST", "/e/twilio?x=1", cfg, hdr, form); code != 200 {
		t.Fatalf("plain http answered %d %s", code, body)
	}
	// Behind a TLS-terminating proxy: Twilio signed the https URL.
	host := strings.TrimPrefix(b.url, "http://")
	m := &verify.Message{URL: "https://" + host + "/e/twilio", Header: hdr.Clone(), Body: []byte(form), Now: time.Now()}
	if err := verify.Sign(cfg, m); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", b.url+"/e/twilio", strings.NewReader(form))
	req.Header = m.Header
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("behind a proxy answered %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", b.url+"/e/twilio", strings.NewReader(form))
	req.Header = m.Header.Clone()
	req.Header.Del("X-Forwarded-Proto")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("https signature over plain http answered %d, want 401", resp.StatusCode)
	}
}

// TestHandshakeStorageDownIs503 checks that a handshake that cannot be
// recorded is not answered: the provider is told to retry.
func TestHandshakeStorageDownIs503(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"tok"}, "hub.challenge": {"1158201444"}}.Encode()
	if code, body := b.send(t, "GET", "/e/meta?"+q, verify.Config{}, nil, ""); code != http.StatusServiceUnavailable || strings.Contains(body, "1158201444") {
		t.Fatalf("hub.challenge with storage down answered %d %q, want 503 without the challenge", code, body)
	}
}
