package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the YAML nodes one Parse visits, counting every use of
// an alias, so that a small file of nested aliases ("billion laughs")
// cannot make it build an enormous config. Real configs use a few
// thousand.
const maxNodes = 500_000

// maxMergeDepth bounds chains of << merges.
const maxMergeDepth = 32

// decoder walks a YAML node tree into a Go value by reflection, guided by
// the yaml struct tags of the target, recording the line of every field and
// collecting every problem instead of stopping at the first.
type decoder struct {
	file   string
	lookup func(string) (string, bool)
	src    *source
	errs   []*Error
	budget int
	// bad holds the fields that failed to decode, so that validation does
	// not report them a second time.
	bad []string
	// literal takes scalars as they are, without ${VAR} expansion (the
	// values of environment variables).
	literal bool
}

// errAt records a problem with field at n's line.
func (d *decoder) errAt(n *yaml.Node, field string, format string, args ...any) {
	d.add(n, field, fmt.Errorf(format, args...))
}

func (d *decoder) add(n *yaml.Node, field string, err error) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: field, Err: err})
	d.bad = append(d.bad, field)
}

// failed reports whether field, one of its parents or one of its children
// failed to decode.
func (d *decoder) failed(field string) bool {
	for _, b := range d.bad {
		if within(field, b) || within(b, field) {
			return true
		}
	}
	return false
}

// within reports whether path is base or lies under it.
func within(path, base string) bool {
	if base == "" || path == base {
		return true
	}
	return strings.HasPrefix(path, base) && (path[len(base)] == '.' || path[len(base)] == '[')
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// syntaxError turns a yaml.v3 parse error into an *Error with its line.
// yaml.v3 leaves the line out of errors on the first line, and out of
// unknown-anchor errors, which are found here by searching for the alias.
func (d *decoder) syntaxError(data []byte, err error) {
	msg := err.Error()
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		// Parser (not scanner) errors carry a 0-based line.
		if isParserProblem(msg) {
			line++
		}
	} else {
		if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
			if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
				line = 1 + bytes.Count(data[:i], []byte("\n"))
			}
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Err: fmt.Errorf("invalid YAML: %s", msg)})
	d.bad = append(d.bad, "")
}

// isParserProblem reports whether msg is one of the problems yaml.v3's
// parser (as opposed to its scanner) reports; their line is 0-based.
func isParserProblem(msg string) bool {
	if strings.HasPrefix(msg, "did not find expected ") {
		switch strings.TrimPrefix(msg, "did not find expected ") {
		case "<stream-start>", "<document start>", "node content", "'-' indicator", "key", "',' or ']'", "',' or '}'":
			return true
		}
		return false
	}
	switch msg {
	case "found undefined tag handle", "found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive":
		return true
	}
	return false
}

// document decodes the single YAML document in data into c.
func (d *decoder) document(data []byte, c *Config) {
	protected, refs := protectRefs(data)
	dec := yaml.NewDecoder(bytes.NewReader(protected))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntaxError(data, err)
		}
		return
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntaxError(data, err)
	default:
		d.errAt(&next, "", "the file holds more than one YAML document (---); mailroom reads one")
	}
	if len(refs) > 0 {
		restoreRefs(&doc, refs)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	d.value(root, reflect.ValueOf(c).Elem(), "")
}

// Placeholders stand in for ${...} references while the YAML is parsed.
// Characters from Unicode's private use area are printable YAML that can
// start and continue a plain scalar anywhere, unlike "{" and "}", which
// would end a value inside a flow mapping such as {secret: ${SECRET}}.
const (
	refOpen  = '\uE000'
	refClose = '\uE001'
)

// protectRefs replaces each ${...} reference in data (one that closes on
// the same line and holds no "{" or quote) with a placeholder, and returns the new
// text and the references by placeholder number. It changes no line
// breaks, so lines still match the file, and it changes nothing if data
// already holds placeholder characters. Values are still expanded after
// parsing, by restoreRefs and expandEnv.
func protectRefs(data []byte) ([]byte, []string) {
	if !bytes.Contains(data, []byte("${")) || bytes.ContainsRune(data, refOpen) || bytes.ContainsRune(data, refClose) {
		return data, nil
	}
	var refs []string
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); {
		if data[i] != '$' || i+1 == len(data) {
			out = append(out, data[i])
			i++
			continue
		}
		if data[i+1] == '$' {
			out = append(out, '$', '$')
			i += 2
			continue
		}
		end := -1
		if data[i+1] == '{' {
			end = bytes.IndexAny(data[i+2:], "}{\n'\"")
		}
		if end < 0 || data[i+2+end] != '}' {
			out = append(out, '$')
			i++
			continue
		}
		ref := data[i : i+2+end+1]
		out = utf8.AppendRune(out, refOpen)
		out = strconv.AppendInt(out, int64(len(refs)), 10)
		out = utf8.AppendRune(out, refClose)
		refs = append(refs, string(ref))
		i += len(ref)
	}
	return out, refs
}

// restoreRefs puts the references that protectRefs took out back into
// every scalar (keys included) under n.
func restoreRefs(n *yaml.Node, refs []string) {
	if n.Kind == yaml.ScalarNode && strings.ContainsRune(n.Value, refOpen) {
		var b strings.Builder
		rest := n.Value
		for {
			before, after, ok := strings.Cut(rest, string(refOpen))
			b.WriteString(before)
			if !ok {
				break
			}
			num, tail, ok := strings.Cut(after, string(refClose))
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 || i >= len(refs) {
				b.WriteRune(refOpen) // cannot happen: protectRefs wrote it
				rest = after
				continue
			}
			b.WriteString(refs[i])
			rest = tail
		}
		n.Value = b.String()
	}
	for _, c := range n.Content {
		restoreRefs(c, refs)
	}
}

// resolve follows an alias to the node it names.
func (d *decoder) resolve(n *yaml.Node, field string) *yaml.Node {
	for range 8 {
		if n == nil || n.Kind != yaml.AliasNode {
			return n
		}
		if n.Alias == nil {
			d.errAt(n, field, "alias *%s names no anchor", n.Value)
			return nil
		}
		n = n.Alias
	}
	d.errAt(n, field, "alias chain too long")
	return nil
}

// spend counts n nodes against the budget and reports whether any is
// left.
func (d *decoder) spend(n *yaml.Node, field string, count int) bool {
	if d.budget < 0 {
		return false
	}
	d.budget -= count
	if d.budget < 0 {
		d.errAt(n, field, "the document is too large once its aliases are expanded (more than %d nodes)", maxNodes)
		return false
	}
	return true
}

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value decodes n into v, the field at path field.
func (d *decoder) value(n *yaml.Node, v reflect.Value, field string) {
	if n = d.resolve(n, field); n == nil {
		return
	}
	if !d.spend(n, field, 1) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the field as it is
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		d.unmarshaler(n, v, field)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		d.text(n, v, field)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, field)
	case reflect.Slice:
		d.sequence(n, v, field)
	case reflect.Map:
		d.mapping(n, v, field)
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.scalar(n, v, field)
	default:
		// Only reachable if a config type gains a field of a kind this
		// decoder does not know; a test decodes every field kind in use.
		d.errAt(n, field, "cannot decode into %s", v.Type())
	}
}

// pair is one key and value of a mapping.
type pair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n with << merges applied: the
// mapping's own keys, then the keys of the merged mappings that it does
// not set itself, earlier merges taking precedence. It reports keys that
// are not strings and keys given twice.
func (d *decoder) pairs(n *yaml.Node, field string, depth int) []pair {
	if !d.spend(n, field, len(n.Content)/2) {
		return nil
	}
	var own []pair
	var merges []*yaml.Node
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errAt(k, field, "keys must be plain strings, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errAt(k, join(field, k.Value), "key given twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, pair{k, val})
	}
	if len(merges) == 0 {
		return own
	}
	if depth >= maxMergeDepth {
		d.errAt(n, field, "<< merges nested too deeply")
		return own
	}
	var from []*yaml.Node
	for _, m := range merges {
		if m = d.resolve(m, field); m == nil {
			continue
		}
		switch m.Kind {
		case yaml.MappingNode:
			from = append(from, m)
		case yaml.SequenceNode:
			for _, item := range m.Content {
				if item = d.resolve(item, field); item == nil {
					continue
				}
				if item.Kind != yaml.MappingNode {
					d.errAt(item, field, "<< must merge a mapping or a list of mappings, got %s", describe(item))
					continue
				}
				from = append(from, item)
			}
		default:
			d.errAt(m, field, "<< must merge a mapping or a list of mappings, got %s", describe(m))
		}
	}
	out := own
	for _, m := range from {
		for _, p := range d.pairs(m, field, depth+1) {
			if _, ok := seen[p.key.Value]; ok {
				continue
			}
			seen[p.key.Value] = p.key.Line
			out = append(out, p)
		}
	}
	return out
}

// structure decodes a mapping into the struct v by its yaml tags.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind != yaml.MappingNode {
		d.errAt(n, field, "must be a mapping of keys to values, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range d.pairs(n, field, 0) {
		name := p.key.Value
		path := join(field, name)
		if field == "" && strings.HasPrefix(name, "x-") {
			continue // an extension key, a place to keep anchors
		}
		idx, ok := fields[name]
		if !ok {
			d.errAt(p.key, path, "unknown field%s", suggest(name, fields))
			continue
		}
		d.src.lines[path] = p.key.Line
		d.value(p.val, v.Field(idx), path)
	}
}

// fieldsOf maps the yaml names of t's fields to their indexes.
func fieldsOf(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch tag {
		case "-":
			continue
		case "":
			tag = strings.ToLower(f.Name)
		}
		m[tag] = i
	}
	return m
}

// sequence decodes a list into the slice v, replacing its contents.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.MappingNode && v.Type().Elem().Kind() == reflect.Struct {
			hint = `; start each entry with "- "`
		}
		d.errAt(n, field, "must be a list, got %s%s", describe(n), hint)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		path := field + "[" + strconv.Itoa(i) + "]"
		d.src.lines[path] = item.Line
		d.value(item, s.Index(i), path)
	}
	v.Set(s)
}

// mapping decodes a mapping into the map v, whose keys are strings.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, field string) {
	if v.Type().Key().Kind() != reflect.String {
		d.errAt(n, field, "cannot decode into %s", v.Type())
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errAt(n, field, "must be a mapping of keys to values, got %s", describe(n))
		return
	}
	ps := d.pairs(n, field, 0)
	m := reflect.MakeMapWithSize(v.Type(), len(ps))
	for _, p := range ps {
		path := join(field, p.key.Value)
		d.src.lines[path] = p.key.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(p.val, elem, path)
		m.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

// scalar decodes a string, integer or boolean, after expanding ${VAR}
// references.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, field, "must be %s, got %s", kindName(v.Kind()), describe(n))
		return
	}
	s, ok := d.expand(n, field)
	if !ok {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.errAt(n, field, "must be true or false, got %q", s)
		}
	default:
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			d.errAt(n, field, "must be a whole number, got %q", s)
			return
		}
		v.SetInt(i)
	}
}

// unmarshaler hands n, its value expanded, to v's UnmarshalYAML.
func (d *decoder) unmarshaler(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind == yaml.ScalarNode {
		s, ok := d.expand(n, field)
		if !ok {
			return
		}
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Line: n.Line, Column: n.Column}
	}
	if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
		d.add(n, field, err)
	}
}

// text hands n's scalar value, expanded, to v's UnmarshalText (durations).
func (d *decoder) text(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, field, "must be a string, got %s", describe(n))
		return
	}
	s, ok := d.expand(n, field)
	if !ok {
		return
	}
	if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
		d.add(n, field, err)
	}
}

// expand expands the ${VAR} references in n's value.
func (d *decoder) expand(n *yaml.Node, field string) (string, bool) {
	if d.literal {
		return n.Value, true
	}
	s, err := expandEnv(n.Value, d.lookup)
	if err != nil {
		d.add(n, field, err)
		return "", false
	}
	return s, true
}

// expandEnv replaces ${NAME} with the value of the variable NAME (an error
// if it is unset), ${NAME:-default} with the value or, if it is unset or
// empty, default, and $$ with $. Any other $ is kept. A default cannot
// hold "}" or another reference.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte('$')
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q (write $$ for a literal $)", s)
		}
		ref := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !isVarName(name) {
			return "", fmt.Errorf("invalid reference ${%s}: want ${NAME} or ${NAME:-default} (write $$ for a literal $)", ref)
		}
		if strings.Contains(def, "${") {
			return "", fmt.Errorf("invalid reference ${%s}: a default cannot hold another ${...}", ref)
		}
		val, set := lookup(name)
		switch {
		case hasDef && val == "":
			b.WriteString(def)
		case set:
			b.WriteString(val)
		default:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-} to allow it to be empty)", name, name)
		}
		i += 2 + end + 1
	}
	return b.String(), nil
}

// isVarName reports whether s is an environment variable name:
// [A-Za-z_][A-Za-z0-9_]*.
func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// join appends a key to a field path.
func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// describe names the kind of a node for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("%q", v)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	}
	return "a whole number"
}

// suggest returns ` (did you mean "x"?)` for the known name closest to
// name, or "" if none is close.
func suggest(name string, known map[string]int) string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	slices.Sort(names)
	best, bestDist := "", 0
	lower := strings.ToLower(name)
	for _, k := range names {
		dist := levenshtein(lower, k)
		if best == "" || dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" || bestDist > max(1, len(best)/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// levenshtein returns the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
