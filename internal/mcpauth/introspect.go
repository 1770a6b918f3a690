package mcpauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4/jwt"
)

// introspection is an RFC 7662 answer.
type introspection struct {
	Active   bool             `json:"active"`
	Scope    string           `json:"scope"`
	ClientID string           `json:"client_id"`
	Username string           `json:"username"`
	Subject  string           `json:"sub"`
	Audience jwt.Audience     `json:"aud"`
	Issuer   string           `json:"iss"`
	Expiry   *jwt.NumericDate `json:"exp"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	NotBef   *jwt.NumericDate `json:"nbf"`
}

// introspect asks the authorization server about an opaque token
// (RFC 7662), authenticating with client_id and client_secret, and checks
// the answer: active, issued by the configured server, for this resource,
// within its times (exp is optional here: the server said it is active).
func (a *Authenticator) introspect(ctx context.Context, token string) (*Claims, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.opts.IntrospectionURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: the credentials are form-encoded, then Basic.
	req.SetBasicAuth(url.QueryEscape(a.opts.ClientID), url.QueryEscape(a.opts.ClientSecret))
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspect at %s: %w", a.opts.IntrospectionURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes))
	if err != nil {
		return nil, fmt.Errorf("introspect at %s: read: %w", a.opts.IntrospectionURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspect at %s: status %d (are client_id and client_secret right?)", a.opts.IntrospectionURL, resp.StatusCode)
	}
	var in introspection
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("introspect at %s: not an introspection answer: %w", a.opts.IntrospectionURL, err)
	}
	if !in.Active {
		return nil, invalid("the authorization server says the token is not active")
	}
	want := a.issuers[0].id
	if in.Issuer != "" && in.Issuer != want {
		return nil, invalid("issuer %q is not a trusted authorization server", in.Issuer)
	}
	c := &Claims{Issuer: want, Subject: in.Subject, ClientID: in.ClientID, Username: in.Username,
		Audience: in.Audience, Scopes: strings.Fields(in.Scope),
		Expiry: numericTime(in.Expiry), IssuedAt: numericTime(in.IssuedAt), NotBefore: numericTime(in.NotBef)}
	if err := a.checkTimes(c, false); err != nil {
		return nil, err
	}
	if err := a.checkAudience(c); err != nil {
		return nil, err
	}
	return c, nil
}
