// Package health serves the probes a supervisor asks: GET /healthz (the
// process is up, and which build it runs) and GET /readyz (storage can
// persist right now). Both are unauthenticated and say nothing secret; a
// readiness failure carries the storage error's text.
package health

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
)

// DefaultReadyTimeout bounds one readiness check.
const DefaultReadyTimeout = 2 * time.Second

// Readier is what /readyz asks: whether storage can persist now
// (store.Store.Ready).
type Readier interface {
	Ready(ctx context.Context) error
}

// Options configures [Register]. The zero value is ready to use.
type Options struct {
	// Build is shown by /healthz. Zero means [buildinfo.Read].
	Build buildinfo.Info
	// ReadyTimeout bounds a readiness check. Zero means
	// [DefaultReadyTimeout].
	ReadyTimeout time.Duration
}

// Register serves GET /healthz and GET /readyz on mux. /healthz answers
// 200 {"status":"ok","version":...,"commit":...} whenever the process
// serves HTTP; /readyz answers 200 {"status":"ready"} when r is ready and
// 503 {"status":"unavailable","error":...} otherwise.
func Register(mux *http.ServeMux, r Readier, opts *Options) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Build == (buildinfo.Info{}) {
		o.Build = buildinfo.Read()
	}
	o.ReadyTimeout = cmp.Or(o.ReadyTimeout, DefaultReadyTimeout)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": o.Build.Version, "commit": o.Build.Commit})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), o.ReadyTimeout)
		defer cancel()
		if err := r.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

func writeJSON(w http.ResponseWriter, status int, v map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}
