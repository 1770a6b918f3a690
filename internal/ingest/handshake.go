package ingest

import (
	"net/http"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// handshake answers r when it is the endpoint check of src's provider
// ([verify.Handshaker]) and records it as a request with status
// handshake (or rejected, when the check fails verification). done is
// false for an ordinary request, which the caller goes on to verify.
func (h *Handler) handshake(w http.ResponseWriter, r *http.Request, rec *store.Request, src *catalog.Source, vreq *verify.Request) (outcome string, done bool) {
	hs, ok := src.Verifier.(verify.Handshaker)
	if !ok {
		return "", false
	}
	ans, err := hs.Handshake(vreq)
	// A check is small; what is kept of its body follows the rule for
	// requests that are not events.
	h.keepRejectedBody(rec, vreq.Body, int64(len(vreq.Body)), true)
	switch {
	case err != nil:
		h.reject(w, r, rec, http.StatusUnauthorized, "handshake refused: "+err.Error())
		return OutcomeUnauthorized, true
	case ans == nil:
		return "", false
	}
	rec.Status, rec.Reason, rec.HTTPStatus = store.RequestHandshake, ans.Note, ans.Status
	id, err := h.store.RequestInsert(r.Context(), rec)
	if err != nil {
		// Recorded like any request: unrecorded, the provider is told to
		// try again rather than given its answer.
		h.log.Error("ingest: storage refused the handshake", "source", rec.Source, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable; the request was not stored, retry later"})
		return OutcomeStorageError, true
	}
	h.log.Info("ingest: handshake answered", "source", rec.Source, "note", ans.Note, "request_id", id)
	for k, vs := range ans.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(ans.Status)
	w.Write(ans.Body)
	return OutcomeHandshake, true
}
