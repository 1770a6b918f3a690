package mailroomtask

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

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/mcpwire"
)

// Task statuses, as MCP and mailroom name them.
const (
	statusCompleted = "completed"
	statusFailed    = "failed"
	statusCancelled = "cancelled"
)

func terminal(status string) bool {
	return status == statusCompleted || status == statusFailed || status == statusCancelled
}

// taskMetaKey carries a legacy params.task through the SDK, which drops
// unknown params; [Tasks.Handler] moves it there.
const taskMetaKey = "mailroomtask.internal/task"

// maxWait is the longest long-poll mailroom's API takes.
const maxWait = 30 * time.Second

var (
	errNotFound = errors.New("task not found")
	errConflict = errors.New("task is terminal")
)

// apiTask is a task as mailroom's admin API shows it.
type apiTask struct {
	ID            string          `json:"id"`
	Owner         string          `json:"owner"`
	Status        string          `json:"status"`
	StatusMessage string          `json:"status_message"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	TTL           time.Duration   `json:"ttl"`
	PollInterval  time.Duration   `json:"poll_interval"`
	Result        json.RawMessage `json:"result"`
	Error         json.RawMessage `json:"error"`
}

func (a *apiTask) legacy() mcpwire.LegacyTask {
	return mcpwire.NewLegacyTask(a.ID, a.Status, a.StatusMessage, a.CreatedAt, a.UpdatedAt, a.TTL, a.PollInterval)
}

func (a *apiTask) modern() mcpwire.ModernTask {
	return mcpwire.NewModernTask(a.ID, a.Status, a.StatusMessage, a.CreatedAt, a.UpdatedAt, a.TTL, a.PollInterval, a.Result, a.Error)
}

// apiClient calls mailroom's task endpoints.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

func newAPIClient(server, token string, hc *http.Client) (*apiClient, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mailroomtask: server %q: want an http or https base URL", server)
	}
	return &apiClient{base: u, token: token, http: hc}, nil
}

func (c *apiClient) do(ctx context.Context, method, path string, q url.Values, in any) (*apiTask, error) {
	u := *c.base
	u.Path += "/api/v1/" + path
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mailroom %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("mailroom %s %s: read answer: %w", method, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("mailroom %s %s: %w", method, path, errNotFound)
	case resp.StatusCode == http.StatusConflict:
		return nil, fmt.Errorf("mailroom %s %s: %w", method, path, errConflict)
	case resp.StatusCode/100 != 2:
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return nil, fmt.Errorf("mailroom %s %s: %d %s", method, path, resp.StatusCode, e.Error)
	}
	var t apiTask
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("mailroom %s %s: decode task: %w", method, path, err)
	}
	return &t, nil
}

// create registers w with mailroom as a task of owner.
// A zero ttl leaves mailroom's default (timeout + 1h).
func (c *apiClient) create(ctx context.Context, w *Wait, owner, tool string, ttl time.Duration) (*apiTask, error) {
	body := map[string]any{"source": w.Source, "type": w.Type, "match": w.Match, "filter": w.Filter,
		"owner": owner, "tool": tool, "status_message": w.Message}
	if w.Timeout > 0 {
		body["timeout"] = w.Timeout.String()
	}
	if ttl > 0 {
		body["ttl"] = ttl.String()
	}
	return c.do(ctx, http.MethodPost, "tasks", nil, body)
}

// get reads a task, first waiting up to wait for it to be terminal.
func (c *apiClient) get(ctx context.Context, id string, wait time.Duration) (*apiTask, error) {
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.Round(time.Millisecond).String())
	}
	return c.do(ctx, http.MethodGet, "tasks/"+url.PathEscape(id), q, nil)
}

func (c *apiClient) cancel(ctx context.Context, id string) (*apiTask, error) {
	return c.do(ctx, http.MethodPost, "tasks/"+url.PathEscape(id)+"/cancel", nil, nil)
}

// rawResult is mcpwire's hand-built Result.
type rawResult = mcpwire.RawResult

// patchObject re-encodes res as an object, lets edit change it, and keeps
// its _meta.
func patchObject(res mcp.Result, edit func(map[string]any)) mcp.Result {
	return mcpwire.Patch(res, edit)
}

// takeTaskParam removes the params.task that [Tasks.Handler] moved into
// _meta and reports whether there was one.
func takeTaskParam(p *mcp.CallToolParamsRaw) (*taskRequest, bool) {
	meta := p.GetMeta()
	raw, ok := meta[taskMetaKey]
	if !ok {
		return nil, false
	}
	delete(meta, taskMetaKey)
	var tr struct {
		TTL *int64 `json:"ttl"`
	}
	b, _ := json.Marshal(raw)
	_ = json.Unmarshal(b, &tr)
	r := &taskRequest{}
	if tr.TTL != nil && *tr.TTL > 0 {
		r.ttl = time.Duration(*tr.TTL) * time.Millisecond
	}
	return r, true
}

// Handler wraps the go-sdk's Streamable HTTP handler for 2025-11-25 Tasks:
// it moves a tools/call params.task where the SDK keeps it (dropping one
// a client planted there itself), and keeps each session's GET stream so
// that task status notifications reach the client.
func (t *Tasks) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
			if err != nil {
				http.Error(w, "read body: "+err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			body = mcpwire.MoveTaskParam(body, taskMetaKey)
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			next.ServeHTTP(w, r)
		case http.MethodGet:
			id := r.Header.Get("Mcp-Session-Id")
			if id == "" {
				next.ServeHTTP(w, r)
				return
			}
			s := mcpwire.NewSSEStream(w, false)
			t.mu.Lock()
			t.streams[id] = s
			t.mu.Unlock()
			defer func() {
				s.Close()
				t.mu.Lock()
				if t.streams[id] == s {
					delete(t.streams, id)
				}
				t.mu.Unlock()
			}()
			next.ServeHTTP(s, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// HTTPHandler serves Streamable HTTP for s in both wire forms: requests of
// 2026-07-28 and later (by their MCP-Protocol-Version header, or
// server/discover) go to a stateless go-sdk handler, as that revision has
// no sessions; older ones to a stateful one wrapped by [Tasks.Handler].
// opts configures both SDK handlers (nil for the defaults).
func (t *Tasks) HTTPHandler(s *mcp.Server, opts *mcp.StreamableHTTPOptions) http.Handler {
	var o mcp.StreamableHTTPOptions
	if opts != nil {
		o = *opts
	}
	getServer := func(*http.Request) *mcp.Server { return s }
	legacy := t.Handler(mcp.NewStreamableHTTPHandler(getServer, &o))
	o.Stateless = true
	modern := mcp.NewStreamableHTTPHandler(getServer, &o)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= protocolModern || r.Header.Get("Mcp-Method") == "server/discover" {
			if r.Method == http.MethodPost && !checkTaskName(w, r) {
				return
			}
			modern.ServeHTTP(w, r)
			return
		}
		legacy.ServeHTTP(w, r)
	})
}

// checkTaskName answers 400 with -32020 when a tasks/* request's Mcp-Name
// is not its params.taskId ([mcpwire.CheckTaskName]) and reports whether
// the request may go on. It reads the body and puts it back.
func checkTaskName(w http.ResponseWriter, r *http.Request) bool {
	switch r.Header.Get("Mcp-Method") {
	case "tasks/get", "tasks/update", "tasks/cancel":
	default:
		return true // the SDK checks Mcp-Method against the body
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			TaskID string `json:"taskId"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil {
		return true // the SDK answers malformed messages
	}
	if err := mcpwire.CheckTaskName(r.Header, msg.Method, msg.Params.TaskID); err != nil {
		out, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": err})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(out)
		return false
	}
	return true
}

// notify sends notifications/tasks/status to a session's GET stream.
func (t *Tasks) notify(session string, task *apiTask) {
	t.mu.Lock()
	s := t.streams[session]
	t.mu.Unlock()
	if s == nil {
		return
	}
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "notifications/tasks/status", "params": task.legacy()})
	s.Send(msg)
}
