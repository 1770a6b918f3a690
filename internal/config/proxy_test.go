package config_test

import (
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
)

func TestProxyConfig(t *testing.T) {
	t.Parallel()
	good := `
sources:
  - name: stripe
    verify: {type: stripe, secret: whsec_x}
upstreams:
  - name: pay
    url: http://127.0.0.1:7000/mcp
    headers: {Authorization: Bearer x}
    timeout: 10s
  - name: gh
    command: [./github-mcp, --stdio]
async_tools:
  - tool: pay__create_payment_link
    source: stripe
    type: checkout.session.completed
    match: {data.object.payment_link: result.structuredContent.id}
    timeout: 24h
    fail: {type: payment_intent.payment_failed, match: {data.object.payment_link: result.structuredContent.id}}
`
	cfg, err := config.Parse([]byte(good), "mailroom.yaml", realOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Upstreams) != 2 || cfg.Upstreams[1].Command[0] != "./github-mcp" || cfg.AsyncTools[0].Fail.Type != "payment_intent.payment_failed" {
		t.Errorf("parsed: %+v %+v", cfg.Upstreams, cfg.AsyncTools)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"upstreams:\n  - name: pay\n", "upstreams[0]: set url (Streamable HTTP) or command (stdio)"},
		{"upstreams:\n  - name: pay\n    url: ftp://x\n", `upstreams[0].url: "ftp://x" is not an http(s) URL`},
		{"upstreams:\n  - name: a__b\n    url: http://x/mcp\n", "upstreams[0].name: must not contain"},
		{"async_tools:\n  - tool: nope__x\n    source: s\n    filter: 'true'\n", "async_tools[0].tool:"},
		{"upstreams:\n  - name: pay\n    url: http://x/mcp\nasync_tools:\n  - tool: pay__x\n    source: s\n", "async_tools[0].match: set match or filter"},
		{"upstreams:\n  - name: pay\n    url: http://x/mcp\nasync_tools:\n  - tool: pay__x\n    source: s\n    filter: 'size(body)'\n", "async_tools[0].filter: compile filter"},
		{"upstreams:\n  - name: pay\n    url: http://x/mcp\nasync_tools:\n  - tool: pay__x\n    source: s\n    filter: 'true'\n    fail: {filter: '1'}\n", "async_tools[0].fail.filter: compile filter"},
	} {
		_, err := config.Parse([]byte(tc.yaml), "mailroom.yaml", realOptions(t, nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
