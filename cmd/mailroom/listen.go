package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/client"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// listenFlags are the flags of `mailroom listen`.
type listenFlags struct {
	clientFlags
	source  string
	filter  string
	forward string
	after   string
	session string
}

// forwardedHeaders returns the request headers a forward keeps: the
// content type and user agent, and every header a provider of the verify
// table needs to verify the copy.
func forwardedHeaders() []string {
	hs := []string{"Content-Type", "User-Agent"}
	for _, p := range verify.Providers() {
		for _, h := range p.Headers {
			if !slices.Contains(hs, h) {
				hs = append(hs, h)
			}
		}
	}
	return hs
}

func newListenCommand() *cobra.Command {
	var f listenFlags
	cmd := &cobra.Command{
		Use:   "listen --forward URL",
		Short: "Forward events from a running mailroom to a local URL",
		Long: `Follow a running mailroom's events and POST each one (its original body,
content type and provider headers) to a local URL, printing one line per
event with the local answer. It starts with the events received from now
on (or after --after), and says "listening on" once connected. It reconnects after a server restart or a
network drop and resumes after the last event it saw: no gaps, no repeats.
Each forward is recorded on the server as a delivery to "listen:SESSION"
with its attempt, visible with the event's other deliveries.

  mailroom listen --source stripe --forward http://localhost:3000/webhooks`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runListen(cmd.Context(), cmd.OutOrStdout(), &f) },
	}
	addClientFlags(cmd, &f.clientFlags)
	cmd.Flags().StringVar(&f.source, "source", "*", "only events of this source ('*' for all)")
	cmd.Flags().StringVar(&f.filter, "filter", "", "only events for which this CEL expression (over body, headers, query, path, source) is true")
	cmd.Flags().StringVar(&f.forward, "forward", "", "local URL to POST each event to (required)")
	cmd.Flags().StringVar(&f.after, "after", "", "start after this event id instead of from now")
	cmd.Flags().StringVar(&f.session, "session", "", "name of this listen session (default: a random one)")
	return cmd
}

func runListen(ctx context.Context, out io.Writer, f *listenFlags) error {
	if f.forward == "" {
		return usageErrorf("--forward is required")
	}
	if u, err := url.Parse(f.forward); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("--forward %q: want an http(s) URL", f.forward)
	}
	var filter *route.Program
	if f.filter != "" {
		c, err := route.NewCompiler()
		if err != nil {
			return err
		}
		if filter, err = c.CompileFilter(f.filter); err != nil {
			return usageErrorf("--filter: %v", err)
		}
	}
	if f.session == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		f.session = hex.EncodeToString(b[:])
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	local := &http.Client{Timeout: 30 * time.Second}
	keep := forwardedHeaders()
	// The stream starts after --after, else now; a reconnection resumes
	// after the last event seen, or from the time the first connection
	// started when none has been seen yet.
	p := &client.StreamParams{Source: f.source, After: f.after}
	announced := false
	p.OnOpen = func(from time.Time) {
		if p.After == "" && p.Since.IsZero() {
			p.Since = from
		}
		if !announced {
			announced = true
			fmt.Fprintf(out, "listening on %s (source %s) as session %s, forwarding to %s\n", f.server, f.source, f.session, f.forward)
		}
	}
	backoff := time.Second
	// The server re-sends a few seconds before the resume point (so that a
	// late commit is not missed); seen drops what was already forwarded.
	seen := map[string]time.Time{}
	for {
		err := c.StreamEvents(ctx, p, func(ev *client.StreamedEvent) error {
			backoff = time.Second
			if _, dup := seen[ev.Event.ID]; dup {
				return nil
			}
			seen[ev.Event.ID] = ev.Event.ReceivedAt
			for id, at := range seen {
				if at.Before(ev.Event.ReceivedAt.Add(-time.Minute)) {
					delete(seen, id)
				}
			}
			if filter == nil || matchesStreamed(filter, ev) {
				forwardOne(ctx, out, c, local, f, keep, ev)
			}
			p.After = ev.Event.ID
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		var apiErr *client.Error
		if errors.As(err, &apiErr) && apiErr.Status != http.StatusServiceUnavailable && apiErr.Status < 500 {
			return &codeError{code: exitFailure, err: fmt.Errorf("event stream: %w", err)}
		}
		fmt.Fprintf(out, "%s  disconnected (%v); reconnecting in %s\n", time.Now().Format(time.TimeOnly), err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 15*time.Second)
	}
}

func matchesStreamed(p *route.Program, ev *client.StreamedEvent) bool {
	if ev.Request == nil {
		return false
	}
	q, _ := url.ParseQuery(ev.Request.Query)
	return p.Match(route.NewInput(ev.Event.Source, ev.Request.Path, q, ev.Request.Headers, ev.RawBody()))
}

// forwardOne POSTs one event to the local URL, prints a line and records
// the attempt on the server.
func forwardOne(ctx context.Context, out io.Writer, c *client.Client, local *http.Client, f *listenFlags, keep []string, ev *client.StreamedEvent) {
	body := ev.RawBody()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.forward, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(out, "%s  %s  build request: %v\n", time.Now().Format(time.TimeOnly), ev.Event.ID, err)
		return
	}
	if ev.Request != nil {
		for _, h := range keep {
			if v := ev.Request.Headers.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
	}
	req.Header.Set("X-Mailroom-Event-Id", ev.Event.ID)
	start := time.Now()
	resp, err := local.Do(req)
	att := &client.ListenAttempt{Session: f.session, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	result := ""
	if err != nil {
		att.Error = err.Error()
		result = "error: " + err.Error()
	} else {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		att.StatusCode, att.ResponseBody = resp.StatusCode, string(b)
		result = fmt.Sprintf("%d", resp.StatusCode)
	}
	fmt.Fprintf(out, "%s  %-30s %-10s %-32s -> %s (%.0f ms)\n", time.Now().Format(time.TimeOnly), ev.Event.ID, ev.Event.Source, ev.Event.Type, result, att.DurationMS)
	if _, err := c.RecordListenAttempt(ctx, ev.Event.ID, att); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "mailroom listen: record attempt of %s: %v\n", ev.Event.ID, err)
	}
}
