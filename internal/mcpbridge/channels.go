package mcpbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
)

// bearer adds a token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.next.RoundTrip(r)
}

// channelEvent is what the bridge reads of a source resource's events.
type channelEvent struct {
	EventID    string    `json:"event_id"`
	Source     string    `json:"source"`
	Type       string    `json:"type"`
	ReceivedAt time.Time `json:"received_at"`
	// Body is kept as sent, so that a number in it reaches the agent
	// exactly (decoded as any it would pass through float64).
	Body json.RawMessage `json:"body"`
}

// runChannels subscribes to the channel sources' resources on a session of
// its own and turns each new event into notifications/claude/channel.
// It reconnects until ctx ends.
func (b *Bridge) runChannels(ctx context.Context) {
	seen := map[string]bool{}
	for ctx.Err() == nil {
		if err := b.channelSession(ctx, seen); err != nil && ctx.Err() == nil {
			b.log.Warn("channel session ended", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (b *Bridge) channelSession(ctx context.Context, seen map[string]bool) error {
	hc := b.hc
	if b.opts.Token != "" {
		next := hc.Transport
		if next == nil {
			next = http.DefaultTransport
		}
		hc = &http.Client{Transport: bearer{token: b.opts.Token, next: next}}
	}
	updated := make(chan string, 64)
	client := mcp.NewClient(&mcp.Implementation{Name: "mailroom-mcp-bridge", Version: buildinfo.Read().Version}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) {
			select {
			case updated <- r.Params.URI:
			default:
			}
		},
	})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: b.url, HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		return fmt.Errorf("connect for channels: %w", err)
	}
	defer cs.Close()
	uris := map[string]string{}
	for _, src := range b.opts.Channels {
		uri := "mailroom://sources/" + url.PathEscape(src) + "/events"
		uris[uri] = src
		if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
			return fmt.Errorf("subscribe to %s: %w", uri, err)
		}
		// What is there already is history, not news.
		evs, err := readEvents(ctx, cs, uri)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			seen[ev.EventID] = true
		}
	}
	select {
	case <-b.initialized:
	case <-ctx.Done():
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case uri := <-updated:
			if _, ok := uris[uri]; !ok {
				continue
			}
			evs, err := readEvents(ctx, cs, uri)
			if err != nil {
				return err
			}
			sort.Slice(evs, func(i, j int) bool { return evs[i].ReceivedAt.Before(evs[j].ReceivedAt) })
			for _, ev := range evs {
				if seen[ev.EventID] {
					continue
				}
				seen[ev.EventID] = true
				b.pushChannel(ev)
			}
		}
	}
}

func readEvents(ctx context.Context, cs *mcp.ClientSession, uri string) ([]channelEvent, error) {
	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	var out struct {
		Events []channelEvent `json:"events"`
	}
	if len(res.Contents) > 0 {
		if err := json.Unmarshal([]byte(res.Contents[0].Text), &out); err != nil {
			return nil, fmt.Errorf("decode %s: %w", uri, err)
		}
	}
	return out.Events, nil
}

// pushChannel sends one event to the agent as a channel message.
func (b *Bridge) pushChannel(ev channelEvent) {
	body, _ := json.Marshal(ev.Body)
	if len(body) > 4000 {
		body = append(body[:4000], []byte("…")...)
	}
	content := fmt.Sprintf("Webhook %s from %s (event %s): %s", ev.Type, ev.Source, ev.EventID, body)
	msg, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "method": "notifications/claude/channel",
		"params": map[string]any{"content": content, "meta": map[string]string{"source": ev.Source, "type": ev.Type, "event_id": ev.EventID}},
	})
	b.write(msg)
}
