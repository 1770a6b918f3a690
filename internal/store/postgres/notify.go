package postgres

import (
	"context"
	"encoding/json"
	"sync"
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

// notifier sends the notifications of committed write transactions to
// the other instances, from a goroutine of its own, in a short
// transaction of its own on a pool connection. It takes whatever queued
// while its previous send was in flight (no linger) and coalesces it
// (see [Store.payloads]).
//
// Why not inside the committing transaction: PostgreSQL holds the lock
// that orders NOTIFY (a heavyweight lock on the notify queue, taken in
// PreCommit_Notify) until the transaction ends, that is through the WAL
// flush of its commit, so notifying transactions commit one after the
// other and never share a flush. A transaction that only notifies writes
// no WAL of its own before its commit record, so its commit does not wait
// for a flush and the lock is held for microseconds. The data
// transactions, no longer notifying, share WAL flushes (PostgreSQL's own
// group commit). A notification is still sent only after the change it
// announces has committed; if the process dies in between, it is lost,
// as it is when the listener is reconnecting: receivers also poll.
type notifier struct {
	s       *Store
	mu      sync.Mutex
	pending []store.Notification
	wake    chan struct{} // capacity 1: something is pending
}

func newNotifier(s *Store) *notifier {
	return &notifier{s: s, wake: make(chan struct{}, 1)}
}

// send queues notes to be sent. It never blocks.
func (n *notifier) send(notes []store.Notification) {
	if len(notes) == 0 {
		return
	}
	n.mu.Lock()
	n.pending = append(n.pending, notes...)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// run sends what is queued until done is closed (the writers have
// exited), then sends what is left and returns.
func (n *notifier) run(done <-chan struct{}) {
	var buf []store.Notification
	for {
		select {
		case <-n.wake:
		case <-done:
			n.flush(buf)
			return
		}
		buf = n.flush(buf)
	}
}

// flush sends everything pending and returns buf for reuse.
func (n *notifier) flush(buf []store.Notification) []store.Notification {
	n.mu.Lock()
	buf, n.pending = n.pending, buf[:0]
	n.mu.Unlock()
	payloads := n.s.payloads(buf)
	if len(payloads) == 0 {
		return buf
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(n.s.life), n.s.opts.WriteTimeout)
	defer cancel()
	if _, err := n.s.pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, n.s.channel, payloads); err != nil {
		// Lost hints: the other instances poll.
		n.s.log.Warn("postgres notify failed", "channel", n.s.channel, "notifications", len(payloads), "err", err)
	}
	return buf
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
