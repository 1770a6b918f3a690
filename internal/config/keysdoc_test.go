package config_test

import (
	"encoding"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/project"
	"github.com/mailroomhq/mailroom/internal/store"
)

// keyCell is a key in the first cell of a settings table row:
// | `retry.max_attempts` | … or | `tls.cert_file`, `tls.key_file` | ….
var keyCell = regexp.MustCompile("`([a-z_][a-z0-9_.]*)`")

// settingsTables maps the headings of docs/configuration.md whose table
// lists the keys of one YAML mapping to the Go type that mapping decodes
// into.
var settingsTables = map[string]reflect.Type{
	"## Top-level settings":         reflect.TypeFor[config.Config](),
	"## Projects":                   reflect.TypeFor[project.Config](),
	"## Sources":                    reflect.TypeFor[store.Source](),
	"## Destinations":               reflect.TypeFor[store.Destination](),
	"## Connections":                reflect.TypeFor[store.Connection](),
	"### Retry rules by event type": reflect.TypeFor[store.RetryRule](),
}

// yamlKeys returns the dotted YAML paths of t's fields, every level
// included ("retry", "retry.max_attempts"), and which of them are leaves.
// A list of mappings (sources) or a value with its own text form
// (durations) is a leaf: its own table or its type says the rest.
func yamlKeys(t reflect.Type, prefix string, keys map[string]bool) {
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		key := prefix + tag
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		leaf := ft.Kind() != reflect.Struct || ft == reflect.TypeFor[time.Time]() ||
			reflect.PointerTo(ft).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
		keys[key] = leaf
		if !leaf {
			yamlKeys(ft, key+".", keys)
		}
	}
}

// TestConfigDocKeys checks the settings tables of docs/configuration.md
// against the config schema: every key a table names is a field of the
// mapping it documents, and every field is in its table, as a row of its
// own or under a row of a mapping that holds it (`verify`, `mcp.oauth`),
// or named in such a row's text. A setting cannot be added, renamed or
// removed without the page.
func TestConfigDocKeys(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	type table struct {
		rows  map[string]bool // keys with a row
		named map[string]bool // keys named in the table's text
	}
	tables := map[string]*table{}
	var cur *table
	for i, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "#") {
			cur = nil
			if _, ok := settingsTables[line]; ok {
				cur = &table{rows: map[string]bool{}, named: map[string]bool{}}
				tables[line] = cur
			}
			continue
		}
		if cur == nil || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		for _, m := range keyCell.FindAllStringSubmatch(cells[1], -1) {
			if cur.rows[m[1]] {
				t.Errorf("%s:%d: %s has a second row", configDoc, i+1, m[1])
			}
			cur.rows[m[1]] = true
		}
		for _, m := range keyCell.FindAllStringSubmatch(line, -1) {
			cur.named[m[1]] = true
		}
	}
	for heading, typ := range settingsTables {
		tab := tables[heading]
		if tab == nil || len(tab.rows) == 0 {
			t.Errorf("%s: no settings table under %q", configDoc, heading)
			continue
		}
		keys := map[string]bool{}
		yamlKeys(typ, "", keys)
		for key := range tab.rows {
			if _, ok := keys[key]; !ok {
				t.Errorf("%s, %s: the table has a row for %q, which is not a key of %s", configDoc, heading, key, typ)
			}
		}
		var missing []string
		for key, leaf := range keys {
			if !leaf || tab.named[key] {
				continue
			}
			covered := false
			for p := key; strings.Contains(p, ".") && !covered; {
				p = p[:strings.LastIndex(p, ".")]
				covered = tab.rows[p]
			}
			if !covered {
				missing = append(missing, key)
			}
		}
		slices.Sort(missing)
		for _, key := range missing {
			t.Errorf("%s, %s: %s (a key of %s) is in no row of the table", configDoc, heading, key, typ)
		}
	}
}
