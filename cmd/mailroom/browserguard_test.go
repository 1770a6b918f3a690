package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// needChromium returns the browser's path, or skips the test (fails it
// under CI, where .ci/run installs the Debian package chromium).
func needChromium(t *testing.T) string {
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

// attackPage is what a site the operator visits could serve: it tries to
// create a destination through the admin API (a no-cors text/plain fetch
// and a JSON-in-text/plain form), to pause one through the dashboard, and
// to read the API; it also sends a webhook to ingest, which must arrive,
// so that the test knows the browser did reach mailroom.
const attackPage = `<!doctype html><html><body>
<form id="api" method="post" enctype="text/plain" action="%[1]s/api/v1/destinations" target="sink">
<input name='{"name":"y","url":"https://attacker.example/c","pad":"' value='"}'></form>
<form id="dash" method="post" action="%[1]s/ui/destinations/sink/pause" target="sink2"></form>
<iframe name="sink"></iframe><iframe name="sink2"></iframe>
<script>
const mr = %[2]q, out = {};
function submitted(form, frame) {
  return new Promise(done => { document.getElementsByName(frame)[0].onload = done; setTimeout(done, 3000); document.getElementById(form).submit(); });
}
(async () => {
  try { await fetch(mr + "/api/v1/destinations", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
        body: JSON.stringify({name: "x", url: "https://attacker.example/c"})}); out.fetch = "sent"; } catch (e) { out.fetch = "error: " + e; }
  try { await fetch(mr + "/e/custom", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: '{"id":"from-evil"}'}); out.ingest = "sent"; } catch (e) { out.ingest = "error: " + e; }
  try { const r = await fetch(mr + "/api/v1/destinations"); out.read = await r.text(); } catch (e) { out.read = "blocked"; }
  await submitted("api", "sink");
  await submitted("dash", "sink2");
  document.title = "done " + JSON.stringify(out);
})();
</script></body></html>`

// TestBrowserCannotActCrossSite runs real Chromium against the binary in
// its default mode (loopback, no token). A page on another site sends
// what a malicious page would: mailroom refuses all of it and nothing
// changes, while the webhook the page sends to ingest does arrive. A page
// whose name resolves to mailroom (DNS rebinding, simulated with a
// resolver rule) is refused too.
func TestBrowserCannotActCrossSite(t *testing.T) {
	t.Parallel()
	exe := needChromium(t)
	inst := start(t, binary(t), writeConfig(t, t.TempDir(), "http://127.0.0.1:9"))
	base := "http://" + inst.addr
	_, port, _ := strings.Cut(inst.addr, ":")

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, attackPage, base, base)
	}))
	t.Cleanup(evil.Close)
	_, evilPort, _ := strings.Cut(strings.TrimPrefix(evil.URL, "http://"), ":")

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "HttpsUpgrades"),
		// evil.test is another site; rebind.test is a name an attacker made
		// resolve to the machine mailroom runs on.
		chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1, MAP rebind.test 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx, chromedp.Navigate("http://evil.test:"+evilPort+"/attack")); err != nil {
		t.Fatalf("attack page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.title.startsWith("done")`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("attack page did not finish: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Fetch, Ingest, Read string }
	json.Unmarshal([]byte(strings.TrimPrefix(title, "done ")), &out)
	t.Logf("attack page reports %+v", out)
	if strings.Contains(out.Read, "sink") {
		t.Errorf("the page read the destinations: %s", out.Read)
	}

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The control: the page's webhook reached ingest (and failed its
	// signature), so the browser did send requests to mailroom.
	waitUntil(t, "the attack page's webhook to be recorded", func() bool {
		_, b := get("/api/v1/requests?source=custom&status=rejected")
		return strings.Contains(b, "Sec-Fetch-Site")
	})
	for _, name := range []string{"x", "y"} {
		if code, b := get("/api/v1/destinations/" + name); code != http.StatusNotFound {
			t.Errorf("the attack page created destination %s: %d %s", name, code, b)
		}
	}
	if _, b := get("/api/v1/destinations/sink"); !strings.Contains(b, `"paused": false`) && !strings.Contains(b, `"paused":false`) {
		t.Errorf("the attack page paused sink: %s", b)
	}

	// DNS rebinding: the page's origin is rebind.test, now mailroom's
	// address. Its navigation and its same-origin writes are refused.
	if err := chromedp.Do(ctx, chromedp.Navigate("http://rebind.test:"+port+"/ui/destinations")); err != nil {
		t.Fatalf("rebinding page: %v", err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/v1/destinations", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({name: "z", url: "https://attacker.example/c"})}).then(r => r.status, () => -1)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "forbidden Host") || status != http.StatusForbidden {
		t.Errorf("rebinding: page %q, same-origin POST %d; want both refused (403, forbidden Host)", body, status)
	}
	if code, b := get("/api/v1/destinations/z"); code != http.StatusNotFound {
		t.Errorf("the rebinding page created destination z: %d %s", code, b)
	}
}
