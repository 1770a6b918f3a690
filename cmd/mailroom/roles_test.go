package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/web"
)

// guardedRoute is one operator route as its router registers it, and a
// request path that reaches it.
type guardedRoute struct {
	pattern, method, path string
}

// guardedRoutes reads every route of the admin API and the dashboard from
// their routers, plus /metrics and /mcp, leaving out the dashboard's
// public login and logout: the routes the permission table guards.
func guardedRoutes(t *testing.T) []guardedRoute {
	t.Helper()
	s := sqlitetest.Open(t, nil)
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, nil)
	dash := web.New(s, cat, nil)
	t.Cleanup(dash.Close)
	patterns := append(api.New(s, cat, nil).Patterns(), dash.Patterns()...)
	patterns = append(patterns, "GET /metrics", "/mcp")
	wild := regexp.MustCompile(`\{[^}]*\}`)
	var out []guardedRoute
	for _, p := range patterns {
		if slices.Contains(access.Public, p) {
			continue
		}
		method, path, ok := strings.Cut(p, " ")
		if !ok { // every method: /mcp
			method, path = "POST", p
		}
		path = strings.ReplaceAll(wild.ReplaceAllStringFunc(path, func(w string) string {
			if w == "{$}" {
				return ""
			}
			return "x"
		}), "", "")
		out = append(out, guardedRoute{pattern: p, method: method, path: path})
	}
	if len(out) < 50 {
		t.Fatalf("only %d routes read from the routers", len(out))
	}
	return out
}

// TestRolesOnEveryRoute runs the binary with an api.token, creates a
// token of every role through the API, and calls every guarded route of
// the API and the dashboard (read from the routers), /metrics and /mcp
// with each: a role the permission table does not allow is refused with
// 403 naming the route, a role it allows gets past the guard (whatever
// the handler then answers to a made-up id). Then every mutating route
// has an audit entry for each role let through, naming its token, and
// none for the roles refused.
func TestRolesOnEveryRoute(t *testing.T) {
	t.Parallel()
	routes := guardedRoutes(t)
	bin := binary(t)
	const adminToken = "roles-admin-token-0123456789"
	dir := t.TempDir()
	inst := startProcess(t, bin, []string{"serve", "--config", writeConfig(t, dir, "http://127.0.0.1:9"), "--listen", "127.0.0.1:0"},
		[]string{"MAILROOM_API_TOKEN=" + adminToken})
	base := "http://" + inst.addr
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	call := func(c *http.Client, method, path, token string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		ct := ""
		switch {
		case form != nil:
			body, ct = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
		case method != "GET":
			body, ct = strings.NewReader("{}"), "application/json"
		}
		req, _ := http.NewRequest(method, base+path, body)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK && (path == "/api/v1/events/stream" || path == "/ui/stream") {
			return resp.StatusCode, "" // a stream: its status is all we need
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, string(b)
	}
	plain := &http.Client{CheckRedirect: noRedirect, Timeout: 30 * time.Second}

	tokens := map[access.Role]string{access.RoleAdmin: adminToken}
	ids := map[access.Role]string{access.RoleAdmin: "api"}
	for _, role := range access.Roles {
		if role == access.RoleAdmin {
			continue
		}
		code, body := call(plain, "POST", "/api/v1/tokens", adminToken, nil)
		if code != http.StatusBadRequest {
			t.Fatalf("create a token with an empty body: %d %s", code, body)
		}
		req, _ := http.NewRequest("POST", base+"/api/v1/tokens", strings.NewReader(`{"name":"`+string(role)+` holder","role":"`+string(role)+`","project":"default"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var created struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create a %s token: %d %v", role, resp.StatusCode, err)
		}
		tokens[role], ids[role] = created.Token, created.ID
	}

	// One dashboard session per role, logged in with its token; its CSRF
	// token is read from any page it gets, a refusal included.
	csrfRe := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	type session struct {
		c    *http.Client
		csrf string
	}
	sessions := map[access.Role]session{}
	for role, tok := range tokens {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: noRedirect, Timeout: 30 * time.Second}
		if code, body := call(c, "POST", "/ui/login", "", url.Values{"token": {tok}}); code != http.StatusSeeOther {
			t.Fatalf("%s logs in to the dashboard: %d %s", role, code, body)
		}
		_, page := call(c, "GET", "/ui/destinations", "", nil)
		m := csrfRe.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s: no CSRF token on the destinations page: %s", role, page)
		}
		sessions[role] = session{c: c, csrf: m[1]}
	}

	audited := map[string]bool{} // patterns some role was let through
	for _, r := range routes {
		perm, _ := access.Required(r.pattern)
		for _, role := range access.Roles {
			var code int
			var body string
			if strings.HasPrefix(r.path, "/ui/") || r.path == "/" {
				s := sessions[role]
				var form url.Values
				if r.method == "POST" {
					form = url.Values{"csrf": {s.csrf}}
				}
				code, body = call(s.c, r.method, r.path, "", form)
			} else {
				code, body = call(plain, r.method, r.path, tokens[role], nil)
			}
			// GET /metrics with a token follows the table on a loopback
			// listener too (only a scrape without a token is open there).
			allowed := role.Allows(perm)
			refused := code == http.StatusForbidden && strings.Contains(body, "forbidden: "+r.pattern)
			switch {
			case allowed && (code == http.StatusUnauthorized || code == http.StatusForbidden):
				t.Errorf("%s %s (needs %s): %d %.200s; the role may", role, r.pattern, perm, code, body)
			case !allowed && !refused:
				t.Errorf("%s %s (needs %s): %d %.200s; want 403 from the guard", role, r.pattern, perm, code, body)
			case allowed && access.Mutating(r.pattern):
				audited[r.pattern] = true
			}
		}
	}

	// Every mutating route has an audit entry of a role allowed to call it
	// (/mcp, whose tool calls are not audited, aside).
	var mutating int
	for _, r := range routes {
		if !access.Mutating(r.pattern) || r.pattern == "/mcp" {
			continue
		}
		mutating++
		if _, ok := audited[r.pattern]; !ok {
			t.Errorf("mutating route %s was allowed to no role", r.pattern)
			continue
		}
		code, body := call(plain, "GET", "/api/v1/audit?"+url.Values{"action": {r.pattern}, "limit": {"1000"}}.Encode(), adminToken, nil)
		var page struct {
			Data []store.AuditEntry `json:"data"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &page) != nil {
			t.Fatalf("audit of %s: %d %s", r.pattern, code, body)
		}
		var who []string
		for _, e := range page.Data {
			who = append(who, e.TokenID)
		}
		for _, role := range access.Roles {
			perm, _ := access.Required(r.pattern)
			if got, want := slices.Contains(who, ids[role]), role.Allows(perm); got != want {
				t.Errorf("audit of %s: entry of %s (token %s) present %v, want %v (entries by %v)", r.pattern, role, ids[role], got, want, who)
			}
		}
	}
	if mutating < 20 {
		t.Errorf("only %d mutating routes", mutating)
	}
}
