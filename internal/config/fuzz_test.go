package config_test

import (
	"errors"
	"os"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// FuzzParse checks that no input makes Parse panic, that every problem it
// reports is a *config.Error, and that what it accepts validates again.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, seed := range []string{
		"",
		"listen: a: b\n",
		"sources:\n  - name: s\n    verfy: {type: stripe}\n",
		"sources:\n  stripe: {}\n",
		"api: {token: '${A:-x}${B}$$${'}\n",
		"x-a: &a {max_attempts: 3}\ndestinations:\n  - {name: d, url: 'http://x', retry: {<<: *a, initial: 1s}}\n",
		"x-0: &a0 {token: t}\nx-1: &a1 {<<: [*a0, *a0]}\napi: *a1\n",
		"sources: &s [*s]\n",
		"connections:\n  - {source: s, destination: d, filter: 'true'}\n",
		"listen: 1\n---\nlisten: 2\n",
		"? [a]\n: b\n",
		"destinations:\n  - name: d\n    url: http://x\n    headers: {A: b, A: c}\n    retry: {retry_on: [1, '2', x]}\n",
	} {
		f.Add([]byte(seed))
	}
	env := map[string]string{"A": "1", "MAILROOM_API_TOKEN": "t"}
	opts := &config.Options{
		LookupEnv: mapEnv(env),
		// Cheap stand-ins for the real hooks, which have fuzz targets of
		// their own: they exercise the error paths.
		CheckVerify: func(v verify.Config) error {
			if v.Type == "bad" {
				return errors.New("verify.type: bad type")
			}
			return nil
		},
		CheckExpr: func(expr string) error {
			if expr == "bad" {
				return errors.New("bad expression")
			}
			return nil
		},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "fuzz.yaml", opts)
		if err != nil {
			if cfg != nil {
				t.Fatal("Parse returned a config with its error")
			}
			_ = err.Error()
			configErrors(t, err)
			return
		}
		if err := cfg.Validate(opts); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
	})
}
