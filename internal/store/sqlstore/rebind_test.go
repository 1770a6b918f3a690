package sqlstore

import "testing"

func TestRebind(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, in, want string }{
		{"none", `SELECT 1`, `SELECT 1`},
		{"in order", `UPDATE t SET a = ?, b = ? WHERE id = ?`, `UPDATE t SET a = $1, b = $2 WHERE id = $3`},
		{"cast kept", `convert_from(?::bytea, 'LATIN1')`, `convert_from($1::bytea, 'LATIN1')`},
		{"literal untouched", `SELECT '?' || ?, 'it''s ?' || ?`, `SELECT '?' || $1, 'it''s ?' || $2`},
		{"more than nine", `?,?,?,?,?,?,?,?,?,?,?`, `$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r Rebinder
			for range 2 { // the second answer comes from the cache
				if got := r.Rebind(tt.in); got != tt.want {
					t.Errorf("Rebind(%q) = %q, want %q", tt.in, got, tt.want)
				}
			}
		})
	}
}
