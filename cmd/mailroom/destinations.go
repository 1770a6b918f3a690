package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newDestinationsCommand is `mailroom destinations pause|resume`.
func newDestinationsCommand() *cobra.Command {
	var cf clientFlags
	cmd := groupCommand("destinations", "Pause and resume destinations on a running server")
	addClientFlags(cmd, &cf)

	var reason string
	pause := &cobra.Command{
		Use:   "pause NAME",
		Short: "Hold a destination's deliveries until it is resumed",
		Args:  exactArgs(1, "one destination name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			d, err := c.DestinationPause(cmd.Context(), args[0], reason)
			if err != nil {
				return fmt.Errorf("pause destination %s: %w", args[0], err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), d.Raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "destination %s paused: %s\n", d.Name, d.PauseReason)
			return nil
		},
	}
	pause.Flags().StringVar(&reason, "reason", "", "why, shown with the destination (default: paused through the API)")

	resume := &cobra.Command{
		Use:   "resume NAME",
		Short: "Resume a paused destination; its held deliveries go out at once",
		Args:  exactArgs(1, "one destination name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			d, err := c.DestinationResume(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("resume destination %s: %w", args[0], err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), d.Raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "destination %s resumed\n", d.Name)
			return nil
		},
	}
	cmd.AddCommand(pause, resume)
	return cmd
}
