package reload_test

import (
	"context"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/reload"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TestApplyProjects checks that the file's entries of a project are
// stored and served under their full names, beside the default project's
// entries of the same short names.
func TestApplyProjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, compiler, cat := newCatalog(t)
	cfg, err := parseWith(compiler, `projects: [{name: acme}]
sources:
  - name: stripe
  - {name: stripe, project: acme}
destinations:
  - {name: billing, url: "http://127.0.0.1:1/"}
  - {name: billing, project: acme, url: "http://127.0.0.1:2/"}
connections:
  - {source: stripe, destination: billing}
  - {project: acme, source: stripe, destination: billing, filter: "true"}
`)
	if err != nil {
		t.Fatal(err)
	}
	r := reload.New(s, cat, func() (*config.Config, error) { return cfg, nil }, cfg, nil)
	if _, err := r.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	snap := cat.Current()
	for _, name := range []string{"stripe", "acme/stripe"} {
		if snap.Sources[name] == nil {
			t.Errorf("source %s is not served", name)
		}
	}
	d, err := s.DestinationGet(ctx, "acme/billing")
	if err != nil || d.URL != "http://127.0.0.1:2/" || d.Project != "acme" || d.ManagedBy != store.ManagedByConfig {
		t.Errorf("acme/billing = %+v, %v", d, err)
	}
	c, err := s.ConnectionGet(ctx, "acme/stripe->billing")
	if err != nil || c.Source != "acme/stripe" || c.Destination != "acme/billing" || c.Filter != "true" {
		t.Errorf("acme's connection = %+v, %v", c, err)
	}
	if !snap.Projects["acme"] {
		t.Error("the snapshot does not know project acme")
	}
	// The config file's own cfg is left as it was written (short names).
	if cfg.Sources[1].Name != "stripe" || cfg.Connections[1].Source != "stripe" {
		t.Errorf("Apply changed the config: %+v %+v", cfg.Sources[1], cfg.Connections[1])
	}
}
