package config_test

import (
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/transform"
)

// TestTransformChecked: a connection's transformation that does not
// compile, or defines no handler, is refused at load with file, line and
// field; a good one loads, with the bounds of the transformations section.
func TestTransformChecked(t *testing.T) {
	t.Parallel()
	opts := realOptions(t, nil)
	opts.CheckTransform = func(script string, b config.TransformationsConfig) error {
		_, err := transform.Compile(script, &transform.Options{Timeout: b.Timeout.D()})
		return err
	}
	head := `sources:
  - name: s
    verify: {type: github, secret: x}
destinations:
  - name: d
    url: http://127.0.0.1:9000/x
`
	for _, tt := range []struct {
		name, yaml string
		want       []string
	}{
		{"syntax error", head + `connections:
  - source: s
    destination: d
    transform: |
      function handler(request) {
        return request +
      }
`, []string{"cfg.yaml:10: connections[0].transform: compile: SyntaxError: transform.js: Line 3:1"}},
		{"no handler", head + `connections:
  - source: s
    destination: d
    transform: "function handle(r) { return r }"
`, []string{"cfg.yaml:10: connections[0].transform: the script defines no function handler"}},
		{"bounds", head + `transformations:
  timeout: 1m
  max_output_bytes: -1
`, []string{"cfg.yaml:8: transformations.timeout: 1m0s is out of range", "cfg.yaml:9: transformations.max_output_bytes: must not be negative"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.yaml), "cfg.yaml", opts)
			if err == nil {
				t.Fatal("Parse accepted the file")
			}
			errs := configErrors(t, err)
			if len(errs) != len(tt.want) {
				t.Fatalf("errors = %v, want %d", err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to start with %q", i, errs[i], w)
				}
			}
		})
	}
	cfg, err := config.Parse([]byte(head+`transformations: {timeout: 100ms}
connections:
  - source: s
    destination: d
    transform: |
      function handler(request) {
        request.body = {wrapped: request.body}
        return request
      }
`), "cfg.yaml", opts)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := cfg.Connections[0].Transform; !strings.HasPrefix(got, "function handler(request) {\n") {
		t.Errorf("transform = %q", got)
	}
	if got := cfg.Transformations.Timeout.String(); got != "100ms" {
		t.Errorf("transformations.timeout = %s, want 100ms", got)
	}
}
