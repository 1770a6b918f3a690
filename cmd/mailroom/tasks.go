package main

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// newTasksCommand is `mailroom tasks list|show`.
func newTasksCommand() *cobra.Command {
	var cf clientFlags
	cmd := groupCommand("tasks", "Inspect MCP tasks (every owner's) on a running server")
	addClientFlags(cmd, &cf)

	var owner, statusFlag, cursor string
	var open bool
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List MCP tasks, newest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"owner": owner, "status": statusFlag, "cursor": cursor} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if open {
				q.Set("open", "true")
			}
			if limit != 0 {
				if limit < 1 || limit > 1000 {
					return usageErrorf("--limit: %d is not from 1 to 1000", limit)
				}
				q.Set("limit", strconv.Itoa(limit))
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			page, err := c.Tasks(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("list tasks: %w", err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), page.Raw)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "OWNER", "TOOL", "STATUS", "CREATED", "UPDATED", "EVENT")
			for _, tk := range page.Data {
				t.row(tk.ID, tk.Owner, tk.Tool, tk.Status, when(tk.CreatedAt), when(tk.UpdatedAt), tk.EventID)
			}
			if err := t.flush(); err != nil {
				return err
			}
			moreHint(cmd, page.NextCursor)
			return nil
		},
	}
	list.Flags().StringVar(&owner, "owner", "", "only this owner's tasks")
	list.Flags().StringVar(&statusFlag, "status", "", "only this status: working, input_required, completed, failed, cancelled")
	list.Flags().BoolVar(&open, "open", false, "only tasks still working or waiting for input")
	list.Flags().StringVar(&cursor, "cursor", "", "next page: the cursor printed after the previous page")
	list.Flags().IntVar(&limit, "limit", 0, "rows per page, 1 to 1000 (server default 50)")

	show := &cobra.Command{
		Use:   "show TASK_ID",
		Short: "Show one MCP task with what it waits for and its result",
		Args:  exactArgs(1, "one task id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			tk, err := c.Task(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("show task %s: %w", args[0], err)
			}
			w := cmd.OutOrStdout()
			if cf.json {
				return printJSON(w, tk.Raw)
			}
			wait := ""
			if tk.Wait != nil {
				wait = "source " + tk.Wait.Source
				if tk.Wait.Type != "" {
					wait += ", type " + tk.Wait.Type
				}
				if tk.Wait.Filter != "" {
					wait += ", filter " + tk.Wait.Filter
				}
				if !tk.Wait.Deadline.IsZero() {
					wait += ", deadline " + when(tk.Wait.Deadline)
				}
			}
			if err := details(w,
				"Task", tk.ID,
				"Owner", tk.Owner,
				"Tool", tk.Tool,
				"Status", tk.Status,
				"Message", tk.StatusMessage,
				"Created", when(tk.CreatedAt),
				"Updated", when(tk.UpdatedAt),
				"Expires", when(tk.ExpiresAt),
				"Waits for", wait,
				"Completed by", tk.EventID,
			); err != nil {
				return err
			}
			if len(tk.Arguments) > 0 {
				fmt.Fprintf(w, "\nArguments:\n%s\n", prettyBody(string(tk.Arguments)))
			}
			if len(tk.Result) > 0 {
				fmt.Fprintf(w, "\nResult:\n%s\n", prettyBody(string(tk.Result)))
			}
			if len(tk.Error) > 0 {
				fmt.Fprintf(w, "\nError:\n%s\n", prettyBody(string(tk.Error)))
			}
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}
