package main

import (
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/client"
)

// newTokensCommand is `mailroom tokens create|list|revoke`.
func newTokensCommand() *cobra.Command {
	var cf clientFlags
	cmd := groupCommand("tokens", "Create, list and revoke API tokens on a running server (admin only)")
	addClientFlags(cmd, &cf)

	var in client.TokenCreate
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print it once (only its hash is stored)",
		Long: `Create a token with a role and print it: it is shown this once and
stored only as a hash. Roles: admin (everything, every project; takes no
--project), operator (manage, retry and replay in --project), viewer (read
--project), mcp (--project's MCP tools only), ingest-only (no operator
route). Without --project a non-admin token acts in the default project.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := access.ParseRole(in.Role); err != nil {
				return usageErrorf("--role: %v", err)
			}
			if _, err := auth.ParseExpiry(in.Expires); err != nil {
				return usageErrorf("--expires: %v", err)
			}
			if in.Name == "" {
				in.Name = in.Role
				if in.Project != "" {
					in.Name += "@" + in.Project
				}
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			t, err := c.TokenCreate(cmd.Context(), &in)
			if err != nil {
				return fmt.Errorf("create token: %w", err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), t.Raw)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "token %s created (role %s%s%s); it is shown only now:\n\n%s\n", t.ID, t.Role, projectSuffix(t.Project), expirySuffix(t.ExpiresAt), t.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&in.Name, "name", "", "whose or what the token is (default: ROLE@PROJECT)")
	create.Flags().StringVar(&in.Role, "role", "", "admin, operator, viewer, mcp or ingest-only (required)")
	create.Flags().StringVar(&in.Project, "project", "", "the project a non-admin token acts in (default: the default project)")
	create.Flags().StringVar(&in.Expires, "expires", "", `lifetime: days ("90d") or a duration ("12h"); default never`)

	var all bool
	var project string
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never the tokens themselves), newest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if all {
				q.Set("all", "true")
			}
			if project != "" {
				q.Set("project", project)
			}
			page, err := c.Tokens(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("list tokens: %w", err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), page.Raw)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "NAME", "ROLE", "PROJECT", "CREATED", "EXPIRES", "LAST USED", "REVOKED")
			for _, k := range page.Data {
				t.row(k.ID, k.Name, k.Role, k.Project, when(k.CreatedAt), when(k.ExpiresAt), when(k.LastUsedAt), when(k.RevokedAt))
			}
			return t.flush()
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include revoked and expired tokens")
	list.Flags().StringVar(&project, "project", "", "only this project's tokens")

	revoke := &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: "Revoke a token: it and its dashboard sessions stop working at once",
		Args:  exactArgs(1, "one token id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			t, err := c.TokenRevoke(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("revoke token %s: %w", args[0], err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), t.Raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s (%s) revoked\n", t.ID, t.Name)
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func projectSuffix(p string) string {
	if p == "" {
		return ""
	}
	return " in project " + p
}

func expirySuffix(t time.Time) string {
	if t.IsZero() {
		return ", never expires"
	}
	return ", expires " + t.Format(time.RFC3339)
}

// newAuditCommand is `mailroom audit`: the audit log, newest first.
func newAuditCommand() *cobra.Command {
	var cf clientFlags
	var lf listFlags
	var actor, tokenID, project, action, target string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log: who changed what, newest first (admin only)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := lf.values(time.Now())
			if err != nil {
				return err
			}
			for k, v := range map[string]string{"actor": actor, "token_id": tokenID, "project": project, "action": action, "target": target} {
				if v != "" {
					q.Set(k, v)
				}
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			page, err := c.Audit(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("audit log: %w", err)
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), page.Raw)
			}
			t := newTable(cmd.OutOrStdout(), "AT", "ACTOR", "TOKEN", "PROJECT", "ACTION", "TARGET", "STATUS")
			for _, e := range page.Data {
				t.row(when(e.At), e.Actor, e.TokenID, e.Project, e.Action, e.Target, fmt.Sprint(e.Status))
			}
			if err := t.flush(); err != nil {
				return err
			}
			moreHint(cmd, page.NextCursor)
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	lf.register(cmd, "", true, "since", "until")
	cmd.Flags().StringVar(&actor, "actor", "", "only this actor (a token's name)")
	cmd.Flags().StringVar(&tokenID, "token-id", "", "only this token id (api for api.token)")
	cmd.Flags().StringVar(&project, "project", "", "only this project")
	cmd.Flags().StringVar(&action, "action", "", `only this action, a route pattern ("POST /api/v1/deliveries/{id}/retry")`)
	cmd.Flags().StringVar(&target, "target", "", "only this target id or name")
	return cmd
}
