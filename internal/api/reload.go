package api

import (
	"errors"
	"net/http"

	"github.com/mailroomhq/mailroom/internal/reload"
)

// configReload re-reads the config file through [Options.Reload]: 200 with
// what changed, 422 with every reason the file was refused, 503 when
// storage failed; in the last two cases nothing changed.
func (a *Server) configReload(w http.ResponseWriter, r *http.Request) {
	if a.reloadConfig == nil {
		writeError(w, http.StatusNotFound, "config reload is not available on this server")
		return
	}
	if err := decode(w, r, &struct{}{}, true); err != nil {
		a.fail(w, r, err, "")
		return
	}
	res, err := a.reloadConfig(r.Context())
	var refused *reload.RefusedError
	switch {
	case errors.As(err, &refused):
		writeError(w, http.StatusUnprocessableEntity, "config not reloaded, nothing changed: "+refused.Error())
	case err != nil:
		a.fail(w, r, err, "")
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
