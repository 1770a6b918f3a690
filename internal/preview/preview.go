// Package preview runs a connection's transformation on a stored event,
// as a delivery attempt would, without delivering anything: what the admin
// API (POST /connections/{id}/transform/test), `mailroom transform test`
// and the dashboard's event page show. It owns loading the pieces
// (connection, event, original request, destination) and masking
// credentials in what it returns; the request an attempt builds is
// package deliver's ([deliver.Preview]) and the engine package transform's.
package preview

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/transform"
)

// Errors [Run] returns besides storage errors, for the caller to map to
// its answer.
var (
	// ErrNoTransform: the connection has no transformation and none was
	// given.
	ErrNoTransform = errors.New("no transformation to run")
	// ErrRequestGone: the event's original request was removed by
	// retention, so there is nothing to transform.
	ErrRequestGone = errors.New("the event's request is no longer stored")
)

// CompileError is a script that does not compile or defines no handler.
type CompileError struct{ Err error }

func (e *CompileError) Error() string { return "transform: " + e.Err.Error() }
func (e *CompileError) Unwrap() error { return e.Err }

// Result is a transformation run on a stored event: the request an
// attempt would send before the transformation (Input), what the handler
// returned (Output, nil when the run failed) with its console log and its
// error. Credential headers are masked.
type Result struct {
	Connection  string          `json:"connection"`
	Destination string          `json:"destination"`
	EventID     string          `json:"event_id"`
	Input       *transform.View `json:"input"`
	Output      *transform.View `json:"output"`
	Log         []string        `json:"log"`
	Error       string          `json:"error,omitempty"`
	DurationMS  float64         `json:"duration_ms"`
}

// Store is what [Run] reads.
type Store interface {
	ConnectionGet(ctx context.Context, id string) (*store.Connection, error)
	DestinationGet(ctx context.Context, name string) (*store.Destination, error)
	EventGetByID(ctx context.Context, id string) (*store.Event, error)
	RequestGetByID(ctx context.Context, id string) (*store.Request, error)
}

// Compiler compiles a script within the bounds deliveries run it in
// ([catalog.Catalog.CompileTransform]).
type Compiler func(script string) (*transform.Program, error)

// Run runs the transformation of connection conn (or script, when not
// empty) on the stored event eventID. A script that throws or runs out of
// time is a Result whose Error says so, not an error. Errors: a missing
// connection, event or destination wraps [store.ErrNotFound];
// [ErrNoTransform]; [ErrRequestGone]; a [*CompileError]; anything else is
// storage failing.
func Run(ctx context.Context, s Store, compile Compiler, conn, eventID, script string) (*Result, error) {
	c, err := s.ConnectionGet(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("connection %q: %w", conn, err)
	}
	if script == "" {
		script = c.Transform
	}
	if script == "" {
		return nil, fmt.Errorf("connection %q: %w", conn, ErrNoTransform)
	}
	prog, err := compile(script)
	if err != nil {
		return nil, &CompileError{Err: err}
	}
	ev, err := s.EventGetByID(ctx, eventID)
	if err != nil {
		return nil, fmt.Errorf("event %q: %w", eventID, err)
	}
	req, err := s.RequestGetByID(ctx, ev.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("event %s: %w", ev.ID, ErrRequestGone)
	}
	if err != nil {
		return nil, fmt.Errorf("request of event %s: %w", ev.ID, err)
	}
	dest, err := s.DestinationGet(ctx, c.Destination)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", c.Destination, err)
	}
	in, res, err := deliver.Preview(ctx, prog, dest, ev.ID, ev.Source, req, "")
	if in == nil {
		return nil, fmt.Errorf("destination %s: %w", dest.Name, err)
	}
	out := &Result{Connection: c.ID, Destination: dest.Name, EventID: ev.ID, Input: in.View(maskHeader),
		Log: res.Log, DurationMS: float64(res.Duration.Microseconds()) / 1000}
	if out.Log == nil {
		out.Log = []string{}
	}
	if err != nil {
		out.Error = err.Error()
	} else {
		out.Output = res.Request.View(maskHeader)
	}
	return out, nil
}

// maskHeader shows a header value, masked when the header is a credential.
func maskHeader(name, value string) string {
	if redact.SensitiveHeader(name) {
		return redact.Secret(value)
	}
	return value
}
