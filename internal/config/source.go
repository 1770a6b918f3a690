package config

import (
	"strconv"
	"strings"
)

// source remembers where a parsed Config's fields came from, so that
// problems found later, after environment and flag overrides, still point
// at the right line, and at no line when the value no longer comes from
// the file.
type source struct {
	file string
	// lines maps a field path ("sources[1].verify.type") to the line of
	// its key, and a list item ("sources[1]") to the line of its dash.
	lines map[string]int
	// values holds the top-level settings as parsed.
	values map[string]string
	// items identifies each list item as parsed ("sources[1]" -> name).
	items map[string]string
}

func newSource(file string) *source {
	return &source{file: file, lines: make(map[string]int)}
}

// snapshot records the values of c's overridable settings and the identity
// of its list items as parsed.
func (s *source) snapshot(c *Config) {
	s.values = topValues(c)
	s.items = itemKeys(c)
}

// topValues returns the settings that environment variables and flags can
// override, by field path.
func topValues(c *Config) map[string]string {
	return map[string]string{
		"listen":         c.Listen,
		"storage":        c.Storage,
		"api.token":      c.API.Token,
		"log.level":      c.Log.Level,
		"log.format":     c.Log.Format,
		"shutdown.grace": c.Shutdown.Grace.String(),
		"retention":      c.Retention.String(),
	}
}

// itemKeys identifies each project, source, destination and connection
// by its list position.
func itemKeys(c *Config) map[string]string {
	m := make(map[string]string, len(c.Projects)+len(c.Sources)+len(c.Destinations)+len(c.Connections))
	for i, x := range c.Projects {
		m["projects["+strconv.Itoa(i)+"]"] = x.Name
	}
	for i, x := range c.Sources {
		m["sources["+strconv.Itoa(i)+"]"] = x.Project + "|" + x.Name
	}
	for i, x := range c.Destinations {
		m["destinations["+strconv.Itoa(i)+"]"] = x.Project + "|" + x.Name
	}
	for i, x := range c.Connections {
		m["connections["+strconv.Itoa(i)+"]"] = x.Project + "|" + x.ID + "|" + x.Source + "|" + x.Destination
	}
	return m
}

// where returns the file and line that field was read from. The line is
// that of the field's key or, when the field is absent, of its nearest
// parent present in the file. It returns no file when c was not parsed
// from one or when the value was changed after parsing.
func (c *Config) where(field string) (file string, line int) {
	s := c.src
	if s == nil {
		return "", 0
	}
	if parsed, ok := s.values[field]; ok && topValues(c)[field] != parsed {
		return "", 0
	}
	if item, _, ok := strings.Cut(field, "]"); ok {
		item += "]"
		// An entry of sources, destinations or connections that is no
		// longer the one parsed at that index has no line; other lists
		// (mcp.tokens, allowed_origins) are not rearranged after parsing.
		if parsed, ok := s.items[item]; ok && itemKeys(c)[item] != parsed {
			return "", 0
		}
		if _, tracked := s.items[item]; !tracked && isEntryList(item) {
			return "", 0
		}
	}
	for p := field; p != ""; p = parent(p) {
		if l, ok := s.lines[p]; ok {
			return s.file, l
		}
	}
	return s.file, 0
}

// isEntryList reports whether item ("sources[3]") is an entry of the
// lists [itemKeys] tracks.
func isEntryList(item string) bool {
	name, _, _ := strings.Cut(item, "[")
	return name == "sources" || name == "destinations" || name == "connections"
}

// parent returns the path of the field or list that holds field.
func parent(field string) string {
	if strings.HasSuffix(field, "]") {
		if i := strings.LastIndexByte(field, '['); i >= 0 {
			return field[:i]
		}
	}
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return field[:i]
	}
	return ""
}
