// Command mailroom is a self-hosted event gateway for MCP servers: it
// receives third-party webhooks, verifies, deduplicates and records them
// durably, and delivers them to HTTP destinations with retries.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mailroom:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "mailroom",
		Short:         "A self-hosted event gateway for MCP servers",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Read().String(),
	}
	root.SetVersionTemplate("mailroom {{.Version}}\n")
	root.SetFlagErrorFunc(flagUsageError)
	root.AddCommand(newServeCommand(), newMCPCommand(), newBenchCommand())
	root.AddCommand(newEventsCommand(), newDeliveriesCommand(), newDestinationsCommand(), newTasksCommand(), newAlertsCommand())
	root.AddCommand(newTransformCommand(), newTokensCommand(), newAuditCommand(), newProjectsCommand())
	root.AddCommand(newTriggerCommand(), newListenCommand(), newVersionCommand())
	root.AddCommand(newMigrateCommand(), newBackupCommand(), newHealthcheckCommand())
	return root
}
