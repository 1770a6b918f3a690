package httpguard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/httpguard"
)

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		listen  string
		allowed []string
		host    string
		want    bool
	}{
		{"LoopbackAddress", "127.0.0.1:8080", nil, "127.0.0.1:8080", true},
		{"LoopbackOtherPort", "127.0.0.1:8080", nil, "127.0.0.1", true},
		{"LoopbackLocalhost", "127.0.0.1:8080", nil, "localhost:8080", true},
		{"LoopbackLocalhostCaseDot", "127.0.0.1:8080", nil, "LocalHost.:8080", true},
		{"LoopbackIPv6", "127.0.0.1:8080", nil, "[::1]:8080", true},
		{"LoopbackRebinding", "127.0.0.1:8080", nil, "evil.example:8080", false},
		{"LoopbackSubdomainOfLocalhost", "127.0.0.1:8080", nil, "evil.localhost:8080", false},
		{"LoopbackForeignAddress", "127.0.0.1:8080", nil, "192.0.2.1:8080", false},
		{"LoopbackEmpty", "127.0.0.1:8080", nil, "", false},
		{"LocalhostListener", "localhost:8080", nil, "localhost:8080", true},
		{"LocalhostListenerRebinding", "localhost:8080", nil, "attacker.example", false},
		{"NamedListener", "mailroom.internal:8080", nil, "MAILROOM.internal:8080", true},
		{"NamedListenerOther", "mailroom.internal:8080", nil, "other.internal:8080", false},
		{"BoundAddress", "192.0.2.7:8080", nil, "192.0.2.7:8080", true},
		{"BoundAddressOther", "192.0.2.7:8080", nil, "192.0.2.8:8080", false},
		{"BoundAddressLocalhost", "192.0.2.7:8080", nil, "localhost:8080", false},
		{"AnyAddressLiteral", "0.0.0.0:8080", nil, "203.0.113.9:8080", true},
		{"AnyAddressLocalhost", ":8080", nil, "localhost:8080", true},
		{"AnyAddressName", "0.0.0.0:8080", nil, "evil.example", false},
		{"AllowedName", "0.0.0.0:8080", []string{"mailroom.example.com"}, "mailroom.example.com:443", true},
		{"AllowedNameBare", "0.0.0.0:8080", []string{"mailroom.example.com"}, "mailroom.example.com", true},
		{"AllowedHostPort", "0.0.0.0:8080", []string{"mailroom.example.com:8443"}, "mailroom.example.com:8443", true},
		{"AllowedHostPortOtherPort", "0.0.0.0:8080", []string{"mailroom.example.com:8443"}, "mailroom.example.com:9443", false},
		{"AllowedStar", "127.0.0.1:8080", []string{"*"}, "evil.example", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := httpguard.New(&httpguard.Options{Listen: tt.listen, AllowedHosts: tt.allowed})
			if got := g.HostAllowed(tt.host); got != tt.want {
				t.Errorf("HostAllowed(%q) on %s with %v = %v, want %v", tt.host, tt.listen, tt.allowed, got, tt.want)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	g := httpguard.New(&httpguard.Options{
		Listen:         "127.0.0.1:8080",
		AllowedOrigins: map[string][]string{"/mcp": {"http://localhost:6274"}},
		Public:         []string{"/e/", "/healthz"},
		Forms:          []string{"/ui/"},
	})
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") }))
	const self = "http://127.0.0.1:8080"
	for _, tt := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		want                     int
	}{
		// The request of the issue: a page on evil.example posting text/plain.
		{"IssueCurl", "POST", "/api/v1/destinations", `{"name":"x","url":"https://attacker.example/c"}`,
			map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, 403},
		{"ForeignOriginNoFetchMetadata", "POST", "/api/v1/destinations", `{}`,
			map[string]string{"Origin": "https://evil.example", "Content-Type": "application/json"}, 403},
		{"NullOrigin", "POST", "/api/v1/destinations", `{}`, map[string]string{"Origin": "null", "Content-Type": "application/json"}, 403},
		{"CrossSiteGet", "GET", "/api/v1/events", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}, 403},
		{"SameSiteOtherPort", "POST", "/ui/events/e/replay", "csrf=x",
			map[string]string{"Origin": "http://127.0.0.1:3000", "Sec-Fetch-Site": "same-site", "Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"CrossSiteNavigation", "GET", "/ui/events", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, 200},
		{"CrossSiteNavigationPost", "POST", "/ui/events/e/replay", "csrf=x",
			map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"CrossSiteMetrics", "GET", "/metrics", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, 403},
		{"SameOriginJSON", "POST", "/api/v1/destinations", `{}`,
			map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json; charset=utf-8"}, 200},
		{"SameOriginByOriginOnly", "POST", "/api/v1/destinations", `{}`, map[string]string{"Origin": self, "Content-Type": "application/json"}, 200},
		{"CLI", "POST", "/api/v1/destinations", `{}`, map[string]string{"Content-Type": "application/json"}, 200},
		{"CLIBodylessAction", "POST", "/api/v1/destinations/d/pause", "", nil, 200},
		{"TextPlainFromCLI", "POST", "/api/v1/destinations", `{}`, map[string]string{"Content-Type": "text/plain"}, 415},
		{"FormToAPI", "POST", "/api/v1/destinations", `a=b`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"EmptyFormToAPI", "DELETE", "/api/v1/destinations/d", ``, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"JSONWithoutType", "PUT", "/api/v1/destinations/d", `{}`, nil, 415},
		{"DashboardForm", "POST", "/ui/events/e/replay", "csrf=x",
			map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"}, 200},
		{"DashboardTextPlain", "POST", "/ui/events/e/replay", "csrf=x",
			map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain"}, 415},
		{"MCPAllowedOrigin", "POST", "/mcp", `{}`,
			map[string]string{"Origin": "http://localhost:6274", "Sec-Fetch-Site": "same-site", "Content-Type": "application/json"}, 200},
		{"MCPOriginNotForAPI", "POST", "/api/v1/destinations", `{}`,
			map[string]string{"Origin": "http://localhost:6274", "Sec-Fetch-Site": "same-site", "Content-Type": "application/json"}, 403},
		{"IngestCrossSite", "POST", "/e/stripe", `x`, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, 200},
		{"IngestRebinding", "POST", "/e/stripe", `x`, map[string]string{"Host": "evil.example", "Content-Type": "text/plain"}, 200},
		{"HealthRebinding", "GET", "/healthz", ``, map[string]string{"Host": "evil.example"}, 200},
		{"HealthzSuffixNotPublic", "GET", "/healthzx", ``, map[string]string{"Host": "evil.example"}, 403},
		{"RebindingSameOrigin", "POST", "/api/v1/destinations", `{}`,
			map[string]string{"Host": "evil.example:8080", "Origin": "http://evil.example:8080", "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}, 403},
		{"RebindingUnknownRoute", "GET", "/anything/new", ``, map[string]string{"Host": "evil.example:8080"}, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tt.method, "http://127.0.0.1:8080"+tt.path, strings.NewReader(tt.body))
			for k, v := range tt.hdr {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("%s %s %v: %d %s, want %d", tt.method, tt.path, tt.hdr, rec.Code, rec.Body, tt.want)
			}
			if tt.want != 200 && (rec.Header().Get("Content-Type") != "application/json" || !strings.Contains(rec.Body.String(), `"error"`)) {
				t.Errorf("refusal is not a JSON error: %q %q", rec.Header().Get("Content-Type"), rec.Body)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	tokens := httpguard.NewTokens(map[string]string{"tok-alice-0123456789": "alice", "tok-bob-0123456789": "bob", "": "nobody"})
	for _, tt := range []struct {
		name, auth, want string
		ok               bool
	}{
		{"Alice", "Bearer tok-alice-0123456789", "alice", true},
		{"SchemeCase", "bearer tok-bob-0123456789", "bob", true},
		{"Spaces", "Bearer   tok-bob-0123456789  ", "bob", true},
		{"Prefix", "Bearer tok-alice", "", false},
		{"Longer", "Bearer tok-alice-0123456789x", "", false},
		{"Basic", "Basic tok-alice-0123456789", "", false},
		{"NoScheme", "tok-alice-0123456789", "", false},
		{"EmptyToken", "Bearer ", "", false},
		{"None", "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if got, ok := tokens.Authenticate(r); got != tt.want || ok != tt.ok {
				t.Errorf("Authenticate(%q) = %q, %v; want %q, %v", tt.auth, got, ok, tt.want, tt.ok)
			}
		})
	}
	if !httpguard.NewTokens(map[string]string{"": "x"}).Empty() || !(*httpguard.Tokens)(nil).Empty() {
		t.Error("a set of only empty tokens, or nil, is not empty")
	}
	if _, ok := httpguard.NewTokens(nil).Match(""); ok {
		t.Error("the empty set matched the empty token")
	}
}
