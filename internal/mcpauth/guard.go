package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mailroomhq/mailroom/internal/access"
	mrauth "github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/httpguard"
)

// MetadataPath is the well-known path of protected resource metadata
// (RFC 9728 §3); the metadata of a resource with a path is at this path
// followed by the resource's path.
const MetadataPath = "/.well-known/oauth-protected-resource"

// Metadata returns the protected resource metadata (RFC 9728) of /mcp:
// the resource, its authorization servers and the scopes it uses.
func (a *Authenticator) Metadata() *oauthex.ProtectedResourceMetadata {
	return &oauthex.ProtectedResourceMetadata{
		Resource:               a.opts.Resource,
		AuthorizationServers:   a.opts.AuthorizationServers,
		ScopesSupported:        a.opts.Scopes,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "mailroom",
	}
}

// MetadataURL is the public URL of the protected resource metadata: the
// resource's origin, [MetadataPath], then the resource's path
// (https://mailroom.example.com/.well-known/oauth-protected-resource/mcp).
func (a *Authenticator) MetadataURL() string {
	u, _ := url.Parse(a.opts.Resource) // checked by New
	m := url.URL{Scheme: u.Scheme, Host: u.Host, Path: MetadataPath + strings.TrimSuffix(u.Path, "/")}
	return m.String()
}

// MetadataPaths are the paths the metadata is served at on mailroom's
// listener: the path-suffixed form of [MetadataURL], and the bare
// well-known path for clients that look at the root.
func (a *Authenticator) MetadataPaths() []string {
	u, _ := url.Parse(a.MetadataURL())
	if u.Path == MetadataPath {
		return []string{MetadataPath}
	}
	return []string{u.Path, MetadataPath}
}

// Register serves the metadata at [Authenticator.MetadataPaths] on mux,
// with CORS open to any origin (the go-sdk's handler): it is public.
func (a *Authenticator) Register(mux *http.ServeMux) {
	h := auth.ProtectedResourceMetadataHandler(a.Metadata())
	for _, p := range a.MetadataPaths() {
		mux.Handle(p, h)
	}
}

// GuardOptions configure a [Guard].
type GuardOptions struct {
	// Static maps static bearer tokens (api.token, mcp.tokens) to the
	// principal each stands for.
	Static map[string]access.Principal
	// OAuth, if set, validates the other tokens as OAuth access tokens.
	OAuth *Authenticator
	// Tokens, if set, authenticates tokens created through the admin API
	// (mr_…): one whose role may use /mcp (admin, mcp) gets in as its
	// principal; another role is refused with 403.
	Tokens *mrauth.Authenticator
	// Logger logs refused tokens at debug level. Nil discards.
	Logger *slog.Logger
}

// Guard authenticates requests to /mcp: a static token, or else an OAuth
// access token. It puts the principal in the request's context
// ([access.With]) and the go-sdk's TokenInfo (whose UserID is
// [Owner] of the principal) where the SDK reads it. Refused requests get
// 401 or 403 with a Bearer challenge that points OAuth clients at the
// protected resource metadata.
type Guard struct {
	static     *httpguard.Tokens
	principals []access.Principal // by the index the static tokens map to
	oauth      *Authenticator
	tokens     *mrauth.Authenticator
	log        *slog.Logger
}

// NewGuard returns a guard for opts.
func NewGuard(opts GuardOptions) *Guard {
	g := &Guard{oauth: opts.OAuth, tokens: opts.Tokens, log: opts.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	named := map[string]string{}
	for tok, p := range opts.Static {
		named[tok] = strconv.Itoa(len(g.principals))
		g.principals = append(g.principals, p)
	}
	g.static = httpguard.NewTokens(named)
	return g
}

// Empty reports whether g accepts no token at all, which means /mcp is
// not authenticated (loopback listeners only). A guard with only stored
// tokens is not empty: it lets requests through unauthenticated only
// while no stored token is active (open mode, see internal/auth).
func (g *Guard) Empty() bool { return g.static.Empty() && g.oauth == nil && g.tokens == nil }

type tokenInfoKey struct{}

// Wrap returns next behind the guard.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	// The go-sdk keeps the TokenInfo under a key of its own, set only by
	// its middleware: it is handed the TokenInfo the guard made.
	sdk := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		if ti, ok := ctx.Value(tokenInfoKey{}).(*auth.TokenInfo); ok {
			return ti, nil
		}
		return nil, auth.ErrInvalidToken
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.static.Empty() && g.oauth == nil && g.tokens != nil {
			open, err := g.tokens.Open(r.Context())
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the tokens could not be checked; try again")
				return
			}
			if open { // no token exists yet: as unauthenticated as before
				// until the first token ends open mode, and its streams
				ctx, stop := g.tokens.Hold(r.Context(), access.Anonymous)
				defer stop()
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
		}
		token, ok := httpguard.BearerToken(r)
		if !ok {
			g.challenge(w, http.StatusUnauthorized, "", "a bearer token is required")
			return
		}
		p, ti, err := g.verify(r.Context(), token)
		if err != nil {
			var e *Error
			switch {
			case errors.As(err, &e) && e.Code == codeInsufficientScope:
				g.challenge(w, http.StatusForbidden, e.Code, e.Description)
			case errors.As(err, &e):
				g.log.Debug("mcp: token refused", "reason", e.Description)
				g.challenge(w, http.StatusUnauthorized, e.Code, e.Description)
			default:
				writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the access token could not be checked with the authorization server; try again")
			}
			return
		}
		ctx := access.With(r.Context(), p)
		if _, static := g.static.Match(token); !static && g.tokens != nil && strings.HasPrefix(token, mrauth.TokenPrefix) {
			// A stored token's session stream ends when it is revoked
			// or expires ([mrauth.Authenticator.Hold]).
			var stop context.CancelFunc
			ctx, stop = g.tokens.Hold(ctx, p)
			defer stop()
		}
		if until, ok := ValidUntil(ti); ok {
			// An OAuth access token's request, a session's GET stream
			// above all, ends when the token expires: checking it only
			// when the stream opened would let it run on for good.
			var stop context.CancelFunc
			ctx, stop = context.WithDeadline(ctx, until)
			defer stop()
		}
		ctx = context.WithValue(ctx, tokenInfoKey{}, ti)
		sdk.ServeHTTP(w, r.WithContext(ctx))
	})
}

// verify checks token: the static tokens first, then stored tokens
// (mr_…), then OAuth.
func (g *Guard) verify(ctx context.Context, token string) (access.Principal, *auth.TokenInfo, error) {
	if idx, ok := g.static.Match(token); ok {
		i, _ := strconv.Atoi(idx)
		p := g.principals[i]
		return p, &auth.TokenInfo{UserID: Owner(p), Extra: map[string]any{principalKey: p}}, nil
	}
	if g.tokens != nil && strings.HasPrefix(token, mrauth.TokenPrefix) {
		p, err := g.tokens.Token(ctx, token)
		switch {
		case errors.Is(err, mrauth.ErrUnauthenticated):
			return access.Principal{}, nil, invalid("unknown, revoked or expired token")
		case err != nil:
			return access.Principal{}, nil, err
		}
		if err := p.Authorize("/mcp"); err != nil {
			return access.Principal{}, nil, &Error{Code: codeInsufficientScope, Description: err.Error()}
		}
		return p, &auth.TokenInfo{UserID: Owner(p), Extra: map[string]any{principalKey: p}}, nil
	}
	if g.oauth == nil {
		return access.Principal{}, nil, invalid("unknown token")
	}
	return g.oauth.Verify(ctx, token)
}

// challenge answers status with an RFC 6750 Bearer challenge: the error
// code (none when the request had no token, §3.1), the scope needed and,
// with OAuth, the resource_metadata URL (RFC 9728 §5.1).
func (g *Guard) challenge(w http.ResponseWriter, status int, code, desc string) {
	var params []string
	if g.oauth == nil {
		params = append(params, `realm="mailroom"`)
	}
	if code != "" {
		params = append(params, param("error", code), param("error_description", desc))
	}
	if g.oauth != nil {
		params = append(params, param("scope", strings.Join(g.oauth.opts.Scopes, " ")), param("resource_metadata", g.oauth.MetadataURL()))
	}
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	writeError(w, status, cmpOr(code, "invalid_request"), desc)
}

// param formats an auth-param as a quoted string, dropping the
// characters RFC 6750 does not allow in one (" and \ and controls).
func param(name, value string) string {
	clean := strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, value)
	return name + `="` + clean + `"`
}

// writeError writes an OAuth-style JSON error body.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
