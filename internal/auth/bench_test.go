package auth_test

import (
	"context"
	"testing"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// BenchmarkToken is what authenticating one request costs: the static
// api.token (constant-time compare), and a stored token (its SHA-256 and
// one indexed read on SQLite).
func BenchmarkToken(b *testing.B) {
	ctx := context.Background()
	st := sqlitetest.Open(b, nil)
	const static = "bench-static-admin-token-0123456789"
	a := auth.New(&auth.Options{Store: st, Static: []auth.Static{auth.AdminToken(static)}})
	_, secret, err := a.Create(ctx, access.Principal{Name: "bench"}, &auth.CreateParams{Name: "v", Role: access.RoleViewer})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, token string }{{"Static", static}, {"Stored", secret}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := a.Token(ctx, c.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
