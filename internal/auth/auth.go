// Package auth authenticates operator requests (admin API, dashboard,
// /metrics) and authorizes them against the permission table of
// internal/access, in one middleware ([Guard]) that also records every
// mutating request in the audit log.
//
// A request's credential is a bearer token. The static api.token is the
// bootstrap admin (token id "api"); every other token is created through
// the API or CLI ([Authenticator.Create]), shown once, and stored only as
// its SHA-256, which is what a presented token is looked up by. A stored
// token is "mr_" followed by 43 base64url characters (256 random bits), a
// prefix secret scanners can match.
//
// With no api.token and no active stored token, mailroom runs open, as it
// always has on a loopback listener: every request acts as
// [access.Anonymous], an admin. Creating the first token ends that: from
// then on every request must carry a token. So that the operator who
// creates it keeps a way in, the first token created in open mode must be
// an admin token, and the last active admin token cannot be revoked while
// no api.token is set. (An admin token that expires can still leave only
// weaker ones; setting api.token is the way back in.)
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/httpguard"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TokenPrefix starts every stored token.
const TokenPrefix = "mr_"

// StaticTokenID is the token id of the static api.token.
const StaticTokenID = "api"

// touchEvery is how often a token's last_used_at is written at most.
const touchEvery = time.Minute

// Errors of authentication and of token management.
var (
	// ErrUnauthenticated: no token, or one that is unknown, revoked or
	// expired.
	ErrUnauthenticated = errors.New("missing or invalid bearer token")
	// ErrLockout: the change would leave no admin credential.
	ErrLockout = errors.New("no admin credential would be left")
)

// Static is a token from the config file and whom it stands for.
type Static struct {
	Token     string
	Principal access.Principal
}

// Options configures an [Authenticator].
type Options struct {
	// Static are the config file's tokens (api.token as an admin with
	// token id "api"). Empty tokens are ignored.
	Static []Static
	// Store holds the stored tokens. Nil means static tokens only.
	Store store.Tokens
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Logger receives failed lookups. If nil, discarded.
	Logger *slog.Logger
	// RecheckEvery is how often a request held with [Authenticator.Hold]
	// (a stream) checks that its credential is still valid. If zero,
	// [DefaultRecheckEvery].
	RecheckEvery time.Duration
}

// DefaultRecheckEvery is how often a held request rechecks its credential
// by default: a token revoked on another instance, or one that expires,
// ends its streams within this time (one revoked on this instance ends
// them at once).
const DefaultRecheckEvery = 5 * time.Second

// Authenticator turns a token into the principal it stands for. It is
// safe for concurrent use.
type Authenticator struct {
	static     *httpguard.Tokens
	principals map[string]access.Principal // static: httpguard name → principal
	store      store.Tokens
	now        func() time.Time
	log        *slog.Logger

	recheck time.Duration

	mu      sync.Mutex
	touched map[string]time.Time // token id → last touch written
	held    map[string]map[*hold]struct{}
}

// New returns an Authenticator.
func New(opts *Options) *Authenticator {
	var o Options
	if opts != nil {
		o = *opts
	}
	a := &Authenticator{store: o.Store, now: o.Now, log: o.Logger, principals: map[string]access.Principal{}, touched: map[string]time.Time{},
		held: map[string]map[*hold]struct{}{}, recheck: o.RecheckEvery}
	if a.recheck <= 0 {
		a.recheck = DefaultRecheckEvery
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	named := map[string]string{}
	for i, s := range o.Static {
		if s.Token == "" {
			continue
		}
		key := fmt.Sprint(i)
		named[s.Token] = key
		a.principals[key] = s.Principal
	}
	a.static = httpguard.NewTokens(named)
	return a
}

// HasStatic reports whether a static token is configured.
func (a *Authenticator) HasStatic() bool { return !a.static.Empty() }

// Open reports whether requests need no token: no static token is
// configured and no stored token is active.
func (a *Authenticator) Open(ctx context.Context) (bool, error) {
	if !a.static.Empty() {
		return false, nil
	}
	if a.store == nil {
		return true, nil
	}
	c, err := a.store.TokenActive(ctx, a.now())
	if err != nil {
		return false, fmt.Errorf("check for tokens: %w", err)
	}
	return c.Active == 0, nil
}

// Hash returns the SHA-256 of a token, the only form a token is stored in.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Token returns the principal token stands for, or [ErrUnauthenticated].
// Static tokens are compared in constant time; a stored token is looked
// up by its SHA-256 (which says nothing of the token) and must be
// neither revoked nor expired.
func (a *Authenticator) Token(ctx context.Context, token string) (access.Principal, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return access.Principal{}, ErrUnauthenticated
	}
	if key, ok := a.static.Match(token); ok {
		return a.principals[key], nil
	}
	if a.store == nil || !strings.HasPrefix(token, TokenPrefix) {
		return access.Principal{}, ErrUnauthenticated
	}
	t, err := a.store.TokenByHash(ctx, Hash(token))
	if errors.Is(err, store.ErrNotFound) {
		return access.Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return access.Principal{}, fmt.Errorf("look up token: %w", err)
	}
	now := a.now()
	if !t.Active(now) {
		return access.Principal{}, ErrUnauthenticated
	}
	a.touch(ctx, t.ID, now)
	return principalOf(t), nil
}

// Request returns the principal of r's "Authorization: Bearer" token; a
// request without one is [access.Anonymous] in open mode and
// [ErrUnauthenticated] otherwise.
func (a *Authenticator) Request(r *http.Request) (access.Principal, error) {
	token, ok := httpguard.BearerToken(r)
	if !ok {
		open, err := a.Open(r.Context())
		if err != nil {
			return access.Principal{}, err
		}
		if open {
			return access.Anonymous, nil
		}
		return access.Principal{}, ErrUnauthenticated
	}
	return a.Token(r.Context(), token)
}

// touch records the token's use, at most once per [touchEvery]; a failure
// is logged, not returned: it must not refuse the request.
func (a *Authenticator) touch(ctx context.Context, id string, now time.Time) {
	a.mu.Lock()
	last, ok := a.touched[id]
	due := !ok || now.Sub(last) >= touchEvery
	if due {
		a.touched[id] = now
	}
	a.mu.Unlock()
	if !due {
		return
	}
	if err := a.store.TokenTouch(ctx, id, now); err != nil {
		a.log.Warn("auth: record token use", "token_id", id, "err", err)
	}
}

func principalOf(t *store.Token) access.Principal {
	return access.Principal{TokenID: t.ID, Name: t.Name, Role: access.Role(t.Role), Project: t.Project}
}

// CreateParams is what a new token is.
type CreateParams struct {
	Name    string
	Role    access.Role
	Project string
	// TTL is how long the token lasts; zero means until revoked.
	TTL time.Duration
}

// Check validates p: a known role, a name, and no project for an admin,
// who acts in every project. A non-admin without a project is given the
// default one.
func (p *CreateParams) Check() error {
	if !p.Role.Valid() {
		_, err := access.ParseRole(string(p.Role))
		return err
	}
	if strings.TrimSpace(p.Name) == "" {
		return errors.New("name: required (say whose or what the token is)")
	}
	if len(p.Name) > 200 {
		return errors.New("name: longer than 200 bytes")
	}
	if p.TTL < 0 {
		return errors.New("expires: must not be negative")
	}
	switch {
	case p.Role == access.RoleAdmin && p.Project != "":
		return errors.New("project: an admin token acts in every project; leave project empty")
	case p.Project == "" && p.Role != access.RoleAdmin:
		p.Project = access.DefaultProject
	}
	if p.Project != "" {
		if err := store.CheckName(p.Project); err != nil {
			return fmt.Errorf("project: %w", err)
		}
	}
	return nil
}

// Create mints a token for p on behalf of by, stores its hash, and
// returns it with the token itself, which is never shown again. In open
// mode the first token must be an admin token ([ErrLockout]).
func (a *Authenticator) Create(ctx context.Context, by access.Principal, p *CreateParams) (*store.Token, string, error) {
	if a.store == nil {
		return nil, "", errors.New("create token: no token store")
	}
	if err := p.Check(); err != nil {
		return nil, "", err
	}
	if p.Role != access.RoleAdmin && !a.HasStatic() {
		c, err := a.store.TokenActive(ctx, a.now())
		if err != nil {
			return nil, "", fmt.Errorf("create token: %w", err)
		}
		if c.Admins == 0 {
			return nil, "", fmt.Errorf("%w: no api.token is set and no admin token exists, so a token of role %s would be the only way in; create an admin token first (or set api.token)", ErrLockout, p.Role)
		}
	}
	b := make([]byte, 32)
	rand.Read(b) // never fails; see crypto/rand.Read
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	now := a.now()
	t := &store.Token{ID: newTokenID(), Name: strings.TrimSpace(p.Name), Role: string(p.Role), Project: p.Project,
		Hash: Hash(secret), CreatedBy: by.Name, CreatedAt: now}
	if p.TTL > 0 {
		t.ExpiresAt = now.Add(p.TTL)
	}
	if err := a.store.TokenCreate(ctx, t); err != nil {
		return nil, "", err
	}
	// Open mode ends with the first token: so do its anonymous streams.
	a.end(access.Anonymous.TokenID)
	return t, secret, nil
}

// Revoke revokes token id. Revoking the last active admin token while
// no api.token is set is [ErrLockout].
func (a *Authenticator) Revoke(ctx context.Context, id string) (*store.Token, error) {
	if a.store == nil {
		return nil, store.ErrNotFound
	}
	if !a.HasStatic() {
		ts, err := a.store.TokenList(ctx, &store.TokenListParams{Now: a.now()})
		if err != nil {
			return nil, fmt.Errorf("revoke token %s: %w", id, err)
		}
		admins, isAdmin := 0, false
		for _, t := range ts {
			if t.Role == string(access.RoleAdmin) {
				admins++
				isAdmin = isAdmin || t.ID == id
			}
		}
		if isAdmin && admins == 1 && len(ts) > 1 {
			return nil, fmt.Errorf("%w: %s is the last admin token and no api.token is set; create another admin token first (or revoke every other token, which opens mailroom again on loopback)", ErrLockout, id)
		}
	}
	t, err := a.store.TokenRevoke(ctx, id, a.now())
	if err == nil {
		a.end(id)
	}
	return t, err
}

// newTokenID returns a random public token id ("tok_" and 16 base32
// characters): ids are listed, logged and audited, so they carry nothing
// of the token.
func newTokenID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "tok_" + strings.ToLower(strings.TrimRight(base32Encoding.EncodeToString(b), "="))
}

var base32Encoding = base32.StdEncoding

// ByID returns the principal of the token with id, for a session that
// logged in with it: the static api.token's id is [StaticTokenID], and a
// stored token must still be active, so that revoking a token ends its
// sessions. The anonymous session of open mode (id "") holds only while
// mailroom is still open.
func (a *Authenticator) ByID(ctx context.Context, id string) (access.Principal, error) {
	if id == "" {
		open, err := a.Open(ctx)
		if err != nil {
			return access.Principal{}, err
		}
		if open {
			return access.Anonymous, nil
		}
		return access.Principal{}, ErrUnauthenticated
	}
	for _, p := range a.principals {
		if p.TokenID == id {
			return p, nil
		}
	}
	if a.store == nil {
		return access.Principal{}, ErrUnauthenticated
	}
	t, err := a.store.TokenGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return access.Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return access.Principal{}, fmt.Errorf("look up token %s: %w", id, err)
	}
	now := a.now()
	if !t.Active(now) {
		return access.Principal{}, ErrUnauthenticated
	}
	a.touch(ctx, t.ID, now)
	return principalOf(t), nil
}

// ParseExpiry reads a token's lifetime: a Go duration ("720h") or a
// number of days ("90d"); "" and "0" mean never.
func ParseExpiry(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("expires %q: want a number of days from 0 to 36500 (\"90d\") or a duration (\"12h\")", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("expires %q: want a number of days (\"90d\") or a duration (\"12h\")", s)
	}
	return d, nil
}

// AdminToken is the static api.token: the bootstrap admin of every
// project, token id [StaticTokenID].
func AdminToken(token string) Static {
	return Static{Token: token, Principal: access.Principal{TokenID: StaticTokenID, Name: "api.token", Role: access.RoleAdmin}}
}
