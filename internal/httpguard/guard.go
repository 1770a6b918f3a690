// Package httpguard decides which HTTP requests may reach mailroom's
// operator endpoints (the admin API, the dashboard, /metrics and /mcp):
// the one place that refuses cross-site requests, DNS-rebinding requests
// and writes in a content type a browser may send cross-site without
// asking, and the one bearer-token check ([Tokens]).
//
// [Guard.Handler] wraps the whole router, so a route added later is
// guarded unless its path is listed in [Options.Public] (the ingest
// endpoints, which third parties call from anywhere, and the health
// checks). It does not authenticate: the token checks stay with each
// front end, which all use [Tokens].
package httpguard

import (
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Options configures a [Guard].
type Options struct {
	// Listen is the listener's configured address, host:port. Its host (a
	// name or an address) is accepted in the Host header, as are loopback
	// names and addresses when it is loopback, and any address literal
	// when it is unspecified (":8080", "0.0.0.0:8080").
	Listen string
	// AllowedHosts are further names accepted in the Host header, for a
	// reverse proxy or a DNS name of the listener: "mailroom.example.com"
	// (any port) or "mailroom.example.com:8443". "*" accepts every Host.
	AllowedHosts []string
	// AllowedOrigins maps a path prefix to browser origins
	// (scheme://host[:port]) accepted on it besides the server's own, e.g.
	// {"/mcp": {"http://localhost:6274"}} for a browser MCP client.
	AllowedOrigins map[string][]string
	// Public are path prefixes served without any check ("/e/" for
	// ingest, "/healthz"). A prefix ending in "/" covers everything
	// under it; one that does not matches that exact path.
	Public []string
	// Forms are path prefixes whose writes are HTML form posts
	// (application/x-www-form-urlencoded), such as the dashboard's
	// actions; every other guarded write must be application/json.
	Forms []string
}

// Guard refuses foreign requests before they reach the router. Build it
// with [New]. It is safe for concurrent use.
type Guard struct {
	opts       Options
	listenHost string     // lower case, no brackets; "" when unspecified
	listenIP   netip.Addr // valid when the listener's host is an address
	loopback   bool       // the listener is loopback
	anyAddr    bool       // the listener is unspecified (all interfaces)
	anyHost    bool       // AllowedHosts holds "*"
}

// New returns a Guard for opts. A nil opts guards a loopback listener with
// no public paths.
func New(opts *Options) *Guard {
	g := &Guard{}
	if opts != nil {
		g.opts = *opts
	}
	host := g.opts.Listen
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = hostName(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		g.listenIP = ip.Unmap()
		g.anyAddr = ip.IsUnspecified()
		g.loopback = ip.IsLoopback()
	} else {
		g.listenHost = host
		g.anyAddr = host == ""
		g.loopback = host == "localhost"
	}
	g.anyHost = slices.Contains(g.opts.AllowedHosts, "*")
	return g
}

// IsLoopback reports whether the listen address host:port names a
// loopback interface ("localhost", 127.0.0.0/8, ::1). mailroom serves its
// operator endpoints without a token only on such a listener.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	host = hostName(host)
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// hostName lower-cases a host without its port, brackets and one trailing
// dot ("LocalHost." and "localhost" are the same name to a resolver).
func hostName(h string) string {
	h = strings.TrimSuffix(strings.Trim(strings.ToLower(h), "[]"), ".")
	if i := strings.IndexByte(h, '%'); i >= 0 { // IPv6 zone
		h = h[:i]
	}
	return h
}

// Handler wraps next: a request outside [Options.Public] whose Host is not
// this server's gets 403, so does one a browser sent from another site,
// and a write in a content type the path does not take gets 415. The
// answer is JSON, {"error": "..."}, saying which check refused.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if status, msg := g.Check(r); status != 0 {
			refuse(w, status, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Check applies the checks of [Guard.Handler] to r, whatever its path,
// and returns 0 when r passes, else the status and the reason to answer.
func (g *Guard) Check(r *http.Request) (status int, reason string) {
	if !g.HostAllowed(r.Host) {
		return http.StatusForbidden, "forbidden Host " + quote(r.Host) + ": this server answers to its listener's name or address only; " +
			"add the name to api.allowed_hosts if a reverse proxy or DNS name fronts it"
	}
	if reason := g.crossSite(r); reason != "" {
		return http.StatusForbidden, reason
	}
	if reason := g.contentType(r); reason != "" {
		return http.StatusUnsupportedMediaType, reason
	}
	return 0, ""
}

func (g *Guard) public(path string) bool {
	for _, p := range g.opts.Public {
		if path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) {
			return true
		}
	}
	return false
}

// HostAllowed reports whether a Host header value (host or host:port)
// names this server: the listener's host, a loopback name or address on a
// loopback listener, any address literal on an unspecified listener, or
// an allowed host. A name that is none of these is what a DNS-rebinding
// page sends: its own domain, now resolving to this server.
func (g *Guard) HostAllowed(hostport string) bool {
	if g.anyHost {
		return true
	}
	if hostport == "" {
		return false
	}
	name := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		name = h
	}
	name = hostName(name)
	for _, a := range g.opts.AllowedHosts {
		a = strings.ToLower(a)
		if a == name || a == strings.ToLower(hostport) {
			return true
		}
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		// An address literal cannot be rebound: a page can only send
		// one if it was itself loaded from that address.
		ip = ip.Unmap()
		return g.anyAddr || ip == g.listenIP || (g.loopback && ip.IsLoopback())
	}
	if name == "localhost" {
		return g.loopback || g.anyAddr
	}
	return g.listenHost != "" && name == g.listenHost
}

// crossSite returns why r is refused as a cross-site request, or "".
//
// A browser marks what it sends: Sec-Fetch-Site (all current browsers)
// and Origin (on every non-GET request and on cross-origin fetches). A
// request is same-origin when Sec-Fetch-Site says "same-origin" or "none"
// (typed into the address bar) or, without that header, when Origin is
// absent or names the Host it was sent to. "same-site" is refused too: a
// page on another port of the same host is another origin. Origins listed
// for the path in [Options.AllowedOrigins] pass. The one cross-site request
// let through is a top-level navigation (a link to a dashboard page): a
// GET that changes nothing, whose answer goes to the user's window, not
// to the page that linked.
func (g *Guard) crossSite(r *http.Request) string {
	origin := r.Header.Get("Origin")
	site := r.Header.Get("Sec-Fetch-Site")
	if origin != "" && g.originAllowed(r.URL.Path, origin) {
		return ""
	}
	switch site {
	case "same-origin", "none":
		return ""
	case "":
		if origin == "" {
			return "" // not a browser, or one that predates both headers (no CORS either)
		}
		if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
			return ""
		}
		return "forbidden Origin " + quote(origin) + ": cross-origin requests are refused"
	default: // "cross-site", "same-site" or a value from the future
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document" {
			return ""
		}
		return "forbidden cross-origin request (Sec-Fetch-Site: " + site + ", Origin " + quote(origin) + ")"
	}
}

func (g *Guard) originAllowed(path, origin string) bool {
	for prefix, origins := range g.opts.AllowedOrigins {
		if strings.HasPrefix(path, prefix) && slices.ContainsFunc(origins, func(o string) bool { return strings.EqualFold(o, origin) }) {
			return true
		}
	}
	return false
}

// contentType returns why a write is refused for its Content-Type, or "".
// A write must declare the type its path takes (JSON, or a form under
// [Options.Forms]), except one that has no body and no Content-Type (a
// bodyless action such as pause). JSON is a type no browser sends
// cross-site without a CORS preflight, which mailroom never grants.
func (g *Guard) contentType(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ""
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return ""
	}
	want := "application/json"
	for _, p := range g.opts.Forms {
		if strings.HasPrefix(r.URL.Path, p) {
			want = "application/x-www-form-urlencoded"
		}
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == want {
		return ""
	}
	return "unsupported Content-Type " + quote(ct) + " for " + r.Method + " " + r.URL.Path + ": want " + want
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func refuse(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
