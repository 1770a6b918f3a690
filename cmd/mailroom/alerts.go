package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

// newAlertsCommand is `mailroom alerts list`.
func newAlertsCommand() *cobra.Command {
	var cf clientFlags
	cmd := groupCommand("alerts", "List alerts on failing destinations on a running server")
	addClientFlags(cmd, &cf)
	var open bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List alerts, newest first: open ones and recently resolved ones",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			page, err := c.Alerts(cmd.Context(), open)
			if err != nil {
				return fmt.Errorf("list alerts: %w", err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), page.Raw)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "DESTINATION", "STATE", "REASON", "OPENED", "RESOLVED", "FAILURES", "DEAD", "LAST ERROR")
			for _, a := range page.Data {
				state := "open"
				if !a.Open() {
					state = "resolved"
				}
				t.row(a.ID, a.Destination, state, a.Reason, when(a.OpenedAt), when(a.ResolvedAt), strconv.Itoa(a.Failures), strconv.Itoa(a.Dead), a.LastError)
			}
			return t.flush()
		},
	}
	list.Flags().BoolVar(&open, "open", false, "only alerts not yet resolved")
	cmd.AddCommand(list)
	return cmd
}
