package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/web"
)

// operatorRoutes returns "METHOD /path" for every route of the admin API
// and the dashboard, read from their routers (path wildcards filled with
// "x"), plus /metrics and /mcp, so that a route added later is covered.
func operatorRoutes(t *testing.T) []string {
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
	patterns = append(patterns, "GET /metrics", "POST /mcp", "GET /mcp", "DELETE /mcp", "GET /ui/static/app.css", "GET /no/such/route")
	wild := regexp.MustCompile(`\{[^}]*\}`)
	var out []string
	for _, p := range patterns {
		out = append(out, strings.ReplaceAll(wild.ReplaceAllString(p, "x"), "/x$", "/"))
	}
	if len(out) < 40 {
		t.Fatalf("only %d routes read from the routers: %v", len(out), out)
	}
	return out
}

// TestOperatorRoutesRefuseCrossSite runs the binary in its default mode
// (loopback, no token) and in token mode, and sends every operator route
// the request of issue 13 (a page on evil.example posting text/plain
// JSON) and a DNS-rebinding request (a foreign Host, same-origin to the
// browser): each is refused, and nothing was created. A same-origin
// dashboard action, the CLI and ingest from anywhere still work.
func TestOperatorRoutesRefuseCrossSite(t *testing.T) {
	t.Parallel()
	routes := operatorRoutes(t)
	bin := binary(t)
	const token = "operator-guard-token-0123456789"
	for _, mode := range []struct{ name, token string }{{"Default", ""}, {"Token", token}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var env []string
			if mode.token != "" {
				env = append(env, "MAILROOM_API_TOKEN="+mode.token)
			}
			inst := startProcess(t, bin, []string{"serve", "--config", writeConfig(t, dir, "http://127.0.0.1:9"), "--listen", "127.0.0.1:0"}, env)
			base := "http://" + inst.addr
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
			send := func(method, path string, hdr map[string]string, body string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
				for k, v := range hdr {
					if k == "Host" {
						req.Host = v
					} else {
						req.Header.Set(k, v)
					}
				}
				if mode.token != "" {
					req.Header.Set("Authorization", "Bearer "+mode.token)
				}
				resp, err := noRedirect.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return resp.StatusCode, string(b)
			}
			const attack = `{"name":"x","url":"https://attacker.example/c"}`
			crossSite := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
			_, port, _ := strings.Cut(inst.addr, ":")
			rebinding := map[string]string{"Host": "rebind.evil.example:" + port, "Origin": "http://rebind.evil.example:" + port,
				"Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
			for _, r := range routes {
				method, path, _ := strings.Cut(r, " ")
				if code, body := send(method, path, crossSite, attack); code != http.StatusForbidden || !strings.Contains(body, "cross-origin") {
					t.Errorf("cross-site %s: %d %s, want 403", r, code, body)
				}
				if code, body := send(method, path, rebinding, attack); code != http.StatusForbidden || !strings.Contains(body, "forbidden Host") {
					t.Errorf("rebinding %s: %d %s, want 403", r, code, body)
				}
			}
			if code, body := send("GET", "/api/v1/destinations/x", nil, ""); code != http.StatusNotFound {
				t.Errorf("after the attacks, destination x: %d %s, want 404", code, body)
			}

			// The curl without the browser's headers is what the CLI
			// sends: it works (as JSON), and the CLI itself works.
			if code, body := send("POST", "/api/v1/destinations", map[string]string{"Content-Type": "text/plain"}, attack); code != http.StatusUnsupportedMediaType {
				t.Errorf("text/plain write without browser headers: %d %s, want 415", code, body)
			}
			cli := exec.Command(bin, "destinations", "pause", "sink", "--server", base, "--token", mode.token)
			if out, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(out), "paused") {
				t.Errorf("CLI pause: %v %s", err, out)
			}

			// A same-origin dashboard action: log in (token mode), read the
			// CSRF token from a page, resume the destination with a form post.
			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Jar: jar, CheckRedirect: noRedirect.CheckRedirect, Timeout: 10 * time.Second}
			form := func(path string, v url.Values) *http.Response {
				t.Helper()
				req, _ := http.NewRequest("POST", base+path, strings.NewReader(v.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", base)
				req.Header.Set("Sec-Fetch-Site", "same-origin")
				resp, err := browser.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			if mode.token != "" {
				// next=/%09/evil.example: the tab would take the browser off-site.
				if resp := form("/ui/login", url.Values{"token": {mode.token}, "next": {"/\t/evil.example"}}); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("login: %d", resp.StatusCode)
				} else if loc := resp.Header.Get("Location"); loc != "/" {
					t.Errorf("login with next=/%%09/evil.example redirected to %q, want /", loc)
				}
			}
			resp, err := browser.Get(base + "/ui/login?next=/%09/evil.example")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/" {
				t.Errorf("GET /ui/login?next=/%%09/evil.example with a session: %d to %q, want 303 to /", resp.StatusCode, loc)
			}
			resp, err = browser.Get(base + "/ui/destinations")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
			if resp.StatusCode != http.StatusOK || m == nil {
				t.Fatalf("dashboard destinations: %d, csrf token found %v", resp.StatusCode, m != nil)
			}
			if resp := form("/ui/destinations/sink/resume", url.Values{"csrf": {string(m[1])}}); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("same-origin dashboard resume: %d", resp.StatusCode)
			}
			var d struct {
				Paused bool `json:"paused"`
			}
			if code, body := send("GET", "/api/v1/destinations/sink", nil, ""); code != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil || d.Paused {
				t.Errorf("after the dashboard resume: %d %s", code, body)
			}

			// Ingest stays reachable from anywhere: a cross-site post with a
			// foreign Host reaches the source (and fails its signature).
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/e/custom", strings.NewReader(`{"id":"a"}`))
			req.Host = "hooks.example.com"
			req.Header.Set("Origin", "https://evil.example")
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			req.Header.Set("Content-Type", "text/plain")
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("cross-site ingest with a foreign Host: %d, want 401 from the verifier", resp.StatusCode)
			}
		})
	}
}
