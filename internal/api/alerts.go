package api

import (
	"net/http"
	"strconv"

	"github.com/mailroomhq/mailroom/internal/alert"
)

// AlertLister lists alerts for GET /alerts; [alert.Monitor] implements it.
type AlertLister interface {
	// List returns alerts newest first: the open ones, and unless
	// openOnly the recently resolved ones too.
	List(openOnly bool) []alert.Alert
}

// alertList answers GET /alerts[?open=true]. Without an [AlertLister]
// the list is empty.
func (a *Server) alertList(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	sc, ok := a.scopeOrFail(w, r, "project not found")
	if !ok {
		return
	}
	openOnly := false
	for key, vals := range q {
		if key == "project" {
			continue // read by the request's scope
		}
		if key != "open" {
			a.fail(w, r, badf("unknown parameter %q for alerts (accepted: open, project)", key), "")
			return
		}
		if len(vals) > 1 {
			a.fail(w, r, badf("parameter open is given %d times; give it once", len(vals)), "")
			return
		}
		if vals[0] == "" {
			continue
		}
		if openOnly, err = strconv.ParseBool(vals[0]); err != nil {
			a.fail(w, r, badf("parameter open: %q is not true or false", vals[0]), "")
			return
		}
	}
	out := list[alert.Alert]{Data: []alert.Alert{}}
	if a.alerts != nil {
		for _, al := range a.alerts.List(openOnly) {
			if sc.has(al.Destination) {
				out.Data = append(out.Data, al)
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}
