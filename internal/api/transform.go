package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mailroomhq/mailroom/internal/preview"
	"github.com/mailroomhq/mailroom/internal/store"
)

// transformTestBody is the body of POST
// /connections/{id}/transform/test.
type transformTestBody struct {
	// EventID is the stored event whose delivery is transformed.
	EventID string `json:"event_id"`
	// Transform, if set, is tried instead of the connection's own script
	// (to test a change before saving it).
	Transform string `json:"transform,omitempty"`
}

// transformTest runs a connection's transformation (or the script in the
// body) on a stored event, as a delivery attempt would, without sending
// anything, and answers a [preview.Result]. A script that throws or runs
// out of time is a 200 whose error says so; one that does not compile, or
// a connection without one, is a 400; a missing connection, event or
// destination a 404; an event whose request retention removed a 409.
func (a *Server) transformTest(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.connectionsResource().pathKey(a, w, r)
	if !ok {
		return
	}
	var in transformTestBody
	if err := decode(w, r, &in, false); err != nil {
		a.fail(w, r, err, "")
		return
	}
	if in.EventID == "" {
		a.fail(w, r, badf("event_id: required, the id of a stored event (evt_…)"), "")
		return
	}
	if ev, err := a.store.EventGetByID(r.Context(), in.EventID); err == nil && !a.visible(w, r, ev.Project, fmt.Sprintf("event %q not found", in.EventID)) {
		return
	}
	res, err := preview.Run(r.Context(), a.store, a.catalog.CompileTransform, id, in.EventID, in.Transform)
	var compile *preview.CompileError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.As(err, &compile):
		a.fail(w, r, badf("%s", compile.Error()), "")
	case errors.Is(err, preview.ErrNoTransform):
		a.fail(w, r, badf("connection %q has no transform; send one in transform to try it", id), "")
	case errors.Is(err, preview.ErrRequestGone):
		writeError(w, http.StatusConflict, err.Error()+"; nothing to transform")
	case errors.Is(err, store.ErrNotFound):
		// The message names what is missing: "event \"evt_x\": not found".
		msg, _, _ := strings.Cut(err.Error(), ": ")
		a.fail(w, r, err, msg+" not found")
	default:
		a.fail(w, r, err, "")
	}
}
