package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// agent is a minimal MCP client of the 2025-11-25 revision with Tasks,
// over Streamable HTTP: what an agent does to call a tool as a task and
// hear when it completes. (The go-sdk client has no Tasks yet.)
type agent struct {
	url     string
	client  *http.Client
	session string

	mu     sync.Mutex
	nextID int
	// notes receives server notifications from the GET stream.
	notes chan map[string]any
}

// rpcMessage is a JSON-RPC message as the agent reads it.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params map[string]any  `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// connect initializes a session and opens its GET stream, which runs until
// ctx ends.
func connect(ctx context.Context, url string) (*agent, error) {
	a := &agent{url: url, client: &http.Client{}, notes: make(chan map[string]any, 16)}
	if _, err := a.call(ctx, "initialize", map[string]any{
		"protocolVersion": "2025-11-25",
		"capabilities":    map[string]any{"tasks": map[string]any{}},
		"clientInfo":      map[string]any{"name": "payments-agent", "version": "0.1.0"},
	}); err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if err := a.post(ctx, map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}, nil); err != nil {
		return nil, fmt.Errorf("initialized: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return nil, err
	}
	a.headers(req)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open GET stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("open GET stream: %s", resp.Status)
	}
	go func() { // ends with ctx, which closes the body
		defer resp.Body.Close()
		_ = readSSE(resp.Body, func(m *rpcMessage) bool {
			if m.Method != "" {
				select {
				case a.notes <- map[string]any{"method": m.Method, "params": m.Params}:
				case <-ctx.Done():
					return true
				}
			}
			return false
		})
	}()
	return a, nil
}

func (a *agent) headers(req *http.Request) {
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if a.session != "" {
		req.Header.Set("Mcp-Session-Id", a.session)
	}
}

// call sends a request and returns its result.
func (a *agent) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	a.mu.Lock()
	a.nextID++
	id := a.nextID
	a.mu.Unlock()
	var got *rpcMessage
	err := a.post(ctx, map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params}, func(m *rpcMessage) bool {
		if string(m.ID) == fmt.Sprint(id) {
			got = m
			return true
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	if got == nil {
		return nil, fmt.Errorf("%s: no response", method)
	}
	if got.Error != nil {
		return nil, fmt.Errorf("%s: error %d: %s", method, got.Error.Code, got.Error.Message)
	}
	return got.Result, nil
}

// post sends one message and hands each message of the answer to on.
func (a *agent) post(ctx context.Context, msg any, on func(*rpcMessage) bool) error {
	body, _ := json.Marshal(msg)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	a.headers(req)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
		a.session = id
	}
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, raw)
	}
	if on == nil {
		return nil
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var m rpcMessage
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			return err
		}
		on(&m)
		return nil
	}
	return readSSE(resp.Body, on)
}

// readSSE reads JSON-RPC messages from an SSE body until on says stop.
func readSSE(r io.Reader, on func(*rpcMessage) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var m rpcMessage
		if json.Unmarshal([]byte(data), &m) == nil && on(&m) {
			return nil
		}
	}
	return sc.Err()
}
