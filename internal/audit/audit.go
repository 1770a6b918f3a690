// Package audit is what a handler says about the change it made, for the
// audit log: the target's state before and after, its id, its project.
// The middleware in internal/auth puts a [Change] in the context of every
// mutating request, lets the handler fill it, and writes the entry with
// who acted and how it was answered once the handler returns.
//
// Everything recorded passes through [redact.JSON]; handlers give the
// redacted views they would show anyway.
package audit

import (
	"context"
	"encoding/json"

	"github.com/mailroomhq/mailroom/internal/redact"
)

// Change is what a handler reports of one change. The zero value reports
// nothing; the middleware then records the answer's JSON body as After.
type Change struct {
	// Target is the id or name acted on, when the route's path does not
	// hold it (a create).
	Target string
	// Project is the project of the target.
	Project string
	// Before and After are the target's state, as JSON.
	Before, After json.RawMessage
	// Quiet keeps the answer's body out of the entry (it holds a secret
	// shown once, like a new token).
	Quiet bool
}

type ctxKey struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c *Change) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// From returns the change ctx carries, or nil.
func From(ctx context.Context) *Change {
	c, _ := ctx.Value(ctxKey{}).(*Change)
	return c
}

// Before records v (marshalled to JSON) as the target's state before the
// change, if ctx carries a change.
func Before(ctx context.Context, v any) {
	if c := From(ctx); c != nil {
		c.Before = Marshal(v)
	}
}

// After records v as the target's state after the change, if ctx carries
// a change.
func After(ctx context.Context, v any) {
	if c := From(ctx); c != nil {
		c.After = Marshal(v)
	}
}

// Target records the id or name acted on, if ctx carries a change.
func Target(ctx context.Context, target string) {
	if c := From(ctx); c != nil && target != "" {
		c.Target = target
	}
}

// Quiet keeps the answer's body out of the entry, if ctx carries a change.
func Quiet(ctx context.Context) {
	if c := From(ctx); c != nil {
		c.Quiet = true
	}
}

// Marshal returns v as redacted JSON, or nil for nil or what does not
// marshal.
func Marshal(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil
	}
	return redact.JSON(b)
}

// Project records the project of the target, if ctx carries a change.
func Project(ctx context.Context, project string) {
	if c := From(ctx); c != nil && project != "" {
		c.Project = project
	}
}
