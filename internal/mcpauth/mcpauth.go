// Package mcpauth makes /mcp an OAuth 2.1 resource server, as the MCP
// authorization specification asks: it validates access tokens issued by
// the configured authorization servers (JWTs against the issuer's JWKS,
// or opaque tokens through RFC 7662 introspection), binds them to this
// server's resource URL (RFC 8707 audience), maps their scopes to an
// [access.Principal], answers refused requests with the RFC 6750 and
// RFC 9728 challenges, and serves the protected resource metadata.
//
// Static bearer tokens (api.token, mcp.tokens) are checked by the same
// [Guard], before OAuth, so both kinds work side by side.
//
// Scopes: every token must carry the required scopes (default
// [ScopeMCP]). A token may name its project with one scope
// "mailroom:project:NAME"; without one it acts in the default project.
// Every OAuth principal has [access.RoleMCP].
package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/store"
)

// ScopeMCP is the scope a token needs to use /mcp, unless the config
// names others.
const ScopeMCP = "mailroom:mcp"

// ScopeProjectPrefix starts the scope that names a token's project:
// "mailroom:project:acme" acts in project acme.
const ScopeProjectPrefix = "mailroom:project:"

// DefaultLeeway is the clock skew allowed on exp, nbf and iat when the
// config sets none.
const DefaultLeeway = 30 * time.Second

// DefaultAlgorithms are the JWS algorithms accepted when the config names
// none: asymmetric ones only. A symmetric algorithm (HS256) would let
// anyone who can read the JWKS forge tokens, and "none" is never
// accepted.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Options configure an [Authenticator].
type Options struct {
	// Resource is this server's resource identifier: the public URL of
	// /mcp (https://mailroom.example.com/mcp). Tokens must name it in
	// their audience. Required.
	Resource string
	// AuthorizationServers are the issuer identifiers of the authorization
	// servers whose tokens are accepted; they are listed in the protected
	// resource metadata, and a JWT's iss must be one of them. Required.
	AuthorizationServers []string
	// JWKSURL is where the signing keys of the (single) authorization
	// server are. Empty means the jwks_uri of the issuer's metadata
	// (RFC 8414 or OpenID Connect discovery), fetched on first use.
	JWKSURL string
	// IntrospectionURL, if set, is the (single) authorization server's
	// RFC 7662 endpoint, used for tokens that are not JWTs.
	IntrospectionURL string
	// ClientID and ClientSecret authenticate mailroom to the
	// introspection endpoint (HTTP Basic).
	ClientID, ClientSecret string
	// Scopes are the scopes every token must carry. Empty means
	// [ScopeMCP].
	Scopes []string
	// Algorithms are the JWS algorithms accepted. Empty means
	// [DefaultAlgorithms].
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// [DefaultLeeway].
	Leeway time.Duration
	// JWKSMaxAge is how long fetched keys are used before they are fetched
	// again. Zero means 1 hour.
	JWKSMaxAge time.Duration
	// JWKSMinRefresh is the least time between two fetches of a JWKS
	// caused by an unknown key id, so that tokens with made-up key ids
	// cannot make mailroom hammer the authorization server. Zero means
	// 10 seconds.
	JWKSMinRefresh time.Duration
	// HTTPClient fetches metadata and keys and calls the introspection
	// endpoint. Nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Logger logs key fetches and refused tokens. Nil discards.
	Logger *slog.Logger
}

// Authenticator validates OAuth access tokens for /mcp. It is safe for
// concurrent use.
type Authenticator struct {
	opts    Options
	algs    []jose.SignatureAlgorithm
	issuers []*issuer
	log     *slog.Logger
}

// issuer is one trusted authorization server.
type issuer struct {
	id   string
	keys *keySet
}

// New returns an Authenticator for opts, or an error naming the option
// that is wrong.
func New(opts Options) (*Authenticator, error) {
	if err := CheckResource(opts.Resource); err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	if len(opts.AuthorizationServers) == 0 {
		return nil, errors.New("authorization_servers: at least one issuer is required")
	}
	for i, s := range opts.AuthorizationServers {
		if err := CheckURL(s); err != nil {
			return nil, fmt.Errorf("authorization_servers[%d]: %w", i, err)
		}
	}
	single := len(opts.AuthorizationServers) == 1
	if !single && (opts.JWKSURL != "" || opts.IntrospectionURL != "") {
		return nil, errors.New("authorization_servers: jwks_url and introspection_url need exactly one authorization server (with several, each one's keys are discovered from its metadata)")
	}
	for name, u := range map[string]string{"jwks_url": opts.JWKSURL, "introspection_url": opts.IntrospectionURL} {
		if u == "" {
			continue
		}
		if err := CheckURL(u); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if opts.IntrospectionURL != "" && opts.ClientID == "" {
		return nil, errors.New("client_id: the introspection endpoint needs mailroom's client credentials")
	}
	if len(opts.Scopes) == 0 {
		opts.Scopes = []string{ScopeMCP}
	}
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = DefaultAlgorithms
	}
	algs, err := parseAlgorithms(opts.Algorithms)
	if err != nil {
		return nil, fmt.Errorf("algorithms: %w", err)
	}
	if opts.Leeway < 0 {
		return nil, errors.New("leeway: must not be negative")
	}
	if opts.Leeway == 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.JWKSMaxAge <= 0 {
		opts.JWKSMaxAge = time.Hour
	}
	if opts.JWKSMinRefresh <= 0 {
		opts.JWKSMinRefresh = 10 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{opts: opts, algs: algs, log: opts.Logger}
	for _, id := range opts.AuthorizationServers {
		a.issuers = append(a.issuers, &issuer{id: id, keys: &keySet{
			issuer: id, url: opts.JWKSURL, client: opts.HTTPClient, now: opts.Now,
			maxAge: opts.JWKSMaxAge, minRefresh: opts.JWKSMinRefresh, log: opts.Logger,
		}})
	}
	return a, nil
}

// parseAlgorithms returns the JWS algorithms names, refusing symmetric
// ones and "none".
func parseAlgorithms(names []string) ([]jose.SignatureAlgorithm, error) {
	var out []jose.SignatureAlgorithm
	for _, n := range names {
		if !slices.Contains(DefaultAlgorithms, n) {
			return nil, fmt.Errorf("%q is not accepted (want some of %s; symmetric algorithms and none are refused)", n, strings.Join(DefaultAlgorithms, ", "))
		}
		out = append(out, jose.SignatureAlgorithm(n))
	}
	return out, nil
}

// CheckResource reports whether s can be the resource identifier of
// /mcp: an absolute https URL (http only on loopback), without a
// fragment (RFC 8707 §2).
func CheckResource(s string) error {
	if err := CheckURL(s); err != nil {
		return err
	}
	if u, _ := url.Parse(s); u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("%q must not have a fragment", s)
	}
	return nil
}

// CheckURL reports whether s is an absolute https URL, or an http URL of
// a loopback host (for local development and tests).
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http is accepted only on loopback)", s)
	}
	return fmt.Errorf("%q must be an https URL", s)
}

// Resource returns the resource identifier.
func (a *Authenticator) Resource() string { return a.opts.Resource }

// Scopes returns the scopes every token must carry.
func (a *Authenticator) Scopes() []string { return a.opts.Scopes }

// Error is why a token was refused, as an RFC 6750 error code: 401
// invalid_token or 403 insufficient_scope.
type Error struct {
	// Code is "invalid_token" or "insufficient_scope".
	Code string
	// Description says why, for the client (no secrets).
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Unwrap makes an invalid_token error match auth.ErrInvalidToken.
func (e *Error) Unwrap() error {
	if e.Code == codeInvalidToken {
		return auth.ErrInvalidToken
	}
	return nil
}

// The RFC 6750 error codes.
const (
	codeInvalidToken      = "invalid_token"
	codeInsufficientScope = "insufficient_scope"
)

func invalid(format string, args ...any) *Error {
	return &Error{Code: codeInvalidToken, Description: fmt.Sprintf(format, args...)}
}

// Claims are what mailroom reads of a validated access token, whether
// from a JWT or an introspection answer.
type Claims struct {
	Issuer   string
	Subject  string
	ClientID string
	// Username is a display name: username, preferred_username or
	// client_id, whichever comes first.
	Username  string
	Audience  []string
	Scopes    []string
	Expiry    time.Time
	NotBefore time.Time
	IssuedAt  time.Time
}

// Verify validates token and returns the principal it stands for and the
// go-sdk TokenInfo of the request. A refused token's error is an
// [*Error]: invalid_token for a token that is malformed, badly signed,
// expired, for another audience or of an unknown issuer;
// insufficient_scope for a valid token without the required scopes. Any
// other error means the token could not be checked (the authorization
// server cannot be reached); it is logged.
func (a *Authenticator) Verify(ctx context.Context, token string) (access.Principal, *auth.TokenInfo, error) {
	var c *Claims
	var err error
	switch {
	case strings.Count(token, ".") == 2:
		c, err = a.verifyJWT(ctx, token)
	case a.opts.IntrospectionURL != "":
		c, err = a.introspect(ctx, token)
	default:
		err = invalid("not a JWT, and no introspection endpoint is configured")
	}
	if err != nil {
		if e := (*Error)(nil); !errors.As(err, &e) {
			a.log.Warn("oauth: token not checked", "err", err)
		}
		return access.Principal{}, nil, err
	}
	return a.principal(c)
}

// checkTimes checks exp (required when requireExp), nbf and iat against
// now with the leeway.
func (a *Authenticator) checkTimes(c *Claims, requireExp bool) error {
	now, leeway := a.opts.Now(), a.opts.Leeway
	switch {
	case c.Expiry.IsZero() && requireExp:
		return invalid("the token has no expiry (exp)")
	case !c.Expiry.IsZero() && now.Add(-leeway).After(c.Expiry):
		return invalid("the token has expired")
	case !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore):
		return invalid("the token is not valid yet (nbf)")
	case !c.IssuedAt.IsZero() && now.Add(leeway).Before(c.IssuedAt):
		return invalid("the token was issued in the future (iat)")
	}
	return nil
}

// checkAudience checks the token is for this server (RFC 8707). A
// trailing slash is not significant (oauthex.MatchesResource).
func (a *Authenticator) checkAudience(c *Claims) error {
	if !matchesResource(c.Audience, a.opts.Resource) {
		return invalid("the token's audience is not %s", a.opts.Resource)
	}
	return nil
}

func matchesResource(aud []string, resource string) bool {
	want := strings.TrimSuffix(resource, "/")
	for _, v := range aud {
		if strings.TrimSuffix(v, "/") == want {
			return true
		}
	}
	return false
}

// principal maps validated claims to a principal: the required scopes
// (else insufficient_scope), at most one project scope, RoleMCP.
func (a *Authenticator) principal(c *Claims) (access.Principal, *auth.TokenInfo, error) {
	var missing []string
	for _, s := range a.opts.Scopes {
		if !slices.Contains(c.Scopes, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return access.Principal{}, nil, &Error{Code: codeInsufficientScope, Description: "the token lacks the scope " + strings.Join(missing, " ")}
	}
	project := ""
	for _, s := range c.Scopes {
		p, ok := strings.CutPrefix(s, ScopeProjectPrefix)
		if !ok {
			continue
		}
		if project != "" && p != project {
			return access.Principal{}, nil, invalid("the token names two projects (%s%s and %s%s); a token acts in one", ScopeProjectPrefix, project, ScopeProjectPrefix, p)
		}
		if err := store.CheckProject(p); err != nil {
			return access.Principal{}, nil, invalid("scope %s: %v", s, err)
		}
		project = p
	}
	if project == "" {
		project = access.DefaultProject
	}
	sub := c.Subject
	if sub == "" {
		sub = c.ClientID
	}
	if sub == "" {
		return access.Principal{}, nil, invalid("the token has neither a subject (sub) nor a client_id")
	}
	name := cmpOr(c.Username, c.ClientID, sub)
	p := access.Principal{TokenID: "oauth:" + c.Issuer + "#" + sub, Name: name, Role: access.RoleMCP, Project: project}
	// Expiration stays zero: the expiry rule (exp with the leeway) is
	// checkTimes's alone; the go-sdk middleware would apply its own,
	// without the leeway.
	ti := &auth.TokenInfo{Scopes: c.Scopes, UserID: Owner(p), Extra: map[string]any{principalKey: p}}
	if !c.Expiry.IsZero() {
		ti.Extra[validUntilKey] = c.Expiry.Add(a.opts.Leeway)
	}
	return p, ti, nil
}

func cmpOr(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Owner is the identity that owns what a principal creates through MCP
// (tasks, sessions): its TokenID, qualified by its project when it has
// one, so that tokens of one subject for two projects never share tasks.
// Static tokens (project "") keep their name, as before.
func Owner(p access.Principal) string {
	if p.Project == "" {
		return p.TokenID
	}
	return p.TokenID + "@" + p.Project
}

// principalKey is the key of the principal in a TokenInfo's Extra.
const principalKey = "mailroom.principal"

// validUntilKey is the key, in a TokenInfo's Extra, of the time after
// which the token is refused: its exp with the leeway.
const validUntilKey = "mailroom.valid_until"

// ValidUntil returns the time after which the access token ti stands for
// is refused (its exp with the leeway) and whether it has one. A request
// it authenticates, a stream above all, must not outlive it.
func ValidUntil(ti *auth.TokenInfo) (time.Time, bool) {
	if ti == nil {
		return time.Time{}, false
	}
	t, ok := ti.Extra[validUntilKey].(time.Time)
	return t, ok
}

// PrincipalOf returns the principal a request's go-sdk TokenInfo carries
// (MCP handlers see the TokenInfo in their request's Extra, not the HTTP
// request's context) and whether there is one.
func PrincipalOf(ti *auth.TokenInfo) (access.Principal, bool) {
	if ti == nil {
		return access.Principal{}, false
	}
	p, ok := ti.Extra[principalKey].(access.Principal)
	return p, ok
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
