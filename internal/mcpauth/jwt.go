package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// jwtClaims are the claims read from a JWT access token (RFC 9068, with
// the scp claim some authorization servers use instead of scope).
type jwtClaims struct {
	Issuer            string           `json:"iss"`
	Subject           string           `json:"sub"`
	Audience          jwt.Audience     `json:"aud"`
	Expiry            *jwt.NumericDate `json:"exp"`
	NotBefore         *jwt.NumericDate `json:"nbf"`
	IssuedAt          *jwt.NumericDate `json:"iat"`
	Scope             string           `json:"scope"`
	Scp               json.RawMessage  `json:"scp"`
	ClientID          string           `json:"client_id"`
	Username          string           `json:"username"`
	PreferredUsername string           `json:"preferred_username"`
}

// verifyJWT checks a JWT access token: an accepted algorithm, a trusted
// issuer, a signature by one of its keys (refetched once on an unknown
// key id), then times and audience.
func (a *Authenticator) verifyJWT(ctx context.Context, token string) (*Claims, error) {
	tok, err := jwt.ParseSigned(token, a.algs)
	if err != nil {
		return nil, invalid("not a JWT signed with an accepted algorithm (%s)", strings.Join(a.opts.Algorithms, ", "))
	}
	if len(tok.Headers) != 1 {
		return nil, invalid("a JWT access token has one signature")
	}
	h := tok.Headers[0]
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalid("the JWT's claims are not JSON")
	}
	iss := a.issuer(unverified.Issuer)
	if iss == nil {
		return nil, invalid("issuer %q is not a trusted authorization server", unverified.Issuer)
	}
	keys, err := iss.keys.candidates(ctx, h.KeyID, h.Algorithm)
	if errors.Is(err, errUnknownKey) {
		return nil, invalid("no key of %s has key id %q", iss.id, h.KeyID)
	}
	if err != nil {
		return nil, err
	}
	var raw jwtClaims
	verified := false
	for _, k := range keys {
		if tok.Claims(k.Key, &raw) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalid("the signature does not verify with the keys of %s", iss.id)
	}
	if raw.Issuer != iss.id {
		return nil, invalid("issuer %q is not a trusted authorization server", raw.Issuer)
	}
	scopes, err := raw.scopes()
	if err != nil {
		return nil, err
	}
	c := &Claims{Issuer: raw.Issuer, Subject: raw.Subject, ClientID: raw.ClientID,
		Username: cmpOr(raw.Username, raw.PreferredUsername), Audience: raw.Audience, Scopes: scopes,
		Expiry: numericTime(raw.Expiry), NotBefore: numericTime(raw.NotBefore), IssuedAt: numericTime(raw.IssuedAt)}
	if err := a.checkTimes(c, true); err != nil {
		return nil, err
	}
	if err := a.checkAudience(c); err != nil {
		return nil, err
	}
	return c, nil
}

// issuer returns the trusted issuer with identifier id, or nil.
func (a *Authenticator) issuer(id string) *issuer {
	for _, is := range a.issuers {
		if is.id == id {
			return is
		}
	}
	return nil
}

// scopes reads scope (a space-separated string) or scp (a string or an
// array of strings).
func (c *jwtClaims) scopes() ([]string, error) {
	if c.Scope != "" {
		return strings.Fields(c.Scope), nil
	}
	if len(c.Scp) == 0 || string(c.Scp) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(c.Scp, &s) == nil {
		return strings.Fields(s), nil
	}
	var list []string
	if err := json.Unmarshal(c.Scp, &list); err != nil {
		return nil, invalid("scp is neither a string nor an array of strings")
	}
	return list, nil
}

func numericTime(n *jwt.NumericDate) time.Time {
	if n == nil {
		return time.Time{}
	}
	return n.Time()
}
