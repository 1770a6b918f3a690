package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/mcpbridge"
)

func newMCPCommand() *cobra.Command {
	var opts mcpbridge.Options
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve MCP over stdio for a local agent, bridged to a running mailroom",
		Long: `Serve MCP over stdio (for Claude Code, Claude Desktop and other local
agents) by bridging every message to a running mailroom's /mcp endpoint.
Tasks, resources and subscriptions work as over HTTP.

With --channel SOURCE (repeatable) it also declares the experimental
claude/channel capability and pushes each new event of those sources as a
notifications/claude/channel message; events of other sources are never sent.

  claude mcp add mailroom -- mailroom mcp --server http://127.0.0.1:8080 --channel stripe`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Token == "" {
				opts.Token = os.Getenv("MAILROOM_API_TOKEN")
			}
			if opts.Server == "" {
				return usageErrorf("--server is required (or MAILROOM_SERVER)")
			}
			// stdout carries the protocol: logs go to stderr only.
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			return mcpbridge.New(opts).Run(cmd.Context(), os.Stdin, os.Stdout)
		},
	}
	cmd.Flags().StringVar(&opts.Server, "server", os.Getenv("MAILROOM_SERVER"), "base URL of the running mailroom (env MAILROOM_SERVER)")
	cmd.Flags().StringVar(&opts.Token, "token", "", "bearer token for /mcp (env MAILROOM_API_TOKEN)")
	cmd.Flags().StringArrayVar(&opts.Channels, "channel", nil, "push new events of this source as claude/channel messages (repeatable)")
	return cmd
}
