package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
)

func newVersionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Read()
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			date := info.Date
			if date == "" {
				date = "unknown"
			}
			commit := info.Commit
			if commit == "" {
				commit = "unknown"
			}
			if info.Modified {
				commit += " (modified)"
			}
			_, err := fmt.Fprintf(out, "mailroom %s\ncommit:   %s\nbuilt:    %s\ngo:       %s\nplatform: %s\n",
				info.Version, commit, date, info.GoVersion, info.Platform)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
