package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

// newProjectsCommand is `mailroom projects`.
func newProjectsCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "projects",
		Short: "List the projects on a running server, with their limits and what they hold",
		Long: `List the projects the token acts in (every project for an admin token):
their limits from the config file's projects: (ingest rate, max
destinations, retention; "-" when not set) and how many sources,
destinations and connections each holds.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			page, err := c.Projects(cmd.Context())
			if err != nil {
				return fmt.Errorf("list projects: %w", err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), page.Raw)
			}
			t := newTable(cmd.OutOrStdout(), "PROJECT", "DECLARED", "INGEST RATE", "MAX DESTINATIONS", "RETENTION", "SOURCES", "DESTINATIONS", "CONNECTIONS")
			for _, p := range page.Data {
				maxDest, retention := "-", "-"
				if p.MaxDestinations > 0 {
					maxDest = strconv.Itoa(p.MaxDestinations)
				}
				if p.Retention > 0 {
					retention = p.Retention.String()
				}
				t.row(p.Name, strconv.FormatBool(p.Declared), orDash(p.IngestRate), maxDest, retention,
					strconv.Itoa(p.Sources), strconv.Itoa(p.Destinations), strconv.Itoa(p.Connections))
			}
			return t.flush()
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
