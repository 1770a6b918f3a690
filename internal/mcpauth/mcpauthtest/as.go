// Package mcpauthtest runs a small OAuth 2.1 authorization server on
// loopback for tests of mailroom's MCP authorization: RFC 8414 metadata,
// a JWKS of real ECDSA keys (go-jose), the authorization code grant with
// PKCE (S256, checked with golang.org/x/oauth2's implementation), the
// client credentials grant, RFC 8707 resource indicators as the audience
// of RFC 9068 JWT access tokens, opaque tokens, and RFC 7662
// introspection. It approves every authorization request at once, as the
// user it is told to be.
package mcpauthtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// Client is a registered OAuth client.
type Client struct {
	// Secret authenticates the client (client_secret_basic or _post).
	Secret string
	// Subject is the sub of the tokens it gets with client credentials,
	// and the user it acts for in the authorization code grant. Empty
	// means the client id.
	Subject string
	// Opaque makes its tokens opaque strings, valid only through
	// introspection, instead of JWTs.
	Opaque bool
}

// Claims describe a token minted with [Server.Issue].
type Claims struct {
	Subject  string
	ClientID string
	// Audience; nil means none.
	Audience []string
	// Scope is space-separated.
	Scope string
	// Expiry; zero means no exp claim.
	Expiry    time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	// Issuer; empty means the server's.
	Issuer string
	// KeyID overrides the kid header (the key still signs).
	KeyID string
}

// Server is the authorization server. Its methods are safe for concurrent
// use.
type Server struct {
	*httptest.Server
	// Lifetime of issued tokens; 1 hour unless changed before use.
	Lifetime time.Duration

	mu          sync.Mutex
	keys        []*ecdsa.PrivateKey
	kids        []string
	clients     map[string]Client
	codes       map[string]codeGrant
	opaque      map[string]Claims
	jwksFetches int
}

type codeGrant struct {
	client, redirect, challenge, scope, resource string
}

// New starts a server on loopback with one signing key and clients; it
// is closed when the test ends.
func New(t testing.TB, clients map[string]Client) *Server {
	t.Helper()
	s := &Server{Lifetime: time.Hour, clients: clients, codes: map[string]codeGrant{}, opaque: map[string]Claims{}}
	s.Rotate()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	mux.HandleFunc("GET /jwks", s.jwks)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /introspect", s.introspect)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// Issuer is the server's issuer identifier (its URL).
func (s *Server) Issuer() string { return s.URL }

// Rotate adds a new signing key with a new key id; tokens are signed with
// it from now on. The JWKS lists every key.
func (s *Server) Rotate() {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	s.kids = append(s.kids, fmt.Sprintf("key-%d", len(s.kids)+1))
}

// JWKSFetches is how many times the JWKS was fetched.
func (s *Server) JWKSFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwksFetches
}

// Issue mints a signed JWT access token with c, bypassing the grants.
func (s *Server) Issue(c Claims) string {
	s.mu.Lock()
	key, kid := s.keys[len(s.keys)-1], s.kids[len(s.kids)-1]
	s.mu.Unlock()
	if c.KeyID != "" {
		kid = c.KeyID
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		panic(err)
	}
	std := jwt.Claims{Issuer: cmpOr(c.Issuer, s.URL), Subject: c.Subject, Audience: jwt.Audience(c.Audience), ID: rand.Text()}
	if !c.Expiry.IsZero() {
		std.Expiry = jwt.NewNumericDate(c.Expiry)
	}
	if !c.NotBefore.IsZero() {
		std.NotBefore = jwt.NewNumericDate(c.NotBefore)
	}
	if !c.IssuedAt.IsZero() {
		std.IssuedAt = jwt.NewNumericDate(c.IssuedAt)
	}
	extra := map[string]any{}
	if c.Scope != "" {
		extra["scope"] = c.Scope
	}
	if c.ClientID != "" {
		extra["client_id"] = c.ClientID
	}
	tok, err := jwt.Signed(sig).Claims(std).Claims(extra).Serialize()
	if err != nil {
		panic(err)
	}
	return tok
}

// Valid returns claims for a token valid for an hour, for resource, with
// scope.
func Valid(sub, resource, scope string) Claims {
	now := time.Now()
	return Claims{Subject: sub, ClientID: sub, Audience: []string{resource}, Scope: scope, Expiry: now.Add(time.Hour), IssuedAt: now, NotBefore: now}
}

func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.URL,
		"authorization_endpoint":                s.URL + "/authorize",
		"token_endpoint":                        s.URL + "/token",
		"jwks_uri":                              s.URL + "/jwks",
		"introspection_endpoint":                s.URL + "/introspect",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "client_credentials"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.jwksFetches++
	set := jose.JSONWebKeySet{}
	for i, k := range s.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: s.kids[i], Algorithm: string(jose.ES256), Use: "sig"})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// authorize approves at once: it redirects to redirect_uri with a code
// bound to the client, the PKCE challenge, the scope and the resource.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	_, known := s.clients[q.Get("client_id")]
	s.mu.Unlock()
	switch {
	case !known:
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "response_type=code with an S256 code_challenge is required", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	s.mu.Lock()
	s.codes[code] = codeGrant{client: q.Get("client_id"), redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), scope: q.Get("scope"), resource: q.Get("resource")}
	s.mu.Unlock()
	v := redirect.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	redirect.RawQuery = v.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// token serves the authorization_code and client_credentials grants.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	id, c, ok := s.authenticate(r)
	if !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "bad client credentials")
		return
	}
	var scope, resource string
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		scope, resource = r.PostForm.Get("scope"), r.PostForm.Get("resource")
	case "authorization_code":
		s.mu.Lock()
		g, found := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code"))
		s.mu.Unlock()
		switch {
		case !found || g.client != id || g.redirect != r.PostForm.Get("redirect_uri"):
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown code")
			return
		case oauth2.S256ChallengeFromVerifier(r.PostForm.Get("code_verifier")) != g.challenge:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		case r.PostForm.Get("resource") != "" && r.PostForm.Get("resource") != g.resource:
			oauthError(w, http.StatusBadRequest, "invalid_target", "resource differs from the authorization request's")
			return
		}
		scope, resource = g.scope, g.resource
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", r.PostForm.Get("grant_type"))
		return
	}
	claims := Valid(cmpOr(c.Subject, id), resource, scope)
	claims.ClientID = id
	claims.Expiry = time.Now().Add(s.Lifetime)
	if resource == "" {
		claims.Audience = nil
	}
	var tok string
	if c.Opaque {
		tok = "opaque-" + rand.Text()
		s.mu.Lock()
		s.opaque[tok] = claims
		s.mu.Unlock()
	} else {
		tok = s.Issue(claims)
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(s.Lifetime.Seconds()), "scope": scope})
}

// introspect answers RFC 7662 for opaque tokens and this server's JWTs.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.authenticate(r); !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "bad client credentials")
		return
	}
	s.mu.Lock()
	c, ok := s.opaque[r.PostFormValue("token")]
	s.mu.Unlock()
	if !ok || time.Now().After(c.Expiry) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "iss": s.URL, "sub": c.Subject, "client_id": c.ClientID,
		"aud": c.Audience, "scope": c.Scope, "exp": c.Expiry.Unix(), "iat": c.IssuedAt.Unix(), "token_type": "Bearer"})
}

// authenticate reads client_secret_basic or client_secret_post.
func (s *Server) authenticate(r *http.Request) (string, Client, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	return id, c, ok && c.Secret == secret
}

// DiscardRedirect is an http.Client that does not follow redirects, to
// read the code from /authorize's Location.
var DiscardRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Authorize visits an authorization URL as the browser would and returns
// the code and state from the redirect.
func Authorize(authURL string) (code, state string, err error) {
	resp, err := DiscardRedirect.Get(authURL)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", "", fmt.Errorf("authorize: status %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", "", err
	}
	return loc.Query().Get("code"), loc.Query().Get("state"), nil
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
