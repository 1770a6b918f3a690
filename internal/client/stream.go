package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// StreamedEvent is one event of [Client.StreamEvents], with its request.
type StreamedEvent struct {
	Event   store.Event `json:"event"`
	Request *Request    `json:"request"`
}

// RawBody returns the request body as received.
func (e *StreamedEvent) RawBody() []byte {
	if e.Request == nil {
		return nil
	}
	if e.Request.BodyBase64 != "" {
		b, _ := base64.StdEncoding.DecodeString(e.Request.BodyBase64)
		return b
	}
	return []byte(e.Request.Body)
}

// StreamParams says where [Client.StreamEvents] starts.
type StreamParams struct {
	// Source is the source to follow; "" or "*" follows all.
	Source string
	// After starts after this event id. If empty, Since decides.
	After string
	// Since starts at events received at or after this time. If zero
	// (and After is empty), the stream starts now.
	Since time.Time
	// OnOpen, if non-nil, is called once the stream is open, with the time
	// it starts from: a caller that reconnects before seeing any event
	// passes it back as Since.
	OnOpen func(from time.Time)
}

// StreamEvents follows the server's event stream from the point p says,
// calling fn for each event in order. It returns when ctx ends, fn fails,
// or the connection drops; the caller resumes from the last event fn saw.
func (c *Client) StreamEvents(ctx context.Context, p *StreamParams, fn func(*StreamedEvent) error) error {
	u := *c.base
	u.Path = c.base.Path + "/api/v1/events/stream"
	q := url.Values{}
	if p.Source != "" {
		q.Set("source", p.Source)
	}
	switch {
	case p.After != "":
		q.Set("after", p.After)
	case !p.Since.IsZero():
		q.Set("since", p.Since.Format(time.RFC3339Nano))
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build stream request: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// A stream has no overall deadline: use the transport without the
	// client's timeout.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return fmt.Errorf("open event stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 32<<20)
	var data strings.Builder
	kind := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			kind = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case line == "" && kind == "open":
			var open struct {
				From time.Time `json:"from"`
			}
			if err := json.Unmarshal([]byte(data.String()), &open); err != nil {
				return fmt.Errorf("decode stream opening: %w", err)
			}
			data.Reset()
			kind = ""
			if p.OnOpen != nil {
				p.OnOpen(open.From)
			}
		case line == "" && data.Len() > 0:
			kind = ""
			var ev StreamedEvent
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return fmt.Errorf("decode streamed event: %w", err)
			}
			data.Reset()
			if err := fn(&ev); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read event stream: %w", err)
	}
	return fmt.Errorf("event stream closed by the server")
}

// ListenAttempt is what `mailroom listen` reports of one forward.
type ListenAttempt struct {
	Session      string  `json:"session"`
	StatusCode   int     `json:"status_code,omitempty"`
	DurationMS   float64 `json:"duration_ms"`
	Error        string  `json:"error,omitempty"`
	ResponseBody string  `json:"response_body,omitempty"`
}

// RecordListenAttempt records a forward of event id as a delivery to
// "listen:<session>" with one attempt.
func (c *Client) RecordListenAttempt(ctx context.Context, id string, a *ListenAttempt) (*store.Delivery, error) {
	var d store.Delivery
	if _, err := c.Call(ctx, http.MethodPost, "/events/"+url.PathEscape(id)+"/listen-attempts", nil, a, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
