package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/store"
)

// newDeliveriesCommand is `mailroom deliveries list|show|retry`.
func newDeliveriesCommand() *cobra.Command {
	var cf clientFlags
	cmd := groupCommand("deliveries", "Inspect deliveries and their attempts on a running server, retry them")
	addClientFlags(cmd, &cf)
	cmd.AddCommand(newDeliveriesListCommand(&cf), newDeliveriesShowCommand(&cf), newDeliveriesRetryCommand(&cf))
	return cmd
}

const deliveryStatuses = "pending, succeeded, dead"

func newDeliveriesListCommand(cf *clientFlags) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deliveries, newest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := lf.values(time.Now())
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			page, err := c.Deliveries(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("list deliveries: %w", err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), page.Raw)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "CREATED", "EVENT", "DESTINATION", "STATUS", "ATTEMPTS", "LAST STATUS", "LAST ERROR")
			for _, d := range page.Data {
				t.row(d.ID, when(d.CreatedAt), d.EventID, d.Destination, d.Status, strconv.Itoa(d.Attempts), status(d.LastStatus), d.LastError)
			}
			if err := t.flush(); err != nil {
				return err
			}
			moreHint(cmd, page.NextCursor)
			return nil
		},
	}
	lf.register(cmd, deliveryStatuses, true, "source", "destination", "event", "since", "until")
	return cmd
}

func newDeliveriesShowCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show DELIVERY_ID",
		Short: "Show a delivery with every attempt: status, latency, error, response",
		Args:  exactArgs(1, "one delivery id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			d, err := c.Delivery(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("show delivery %s: %w", args[0], err)
			}
			w := cmd.OutOrStdout()
			if cf.json {
				return printJSON(w, d.Raw)
			}
			next := ""
			if d.Status == store.DeliveryPending {
				next = when(d.NextAttemptAt)
			}
			if err := details(w,
				"Delivery", d.ID,
				"Event", d.EventID,
				"Source", d.Source,
				"Destination", d.Destination,
				"Connection", d.ConnectionID,
				"Status", d.Status,
				"Created", when(d.CreatedAt),
				"Next attempt", next,
				"Last error", d.LastError,
				"Retry", retryLine(d.Retry),
			); err != nil {
				return err
			}
			fmt.Fprintln(w)
			if len(d.Attempts) == 0 {
				fmt.Fprintln(w, "No attempts yet.")
				return nil
			}
			t := newTable(w, "#", "STARTED", "DURATION", "STATUS", "ERROR", "RESPONSE")
			for _, a := range d.Attempts {
				resp := a.ResponseBody
				if resp == "" && a.ResponseBodyBase64 != "" {
					resp = "(binary, base64) " + a.ResponseBodyBase64
				}
				dur := (time.Duration(a.DurationMS * float64(time.Millisecond))).Round(time.Millisecond).String()
				t.row(strconv.Itoa(a.Number), when(a.StartedAt), dur, status(a.StatusCode), a.Error, resp)
			}
			return t.flush()
		},
	}
}

func newDeliveriesRetryCommand(cf *clientFlags) *cobra.Command {
	var lf listFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "retry [DELIVERY_ID]",
		Short: "Retry one delivery now, or every delivery matching the filters (dead by default)",
		Long: `Retry one delivery now (whatever its status), or, without an id, every
delivery matching the filters. Bulk retry takes dead deliveries unless
--status says otherwise; with no filter at all it needs --all, so that a
forgotten flag does not resend everything.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("%s takes at most one delivery id", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := lf.values(time.Now())
			if err != nil {
				return err
			}
			if len(args) == 1 && (len(q) > 0 || all) {
				return usageErrorf("give a delivery id or filters, not both")
			}
			if len(args) == 0 && len(q) == 0 && !all {
				return usageErrorf("give a delivery id, filters (--destination, --source, --status, --event, --since, --until), or --all")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(args) == 1 {
				d, err := c.DeliveryRetry(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("retry delivery %s: %w", args[0], err)
				}
				if cf.json {
					return printJSON(w, d.Raw)
				}
				fmt.Fprintf(w, "delivery %s to %s is pending, due %s\n", d.ID, d.Destination, when(d.NextAttemptAt))
				return nil
			}
			res, err := c.DeliveryRetryMany(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("retry deliveries: %w", err)
			}
			if cf.json {
				return printJSON(w, res.Raw)
			}
			fmt.Fprintf(w, "retried %d deliveries\n", res.Retried)
			return nil
		},
	}
	lf.register(cmd, deliveryStatuses+" (default dead)", false, "source", "destination", "event", "since", "until")
	cmd.Flags().BoolVar(&all, "all", false, "with no filter, retry every dead delivery")
	return cmd
}

// retryLine is the retry policy that decided a delivery's last attempt,
// and what it decided, in one line; "" before the first attempt.
func retryLine(r *store.RetryApplied) string {
	if r == nil {
		return ""
	}
	return r.String()
}
