package catalog

import (
	"fmt"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/transform"
)

// CompileTransform compiles a connection's transformation script within
// the catalog's bounds, as [Catalog.Load] does: the check the config file
// and the API make before they store one.
func (c *Catalog) CompileTransform(script string) (*transform.Program, error) {
	return transform.Compile(script, c.tfOpts)
}

// compiledTransform is a connection's script and what compiling it gave.
type compiledTransform struct {
	script string
	prog   *transform.Program
	err    error
}

// compileTransforms compiles the transformations of conns, reusing the
// programs of the current snapshot whose script has not changed, so that
// a script is compiled once per version, not once per reload.
func (c *Catalog) compileTransforms(conns []*store.Connection) map[string]*compiledTransform {
	prev := c.cur.Load().transforms
	out := make(map[string]*compiledTransform)
	for _, conn := range conns {
		if conn.Transform == "" {
			continue
		}
		if old := prev[conn.ID]; old != nil && old.script == conn.Transform {
			out[conn.ID] = old
			continue
		}
		p, err := c.CompileTransform(conn.Transform)
		if err != nil {
			err = fmt.Errorf("connection %s: transform: %w", conn.ID, err)
			c.log.Error("compile transformation", "connection", conn.ID, "err", err)
		}
		out[conn.ID] = &compiledTransform{script: conn.Transform, prog: p, err: err}
	}
	return out
}

// Transform returns the compiled transformation of the connection id: nil
// and no error when it has none (or is unknown), and an error when its
// script does not compile. The connection is still routed then, and its
// deliveries fail with that error, to be retried once the script is fixed,
// rather than go out untransformed.
func (s *Snapshot) Transform(id string) (*transform.Program, error) {
	t := s.transforms[id]
	if t == nil {
		return nil, nil
	}
	return t.prog, t.err
}
