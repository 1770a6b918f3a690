package main

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/store"
)

// newEventsCommand is `mailroom events list|show|retry|replay`.
func newEventsCommand() *cobra.Command {
	var cf clientFlags
	cmd := groupCommand("events", "Inspect events on a running server, retry their deliveries, replay them")
	addClientFlags(cmd, &cf)
	cmd.AddCommand(newEventsListCommand(&cf), newEventsShowCommand(&cf), newEventsRetryCommand(&cf), newEventsReplayCommand(&cf))
	return cmd
}

func newEventsListCommand(cf *clientFlags) *cobra.Command {
	var lf listFlags
	var where []string
	var text string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List events, newest first, or search their bodies (--where, --search)",
		Long: `List events, newest first, or search their request bodies:

  --where PATH=VALUE  the body holds VALUE at PATH (repeat for conditions that
                      must all hold): data.object.customer=cus_123,
                      items[0].sku="A-1", data.object.amount=9007199254740993.
                      VALUE is JSON (numbers compared exactly, true, false,
                      null, "quoted strings"); text that is not JSON is a string.
  --search TEXT       the body contains TEXT (ASCII letters in any case).

A search examines at most 5,000 events per call, so a page may be short or
empty while a --cursor to go on is printed.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := lf.values(time.Now())
			if err != nil {
				return err
			}
			for _, w := range where {
				q.Add("where", w)
			}
			if text != "" {
				q.Set("q", text)
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			page, err := c.Events(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("list events: %w", err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), page.Raw)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "RECEIVED", "SOURCE", "TYPE", "STATUS", "DELIVERIES")
			for _, e := range page.Data {
				t.row(e.ID, when(e.ReceivedAt), e.Source, e.Type, e.Status, strconv.Itoa(e.Deliveries))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(page.Data) == 0 && page.NextCursor != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "no match among the events this call examined; older events remain")
			}
			moreHint(cmd, page.NextCursor)
			return nil
		},
	}
	lf.register(cmd, "routed, ignored", true, "source", "type", "since", "until")
	cmd.Flags().StringArrayVar(&where, "where", nil, "only events whose body holds VALUE at PATH, as PATH=VALUE (repeatable)")
	cmd.Flags().StringVar(&text, "search", "", "only events whose body contains this text")
	return cmd
}

func newEventsShowCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show EVENT_ID",
		Short: "Show an event: its request, body and every delivery with its last error",
		Args:  exactArgs(1, "one event id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			e, err := c.Event(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("show event %s: %w", args[0], err)
			}
			w := cmd.OutOrStdout()
			if cf.json {
				return printJSON(w, e.Raw)
			}
			req := "removed by retention"
			if e.Request != nil {
				req = fmt.Sprintf("%s (%s, answered %d) from %s", e.Request.ID, e.Request.Status, e.Request.HTTPStatus, e.Request.RemoteAddr)
			}
			dedup := e.DedupKey
			if e.DedupError != "" {
				dedup = "none (" + e.DedupError + ")"
			}
			if err := details(w,
				"Event", e.ID,
				"Source", e.Source,
				"Received", when(e.ReceivedAt),
				"Type", e.Type,
				"Dedup key", dedup,
				"Status", e.Status,
				"Request", req,
			); err != nil {
				return err
			}
			fmt.Fprintln(w)
			if len(e.Deliveries) == 0 {
				fmt.Fprintln(w, "No deliveries: no connection matched.")
			} else {
				t := newTable(w, "DELIVERY", "DESTINATION", "STATUS", "ATTEMPTS", "LAST STATUS", "LAST ERROR", "NEXT ATTEMPT")
				for _, d := range e.Deliveries {
					next := ""
					if d.Status == store.DeliveryPending {
						next = when(d.NextAttemptAt)
					}
					t.row(d.ID, d.Destination, d.Status, strconv.Itoa(d.Attempts), status(d.LastStatus), d.LastError, next)
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			if e.Request != nil {
				fmt.Fprintln(w)
				switch {
				case e.Request.Body != "":
					fmt.Fprintf(w, "Body:\n%s\n", prettyBody(e.Request.Body))
				case e.Request.BodyBase64 != "":
					fmt.Fprintf(w, "Body (base64):\n%s\n", e.Request.BodyBase64)
				default:
					fmt.Fprintln(w, "Body: empty")
				}
			}
			return nil
		},
	}
}

func newEventsRetryCommand(cf *clientFlags) *cobra.Command {
	var statusFlag string
	cmd := &cobra.Command{
		Use:   "retry EVENT_ID",
		Short: "Retry the event's dead deliveries (or those in --status)",
		Args:  exactArgs(1, "one event id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			// Bulk retry does not check that the event exists: ask first,
			// so that a typo is "not found" rather than "retried 0".
			if _, err := c.Event(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("retry event %s: %w", args[0], err)
			}
			q := url.Values{"event_id": {args[0]}, "status": {statusFlag}}
			res, err := c.DeliveryRetryMany(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("retry deliveries of event %s: %w", args[0], err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), res.Raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "retried %d %s deliveries of %s\n", res.Retried, statusFlag, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&statusFlag, "status", store.DeliveryDead, "retry the event's deliveries in this status: dead, pending or succeeded")
	return cmd
}

func newEventsReplayCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "replay EVENT_ID",
		Short: "Route the event again through today's connections and deliver it anew",
		Args:  exactArgs(1, "one event id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			res, err := c.EventReplay(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("replay event %s: %w", args[0], err)
			}
			w := cmd.OutOrStdout()
			if cf.json {
				return printJSON(w, res.Raw)
			}
			if len(res.Deliveries) == 0 {
				fmt.Fprintln(w, "no connection matches the event today: nothing to deliver")
				return nil
			}
			t := newTable(w, "DELIVERY", "DESTINATION", "STATUS")
			for _, d := range res.Deliveries {
				t.row(d.ID, d.Destination, d.Status)
			}
			return t.flush()
		},
	}
}
