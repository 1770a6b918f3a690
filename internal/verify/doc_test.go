package verify_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/verify"
)

var update = flag.Bool("update", false, "rewrite docs/providers.md from the provider table")

// providersDoc is the page that lists every row of the provider table.
const providersDoc = "../../docs/providers.md"

// Markers around the generated part of providersDoc.
const (
	tableBegin = "<!-- BEGIN GENERATED: go test ./internal/verify -run TestProvidersDoc -update -->"
	tableEnd   = "<!-- END GENERATED -->"
)

// TestProvidersDoc checks that docs/providers.md lists every row of the
// provider table as the table says; -update rewrites it.
func TestProvidersDoc(t *testing.T) {
	raw, err := os.ReadFile(providersDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	head, rest, ok := strings.Cut(doc, tableBegin)
	_, tail, ok2 := strings.Cut(rest, tableEnd)
	if !ok || !ok2 {
		t.Fatalf("%s lacks the generated-table markers", providersDoc)
	}
	want := head + tableBegin + "\n" + providersTable() + tableEnd + tail
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(providersDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is out of date with the provider table; run go test ./internal/verify -run TestProvidersDoc -update", providersDoc)
}

func providersTable() string {
	var b strings.Builder
	b.WriteString("| `type` | provider | how a request is checked | keys (* required) | default dedup key | event type | handshake answered | signs deliveries |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	cell := func(s string) string {
		if s == "" {
			return ""
		}
		return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
	}
	for _, p := range verify.Providers() {
		title := p.Title
		if p.Alias != "" {
			title += " (as `" + p.Alias + "`)"
		}
		keys := make([]string, len(p.Fields))
		for i, f := range p.Fields {
			keys[i] = "`" + f + "`"
		}
		b.WriteString("| `" + p.Name + "` | " + title + " | " + strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(p.Scheme) + " | " +
			strings.Join(keys, ", ") + " | " + cell(p.DedupKey) + " | " + cell(p.EventType) + " | " + p.Handshake + " | " + map[bool]string{true: "yes"}[p.Outbound()] + " |\n")
	}
	return b.String()
}

// TestNamedProvidersCount checks the number of named providers the README
// and the example config announce ("38 named providers") against the
// provider table: its rows that are not generic schemes.
func TestNamedProvidersCount(t *testing.T) {
	named := 0
	for _, p := range verify.Providers() {
		if !p.Generic {
			named++
		}
	}
	want := fmt.Sprintf("%d named providers", named)
	for _, f := range []string{"../../README.md", "../../examples/mailroom.yaml"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(strings.ReplaceAll(string(raw), "#", " ")), " ")
		if !strings.Contains(text, want) {
			t.Errorf("%s does not say %q (the provider table has %d named providers)", f, want, named)
		}
	}
}
