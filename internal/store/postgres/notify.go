package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailroomhq/mailroom/internal/store"
)

// payload is a notification as sent through NOTIFY. Origin is the sending
// Store, so that a listener skips its own (already published at commit).
type payload struct {
	Kind        string `json:"kind"`
	Destination string `json:"destination,omitempty"`
	Source      string `json:"source,omitempty"`
	ID          string `json:"id,omitempty"`
	Origin      string `json:"origin"`
}

// maxPayload stays under PostgreSQL's 8000-byte NOTIFY payload limit.
const maxPayload = 7900

// payloads encodes the notifications of one transaction for NOTIFY.
// delivery.due is coalesced to one per destination (without an id: what
// wakes a dispatcher is the destination), the rest are deduplicated.
func (s *Store) payloads(notes []store.Notification) []string {
	if len(notes) == 0 {
		return nil
	}
	seen := make(map[store.Notification]bool, len(notes))
	out := make([]string, 0, len(notes))
	for _, n := range notes {
		if n.Kind == store.NotifyDeliveryDue {
			n.ID = ""
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		b, err := json.Marshal(payload{Kind: n.Kind, Destination: n.Destination, Source: n.Source, ID: n.ID, Origin: s.origin})
		if err != nil || len(b) > maxPayload {
			// A hint too large to send: receivers still poll.
			continue
		}
		out = append(out, string(b))
	}
	return out
}

// listener holds the dedicated LISTEN connection and feeds what other
// instances notify into the store's hub.
type listener struct {
	s    *Store
	cfg  *pgx.ConnConfig
	conn *pgx.Conn
}

func newListener(s *Store, cfg *pgx.ConnConfig) *listener {
	return &listener{s: s, cfg: cfg}
}

// connect opens the connection and subscribes to the channel.
func (l *listener) connect(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.s.channel}.Sanitize()); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return err
	}
	l.conn = conn
	return nil
}

// Listener reconnect backoff bounds.
const (
	minListenBackoff = 100 * time.Millisecond
	maxListenBackoff = 5 * time.Second
)

// run receives notifications until ctx ends, reconnecting with backoff
// whenever the connection fails. After a reconnect it publishes a
// catalog.changed and a delivery.due for every destination, because
// whatever was notified while it was away is lost.
func (l *listener) run(ctx context.Context) {
	defer func() {
		if l.conn != nil {
			l.conn.Close(context.WithoutCancel(ctx))
		}
	}()
	var delay time.Duration
	for {
		if l.conn == nil {
			if err := l.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				delay = min(max(delay*2, minListenBackoff), maxListenBackoff)
				l.s.log.Warn("postgres listener: reconnect failed", "channel", l.s.channel, "err", err, "retry_in", delay)
				if !sleep(ctx, delay) {
					return
				}
				continue
			}
			delay = 0
			l.s.log.Info("postgres listener: reconnected", "channel", l.s.channel)
			l.s.hub.Publish(
				store.Notification{Kind: store.NotifyCatalogChanged},
				store.Notification{Kind: store.NotifyDeliveryDue},
			)
		}
		n, err := l.conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.s.log.Warn("postgres listener: connection lost", "channel", l.s.channel, "err", err)
			l.conn.Close(context.WithoutCancel(ctx))
			l.conn = nil
			continue
		}
		var p payload
		if err := json.Unmarshal([]byte(n.Payload), &p); err != nil || p.Kind == "" {
			continue // not ours
		}
		if p.Origin == l.s.origin {
			continue // published at commit
		}
		l.s.hub.Publish(store.Notification{Kind: p.Kind, Destination: p.Destination, Source: p.Source, ID: p.ID})
	}
}

// sleep waits for d or ctx, and reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
