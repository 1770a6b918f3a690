package mcpserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/audit"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/store"
)

// auditTool records a manual action taken through an MCP tool (a retry, a
// replay) in the audit log, as the admin API's guard does for its routes:
// action "mcp: TOOL", who from the request's principal (anonymous on an
// unauthenticated loopback server), the target and its state before and
// after, redacted. A failure to record is logged: the action stands.
func (s *Server) auditTool(ctx context.Context, req *mcp.CallToolRequest, tool, target, project string, before, after any, err error) {
	p := access.Anonymous
	if req != nil && req.Extra != nil {
		if pp, ok := mcpauth.PrincipalOf(req.Extra.TokenInfo); ok {
			p = pp
		}
	}
	status := http.StatusOK
	switch {
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case err != nil:
		status = http.StatusInternalServerError
	}
	if project == "" {
		project = p.Project
	}
	e := &store.AuditEntry{Actor: p.Name, TokenID: p.TokenID, Role: string(p.Role), Project: project,
		Action: "mcp: " + tool, Target: target, Status: status, Before: audit.Marshal(before), After: audit.Marshal(after)}
	if err != nil {
		e.After = nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.AuditInsert(wctx, e); err != nil {
		s.log.Error("audit: record MCP tool call", "tool", tool, "target", target, "err", err)
	}
}
