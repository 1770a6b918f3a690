// Package client is a small Go client of mailroom's admin REST API
// (/api/v1), for the inspection CLI and any other tool that talks to a
// running server. It sends the bearer token, turns {"error": ...} answers
// into [*Error] values that keep the HTTP status, and returns each answer
// both decoded and as the raw JSON the server sent (for scripts that want
// it unchanged).
//
// It holds no state besides its configuration and is safe for concurrent
// use. It does not retry: a caller that wants retries decides which calls
// are safe to repeat.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/alert"
	"github.com/mailroomhq/mailroom/internal/store"
)

// DefaultServer is the address of a server started with the default
// configuration.
const DefaultServer = "http://127.0.0.1:8080"

// DefaultTimeout bounds one call when [Options.HTTPClient] is nil.
const DefaultTimeout = 30 * time.Second

// maxAnswer caps the size of an answer read from the server.
const maxAnswer = 64 << 20

// Options tunes [New].
type Options struct {
	// Token is sent as "Authorization: Bearer <Token>". If empty, no
	// Authorization header is sent.
	Token string
	// HTTPClient sends the calls. If nil, a client with [DefaultTimeout].
	HTTPClient *http.Client
}

// Client calls one server's admin API. Build it with [New].
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a Client of the server at base, an http or https URL such
// as [DefaultServer]. opts may be nil.
func New(base string, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want an http or https URL with a host, like %s", base, DefaultServer)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{base: u, token: o.Token, http: o.HTTPClient}, nil
}

// Error is a non-2xx answer from the server.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the server's "error" field, or the start of the body
	// when it sent no JSON error.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Call sends method path (under /api/v1, e.g. "/events") with the query q
// and, when body is non-nil, body as JSON. It returns the raw JSON of a 2xx
// answer, and decodes it into out when out is non-nil. A non-2xx answer is
// an [*Error]; a transport failure is returned wrapped.
func (c *Client) Call(ctx context.Context, method, path string, q url.Values, body, out any) (json.RawMessage, error) {
	u := *c.base
	u.Path = c.base.Path + "/api/v1" + path
	u.RawPath = ""
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request body: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("call server: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		} else if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return nil, &Error{Status: resp.StatusCode, Message: msg}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return raw, nil
}

// Page is one page of a list.
type Page[T any] struct {
	Data []T `json:"data"`
	// NextCursor is passed back as "cursor" for the next page; empty on
	// the last page.
	NextCursor string `json:"next_cursor,omitempty"`
	// Raw is the answer as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// Request is an inbound request as the API shows it: Body holds a UTF-8
// body, BodyBase64 any other.
type Request struct {
	store.Request
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"body_base64,omitempty"`
}

// EventDetail is an event with its request and deliveries.
type EventDetail struct {
	store.Event
	DeliveryCount int              `json:"delivery_count"`
	Deliveries    []store.Delivery `json:"deliveries"`
	// Request is nil once retention has removed it.
	Request *Request        `json:"request"`
	Raw     json.RawMessage `json:"-"`
}

// Attempt is a delivery attempt as the API shows it.
type Attempt struct {
	store.Attempt
	ResponseBody       string `json:"response_body,omitempty"`
	ResponseBodyBase64 string `json:"response_body_base64,omitempty"`
}

// DeliveryDetail is a delivery with its attempts.
type DeliveryDetail struct {
	store.Delivery
	AttemptCount int             `json:"attempt_count"`
	Attempts     []Attempt       `json:"attempts"`
	Raw          json.RawMessage `json:"-"`
}

// Destination is a destination as the API shows it (secrets masked).
type Destination struct {
	store.Destination
	Raw json.RawMessage `json:"-"`
}

// Task is an MCP task as the API shows it.
type Task struct {
	store.Task
	Raw json.RawMessage `json:"-"`
}

// Replay is the answer to an event replay: the deliveries it created.
type Replay struct {
	Deliveries []store.Delivery `json:"deliveries"`
	Raw        json.RawMessage  `json:"-"`
}

// RetryMany is the answer to a bulk retry.
type RetryMany struct {
	Retried int             `json:"retried"`
	Raw     json.RawMessage `json:"-"`
}

// Delivery is a delivery as the API shows it.
type Delivery struct {
	store.Delivery
	Raw json.RawMessage `json:"-"`
}

func list[T any](ctx context.Context, c *Client, path string, q url.Values) (*Page[T], error) {
	var p Page[T]
	raw, err := c.Call(ctx, http.MethodGet, path, q, nil, &p)
	if err != nil {
		return nil, err
	}
	p.Raw = raw
	return &p, nil
}

// Events lists events with the filters in q (source, status, type,
// since, until, cursor, limit).
func (c *Client) Events(ctx context.Context, q url.Values) (*Page[store.Event], error) {
	return list[store.Event](ctx, c, "/events", q)
}

// Event returns one event with its request and deliveries.
func (c *Client) Event(ctx context.Context, id string) (*EventDetail, error) {
	var e EventDetail
	raw, err := c.Call(ctx, http.MethodGet, "/events/"+url.PathEscape(id), nil, nil, &e)
	if err != nil {
		return nil, err
	}
	e.Raw = raw
	return &e, nil
}

// EventReplay routes an event again and returns the new deliveries.
func (c *Client) EventReplay(ctx context.Context, id string) (*Replay, error) {
	var r Replay
	raw, err := c.Call(ctx, http.MethodPost, "/events/"+url.PathEscape(id)+"/replay", nil, nil, &r)
	if err != nil {
		return nil, err
	}
	r.Raw = raw
	return &r, nil
}

// Deliveries lists deliveries with the filters in q (source,
// destination, status, event_id, since, until, cursor, limit).
func (c *Client) Deliveries(ctx context.Context, q url.Values) (*Page[store.Delivery], error) {
	return list[store.Delivery](ctx, c, "/deliveries", q)
}

// Delivery returns one delivery with its attempts.
func (c *Client) Delivery(ctx context.Context, id string) (*DeliveryDetail, error) {
	var d DeliveryDetail
	raw, err := c.Call(ctx, http.MethodGet, "/deliveries/"+url.PathEscape(id), nil, nil, &d)
	if err != nil {
		return nil, err
	}
	d.Raw = raw
	return &d, nil
}

// DeliveryRetry makes one delivery pending and due now.
func (c *Client) DeliveryRetry(ctx context.Context, id string) (*Delivery, error) {
	var d Delivery
	raw, err := c.Call(ctx, http.MethodPost, "/deliveries/"+url.PathEscape(id)+"/retry", nil, nil, &d)
	if err != nil {
		return nil, err
	}
	d.Raw = raw
	return &d, nil
}

// DeliveryRetryMany retries every delivery matching the filters in q
// (source, destination, status, event_id, since, until; status defaults
// to dead on the server).
func (c *Client) DeliveryRetryMany(ctx context.Context, q url.Values) (*RetryMany, error) {
	var r RetryMany
	raw, err := c.Call(ctx, http.MethodPost, "/deliveries/retry", q, nil, &r)
	if err != nil {
		return nil, err
	}
	r.Raw = raw
	return &r, nil
}

// DestinationPause pauses a destination; reason may be empty.
func (c *Client) DestinationPause(ctx context.Context, name, reason string) (*Destination, error) {
	var body any
	if reason != "" {
		body = map[string]string{"reason": reason}
	}
	return c.destinationAction(ctx, name, "pause", body)
}

// DestinationResume resumes a paused destination.
func (c *Client) DestinationResume(ctx context.Context, name string) (*Destination, error) {
	return c.destinationAction(ctx, name, "resume", nil)
}

func (c *Client) destinationAction(ctx context.Context, name, action string, body any) (*Destination, error) {
	var d Destination
	raw, err := c.Call(ctx, http.MethodPost, "/destinations/"+url.PathEscape(name)+"/"+action, nil, body, &d)
	if err != nil {
		return nil, err
	}
	d.Raw = raw
	return &d, nil
}

// Tasks lists MCP tasks of every owner with the filters in q (owner,
// status, open, cursor, limit).
func (c *Client) Tasks(ctx context.Context, q url.Values) (*Page[store.Task], error) {
	return list[store.Task](ctx, c, "/tasks", q)
}

// Task returns one MCP task.
func (c *Client) Task(ctx context.Context, id string) (*Task, error) {
	var t Task
	raw, err := c.Call(ctx, http.MethodGet, "/tasks/"+url.PathEscape(id), nil, nil, &t)
	if err != nil {
		return nil, err
	}
	t.Raw = raw
	return &t, nil
}

// Alerts lists alerts on failing destinations, newest first; with
// openOnly, only those not yet resolved.
func (c *Client) Alerts(ctx context.Context, openOnly bool) (*Page[alert.Alert], error) {
	q := url.Values{}
	if openOnly {
		q.Set("open", "true")
	}
	return list[alert.Alert](ctx, c, "/alerts", q)
}
