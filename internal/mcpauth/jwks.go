package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

// maxDocumentBytes caps a JWKS or introspection answer.
const maxDocumentBytes = 1 << 20

// keySet is the cached JWKS of one issuer: fetched on first use (its URL
// discovered from the issuer's metadata when not configured), again when
// older than maxAge, and again when a token names a key id it does not
// hold, at most once per minRefresh.
type keySet struct {
	issuer     string
	url        string // configured, or discovered on first use
	client     *http.Client
	now        func() time.Time
	maxAge     time.Duration
	minRefresh time.Duration
	log        *slog.Logger

	// mu is held across a fetch, so that concurrent verifications wait
	// for one fetch instead of starting their own.
	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time // of the keys held
	triedAt   time.Time // of the last fetch, successful or not
	fetches   int
}

// errUnknownKey is a token's key id that the issuer's keys do not have,
// even after a refetch.
var errUnknownKey = errors.New("unknown key")

// candidates returns the keys that may have signed a token with key id
// kid and algorithm alg: the key with that id, or every signing key when
// the token names none.
func (s *keySet) candidates(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.keys == nil || now.Sub(s.fetchedAt) >= s.maxAge {
		if err := s.fetchLocked(ctx, now); err != nil && s.keys == nil {
			return nil, err
		}
	}
	if ks := match(s.keys, kid, alg); len(ks) > 0 {
		return ks, nil
	}
	// A key id we do not know: the issuer may have rotated its keys.
	if err := s.fetchLocked(ctx, now); err != nil {
		return nil, err
	}
	if ks := match(s.keys, kid, alg); len(ks) > 0 {
		return ks, nil
	}
	return nil, errUnknownKey
}

// fetchLocked fetches the keys unless the last try, successful or not,
// was less than minRefresh ago: an authorization server that is down is
// not asked again by every request. On failure the keys held are kept.
func (s *keySet) fetchLocked(ctx context.Context, now time.Time) error {
	if !s.triedAt.IsZero() && now.Sub(s.triedAt) < s.minRefresh {
		if s.keys == nil {
			return fmt.Errorf("the keys of %s could not be fetched; next try in %s", s.issuer, s.minRefresh-now.Sub(s.triedAt))
		}
		return nil
	}
	s.triedAt = now
	keys, err := s.fetch(ctx)
	if err != nil {
		s.log.Warn("oauth: fetch signing keys", "issuer", s.issuer, "err", err)
		return err
	}
	s.keys, s.fetchedAt = keys, now
	s.fetches++
	s.log.Info("oauth: fetched signing keys", "issuer", s.issuer, "url", s.url, "keys", len(keys))
	return nil
}

// fetch discovers the JWKS URL if need be, and reads the keys.
func (s *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx = context.WithoutCancel(ctx) // one client's cancel must not fail the fetch others wait on
	if s.url == "" {
		asm, err := auth.GetAuthServerMetadata(ctx, s.issuer, s.client)
		if err != nil {
			return nil, fmt.Errorf("discover the metadata of %s: %w", s.issuer, err)
		}
		if asm == nil || asm.JWKSURI == "" {
			return nil, fmt.Errorf("%s publishes no authorization server metadata with a jwks_uri; set jwks_url", s.issuer)
		}
		if err := CheckURL(asm.JWKSURI); err != nil {
			return nil, fmt.Errorf("jwks_uri of %s: %w", s.issuer, err)
		}
		s.url = asm.JWKSURI
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: status %d", s.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.url, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("%s: over %d bytes", s.url, maxDocumentBytes)
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.url, err)
	}
	if skipped > 0 {
		s.log.Info("oauth: JWKS keys left out (not public signing keys, or of a type not supported)", "url", s.url, "skipped", skipped)
	}
	return keys, nil
}

// parseJWKS reads a JWK Set (RFC 7517 §5), keeping the public signing
// keys it can use and counting the others: one key of an unknown type
// does not make the whole set unusable.
func parseJWKS(body []byte) (keys []jose.JSONWebKey, skipped int, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, 0, fmt.Errorf("not a JWK Set: %w", err)
	}
	if set.Keys == nil {
		return nil, 0, errors.New("not a JWK Set: no keys member")
	}
	keys = []jose.JSONWebKey{}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !k.Valid() || (k.Use != "" && k.Use != "sig") {
			skipped++
			continue
		}
		if !k.IsPublic() {
			k = k.Public() // a set should hold none, but a private key's public half is all we use
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// match returns the keys with id kid (all when kid is empty) whose
// declared algorithm, if any, is alg.
func match(keys []jose.JSONWebKey, kid, alg string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if (kid == "" || k.KeyID == kid) && (k.Algorithm == "" || k.Algorithm == alg) {
			out = append(out, k)
		}
	}
	return out
}
