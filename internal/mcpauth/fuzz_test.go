package mcpauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/mcpauth/mcpauthtest"
)

// FuzzVerify hands arbitrary bearer tokens, seeded with real ones and
// their near misses, to an authenticator that trusts a real local
// authorization server. The oracle is exact: a token is accepted only if
// it is the signed token minted below (or a re-encoding of it that still
// carries its signature and claims), so an accepted token must stand for
// exactly that token's principal; anything else is refused with an
// *mcpauth.Error (never a panic, never another principal).
func FuzzVerify(f *testing.F) {
	as := mcpauthtest.New(f, nil)
	const resource = "https://mailroom.example.com/mcp"
	now := time.Now()
	a, err := mcpauth.New(mcpauth.Options{Resource: resource, AuthorizationServers: []string{as.Issuer()},
		JWKSURL: as.URL + "/jwks", Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	good := as.Issue(mcpauthtest.Claims{Subject: "alice", Audience: []string{resource}, Scope: "mailroom:mcp mailroom:project:acme",
		Expiry: now.Add(time.Hour), IssuedAt: now})
	want := access.Principal{TokenID: "oauth:" + as.Issuer() + "#alice", Name: "alice", Role: access.RoleMCP, Project: "acme"}
	ctx := context.Background()
	if p, _, err := a.Verify(ctx, good); err != nil || p != want {
		f.Fatalf("the minted token: %+v %v", p, err)
	}
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good,
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2],
		"eyJhbGciOiJub25lIn0." + parts[1] + ".",
		parts[0] + ".e30." + parts[2],
		"a.b.c", "..", "", "opaque", strings.Repeat("A", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, ti, err := a.Verify(ctx, token)
		if err != nil {
			var e *mcpauth.Error
			if !errors.As(err, &e) {
				t.Fatalf("%q: error %v is not an *mcpauth.Error", token, err)
			}
			return
		}
		if p != want || ti == nil || ti.UserID != mcpauth.Owner(want) {
			t.Fatalf("%q accepted as %+v (%+v), want only %+v", token, p, ti, want)
		}
	})
}
