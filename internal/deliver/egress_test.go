package deliver_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/netguard"
	"github.com/mailroomhq/mailroom/internal/store"
)

// loopbackOnly is a guard that allows 127.0.0.1 and nothing else that is
// not public: the cloud metadata address stays refused.
func loopbackOnly() *netguard.Policy {
	return netguard.New(netguard.Options{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
}

// forwardProxy is an HTTP proxy for plain-http targets: it records each
// absolute URL asked for and forwards the request, sending hosts named in
// route to the given address instead of resolving them.
type forwardProxy struct {
	srv   *httptest.Server
	mu    sync.Mutex
	seen  []string
	route map[string]string // host -> host:port
}

func newForwardProxy(t *testing.T, route map[string]string) *forwardProxy {
	p := &forwardProxy{route: route}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.URL.String())
		p.mu.Unlock()
		out := r.Clone(r.Context())
		out.RequestURI = ""
		if to, ok := p.route[out.URL.Hostname()]; ok {
			out.URL.Host = to
		}
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *forwardProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// authReceiver is a destination that records the Authorization headers it got.
type authReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	auths []string
}

func newAuthReceiver(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *authReceiver {
	rc := &authReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.auths = append(rc.auths, r.Header.Get("Authorization"))
		rc.mu.Unlock()
		if handle != nil {
			handle(w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// lastError returns the error of the last attempt of delivery id, once it
// has one.
func lastError(t *testing.T, s store.Store, id string) string {
	t.Helper()
	var msg string
	waitFor(t, "a failed attempt of "+id, func() bool {
		as, err := s.AttemptList(context.Background(), id)
		if err != nil || len(as) == 0 {
			return false
		}
		msg = as[len(as)-1].Error
		return msg != ""
	})
	return msg
}

// TestHTTPProxy: a destination with proxy: http://… is delivered through
// it; a target the guard refuses (the cloud metadata address) is refused
// before the proxy is asked for it.
func TestHTTPProxy(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newAuthReceiver(t, nil)
	px := newForwardProxy(t, nil)
	addDest(t, s, &store.Destination{Name: "via", URL: rc.srv.URL + "/hooks", Proxy: px.srv.URL})
	addDest(t, s, &store.Destination{Name: "metadata", URL: "http://169.254.169.254/latest/meta-data", Proxy: px.srv.URL,
		Retry: store.RetryPolicy{MaxAttempts: 1}})
	res := ingest(t, s, []byte(`{}`), "application/json", "via", "metadata")
	start(t, s, &deliver.Options{Guard: loopbackOnly(), PollInterval: 20 * time.Millisecond})

	waitStatus(t, s, res.DeliveryIDs[0], store.DeliverySucceeded)
	if msg := lastError(t, s, res.DeliveryIDs[1]); !strings.Contains(msg, "cloud metadata") {
		t.Errorf("metadata through the proxy: %q, want the guard's refusal", msg)
	}
	seen := px.requests()
	if len(seen) != 1 || seen[0] != rc.srv.URL+"/hooks" {
		t.Errorf("proxy saw %q, want only %s/hooks", seen, rc.srv.URL)
	}
}

// TestOwnProxyGuarded: the address of a destination's own proxy must pass
// the guard when the destination was made through the API (an operator
// token must not reach, through a proxy it names, an address the guard
// refuses as a destination); the config file's proxies (delivery.proxy,
// and the proxy of a destination the file declares) are the operator's
// choice and are dialed as they are. The target is a public address
// literal that the proxy routes to the loopback receiver, and the guard
// refuses loopback.
func TestOwnProxyGuarded(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newAuthReceiver(t, nil)
	const public = "93.184.216.34"
	rcu, _ := url.Parse(rc.srv.URL)
	px := newForwardProxy(t, map[string]string{public: rcu.Host})
	own := newForwardProxy(t, map[string]string{public: rcu.Host}) // not delivery.proxy
	target := "http://" + public + "/hooks"
	addDest(t, s, &store.Destination{Name: "api", URL: target, Proxy: own.srv.URL, ManagedBy: store.ManagedByAPI,
		Retry: store.RetryPolicy{MaxAttempts: 1}})
	addDest(t, s, &store.Destination{Name: "file", URL: target, Proxy: own.srv.URL, ManagedBy: store.ManagedByConfig})
	addDest(t, s, &store.Destination{Name: "default", URL: target, ManagedBy: store.ManagedByAPI})
	res := ingest(t, s, []byte(`{}`), "application/json", "api", "file", "default")
	start(t, s, &deliver.Options{Guard: netguard.New(netguard.Options{}), Proxy: px.srv.URL, PollInterval: 20 * time.Millisecond})

	waitStatus(t, s, res.DeliveryIDs[1], store.DeliverySucceeded)
	waitStatus(t, s, res.DeliveryIDs[2], store.DeliverySucceeded)
	if msg := lastError(t, s, res.DeliveryIDs[0]); !strings.Contains(msg, "proxy:") || !strings.Contains(msg, "loopback address") {
		t.Errorf("an API destination's loopback proxy: %q, want the guard's refusal of the proxy", msg)
	}
	waitStatus(t, s, res.DeliveryIDs[0], store.DeliveryDead)
	// delivery.proxy carried "default"; the other proxy carried "file"
	// and nothing of "api".
	if seen := px.requests(); len(seen) != 1 {
		t.Errorf("delivery.proxy saw %q, want one delivery", seen)
	}
	if seen := own.requests(); len(seen) != 1 {
		t.Errorf("the destinations' own proxy saw %q, want only the config destination's delivery", seen)
	}
}

// TestDefaultProxyAndNoProxy: Options.Proxy applies to every destination
// but those that say "direct" or whose host NoProxy lists.
func TestDefaultProxyAndNoProxy(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newAuthReceiver(t, nil)
	target := strings.TrimPrefix(rc.srv.URL, "http://")
	px := newForwardProxy(t, map[string]string{"partner.example": target})
	addDest(t, s, &store.Destination{Name: "proxied", URL: "http://partner.example/hooks"})
	addDest(t, s, &store.Destination{Name: "listed", URL: "http://internal.example:9/hooks", Retry: store.RetryPolicy{MaxAttempts: 1}})
	addDest(t, s, &store.Destination{Name: "direct", URL: rc.srv.URL + "/direct", Proxy: store.ProxyDirect})
	res := ingest(t, s, []byte(`{}`), "application/json", "proxied", "listed", "direct")
	start(t, s, &deliver.Options{Proxy: px.srv.URL, NoProxy: "internal.example", PollInterval: 20 * time.Millisecond})

	waitStatus(t, s, res.DeliveryIDs[0], store.DeliverySucceeded)
	waitStatus(t, s, res.DeliveryIDs[2], store.DeliverySucceeded)
	waitStatus(t, s, res.DeliveryIDs[1], store.DeliveryDead) // no such host, tried directly
	if seen := px.requests(); len(seen) != 1 || seen[0] != "http://partner.example/hooks" {
		t.Errorf("proxy saw %q, want only http://partner.example/hooks", seen)
	}
}

// socksServer is a SOCKS5 server (RFC 1928, with RFC 1929 user/password)
// that records the address type and address of each CONNECT and connects
// every one to target.
type socksServer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	asked  []string // "ip:127.0.0.1:80" or "domain:name:80"
}

func newSOCKS(t *testing.T, target, user, pass string) *socksServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sv := &socksServer{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go sv.serve(c, user, pass)
		}
	}()
	return sv
}

func (sv *socksServer) serve(c net.Conn, user, pass string) {
	defer c.Close()
	r := bufio.NewReader(c)
	head := make([]byte, 2)
	if _, err := io.ReadFull(r, head); err != nil || head[0] != 5 {
		return
	}
	io.ReadFull(r, make([]byte, head[1])) // offered methods
	c.Write([]byte{5, 2})                 // user/password
	ver, _ := r.ReadByte()
	ulen, _ := r.ReadByte()
	u := make([]byte, ulen)
	io.ReadFull(r, u)
	plen, _ := r.ReadByte()
	p := make([]byte, plen)
	io.ReadFull(r, p)
	if ver != 1 || string(u) != user || string(p) != pass {
		c.Write([]byte{1, 1})
		return
	}
	c.Write([]byte{1, 0})
	req := make([]byte, 4)
	if _, err := io.ReadFull(r, req); err != nil || req[1] != 1 {
		return
	}
	var asked string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		io.ReadFull(r, ip)
		asked = "ip:" + net.IP(ip).String()
	case 4:
		ip := make([]byte, 16)
		io.ReadFull(r, ip)
		asked = "ip:" + net.IP(ip).String()
	case 3:
		n, _ := r.ReadByte()
		name := make([]byte, n)
		io.ReadFull(r, name)
		asked = "domain:" + string(name)
	}
	port := make([]byte, 2)
	io.ReadFull(r, port)
	sv.mu.Lock()
	sv.asked = append(sv.asked, asked)
	sv.mu.Unlock()
	up, err := net.Dial("tcp", sv.target)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	reply := []byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(reply[8:], 0)
	c.Write(reply)
	go io.Copy(up, r)
	io.Copy(c, up)
}

func (sv *socksServer) connects() []string {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return append([]string(nil), sv.asked...)
}

// TestSOCKS5Proxy: a destination with proxy: socks5://user:pass@… is
// delivered through it; mailroom resolves the target itself and hands the
// proxy an address (so what the guard checked is what is reached), and a
// refused target never reaches the proxy.
func TestSOCKS5Proxy(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newAuthReceiver(t, nil)
	u, _ := url.Parse(rc.srv.URL)
	sv := newSOCKS(t, u.Host, "mailroom", "s3cret")
	proxyURL := "socks5://mailroom:s3cret@" + sv.ln.Addr().String()
	guard := netguard.New(netguard.Options{AllowNetworks: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}})
	addDest(t, s, &store.Destination{Name: "via", URL: "http://localhost:" + u.Port() + "/hooks", Proxy: proxyURL})
	addDest(t, s, &store.Destination{Name: "metadata", URL: "http://169.254.169.254/latest/meta-data", Proxy: proxyURL,
		Retry: store.RetryPolicy{MaxAttempts: 1}})
	res := ingest(t, s, []byte(`{}`), "application/json", "via", "metadata")
	start(t, s, &deliver.Options{Guard: guard, PollInterval: 20 * time.Millisecond})

	waitStatus(t, s, res.DeliveryIDs[0], store.DeliverySucceeded)
	if msg := lastError(t, s, res.DeliveryIDs[1]); !strings.Contains(msg, "cloud metadata") {
		t.Errorf("metadata through SOCKS5: %q, want the guard's refusal", msg)
	}
	got := sv.connects()
	if len(got) != 1 || (got[0] != "ip:127.0.0.1" && got[0] != "ip:::1") {
		t.Errorf("SOCKS5 CONNECTs = %q, want one to the resolved loopback address", got)
	}
}

// TestOAuth2ClientCredentials: a destination with auth: oauth2 fetches a
// token once for many deliveries, sends it as a bearer token, and fetches
// a new one after the receiver refuses it (401).
func TestOAuth2ClientCredentials(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var issued atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if r.PostForm.Get("grant_type") != "client_credentials" || id != "mailroom" || secret != "client-secret" ||
			r.PostForm.Get("scope") != "hooks:write" || r.PostForm.Get("audience") != "https://partner.example" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		n := issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"tok-`+string(rune('0'+n))+`","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokens.Close)
	var valid atomic.Value
	valid.Store("Bearer tok-1")
	rc := newAuthReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != valid.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	addDest(t, s, &store.Destination{Name: "partner", URL: rc.srv.URL, MaxConcurrency: 1,
		Retry: store.RetryPolicy{Initial: store.Duration(time.Millisecond), Max: store.Duration(5 * time.Millisecond)},
		Auth: store.OutboundAuth{Type: store.AuthOAuth2ClientCredentials, TokenURL: tokens.URL, ClientID: "mailroom",
			ClientSecret: "client-secret", Scopes: []string{"hooks:write"}, Audience: "https://partner.example"}})
	first := ingestN(t, s, 3, "partner")
	start(t, s, &deliver.Options{PollInterval: 20 * time.Millisecond})
	for _, r := range first {
		waitStatus(t, s, r.DeliveryIDs[0], store.DeliverySucceeded)
	}
	if n := issued.Load(); n != 1 {
		t.Fatalf("%d tokens fetched for three deliveries, want 1 (cached)", n)
	}
	// The receiver rotates: tok-1 is refused, the next attempt fetches tok-2.
	valid.Store("Bearer tok-2")
	later := ingest(t, s, []byte(`{"n":9}`), "application/json", "partner")
	d := waitStatus(t, s, later.DeliveryIDs[0], store.DeliverySucceeded)
	if d.Attempts != 2 || issued.Load() != 2 {
		t.Errorf("after rotation: %d attempts, %d tokens; want 2 and 2", d.Attempts, issued.Load())
	}
}

// TestMTLS: a receiver that requires a client certificate gets one from a
// destination with tls.cert_file/key_file (trusting its CA from ca_file),
// and refuses a destination without one.
func TestMTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	serverCert := issue(t, ca, caKey, "authReceiver", x509.ExtKeyUsageServerAuth)
	clientCert := issue(t, ca, caKey, "mailroom", x509.ExtKeyUsageClientAuth)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", clientCert.Certificate[0])
	keyDER, err := x509.MarshalECPrivateKey(clientCert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "client.key"), "EC PRIVATE KEY", keyDER)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	var clients atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clients.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	s := newStore(t)
	addDest(t, s, &store.Destination{Name: "mtls", URL: srv.URL, TLS: store.ClientTLS{
		CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key"), CAFile: filepath.Join(dir, "ca.pem")}})
	addDest(t, s, &store.Destination{Name: "nocert", URL: srv.URL, Retry: store.RetryPolicy{MaxAttempts: 1},
		TLS: store.ClientTLS{CAFile: filepath.Join(dir, "ca.pem")}})
	res := ingest(t, s, []byte(`{}`), "application/json", "mtls", "nocert")
	start(t, s, &deliver.Options{PollInterval: 20 * time.Millisecond})
	waitStatus(t, s, res.DeliveryIDs[0], store.DeliverySucceeded)
	if cn, _ := clients.Load().(string); cn != "mailroom" {
		t.Errorf("authReceiver saw client certificate %q, want mailroom", cn)
	}
	waitStatus(t, s, res.DeliveryIDs[1], store.DeliveryDead)
	if msg := lastError(t, s, res.DeliveryIDs[1]); !strings.Contains(msg, "certificate") && !strings.Contains(msg, "tls") {
		t.Errorf("without a client certificate: %q, want a TLS error", msg)
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
