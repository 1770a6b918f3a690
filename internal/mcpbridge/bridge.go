// Package mcpbridge serves MCP over stdio for local agents (Claude Code,
// Claude Desktop) by bridging each JSON-RPC message to a running
// mailroom's Streamable HTTP endpoint. Because it forwards messages as
// they are, everything the server does (both Tasks wire forms, resource
// subscriptions, listen streams) works over stdio unchanged. With channels
// it also declares the experimental claude/channel capability and pushes
// each new event of the allowed sources as notifications/claude/channel.
package mcpbridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configures a [Bridge].
type Options struct {
	// Server is the mailroom base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Token is the bearer token for /mcp, if the server needs one.
	Token string
	// Channels are the sources whose new events are pushed as
	// notifications/claude/channel. Empty disables channels.
	Channels []string
	// HTTPClient is used for all requests; nil means a client without a
	// timeout (streams are long-lived).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Bridge is one stdio session bridged to HTTP.
type Bridge struct {
	opts Options
	url  string
	hc   *http.Client
	log  *slog.Logger

	outMu sync.Mutex
	out   io.Writer

	mu          sync.Mutex
	session     string // Mcp-Session-Id of the legacy session
	version     string // negotiated legacy protocol version
	initialized chan struct{}
	initOnce    sync.Once
}

// New returns a bridge.
func New(opts Options) *Bridge {
	b := &Bridge{opts: opts, url: strings.TrimRight(opts.Server, "/") + "/mcp", hc: opts.HTTPClient, log: opts.Logger, initialized: make(chan struct{})}
	if b.hc == nil {
		b.hc = &http.Client{}
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b
}

// message is what the bridge reads of a JSON-RPC message.
type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params struct {
		Name   string         `json:"name,omitempty"`
		TaskID string         `json:"taskId,omitempty"`
		URI    string         `json:"uri,omitempty"`
		Meta   map[string]any `json:"_meta,omitempty"`
	} `json:"params"`
}

func (m *message) protocol() string {
	v, _ := m.Params.Meta["io.modelcontextprotocol/protocolVersion"].(string)
	return v
}

// Run bridges in to out until in ends or ctx is done.
func (b *Bridge) Run(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.out = out
	var wg sync.WaitGroup
	defer wg.Wait()
	if len(b.opts.Channels) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.runChannels(ctx)
		}()
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		raw := append([]byte(nil), line...)
		var m message
		if err := json.Unmarshal(raw, &m); err != nil {
			b.writeError(nil, -32700, "parse error: "+err.Error())
			continue
		}
		// The handshake and notifications go in order; requests run
		// concurrently, since tasks/result and listen block.
		if m.Method == "initialize" || len(m.ID) == 0 || m.Method == "" {
			b.forward(ctx, &m, raw)
			if m.Method == "notifications/initialized" {
				b.startLegacyStream(ctx, &wg)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.forward(ctx, &m, raw)
		}()
	}
	cancel()
	b.closeSession()
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("read stdin: %w", err)
	}
	return nil
}

// forward POSTs one message and writes every message of the answer.
func (b *Bridge) forward(ctx context.Context, m *message, raw []byte) {
	modern := m.Method == "server/discover" || m.protocol() >= "2026-07-28"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, bytes.NewReader(raw))
	if err != nil {
		b.writeError(m.ID, -32603, err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	b.auth(req)
	b.mu.Lock()
	session, version := b.session, b.version
	b.mu.Unlock()
	if modern {
		req.Header.Set("Mcp-Protocol-Version", m.protocol())
		if m.Method == "server/discover" && m.protocol() == "" {
			req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		}
		if m.Method != "" {
			req.Header.Set("Mcp-Method", m.Method)
		}
		switch {
		case m.Params.Name != "":
			req.Header.Set("Mcp-Name", m.Params.Name)
		case m.Params.TaskID != "":
			req.Header.Set("Mcp-Name", m.Params.TaskID)
		case m.Params.URI != "" && m.Method == "resources/read":
			req.Header.Set("Mcp-Name", m.Params.URI)
		}
	} else {
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		if version != "" {
			req.Header.Set("Mcp-Protocol-Version", version)
		}
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil && len(m.ID) > 0 {
			b.writeError(m.ID, -32603, "mailroom unreachable: "+err.Error())
		}
		return
	}
	defer resp.Body.Close()
	if s := resp.Header.Get("Mcp-Session-Id"); s != "" && m.Method == "initialize" {
		b.mu.Lock()
		b.session = s
		b.mu.Unlock()
	}
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return
	case strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
		b.copySSE(resp.Body, m)
	case strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"):
		body, _ := io.ReadAll(resp.Body)
		b.emit(m, body)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if len(m.ID) > 0 {
			b.writeError(m.ID, -32603, fmt.Sprintf("mailroom answered %s: %s", resp.Status, strings.TrimSpace(string(body))))
		}
	}
}

// emit writes one message from the server, patching the initialize result.
func (b *Bridge) emit(req *message, body []byte) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return
	}
	if req != nil && req.Method == "initialize" {
		body = b.patchInitialize(body)
	}
	b.write(body)
}

// patchInitialize records the negotiated version and declares channels.
func (b *Bridge) patchInitialize(body []byte) []byte {
	var resp map[string]any
	if json.Unmarshal(body, &resp) != nil {
		return body
	}
	result, _ := resp["result"].(map[string]any)
	if result == nil {
		return body
	}
	if v, ok := result["protocolVersion"].(string); ok {
		b.mu.Lock()
		b.version = v
		b.mu.Unlock()
	}
	if len(b.opts.Channels) > 0 {
		caps, _ := result["capabilities"].(map[string]any)
		if caps == nil {
			caps = map[string]any{}
			result["capabilities"] = caps
		}
		exp, _ := caps["experimental"].(map[string]any)
		if exp == nil {
			exp = map[string]any{}
			caps["experimental"] = exp
		}
		exp["claude/channel"] = map[string]any{}
		if ins, _ := result["instructions"].(string); true {
			result["instructions"] = strings.TrimSpace(ins + "\nEvents from mailroom sources " + strings.Join(b.opts.Channels, ", ") +
				" arrive as <channel> messages; each names its event_id for get_event.")
		}
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return body
	}
	return out
}

// copySSE writes each SSE data payload as one stdio message.
func (b *Bridge) copySSE(r io.Reader, req *message) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case line == "":
			if data.Len() > 0 {
				b.emit(req, data.Bytes())
				data.Reset()
			}
		}
	}
	if data.Len() > 0 {
		b.emit(req, data.Bytes())
	}
}

// startLegacyStream opens the session's GET stream once, for server
// notifications (task status, resource updates, list changes).
func (b *Bridge) startLegacyStream(ctx context.Context, wg *sync.WaitGroup) {
	b.initOnce.Do(func() {
		close(b.initialized)
		b.mu.Lock()
		session, version := b.session, b.version
		b.mu.Unlock()
		if session == "" {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.url, nil)
				req.Header.Set("Accept", "text/event-stream")
				req.Header.Set("Mcp-Session-Id", session)
				req.Header.Set("Mcp-Protocol-Version", version)
				b.auth(req)
				resp, err := b.hc.Do(req)
				if err == nil {
					if resp.StatusCode == http.StatusOK {
						b.copySSE(resp.Body, nil)
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
						return // session gone or no stream offered
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	})
}

func (b *Bridge) closeSession() {
	b.mu.Lock()
	session := b.session
	b.mu.Unlock()
	if session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, b.url, nil)
	req.Header.Set("Mcp-Session-Id", session)
	b.auth(req)
	if resp, err := b.hc.Do(req); err == nil {
		resp.Body.Close()
	}
}

func (b *Bridge) auth(req *http.Request) {
	if b.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+b.opts.Token)
	}
}

func (b *Bridge) write(msg []byte) {
	b.outMu.Lock()
	defer b.outMu.Unlock()
	b.out.Write(msg)
	b.out.Write([]byte("\n"))
}

func (b *Bridge) writeError(id json.RawMessage, code int, msg string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	out, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
	b.write(out)
}
