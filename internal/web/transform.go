package web

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/mailroomhq/mailroom/internal/preview"
	"github.com/mailroomhq/mailroom/internal/transform"
)

// transformPanel is one connection's transformation run on the event
// shown, for the event page's Transformations panel.
type transformPanel struct {
	Connection string
	Result     *preview.Result
	// Problem says why there is no result (the script does not compile,
	// the request is gone).
	Problem string
}

// transformPanels runs, without delivering, the transformation of each
// connection that delivered ev (connIDs, in order, repeats ignored) and has
// one, as the API's transform test does. A storage error is returned; a
// script's failure is in its panel.
func (w *Server) transformPanels(ctx context.Context, eventID string, connIDs []string) ([]*transformPanel, error) {
	var out []*transformPanel
	seen := map[string]bool{}
	snap := w.catalog.Current()
	for _, id := range connIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		if p, err := snap.Transform(id); p == nil && err == nil {
			continue // no transformation (or the connection is gone)
		}
		res, err := preview.Run(ctx, w.store, w.catalog.CompileTransform, id, eventID, "")
		var compile *preview.CompileError
		switch {
		case err == nil:
			out = append(out, &transformPanel{Connection: id, Result: res})
		case errors.As(err, &compile), errors.Is(err, preview.ErrRequestGone), errors.Is(err, preview.ErrNoTransform):
			out = append(out, &transformPanel{Connection: id, Problem: err.Error()})
		default:
			return nil, err
		}
	}
	return out, nil
}

// viewJSON renders a request view's body for the page: a string as it is,
// JSON indented.
func viewBody(v *transform.View) string {
	var s string
	if json.Unmarshal(v.Body, &s) == nil {
		return s
	}
	return prettyBody(v.Body)
}
