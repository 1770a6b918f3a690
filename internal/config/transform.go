package config

import (
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// MaxTransformTimeout is the largest transformations.timeout: a run holds
// its delivery's concurrency slot while it runs.
const MaxTransformTimeout = 10 * time.Second

// TransformationsConfig bounds the runs of the connections' JavaScript
// transformations (connections[].transform). Zero values mean the
// defaults of package transform (50ms, 10 MiB, 4 KiB).
type TransformationsConfig struct {
	// Timeout is the time budget of one run; a run over it is stopped
	// and its attempt fails.
	Timeout store.Duration `yaml:"timeout"`
	// MaxOutputBytes caps the request a run returns, encoded as JSON.
	MaxOutputBytes int `yaml:"max_output_bytes"`
	// MaxLogBytes caps the console log kept of one run.
	MaxLogBytes int `yaml:"max_log_bytes"`
}

// transformations checks the transformations section and, through
// [Options.CheckTransform], each connection's script.
func (v *validator) transformations() {
	t := v.c.Transformations
	if t.Timeout < 0 || t.Timeout.D() > MaxTransformTimeout {
		v.errf("transformations.timeout", "%s is out of range: 0 (the default, 50ms) to %s", t.Timeout, store.Duration(MaxTransformTimeout))
	}
	if t.MaxOutputBytes < 0 {
		v.errf("transformations.max_output_bytes", "must not be negative")
	}
	if t.MaxLogBytes < 0 {
		v.errf("transformations.max_log_bytes", "must not be negative")
	}
}

// transform checks the transformation script at field.
func (v *validator) transform(field, script string) {
	if script == "" || v.opts == nil || v.opts.CheckTransform == nil {
		return
	}
	b := v.c.Transformations
	if b.Timeout < 0 || b.Timeout.D() > MaxTransformTimeout {
		b.Timeout = 0 // refused above; check the script within the default
	}
	if err := v.opts.CheckTransform(script, b); err != nil {
		v.add(field, err)
	}
}
