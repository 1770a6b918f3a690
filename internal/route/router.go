package route

import (
	"fmt"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Router matches events against connections. Build one per catalog
// version with [NewRouter]; it is immutable and safe for concurrent use.
type Router struct {
	bySource map[string][]compiled
}

type compiled struct {
	conn   *store.Connection
	filter *Program // nil: match everything
}

// NewRouter compiles every connection's filter. An error names the
// connection whose filter does not compile.
func NewRouter(c *Compiler, conns []*store.Connection) (*Router, error) {
	r := &Router{bySource: map[string][]compiled{}}
	for _, conn := range conns {
		cc := compiled{conn: conn}
		if conn.Filter != "" {
			p, err := c.CompileFilter(conn.Filter)
			if err != nil {
				return nil, fmt.Errorf("connection %s: %w", conn.ID, err)
			}
			cc.filter = p
		}
		r.bySource[conn.Source] = append(r.bySource[conn.Source], cc)
	}
	return r, nil
}

// HasConnections reports whether source has any connection.
func (r *Router) HasConnections(source string) bool { return len(r.bySource[source]) > 0 }

// Match returns the connections of in.Source whose filter passes, in
// connection order. A connection matches at most once.
func (r *Router) Match(in *Input) []*store.Connection {
	var out []*store.Connection
	for _, cc := range r.bySource[in.Source] {
		if cc.filter == nil || cc.filter.Match(in) {
			out = append(out, cc.conn)
		}
	}
	return out
}
