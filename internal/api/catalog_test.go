package api_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/store"
)

func TestSourcesCRUD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)

	in := map[string]any{
		"name":        "shop",
		"verify":      map[string]any{"type": "hmac", "secret": "hmac-key", "secrets": []string{"old-key"}, "header": "X-Sig"},
		"dedup":       map[string]any{"key": "body.id", "window": "1h"},
		"description": "the shop",
	}
	r := b.do(t, "POST", "/api/v1/sources", in)
	created := must[store.Source](t, r, http.StatusCreated)
	if got, want := r.header.Get("Location"), "/api/v1/sources/shop"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if created.Verify.Secret != api.Mask || created.Verify.Secrets[0] != api.Mask || created.CreatedAt.IsZero() {
		t.Errorf("created = %+v, want secrets masked and timestamps set", created)
	}
	assertNoSecret(t, r.body, "hmac-key", "old-key")
	if _, ok := b.cat.Current().Sources["shop"]; !ok {
		t.Error("catalog does not serve the new source right after the create")
	}

	r = b.do(t, "POST", "/api/v1/sources", in)
	if r.status != http.StatusConflict || !strings.Contains(r.errorMessage(t), "already exists") {
		t.Errorf("second create: %d %s, want 409", r.status, r.body)
	}

	got := must[store.Source](t, b.do(t, "GET", "/api/v1/sources/shop", nil), http.StatusOK)
	if got.Verify.Secret != api.Mask || got.Dedup.Key != "body.id" || got.Description != "the shop" {
		t.Errorf("GET = %+v", got)
	}
	lst := b.do(t, "GET", "/api/v1/sources", nil)
	assertNoSecret(t, lst.body, "hmac-key", "old-key")
	if l := must[page[store.Source]](t, lst, http.StatusOK); len(l.Data) != 1 || l.Data[0].Name != "shop" {
		t.Errorf("list = %+v", l)
	}

	// A GET, edit and PUT round trip keeps the masked secrets.
	got.Description = "edited"
	must[store.Source](t, b.do(t, "PUT", "/api/v1/sources/shop", got), http.StatusOK)
	stored, err := b.store.SourceGet(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Description != "edited" || stored.Verify.Secret != "hmac-key" || !slices.Equal(stored.Verify.Secrets, []string{"old-key"}) {
		t.Errorf("after masked PUT, stored = %+v", stored.Verify)
	}

	// A PUT with new secrets replaces them.
	got.Verify.Secret, got.Verify.Secrets = "new-key", nil
	must[store.Source](t, b.do(t, "PUT", "/api/v1/sources/shop", got), http.StatusOK)
	if stored, _ = b.store.SourceGet(ctx, "shop"); stored.Verify.Secret != "new-key" || len(stored.Verify.Secrets) != 0 {
		t.Errorf("after PUT with a new secret, stored = %+v", stored.Verify)
	}

	// PUT creates a missing source.
	r = b.do(t, "PUT", "/api/v1/sources/open", map[string]any{"description": "no verification"})
	if o := must[store.Source](t, r, http.StatusCreated); o.Name != "open" {
		t.Errorf("PUT create = %+v", o)
	}

	// Meta's verify_token is a secret like the others: masked in output,
	// kept by a PUT that sends the mask back.
	meta := map[string]any{"name": "meta", "verify": map[string]any{"type": "meta", "secret": "app-secret", "verify_token": "hub-token"}}
	r = b.do(t, "POST", "/api/v1/sources", meta)
	m := must[store.Source](t, r, http.StatusCreated)
	assertNoSecret(t, r.body, "app-secret", "hub-token")
	m.Description = "edited"
	must[store.Source](t, b.do(t, "PUT", "/api/v1/sources/meta", m), http.StatusOK)
	if stored, _ := b.store.SourceGet(ctx, "meta"); stored.Verify.VerifyToken != "hub-token" || stored.Verify.Secret != "app-secret" {
		t.Errorf("after masked PUT, stored = %+v", stored.Verify)
	}

	if r := b.do(t, "DELETE", "/api/v1/sources/shop", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", r.status, r.body)
	}
	if _, ok := b.cat.Current().Sources["shop"]; ok {
		t.Error("catalog still serves the deleted source")
	}
	if r := b.do(t, "GET", "/api/v1/sources/shop", nil); r.status != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d", r.status)
	}
	if r := b.do(t, "DELETE", "/api/v1/sources/shop", nil); r.status != http.StatusNotFound {
		t.Errorf("second DELETE = %d", r.status)
	}
}

func TestSourceValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	for _, tt := range []struct {
		name   string
		method string
		path   string
		body   string
		want   string // in the error message
	}{
		{"bad verify type", "POST", "/api/v1/sources", `{"name":"x","verify":{"type":"carrier-pigeon"}}`, "verify"},
		{"bad dedup expression", "POST", "/api/v1/sources", `{"name":"x","dedup":{"key":"body.("}}`, "dedup.key"},
		{"negative body limit", "POST", "/api/v1/sources", `{"name":"x","max_body_bytes":-1}`, "max_body_bytes"},
		{"negative dedup window", "POST", "/api/v1/sources", `{"name":"x","dedup":{"window":-5}}`, "dedup.window"},
		{"bad duration", "POST", "/api/v1/sources", `{"name":"x","dedup":{"window":"soon"}}`, "soon"},
		{"missing name", "POST", "/api/v1/sources", `{"description":"x"}`, "name: required"},
		{"name with two slashes", "POST", "/api/v1/sources", `{"name":"a/b/c"}`, "name"},
		{"name in another project", "POST", "/api/v1/sources", `{"name":"a/b","project":"c"}`, "name"},
		{"name with space", "POST", "/api/v1/sources", `{"name":"a b"}`, "name"},
		{"name dot-dot", "POST", "/api/v1/sources", `{"name":".."}`, "name"},
		{"mask on create", "POST", "/api/v1/sources", `{"name":"x","verify":{"type":"hmac","secret":"********"}}`, "verify.secret"},
		{"masked list changed", "PUT", "/api/v1/sources/stripe", `{"verify":{"type":"stripe","secret":"x","secrets":["********","y"]}}`, "verify.secrets"},
		{"rename by PUT", "PUT", "/api/v1/sources/stripe", `{"name":"other"}`, "does not match"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := b.do(t, tt.method, tt.path, tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", r.status, r.body)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %q", msg, tt.want)
			}
		})
	}
	// Nothing invalid was stored.
	srcs, err := b.store.SourceList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 {
		t.Errorf("sources = %d, want the 2 seeded", len(srcs))
	}
}

func TestDestinationsCRUD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)

	in := map[string]any{
		"name":            "crm",
		"url":             "https://user:pw123@crm.example/hooks",
		"timeout":         "10s",
		"max_concurrency": 4,
		"rate_limit":      "50/s",
		"retry":           map[string]any{"max_attempts": 5, "initial": "2s", "max": "10m", "retry_on": []int{500, 503}},
		"sign":            map[string]any{"type": "standard-webhooks", "secret": "whsec_c2VjcmV0"},
		"headers":         map[string]string{"Authorization": "Bearer crm-token", "X-Team": "growth"},
		"ordered":         true,
	}
	r := b.do(t, "POST", "/api/v1/destinations", in)
	d := must[store.Destination](t, r, http.StatusCreated)
	assertNoSecret(t, r.body, "whsec_c2VjcmV0", "crm-token", "pw123")
	if d.Sign.Secret != api.Mask || d.Headers["Authorization"] != api.Mask || d.Headers["X-Team"] != "growth" {
		t.Errorf("created = %+v, want signing secret and Authorization masked", d)
	}
	if d.URL != "https://user:"+api.Mask+"@crm.example/hooks" {
		t.Errorf("url = %q, want the password masked", d.URL)
	}
	if d.Timeout.String() != "10s" || d.MaxConcurrency != 4 || d.Retry.MaxAttempts != 5 || !d.Ordered {
		t.Errorf("created = %+v", d)
	}
	if _, ok := b.cat.Current().Destinations["crm"]; !ok {
		t.Error("catalog does not hold the new destination")
	}
	if r := b.do(t, "POST", "/api/v1/destinations", in); r.status != http.StatusConflict {
		t.Errorf("second create = %d, want 409", r.status)
	}

	// Round trip through GET and PUT keeps what was masked.
	got := must[store.Destination](t, b.do(t, "GET", "/api/v1/destinations/crm", nil), http.StatusOK)
	got.MaxConcurrency = 8
	must[store.Destination](t, b.do(t, "PUT", "/api/v1/destinations/crm", got), http.StatusOK)
	stored, err := b.store.DestinationGet(ctx, "crm")
	if err != nil {
		t.Fatal(err)
	}
	if stored.MaxConcurrency != 8 || stored.Sign.Secret != "whsec_c2VjcmV0" || stored.Headers["Authorization"] != "Bearer crm-token" ||
		stored.URL != "https://user:pw123@crm.example/hooks" {
		t.Errorf("after masked PUT, stored = %+v", stored)
	}

	lst := b.do(t, "GET", "/api/v1/destinations", nil)
	assertNoSecret(t, lst.body, "whsec_c2VjcmV0", "crm-token", "pw123")
	if l := must[page[store.Destination]](t, lst, http.StatusOK); len(l.Data) != 1 {
		t.Errorf("list = %+v", l)
	}

	if r := b.do(t, "DELETE", "/api/v1/destinations/crm", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE = %d", r.status)
	}
	if r := b.do(t, "GET", "/api/v1/destinations/crm", nil); r.status != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d", r.status)
	}
	if _, ok := b.cat.Current().Destinations["crm"]; ok {
		t.Error("catalog still holds the deleted destination")
	}
}

func TestDestinationValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, tt := range []struct {
		name string
		body string
		want string
	}{
		{"missing url", `{"name":"x"}`, "url: required"},
		{"relative url", `{"name":"x","url":"/hooks"}`, "url"},
		{"ftp url", `{"name":"x","url":"ftp://h/x"}`, "url"},
		{"url without host", `{"name":"x","url":"http:///x"}`, "url"},
		{"bad rate", `{"name":"x","url":"http://h","rate_limit":"fast"}`, "rate_limit"},
		{"bad rate unit", `{"name":"x","url":"http://h","rate_limit":"5/d"}`, "rate_limit"},
		{"negative timeout", `{"name":"x","url":"http://h","timeout":-1}`, "timeout"},
		{"negative concurrency", `{"name":"x","url":"http://h","max_concurrency":-1}`, "max_concurrency"},
		{"negative attempts", `{"name":"x","url":"http://h","retry":{"max_attempts":-2}}`, "retry.max_attempts"},
		{"initial above max", `{"name":"x","url":"http://h","retry":{"initial":"1h","max":"1m"}}`, "retry.initial"},
		{"retry_on not a status", `{"name":"x","url":"http://h","retry":{"retry_on":[42]}}`, "retry.retry_on"},
		{"unknown sign type", `{"name":"x","url":"http://h","sign":{"type":"pgp","secret":"k"}}`, "sign.type"},
		{"sign without secret", `{"name":"x","url":"http://h","sign":{"type":"standard-webhooks"}}`, "sign.secret"},
		{"secret without sign type", `{"name":"x","url":"http://h","sign":{"secret":"k"}}`, "sign.type"},
		{"bad header name", `{"name":"x","url":"http://h","headers":{"X Bad":"v"}}`, "header name"},
		{"header value with newline", `{"name":"x","url":"http://h","headers":{"X-A":"v\r\nX-B: w"}}`, "headers.X-A"},
		{"mask on create", `{"name":"x","url":"http://h","headers":{"Authorization":"********"}}`, "headers.Authorization"},
		{"name with percent", `{"name":"a%b","url":"http://h"}`, "name"},
		// What the config file refuses, the API refuses too (one
		// store.Destination.Validate): these were accepted here before.
		{"attempts above the cap", `{"name":"x","url":"http://h","retry":{"max_attempts":5000}}`, "retry.max_attempts: 5000 is out of range"},
		{"port out of range", `{"name":"x","url":"http://h:99999/x"}`, "port must be a number from 1 to 65535"},
		{"signing secret not whsec_", `{"name":"x","url":"http://h","sign":{"type":"standard-webhooks","secret":"plain"}}`, "sign.secret"},
		{"name longer than the config allows", `{"name":"` + strings.Repeat("n", 65) + `","url":"http://h"}`, "name: invalid name"},
		{"name with a space", `{"name":"a b","url":"http://h"}`, "name: invalid name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := b.do(t, "POST", "/api/v1/destinations", tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", r.status, r.body)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %q", msg, tt.want)
			}
		})
	}
}

func TestConnectionsCRUD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	b.seed(t)

	r := b.do(t, "POST", "/api/v1/connections", map[string]any{"source": "github", "destination": "audit", "filter": `headers["x-github-event"] == "push"`})
	c := must[store.Connection](t, r, http.StatusCreated)
	if c.ID != "github->audit" || c.Source != "github" || c.CreatedAt.IsZero() {
		t.Errorf("created = %+v, want id github->audit", c)
	}
	if got, want := r.header.Get("Location"), "/api/v1/connections/"+url.PathEscape("github->audit"); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if !b.cat.Current().Router.HasConnections("github") {
		t.Error("router does not see the new connection")
	}
	if r := b.do(t, "POST", "/api/v1/connections", map[string]any{"source": "github", "destination": "audit"}); r.status != http.StatusConflict {
		t.Errorf("second create = %d, want 409", r.status)
	}
	got := must[store.Connection](t, b.do(t, "GET", "/api/v1/connections/github->audit", nil), http.StatusOK)
	if got.Filter != c.Filter {
		t.Errorf("GET = %+v", got)
	}

	// PUT replaces; PUT of a new id creates.
	must[store.Connection](t, b.do(t, "PUT", "/api/v1/connections/github->audit", map[string]any{"source": "github", "destination": "audit"}), http.StatusOK)
	if stored, _ := b.store.ConnectionGet(ctx, "github->audit"); stored == nil || stored.Filter != "" {
		t.Errorf("after PUT, stored = %+v", stored)
	}
	must[store.Connection](t, b.do(t, "PUT", "/api/v1/connections/gh-billing", map[string]any{"source": "github", "destination": "billing"}), http.StatusCreated)

	l := must[page[store.Connection]](t, b.do(t, "GET", "/api/v1/connections", nil), http.StatusOK)
	var ids []string
	for _, c := range l.Data {
		ids = append(ids, c.ID)
	}
	if want := []string{"gh-billing", "github->audit", "stripe->audit", "stripe->billing"}; !slices.Equal(ids, want) {
		t.Errorf("list ids = %q, want %q", ids, want)
	}

	for _, tt := range []struct {
		name, method, path, body, want string
	}{
		{"missing source", "POST", "/api/v1/connections", `{"source":"nope","destination":"audit"}`, `source "nope" does not exist`},
		{"missing destination", "POST", "/api/v1/connections", `{"source":"github","destination":"nope"}`, `destination "nope" does not exist`},
		{"no source", "POST", "/api/v1/connections", `{"destination":"audit"}`, "source: required"},
		{"bad filter", "POST", "/api/v1/connections", `{"source":"github","destination":"billing","id":"x","filter":"body.("}`, "filter"},
		{"non-bool filter", "POST", "/api/v1/connections", `{"source":"github","destination":"billing","id":"x","filter":"path + \"x\""}`, "filter"},
		{"id mismatch", "PUT", "/api/v1/connections/a", `{"id":"b","source":"github","destination":"billing"}`, "does not match"},
	} {
		// Not parallel: the steps after the loop change the catalog.
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, tt.method, tt.path, tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", r.status, r.body)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
		})
	}

	if r := b.do(t, "DELETE", "/api/v1/connections/github->audit", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", r.status, r.body)
	}
	if r := b.do(t, "DELETE", "/api/v1/connections/github->audit", nil); r.status != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", r.status)
	}
	for _, c := range b.cat.Current().Connections {
		if c.ID == "github->audit" {
			t.Error("catalog still routes through the deleted connection")
		}
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)

	d := must[store.Destination](t, b.do(t, "POST", "/api/v1/destinations/billing/pause", map[string]string{"reason": "maintenance"}), http.StatusOK)
	if !d.Paused || d.PauseReason != "maintenance" || d.PausedAt.IsZero() {
		t.Errorf("after pause = %+v", d)
	}
	got := must[store.Destination](t, b.do(t, "GET", "/api/v1/destinations/billing", nil), http.StatusOK)
	if !got.Paused || got.PauseReason != "maintenance" {
		t.Errorf("GET after pause = %+v", got)
	}
	if !b.cat.Current().Destinations["billing"].Paused {
		t.Error("catalog does not see the pause")
	}
	// Replacing the destination keeps it paused: pausing has its own actions.
	got.Timeout = 0
	got.Paused = false
	if d := must[store.Destination](t, b.do(t, "PUT", "/api/v1/destinations/billing", got), http.StatusOK); !d.Paused {
		t.Error("PUT resumed the destination")
	}

	d = must[store.Destination](t, b.do(t, "POST", "/api/v1/destinations/billing/resume", nil), http.StatusOK)
	if d.Paused || d.PauseReason != "" {
		t.Errorf("after resume = %+v", d)
	}
	if got := must[store.Destination](t, b.do(t, "GET", "/api/v1/destinations/billing", nil), http.StatusOK); got.Paused {
		t.Error("GET after resume still paused")
	}
	d = must[store.Destination](t, b.do(t, "POST", "/api/v1/destinations/audit/pause", nil), http.StatusOK)
	if d.PauseReason != api.DefaultPauseReason {
		t.Errorf("pause without a body: reason = %q", d.PauseReason)
	}
	if r := b.do(t, "POST", "/api/v1/destinations/nope/pause", nil); r.status != http.StatusNotFound {
		t.Errorf("pause of a missing destination = %d, want 404", r.status)
	}
}

// assertNoSecret fails if body contains any of the secrets.
func assertNoSecret(t testing.TB, body []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(string(body), s) {
			t.Errorf("response leaks secret %q: %s", s, body)
		}
	}
}

// TestConfigOwnedEntriesRefuseChanges: what the config file declares is
// the file's to change; the API says so with a 409 instead of making a
// change the next reload would undo, and marks what it creates as its own.
func TestConfigOwnedEntriesRefuseChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	if _, err := b.store.CatalogSync(ctx, &store.CatalogSyncParams{
		Sources:      []*store.Source{{Name: "stripe"}},
		Destinations: []*store.Destination{{Name: "billing", URL: "https://billing.example/hook"}},
		Connections:  []*store.Connection{{Source: "stripe", Destination: "billing"}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, method, path string
		body               any
	}{
		{"put source", "PUT", "/api/v1/sources/stripe", map[string]any{"name": "stripe"}},
		{"delete source", "DELETE", "/api/v1/sources/stripe", nil},
		{"put destination", "PUT", "/api/v1/destinations/billing", map[string]any{"url": "https://attacker.example/"}},
		{"delete destination", "DELETE", "/api/v1/destinations/billing", nil},
		{"put connection", "PUT", "/api/v1/connections/stripe-%3Ebilling", map[string]any{"source": "stripe", "destination": "billing", "filter": "false"}},
		{"delete connection", "DELETE", "/api/v1/connections/stripe-%3Ebilling", nil},
	} {
		r := b.do(t, tt.method, tt.path, tt.body)
		if r.status != http.StatusConflict || !strings.Contains(r.errorMessage(t), "declared in the config file") {
			t.Errorf("%s: %d %s, want 409 naming the config file", tt.name, r.status, r.body)
		}
	}
	d := must[store.Destination](t, b.do(t, "GET", "/api/v1/destinations/billing", nil), http.StatusOK)
	if d.URL != "https://billing.example/hook" || d.ManagedBy != store.ManagedByConfig {
		t.Errorf("destination after refused edits = %+v", d)
	}
	// Pausing is runtime state, not config: allowed.
	if r := b.do(t, "POST", "/api/v1/destinations/billing/pause", nil); r.status != http.StatusOK {
		t.Errorf("pause a config-owned destination: %d %s", r.status, r.body)
	}

	// The API's own entries are marked so, and it cannot claim the file's mark.
	created := must[store.Connection](t, b.do(t, "POST", "/api/v1/connections", map[string]any{"source": "stripe", "destination": "billing", "id": "copy"}), http.StatusCreated)
	if created.ManagedBy != store.ManagedByAPI {
		t.Errorf("created connection managed_by = %q, want %q", created.ManagedBy, store.ManagedByAPI)
	}
	r := b.do(t, "POST", "/api/v1/sources", map[string]any{"name": "sneaky", "managed_by": "config"})
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), "managed_by") {
		t.Errorf("create claiming managed_by config: %d %s, want 400", r.status, r.body)
	}
}

// TestAPIRefusesWhatTheConfigRefuses: sources and connections are held
// to the config file's rules too (one Validate, CheckName and
// CheckConnectionID).
func TestAPIRefusesWhatTheConfigRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	for _, tt := range []struct {
		name, path string
		body       any
		want       string
	}{
		{"source name too long", "/api/v1/sources", map[string]any{"name": strings.Repeat("s", 65)}, "name: invalid name"},
		{"source name with a colon", "/api/v1/sources", map[string]any{"name": "a:b"}, "name: invalid name"},
		{"negative window", "/api/v1/sources", map[string]any{"name": "w", "dedup": map[string]any{"window": -5}}, "dedup.window"},
		{"connection id with a space", "/api/v1/connections", map[string]any{"id": "a b", "source": "stripe", "destination": "audit"}, "id: invalid id"},
		{"connection without ends", "/api/v1/connections", map[string]any{"id": "x"}, "source: required; destination: required"},
	} {
		r := b.do(t, "POST", tt.path, tt.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), tt.want) {
			t.Errorf("%s: %d %s, want 400 naming %q", tt.name, r.status, r.body, tt.want)
		}
	}
}
