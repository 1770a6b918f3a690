package config

import (
	"strings"
	"testing"
)

func TestCheckReload(t *testing.T) {
	t.Parallel()
	const running = `listen: 127.0.0.1:8080
api: {token: old-token-0123456789}
log: {level: info}
sources:
  - name: a
`
	for _, tt := range []struct {
		name, next string
		want       []string // substrings of the error, in order; none for nil
	}{
		{"same file", running, nil},
		{"catalog and log level may change", strings.Replace(running, "info", "debug", 1) + "  - name: b\n", nil},
		{"listen is read at start", strings.Replace(running, "8080", "9090", 1), []string{"next.yaml:1: listen: changed"}},
		{"a token change is refused without quoting it", strings.Replace(running, "old-token", "new-token", 1), []string{"next.yaml:2: api.token: changed"}},
		{"each change is named", strings.Replace(strings.Replace(running, "8080", "9090", 1), "log: {level: info}", "log: {level: info, format: json}", 1),
			[]string{"next.yaml:1: listen: changed", "next.yaml:3: log.format: changed"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			old, err := Parse([]byte(running), "running.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			next, err := Parse([]byte(tt.next), "next.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			err = next.CheckReload(old)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("CheckReload: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckReload: nil, want %q", tt.want)
			}
			msg := err.Error()
			if strings.Contains(msg, "token-0123456789") {
				t.Errorf("the error quotes the token: %s", msg)
			}
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", msg, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}
