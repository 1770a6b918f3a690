package verify

import (
	"encoding/json"
	"net/http"
)

// Handshake is the answer a source gives itself to a provider's endpoint
// check (Slack's url_verification, Meta's hub.challenge ...), instead of
// recording an event.
type Handshake struct {
	// Status is the HTTP status of the answer.
	Status int
	// Header holds the answer's headers (its Content-Type at least).
	Header http.Header
	// Body is the answer's body.
	Body []byte
	// Note says what was answered, for the request's record and the
	// operator: "slack url_verification answered".
	Note string
}

// Handshaker is implemented by the verifiers of providers that check an
// endpoint before (or while) sending to it. Ingest asks it before Verify.
type Handshaker interface {
	// Handshake returns the answer to r when r is the provider's endpoint
	// check, and nil when r is an ordinary request. Where the provider
	// signs its check, Handshake verifies r first, and a check that fails
	// is an error wrapping one of the package's sentinels.
	Handshake(r *Request) (*Handshake, error)
}

// textAnswer is a 200 text/plain handshake answer holding body.
func textAnswer(body, note string) *Handshake {
	return &Handshake{Status: http.StatusOK, Body: []byte(body), Note: note,
		Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "X-Content-Type-Options": {"nosniff"}}}
}

// jsonAnswer is a 200 application/json handshake answer holding v.
func jsonAnswer(v any, note string) *Handshake {
	b, _ := json.Marshal(v) // maps and structs of strings: cannot fail
	return &Handshake{Status: http.StatusOK, Body: b, Note: note, Header: http.Header{"Content-Type": {"application/json"}}}
}
