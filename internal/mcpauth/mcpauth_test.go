package mcpauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/mcpauth/mcpauthtest"
)

// clock is a settable clock for the JWKS refetch limit.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rs is a resource server behind the guard, over real HTTP, whose handler
// answers with the principal and TokenInfo it was given.
type rs struct {
	URL      string // of /mcp
	as       *mcpauthtest.Server
	auth     *mcpauth.Authenticator
	clock    *clock
	srv      *httptest.Server
	resource string
}

func newRS(t *testing.T, as *mcpauthtest.Server, opts mcpauth.Options, static map[string]access.Principal) *rs {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := &clock{t: time.Now()}
	r := &rs{URL: srv.URL + "/mcp", as: as, clock: c, srv: srv, resource: srv.URL + "/mcp"}
	var a *mcpauth.Authenticator
	if as != nil {
		opts.Resource = r.resource
		if opts.AuthorizationServers == nil {
			opts.AuthorizationServers = []string{as.Issuer()}
		}
		opts.Now = c.now
		var err error
		a, err = mcpauth.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		a.Register(mux)
	}
	r.auth = a
	g := mcpauth.NewGuard(mcpauth.GuardOptions{Static: static, OAuth: a})
	mux.Handle("/mcp", g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p, ok := access.From(req.Context())
		ti := auth.TokenInfoFromContext(req.Context())
		fromTI, _ := mcpauth.PrincipalOf(ti)
		if !ok || ti == nil || fromTI != p {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"principal": p, "owner": ti.UserID})
	})))
	return r
}

type answer struct {
	status    int
	challenge string
	principal access.Principal
	owner     string
	body      string
}

func (r *rs) call(t *testing.T, token string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.URL, strings.NewReader("{}"))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), body: string(b)}
	if resp.StatusCode == http.StatusOK {
		var v struct {
			Principal access.Principal
			Owner     string
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("body %s: %v", b, err)
		}
		a.principal, a.owner = v.Principal, v.Owner
	}
	return a
}

// challengeParams parses a WWW-Authenticate value with the go-sdk's
// parser, as a client would.
func challengeParams(t *testing.T, h string) map[string]string {
	t.Helper()
	cs, err := oauthex.ParseWWWAuthenticate([]string{h})
	if err != nil || len(cs) != 1 || cs[0].Scheme != "bearer" {
		t.Fatalf("WWW-Authenticate %q: %v %+v", h, err, cs)
	}
	return cs[0].Params
}

func clients() map[string]mcpauthtest.Client {
	return map[string]mcpauthtest.Client{
		"agent-a": {Secret: "secret-a", Subject: "alice"},
		"agent-b": {Secret: "secret-b", Subject: "alice"},
		"opaque":  {Secret: "secret-o", Subject: "olga", Opaque: true},
	}
}

// TestClientCredentialsOverHTTP: a token obtained from the authorization
// server's token endpoint with golang.org/x/oauth2 (resource indicator,
// scopes) is accepted; the principal carries the project scope.
func TestClientCredentialsOverHTTP(t *testing.T) {
	as := mcpauthtest.New(t, clients())
	r := newRS(t, as, mcpauth.Options{}, nil)
	cc := clientcredentials.Config{ClientID: "agent-a", ClientSecret: "secret-a", TokenURL: as.URL + "/token",
		Scopes: []string{"mailroom:mcp", "mailroom:project:acme"}, EndpointParams: map[string][]string{"resource": {r.resource}}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := r.call(t, tok.AccessToken)
	want := access.Principal{TokenID: "oauth:" + as.Issuer() + "#alice", Name: "agent-a", Role: access.RoleMCP, Project: "acme"}
	if got.status != http.StatusOK || got.principal != want {
		t.Fatalf("got %d %+v (%s), want 200 %+v", got.status, got.principal, got.body, want)
	}
	if got.owner != want.TokenID+"@acme" {
		t.Errorf("owner = %q", got.owner)
	}
	if as.JWKSFetches() != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (discovered from the issuer's metadata)", as.JWKSFetches())
	}
	// Without a project scope: the default project.
	tok2 := as.Issue(mcpauthtest.Valid("bob", r.resource, "mailroom:mcp"))
	if got := r.call(t, tok2); got.status != http.StatusOK || got.principal.Project != access.DefaultProject {
		t.Fatalf("no project scope: %d %+v", got.status, got.principal)
	}
}

// TestRefusals: each way a token can be wrong gets its status and RFC
// 6750 / RFC 9728 challenge.
func TestRefusals(t *testing.T) {
	as := mcpauthtest.New(t, clients())
	other := mcpauthtest.New(t, clients()) // an issuer mailroom does not trust
	r := newRS(t, as, mcpauth.Options{}, nil)
	now := time.Now()
	valid := func(mod func(*mcpauthtest.Claims)) string {
		c := mcpauthtest.Valid("alice", r.resource, "mailroom:mcp")
		mod(&c)
		return as.Issue(c)
	}
	hs256 := func() string {
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
		s, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: as.Issuer(), Subject: "alice", Audience: jwt.Audience{r.resource}, Expiry: jwt.NewNumericDate(now.Add(time.Hour))}).Claims(map[string]any{"scope": "mailroom:mcp"}).Serialize()
		return s
	}
	cases := []struct {
		name   string
		token  string
		status int
		code   string
		desc   string
	}{
		{"no token", "", 401, "", ""},
		{"wrong audience", valid(func(c *mcpauthtest.Claims) { c.Audience = []string{"https://other.example.com/mcp"} }), 401, "invalid_token", "audience"},
		{"no audience", valid(func(c *mcpauthtest.Claims) { c.Audience = nil }), 401, "invalid_token", "audience"},
		{"expired", valid(func(c *mcpauthtest.Claims) { c.Expiry = now.Add(-time.Hour) }), 401, "invalid_token", "expired"},
		{"no exp", valid(func(c *mcpauthtest.Claims) { c.Expiry = time.Time{} }), 401, "invalid_token", "exp"},
		{"not yet valid", valid(func(c *mcpauthtest.Claims) { c.NotBefore = now.Add(time.Hour) }), 401, "invalid_token", "nbf"},
		{"issued in the future", valid(func(c *mcpauthtest.Claims) { c.IssuedAt = now.Add(time.Hour) }), 401, "invalid_token", "iat"},
		{"missing scope", valid(func(c *mcpauthtest.Claims) { c.Scope = "openid mailroom:project:acme" }), 403, "insufficient_scope", "mailroom:mcp"},
		{"two projects", valid(func(c *mcpauthtest.Claims) { c.Scope = "mailroom:mcp mailroom:project:a mailroom:project:b" }), 401, "invalid_token", "two projects"},
		{"bad project name", valid(func(c *mcpauthtest.Claims) { c.Scope = "mailroom:mcp mailroom:project:A/B" }), 401, "invalid_token", "mailroom:project:A/B"},
		{"untrusted issuer", other.Issue(mcpauthtest.Valid("alice", r.resource, "mailroom:mcp")), 401, "invalid_token", "not a trusted"},
		{"forged issuer claim", valid(func(c *mcpauthtest.Claims) { c.Issuer = other.Issuer() }), 401, "invalid_token", "not a trusted"},
		{"HS256", hs256(), 401, "invalid_token", "accepted algorithm"},
		{"garbage", "a.b.c", 401, "invalid_token", ""},
		{"opaque without introspection", "opaque-token", 401, "invalid_token", "introspection"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := r.call(t, tc.token)
			if got.status != tc.status {
				t.Fatalf("status %d (%s), want %d", got.status, got.body, tc.status)
			}
			p := challengeParams(t, got.challenge)
			if p["resource_metadata"] != r.auth.MetadataURL() || p["scope"] != "mailroom:mcp" {
				t.Errorf("challenge %q lacks resource_metadata %s or scope", got.challenge, r.auth.MetadataURL())
			}
			if p["error"] != tc.code {
				t.Errorf("error = %q, want %q (%s)", p["error"], tc.code, got.challenge)
			}
			if !strings.Contains(p["error_description"], tc.desc) {
				t.Errorf("error_description = %q, want it to mention %q", p["error_description"], tc.desc)
			}
		})
	}
	// A signature by a key that is not the issuer's: the other server's
	// token, with mailroom's issuer and a known key id.
	forged := other.Issue(mcpauthtest.Claims{Issuer: as.Issuer(), Subject: "mallory", Audience: []string{r.resource}, Scope: "mailroom:mcp", Expiry: now.Add(time.Hour), KeyID: "key-1"})
	if got := r.call(t, forged); got.status != 401 || !strings.Contains(got.challenge, "signature") {
		t.Errorf("forged signature: %d %s", got.status, got.challenge)
	}
}

// TestUnknownKeyRefetchesJWKS: after the issuer rotates its key, a token
// signed with the new key makes mailroom fetch the JWKS again, once; made
// up key ids do not make it fetch again within the minimum interval.
func TestUnknownKeyRefetchesJWKS(t *testing.T) {
	as := mcpauthtest.New(t, clients())
	r := newRS(t, as, mcpauth.Options{JWKSURL: as.URL + "/jwks", JWKSMinRefresh: 10 * time.Second}, nil)
	if got := r.call(t, as.Issue(mcpauthtest.Valid("alice", r.resource, "mailroom:mcp"))); got.status != 200 {
		t.Fatalf("first token: %d %s", got.status, got.body)
	}
	if n := as.JWKSFetches(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	r.clock.advance(11 * time.Second)
	as.Rotate()
	if got := r.call(t, as.Issue(mcpauthtest.Valid("alice", r.resource, "mailroom:mcp"))); got.status != 200 {
		t.Fatalf("token of the rotated key: %d %s", got.status, got.body)
	}
	if n := as.JWKSFetches(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (one refetch for the new key id)", n)
	}
	// Made-up key ids: one refetch at most per interval.
	bogus := func() string {
		c := mcpauthtest.Valid("alice", r.resource, "mailroom:mcp")
		c.KeyID = "made-up"
		return as.Issue(c)
	}
	for range 3 {
		if got := r.call(t, bogus()); got.status != 401 || !strings.Contains(got.challenge, "made-up") {
			t.Fatalf("made-up kid: %d %s", got.status, got.challenge)
		}
	}
	if n := as.JWKSFetches(); n != 2 {
		t.Errorf("fetches = %d after made-up key ids within the interval, want still 2", n)
	}
	r.clock.advance(11 * time.Second)
	r.call(t, bogus())
	if n := as.JWKSFetches(); n != 3 {
		t.Errorf("fetches = %d, want 3: a new interval allows one more", n)
	}
}

// TestIntrospection: opaque tokens are checked with the introspection
// endpoint, with mailroom's client credentials.
func TestIntrospection(t *testing.T) {
	as := mcpauthtest.New(t, clients())
	r := newRS(t, as, mcpauth.Options{IntrospectionURL: as.URL + "/introspect", ClientID: "agent-a", ClientSecret: "secret-a"}, nil)
	cc := clientcredentials.Config{ClientID: "opaque", ClientSecret: "secret-o", TokenURL: as.URL + "/token",
		Scopes: []string{"mailroom:mcp", "mailroom:project:beta"}, EndpointParams: map[string][]string{"resource": {r.resource}}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "opaque-") {
		t.Fatalf("token %q is not opaque", tok.AccessToken)
	}
	got := r.call(t, tok.AccessToken)
	if got.status != 200 || got.principal.Project != "beta" || got.principal.TokenID != "oauth:"+as.Issuer()+"#olga" {
		t.Fatalf("got %d %+v %s", got.status, got.principal, got.body)
	}
	if got := r.call(t, "opaque-unknown"); got.status != 401 || !strings.Contains(got.challenge, "not active") {
		t.Errorf("unknown opaque token: %d %s", got.status, got.challenge)
	}
	// For another resource.
	cc.EndpointParams = map[string][]string{"resource": {"https://elsewhere.example.com/mcp"}}
	tok, err = cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := r.call(t, tok.AccessToken); got.status != 401 || !strings.Contains(got.challenge, "audience") {
		t.Errorf("opaque token for another resource: %d %s", got.status, got.challenge)
	}
	// Wrong client credentials for introspection: the token cannot be
	// checked, which is not the client's fault.
	bad := newRS(t, as, mcpauth.Options{IntrospectionURL: as.URL + "/introspect", ClientID: "agent-a", ClientSecret: "wrong"}, nil)
	if got := bad.call(t, "opaque-x"); got.status != http.StatusServiceUnavailable {
		t.Errorf("introspection refused: %d %s, want 503", got.status, got.body)
	}
}

// TestStaticTokensAlongside: static tokens keep working next to OAuth and
// carry their own principal; an unknown token is refused.
func TestStaticTokensAlongside(t *testing.T) {
	as := mcpauthtest.New(t, clients())
	api := access.Principal{TokenID: "api", Name: "api", Role: access.RoleAdmin}
	cli := access.Principal{TokenID: "laptop", Name: "laptop", Role: access.RoleMCP}
	r := newRS(t, as, mcpauth.Options{}, map[string]access.Principal{"static-api-token-0001": api, "static-mcp-token-0002": cli})
	for tok, want := range map[string]access.Principal{"static-api-token-0001": api, "static-mcp-token-0002": cli} {
		if got := r.call(t, tok); got.status != 200 || got.principal != want || got.owner != want.TokenID {
			t.Errorf("%s: %d %+v owner %q", tok, got.status, got.principal, got.owner)
		}
	}
	if got := r.call(t, as.Issue(mcpauthtest.Valid("alice", r.resource, "mailroom:mcp"))); got.status != 200 {
		t.Errorf("OAuth next to static: %d %s", got.status, got.body)
	}
	// Static only: a plain Bearer challenge, no metadata.
	s := newRS(t, nil, mcpauth.Options{}, map[string]access.Principal{"static-api-token-0001": api})
	got := s.call(t, "nope")
	if p := challengeParams(t, got.challenge); got.status != 401 || p["resource_metadata"] != "" || p["realm"] != "mailroom" {
		t.Errorf("static only, unknown token: %d %q", got.status, got.challenge)
	}
}

// TestProtectedResourceMetadata: the metadata is served at both
// well-known paths and read back by the go-sdk's client code, which
// checks the resource against the MCP URL.
func TestProtectedResourceMetadata(t *testing.T) {
	as := mcpauthtest.New(t, clients())
	r := newRS(t, as, mcpauth.Options{}, nil)
	if want := r.srv.URL + "/.well-known/oauth-protected-resource/mcp"; r.auth.MetadataURL() != want {
		t.Fatalf("MetadataURL = %s, want %s", r.auth.MetadataURL(), want)
	}
	for _, u := range []string{r.auth.MetadataURL(), r.srv.URL + "/.well-known/oauth-protected-resource"} {
		prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), u, r.resource, http.DefaultClient)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if fmt.Sprint(prm.AuthorizationServers) != fmt.Sprint([]string{as.Issuer()}) || fmt.Sprint(prm.ScopesSupported) != "[mailroom:mcp]" || fmt.Sprint(prm.BearerMethodsSupported) != "[header]" {
			t.Errorf("%s: %+v", u, prm)
		}
	}
	// The authorization server it names is discoverable by the go-sdk.
	asm, err := auth.GetAuthServerMetadata(context.Background(), as.Issuer(), http.DefaultClient)
	if err != nil || asm == nil || asm.JWKSURI != as.URL+"/jwks" {
		t.Fatalf("authorization server metadata: %+v %v", asm, err)
	}
}

// TestOptionsChecked: New refuses what cannot work.
func TestOptionsChecked(t *testing.T) {
	ok := mcpauth.Options{Resource: "https://mailroom.example.com/mcp", AuthorizationServers: []string{"https://auth.example.com"}}
	if _, err := mcpauth.New(ok); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mod  func(*mcpauth.Options)
		want string
	}{
		{func(o *mcpauth.Options) { o.Resource = "" }, "resource"},
		{func(o *mcpauth.Options) { o.Resource = "http://mailroom.example.com/mcp" }, "https"},
		{func(o *mcpauth.Options) { o.Resource = "https://mailroom.example.com/mcp#x" }, "fragment"},
		{func(o *mcpauth.Options) { o.AuthorizationServers = nil }, "authorization_servers"},
		{func(o *mcpauth.Options) { o.AuthorizationServers = []string{"ftp://x"} }, "authorization_servers[0]"},
		{func(o *mcpauth.Options) {
			o.AuthorizationServers = append(o.AuthorizationServers, "https://b.example.com")
			o.JWKSURL = "https://a/jwks"
		}, "exactly one"},
		{func(o *mcpauth.Options) { o.IntrospectionURL = "https://auth.example.com/introspect" }, "client_id"},
		{func(o *mcpauth.Options) { o.Algorithms = []string{"HS256"} }, "HS256"},
		{func(o *mcpauth.Options) { o.Algorithms = []string{"none"} }, "none"},
	} {
		o := ok
		o.AuthorizationServers = append([]string(nil), ok.AuthorizationServers...)
		tc.mod(&o)
		if _, err := mcpauth.New(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want it to mention %q", o, err, tc.want)
		}
	}
}

// TestSeveralAuthorizationServers: with two trusted issuers, each one's
// keys are discovered from its own metadata, both are listed in the
// metadata, and the same subject at each is a different principal.
func TestSeveralAuthorizationServers(t *testing.T) {
	as1, as2 := mcpauthtest.New(t, nil), mcpauthtest.New(t, nil)
	r := newRS(t, as1, mcpauth.Options{AuthorizationServers: []string{as1.Issuer(), as2.Issuer()}}, nil)
	got1 := r.call(t, as1.Issue(mcpauthtest.Valid("alice", r.resource, "mailroom:mcp")))
	got2 := r.call(t, as2.Issue(mcpauthtest.Valid("alice", r.resource, "mailroom:mcp")))
	if got1.status != 200 || got2.status != 200 {
		t.Fatalf("statuses %d %d: %s %s", got1.status, got2.status, got1.body, got2.body)
	}
	if got1.principal.TokenID == got2.principal.TokenID || got1.owner == got2.owner {
		t.Errorf("alice of two issuers is one principal: %+v", got1.principal)
	}
	if as1.JWKSFetches() != 1 || as2.JWKSFetches() != 1 {
		t.Errorf("JWKS fetches %d and %d, want 1 each", as1.JWKSFetches(), as2.JWKSFetches())
	}
	prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), r.auth.MetadataURL(), r.resource, http.DefaultClient)
	if err != nil || len(prm.AuthorizationServers) != 2 {
		t.Errorf("metadata: %+v %v", prm, err)
	}
}

// TestJWKSUnavailable: while the keys cannot be fetched, requests get
// 503 (not a 401 that would send the client to log in again), and the
// authorization server is asked at most once per minimum interval; once
// it answers again, tokens are accepted. A token that expired less than
// the leeway ago is still accepted.
func TestJWKSUnavailable(t *testing.T) {
	as := mcpauthtest.New(t, nil)
	var mu sync.Mutex
	down, tries := true, 0
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tries++
		d := down
		mu.Unlock()
		if d {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		resp, err := http.Get(as.URL + "/jwks")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(jwks.Close)
	r := newRS(t, as, mcpauth.Options{JWKSURL: jwks.URL, JWKSMinRefresh: 10 * time.Second}, nil)
	tok := as.Issue(mcpauthtest.Valid("alice", r.resource, "mailroom:mcp"))
	for range 3 {
		if got := r.call(t, tok); got.status != http.StatusServiceUnavailable {
			t.Fatalf("keys unavailable: %d %s, want 503", got.status, got.body)
		}
	}
	mu.Lock()
	if tries != 1 {
		t.Errorf("JWKS asked %d times within the interval, want 1", tries)
	}
	down = false
	mu.Unlock()
	r.clock.advance(11 * time.Second)
	if got := r.call(t, tok); got.status != http.StatusOK {
		t.Fatalf("keys back: %d %s", got.status, got.body)
	}
	c := mcpauthtest.Valid("alice", r.resource, "mailroom:mcp")
	c.Expiry = time.Now().Add(-10 * time.Second)
	if got := r.call(t, as.Issue(c)); got.status != http.StatusOK {
		t.Errorf("expired 10s ago, leeway 30s: %d %s", got.status, got.body)
	}
}

// TestStreamEndsWhenTheTokenExpires: a request authenticated by an OAuth
// access token (a session's GET stream above all) ends when the token
// expires, exp plus the leeway, not only when it is checked at the start.
// The token here expired 28 s ago, inside the 30 s leeway: it is accepted,
// and its stream must end about 2 s later.
func TestStreamEndsWhenTheTokenExpires(t *testing.T) {
	as := mcpauthtest.New(t, clients())
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a, err := mcpauth.New(mcpauth.Options{Resource: srv.URL + "/mcp", AuthorizationServers: []string{as.Issuer()}})
	if err != nil {
		t.Fatal(err)
	}
	a.Register(mux)
	g := mcpauth.NewGuard(mcpauth.GuardOptions{OAuth: a})
	mux.Handle("/mcp", g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // a stream: runs until the request ends
	})))
	stream := func(token string) (ended chan error) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream answered %d", resp.StatusCode)
		}
		ended = make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ended <- err
		}()
		return ended
	}
	c := mcpauthtest.Valid("alice", srv.URL+"/mcp", "mailroom:mcp")
	c.Expiry = time.Now().Add(-28 * time.Second)
	expiring := stream(as.Issue(c))
	lasting := stream(as.Issue(mcpauthtest.Valid("bob", srv.URL+"/mcp", "mailroom:mcp")))
	select {
	case err := <-expiring:
		if err != nil {
			t.Fatalf("the expiring token's stream ended with %v, want a clean end", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream of a token past its exp and leeway is still open")
	}
	select {
	case <-lasting:
		t.Fatal("the stream of a token valid for an hour ended too")
	default:
	}
}
