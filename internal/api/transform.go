package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/transform"
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

// TransformTest is the answer of a transformation test: the request an
// attempt would send before the transformation, what the handler
// returned, its console log and its error. Credential headers are masked.
type TransformTest struct {
	Connection  string          `json:"connection"`
	Destination string          `json:"destination"`
	EventID     string          `json:"event_id"`
	Input       *transform.View `json:"input"`
	// Output is null when the run failed.
	Output     *transform.View `json:"output"`
	Log        []string        `json:"log"`
	Error      string          `json:"error,omitempty"`
	DurationMS float64         `json:"duration_ms"`
}

// transformTest runs a connection's transformation (or the script in the
// body) on a stored event, as a delivery attempt would, without sending
// anything. A script that throws or runs out of time is a 200 whose
// error says so; one that does not compile is a 400; a missing
// connection, event or destination a 404; an event whose request
// retention removed a 409.
func (a *Server) transformTest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var in transformTestBody
	if err := decode(w, r, &in, false); err != nil {
		a.fail(w, r, err, "")
		return
	}
	if in.EventID == "" {
		a.fail(w, r, badf("event_id: required, the id of a stored event (evt_…)"), "")
		return
	}
	ctx := r.Context()
	conn, err := a.store.ConnectionGet(ctx, id)
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("connection %q not found", id))
		return
	}
	script := in.Transform
	if script == "" {
		script = conn.Transform
	}
	if script == "" {
		a.fail(w, r, badf("connection %q has no transform; send one in transform to try it", id), "")
		return
	}
	prog, err := a.catalog.CompileTransform(script)
	if err != nil {
		a.fail(w, r, badf("transform: %v", err), "")
		return
	}
	ev, err := a.store.EventGetByID(ctx, in.EventID)
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("event %q not found", in.EventID))
		return
	}
	req, err := a.store.RequestGetByID(ctx, ev.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusConflict, fmt.Sprintf("the request of event %s was removed by retention; nothing to transform", ev.ID))
		return
	}
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	dest, err := a.store.DestinationGet(ctx, conn.Destination)
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("destination %q not found", conn.Destination))
		return
	}
	input, res, err := deliver.Preview(ctx, prog, dest, ev.ID, ev.Source, req, "")
	if input == nil {
		a.fail(w, r, badf("destination %s: %v", dest.Name, err), "")
		return
	}
	out := TransformTest{Connection: conn.ID, Destination: dest.Name, EventID: ev.ID,
		Input: input.View(maskHeader), Log: nonNil(res.Log), DurationMS: float64(res.Duration.Microseconds()) / 1000}
	if err != nil {
		out.Error = err.Error()
	} else {
		out.Output = res.Request.View(maskHeader)
	}
	writeJSON(w, http.StatusOK, out)
}

// maskHeader shows a header value, masked when the header is a credential.
func maskHeader(name, value string) string {
	if redact.SensitiveHeader(name) {
		return redact.Secret(value)
	}
	return value
}
