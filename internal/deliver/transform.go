package deliver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/transform"
)

// maxLogInError caps the console log quoted in the error of an attempt
// whose transformation failed.
const maxLogInError = 1 << 10

// transform runs the transformation of dl's connection, if it has one, on
// hreq (built from the original request req and its destination target)
// and rewrites hreq in place: method, path, query, headers and body. It
// returns the body and URL to sign. An error fails the attempt; it names
// the transformation and quotes its console log.
func (d *Dispatcher) transform(ctx context.Context, dl *store.Delivery, req *store.Request, hreq *http.Request, target string) ([]byte, string, error) {
	if d.opts.Transforms == nil || dl.ConnectionID == "" {
		return req.Body, target, nil
	}
	prog, err := d.opts.Transforms(dl.ConnectionID)
	if err != nil {
		return nil, "", fmt.Errorf("transform: %w", err)
	}
	if prog == nil {
		return req.Body, target, nil
	}
	in := OutgoingRequest(hreq, req.Body)
	res, err := prog.Run(ctx, in, &transform.Event{ID: dl.EventID, Source: dl.Source, Header: req.Headers})
	if err != nil {
		msg := "transform: " + err.Error()
		if log := strings.Join(res.Log, "\n"); log != "" {
			if len(log) > maxLogInError {
				log = log[len(log)-maxLogInError:]
			}
			msg += "; console: " + log
		}
		return nil, "", fmt.Errorf("%s", msg)
	}
	out := res.Request
	hreq.Method = out.Method
	hreq.URL.Path, hreq.URL.RawPath, hreq.URL.RawQuery = out.Path, "", out.Query.Encode()
	clear(hreq.Header)
	for k, vs := range out.Header {
		if http.CanonicalHeaderKey(k) == "Host" {
			continue // the destination's host is not the script's to change
		}
		hreq.Header[k] = vs
	}
	hreq.Body = io.NopCloser(bytes.NewReader(out.Body))
	hreq.ContentLength = int64(len(out.Body))
	hreq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out.Body)), nil }
	return out.Body, hreq.URL.String(), nil
}

// OutgoingRequest returns hreq, an attempt's request before the headers
// mailroom sets last (webhook-id, webhook-timestamp, the signature,
// X-Mailroom-*, traceparent), as a transformation sees it, with body. The
// transformation test of the API shows the same input.
func OutgoingRequest(hreq *http.Request, body []byte) *transform.Request {
	path := hreq.URL.Path
	if path == "" {
		path = "/"
	}
	return &transform.Request{
		Method: hreq.Method,
		Path:   path,
		Query:  hreq.URL.Query(),
		Header: hreq.Header.Clone(),
		Body:   body,
	}
}

// Preview runs prog on the request an attempt of the event eventID (from
// source, carried by the original request req) would send to dest, and
// returns the transformation's input and its result, without sending
// anything. The input and output are those of a real attempt except for
// the headers mailroom sets last; the User-Agent is ua, or the build's
// when empty.
func Preview(ctx context.Context, prog *transform.Program, dest *store.Destination, eventID, source string, req *store.Request, ua string) (*transform.Request, *transform.Result, error) {
	if ua == "" {
		ua = buildinfo.Read().UserAgent()
	}
	hreq, err := newRequest(ctx, dest, req, ua)
	if err != nil {
		return nil, nil, err
	}
	in := OutgoingRequest(hreq, req.Body)
	res, err := prog.Run(ctx, in, &transform.Event{ID: eventID, Source: source, Header: req.Headers})
	return in, res, err
}
