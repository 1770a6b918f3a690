package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"
	"golang.org/x/net/proxy"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mailroomhq/mailroom/internal/netguard"
	"github.com/mailroomhq/mailroom/internal/store"
)

// egress holds what a destination's deliveries go out through when the
// shared client will not do: a client of its own for a proxy or client
// TLS (one per distinct setting, so connections are pooled across
// destinations that share it and across reloads), and a cached OAuth2
// token source per destination. Safe for concurrent use.
//
// The SSRF guard applies to the final target whatever the path: directly
// it checks the address dialed; through a SOCKS5 proxy mailroom resolves
// the target itself, checks it and hands the proxy the address, so the
// proxy cannot be steered elsewhere; through an HTTP proxy it checks the
// target's addresses as mailroom resolves them before sending. The proxy's
// own address is checked too, unless the config file names it (the
// default delivery.proxy, or the proxy of a destination the file
// declares): a proxy set through the API is one more way to reach an
// address, and an operator token may not reach what the guard refuses.
type egress struct {
	guard   *netguard.Policy
	base    *http.Client
	def     string // the default proxy URL, "" for none
	noProxy func(*url.URL) (*url.URL, error)

	mu      sync.Mutex
	clients map[string]*http.Client // by egressKey
	tokens  map[string]*tokenSource // by destination name
}

func newEgress(base *http.Client, guard *netguard.Policy, defProxy, noProxy string) *egress {
	e := &egress{guard: guard, base: base, def: defProxy, clients: map[string]*http.Client{}, tokens: map[string]*tokenSource{}}
	if defProxy != "" {
		// NO_PROXY semantics (domains, suffixes, CIDRs, ports) as
		// net/http's environment proxy applies them.
		e.noProxy = (&httpproxy.Config{HTTPProxy: defProxy, HTTPSProxy: defProxy, NoProxy: noProxy}).ProxyFunc()
	}
	return e
}

// proxyFor returns the proxy dest's deliveries go through, or "" for none.
func (e *egress) proxyFor(dest *store.Destination) (string, error) {
	switch dest.Proxy {
	case store.ProxyDirect:
		return "", nil
	case "":
	default:
		return dest.Proxy, nil
	}
	if e.def == "" {
		return "", nil
	}
	target, err := url.Parse(dest.URL)
	if err != nil {
		return "", fmt.Errorf("parse url: %w", err)
	}
	p, err := e.noProxy(target)
	if err != nil || p == nil {
		return "", err // NO_PROXY matched
	}
	return e.def, nil
}

// client returns the client dest's deliveries use: the shared one unless
// dest needs a proxy or client TLS.
func (e *egress) client(dest *store.Destination) (*http.Client, error) {
	px, err := e.proxyFor(dest)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	t := dest.TLS
	if px == "" && t == (store.ClientTLS{}) {
		return e.base, nil
	}
	guardProxy := px != "" && !e.trustedProxy(dest, px)
	key, err := egressKey(px, t)
	if err != nil {
		return nil, err
	}
	if guardProxy {
		key += "|guarded"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.clients[key]; c != nil {
		return c, nil
	}
	c, err := e.build(px, t, guardProxy)
	if err != nil {
		return nil, err
	}
	e.clients[key] = c
	return c, nil
}

// trustedProxy says whether px, the proxy dest's deliveries go through, is
// the config file's choice: delivery.proxy, or the proxy of a destination
// the file declares. Any other proxy's address must pass the guard.
func (e *egress) trustedProxy(dest *store.Destination, px string) bool {
	return (e.def != "" && px == e.def) || dest.ManagedBy == store.ManagedByConfig
}

// egressKey names a client: the proxy, the TLS settings and the files'
// modification times, so a rotated certificate is read again at the next
// reload of the destinations.
func egressKey(px string, t store.ClientTLS) (string, error) {
	var b strings.Builder
	b.WriteString(px)
	for _, f := range []string{t.CertFile, t.KeyFile, t.CAFile} {
		b.WriteString("|" + f)
		if f == "" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		fmt.Fprintf(&b, "@%d", st.ModTime().UnixNano())
	}
	b.WriteString("|" + t.ServerName)
	return b.String(), nil
}

// build makes a client for proxy px (may be empty) and client TLS t;
// guardProxy dials the proxy itself through the guard.
func (e *egress) build(px string, t store.ClientTLS, guardProxy bool) (*http.Client, error) {
	tr := newTransport(e.guard)
	if t != (store.ClientTLS{}) {
		cfg, err := clientTLS(t)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
	}
	var rt http.RoundTripper = tr
	if px != "" {
		pu, err := url.Parse(px)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		switch pu.Scheme {
		case "socks5", "socks5h":
			tr.Proxy = nil
			tr.DialContext, err = e.socksDial(pu, guardProxy)
			if err != nil {
				return nil, err
			}
		default:
			tr.Proxy = http.ProxyURL(pu)
			tr.DialContext = e.proxyDial(pu, guardProxy)
			tr.OnProxyConnectResponse = proxyRefusal
			rt = &checkTarget{next: tr, guard: e.guard}
		}
	}
	return &http.Client{Transport: rt, CheckRedirect: noRedirects}, nil
}

// clientTLS loads t's files into a TLS config.
func clientTLS(t store.ClientTLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: no PEM certificate in %s", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// proxyError is the failure of a proxy in front of the receiver: it could
// not be reached, or it refused to carry the request. The attempt never
// reached the receiver (see [reachedReceiver]).
type proxyError struct{ err error }

func (e *proxyError) Error() string { return "proxy: " + e.err.Error() }
func (e *proxyError) Unwrap() error { return e.err }

// proxyRefusal is the transport's OnProxyConnectResponse: a CONNECT that
// the HTTP proxy answers 407 (credentials) or 403 (its policy) is the
// proxy's refusal. Other answers (502, 504: the proxy could not reach the
// target) are left to the transport, the target's failure.
func proxyRefusal(_ context.Context, pu *url.URL, _ *http.Request, res *http.Response) error {
	if res.StatusCode == http.StatusProxyAuthRequired || res.StatusCode == http.StatusForbidden {
		return &proxyError{fmt.Errorf("%s refused CONNECT: %s", pu.Redacted(), res.Status)}
	}
	return nil
}

// proxyDial dials the HTTP proxy at pu (through the guard if guardProxy),
// and anything else (a target the transport reaches without the proxy)
// through the guard.
func (e *egress) proxyDial(pu *url.URL, guardProxy bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := e.guard.DialContext(newDialer())
	proxyAddr := hostPort(pu)
	toProxy := e.proxyDialer(guardProxy)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == proxyAddr {
			return toProxy.DialContext(ctx, network, addr)
		}
		return guarded(ctx, network, addr)
	}
}

// proxyDialer returns the dialer of a proxy's own address: through the
// guard if guarded, else as it is.
func (e *egress) proxyDialer(guarded bool) proxyDialer {
	if guarded {
		return proxyDialer{e.guard.DialContext(newDialer())}
	}
	return proxyDialer{newDialer().DialContext}
}

// proxyDialer dials a proxy, marking its failures (a guard's refusal
// among them) as the proxy's: the attempt never reached the receiver.
type proxyDialer struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (p proxyDialer) Dial(network, addr string) (net.Conn, error) {
	return p.DialContext(context.Background(), network, addr)
}

func (p proxyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := p.dial(ctx, network, addr)
	if err != nil {
		return nil, &proxyError{err}
	}
	return c, nil
}

// socksTargetReplies are the SOCKS5 replies (RFC 1928) that report the
// target's failure, as golang.org/x/net/proxy words them: the proxy
// reached out and the receiver's side failed. Every other handshake
// failure (authentication, "connection not allowed by ruleset", a general
// failure) is the proxy's.
var socksTargetReplies = []string{"network unreachable", "host unreachable", "connection refused", "TTL expired"}

// socksError classifies a failed SOCKS5 dial: the proxy's failure as a
// [proxyError], the target's as it is.
func socksError(ctx context.Context, err error) error {
	var px *proxyError
	if errors.As(err, &px) || ctx.Err() != nil {
		return err
	}
	msg := err.Error()
	for _, r := range socksTargetReplies {
		if strings.HasSuffix(msg, "unknown error "+r) {
			return err
		}
	}
	return &proxyError{err}
}

// socksDial dials targets through the SOCKS5 proxy at pu. The target is
// resolved and checked here, and the proxy is given its address, so what
// the guard checked is what is reached (socks5h hands the proxy the name
// instead, once its addresses passed the check).
func (e *egress) socksDial(pu *url.URL, guardProxy bool) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	var auth *proxy.Auth
	if pu.User != nil {
		pw, _ := pu.User.Password()
		auth = &proxy.Auth{User: pu.User.Username(), Password: pw}
	}
	d, err := proxy.SOCKS5("tcp", hostPort(pu), auth, e.proxyDialer(guardProxy))
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	cd, ok := d.(proxy.ContextDialer)
	if !ok {
		return nil, errors.New("proxy: the SOCKS5 dialer cannot take a context")
	}
	remoteDNS := pu.Scheme == "socks5h"
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ip, err := e.checkHost(ctx, host)
		if err != nil {
			return nil, err
		}
		if !remoteDNS {
			addr = net.JoinHostPort(ip.String(), port)
		}
		c, err := cd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, socksError(ctx, err)
		}
		return c, nil
	}, nil
}

// checkHost resolves host and checks every address with the guard,
// returning the first.
func (e *egress) checkHost(ctx context.Context, host string) (netip.Addr, error) {
	return resolveChecked(ctx, e.guard, host)
}

// resolveChecked resolves host (an IP literal stands for itself) and
// checks every address with guard, returning the first.
func resolveChecked(ctx context.Context, guard *netguard.Policy, host string) (netip.Addr, error) {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("resolve %s: no address", host)
	}
	if guard != nil {
		for _, ip := range ips {
			if err := guard.Check(host, ip.Unmap()); err != nil {
				return netip.Addr{}, err
			}
		}
	}
	return ips[0].Unmap(), nil
}

// checkTarget refuses a request through an HTTP proxy whose target the
// guard refuses, before the proxy is asked to connect to it.
type checkTarget struct {
	next  http.RoundTripper
	guard *netguard.Policy
}

// RoundTrip implements [http.RoundTripper]. Without a guard nothing is
// checked, and the target is left to the proxy to resolve.
func (c *checkTarget) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.guard != nil {
		if _, err := resolveChecked(req.Context(), c.guard, req.URL.Hostname()); err != nil {
			return nil, err
		}
	}
	return c.next.RoundTrip(req)
}

// hostPort is u's host and port, the scheme's default port when it has
// none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	switch u.Scheme {
	case "https":
		port = "443"
	case "socks5", "socks5h":
		port = "1080"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// tokenSource is one destination's OAuth2 client-credentials token,
// cached until it expires, rebuilt when the config changes or the
// receiver refuses the token.
type tokenSource struct {
	cfg store.OutboundAuth
	src oauth2.TokenSource
}

// token returns dest's access token, fetching one when none is cached or
// the cached one expired. The token endpoint is reached through dest's
// client (its proxy and TLS), under the same guard.
func (e *egress) token(ctx context.Context, dest *store.Destination, hc *http.Client) (string, error) {
	e.mu.Lock()
	ts := e.tokens[dest.Name]
	if ts == nil || !sameAuth(ts.cfg, dest.Auth) {
		a := dest.Auth
		cc := &clientcredentials.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL, Scopes: a.Scopes}
		if a.Audience != "" {
			cc.EndpointParams = url.Values{"audience": {a.Audience}}
		}
		// The source outlives this attempt: its context only carries the
		// client; each fetch is bounded by the client's timeout below.
		tctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{
			Transport: hc.Transport, CheckRedirect: noRedirects, Timeout: tokenTimeout})
		ts = &tokenSource{cfg: a, src: cc.TokenSource(tctx)}
		e.tokens[dest.Name] = ts
	}
	e.mu.Unlock()
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := ts.src.Token()
		done <- result{tok, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return "", fmt.Errorf("oauth2 token from %s: %w", dest.Auth.TokenURL, r.err)
		}
		return r.tok.AccessToken, nil
	case <-ctx.Done():
		return "", fmt.Errorf("oauth2 token from %s: %w", dest.Auth.TokenURL, ctx.Err())
	}
}

// tokenTimeout bounds one token request.
const tokenTimeout = 30 * time.Second

// forgetToken drops dest's cached token after the receiver refused it
// (401), so the next attempt fetches a new one.
func (e *egress) forgetToken(dest string) {
	e.mu.Lock()
	delete(e.tokens, dest)
	e.mu.Unlock()
}

func sameAuth(a, b store.OutboundAuth) bool {
	return a.Type == b.Type && a.TokenURL == b.TokenURL && a.ClientID == b.ClientID && a.ClientSecret == b.ClientSecret &&
		a.Audience == b.Audience && strings.Join(a.Scopes, " ") == strings.Join(b.Scopes, " ")
}
