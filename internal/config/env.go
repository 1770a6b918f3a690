package config

//go:generate go test -run TestEnvDocTable -update .

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mailroomhq/mailroom/internal/store"
)

// EnvPrefix starts the name of every environment variable that overrides
// a setting: the setting's path in capitals, with "_" for ".", after it
// (log.level is MAILROOM_LOG_LEVEL).
const EnvPrefix = "MAILROOM_"

// Environment variables with a name of their own; the others are derived
// from the schema by [EnvVars].
const (
	EnvListen    = "MAILROOM_LISTEN"
	EnvStorage   = "MAILROOM_STORAGE"
	EnvDB        = "MAILROOM_DB" // alias of EnvStorage
	EnvAPIToken  = "MAILROOM_API_TOKEN"
	EnvLogLevel  = "MAILROOM_LOG_LEVEL"
	EnvLogFormat = "MAILROOM_LOG_FORMAT"
)

// EnvVar is an environment variable that overrides one setting.
type EnvVar struct {
	// Name is the variable, e.g. MAILROOM_ALERTS_URL.
	Name string
	// Field is the setting's path in the file, e.g. alerts.url.
	Field string
	// Format says how the value is read: "text", "true or false", "whole
	// number", "duration", "comma-separated list" or "YAML".
	Format string
}

// EnvVars returns every variable [Config.ApplyEnv] reads, one per setting
// of the schema in the order of the file format, with [EnvDB] (an alias of
// [EnvStorage]) after it. A setting is a field that is not a struct, or a
// list of entries (sources, upstreams, mcp.tokens), which a variable sets
// whole, in YAML.
func EnvVars() []EnvVar {
	var out []EnvVar
	walkSchema(reflect.TypeFor[Config](), "", func(field string, t reflect.Type) {
		out = append(out, EnvVar{Name: envName(field), Field: field, Format: envFormat(t)})
		if field == "storage" {
			out = append(out, EnvVar{Name: EnvDB, Field: field, Format: envFormat(t)})
		}
	})
	return out
}

// isValue reports whether values of t decode themselves (a duration), so
// that a struct of that type is one setting rather than a group of them.
func isValue(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(unmarshalerType) || p.Implements(textUnmarshalerType)
}

// envName is the variable of the setting at field.
func envName(field string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(field, ".", "_"))
}

// walkSchema calls leaf with the path and type of each setting under t,
// descending into structs that are not values of their own.
func walkSchema(t reflect.Type, prefix string, leaf func(field string, t reflect.Type)) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		field := join(prefix, tag)
		if f.Type.Kind() == reflect.Struct && !isValue(f.Type) {
			walkSchema(f.Type, field, leaf)
			continue
		}
		leaf(field, f.Type)
	}
}

// envFormat says how a variable for a setting of type t is read.
func envFormat(t reflect.Type) string {
	if t == reflect.TypeFor[store.Duration]() {
		return "duration"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "whole number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "comma-separated list"
		}
		return "YAML"
	case reflect.Map, reflect.Struct:
		return "YAML"
	}
	return "text"
}

// ApplyEnv overrides settings from the environment through lookup (if nil,
// os.LookupEnv): each variable of [EnvVars] that is set and not empty
// replaces its setting. A text, number, boolean or duration is read from
// the value as it is (no ${VAR} expansion, so a secret may hold any
// character); a list of strings is comma-separated, or YAML when it starts
// with "["; a list of entries or a map is YAML, flow style or block
// (MAILROOM_SOURCES='[{name: stripe, verify: {type: stripe, secret: whsec_...}}]').
// MAILROOM_DB is an alias of MAILROOM_STORAGE.
//
// Values are decoded, not validated; call [Config.Validate] afterwards,
// whose errors then name the variable instead of a line in the file.
// ApplyEnv returns an [*Error] naming the variable for each value that
// cannot be decoded (a number that is not one, malformed YAML, an unknown
// key), and if MAILROOM_STORAGE and MAILROOM_DB are both set and
// disagree; settings it could decode are applied either way.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	var errs []*Error
	if storage, db := get(EnvStorage), get(EnvDB); storage != "" && db != "" && storage != db {
		errs = append(errs, &Error{Field: "storage", Err: errors.New(EnvStorage + " and " + EnvDB + " are both set and differ; set one")})
	}
	vars := EnvVars()
	// The alias first, so that MAILROOM_STORAGE is the name recorded when
	// both are set.
	slices.SortStableFunc(vars, func(a, b EnvVar) int {
		switch {
		case a.Name == EnvDB:
			return -1
		case b.Name == EnvDB:
			return 1
		}
		return 0
	})
	root := reflect.ValueOf(c).Elem()
	for _, ev := range vars {
		raw := get(ev.Name)
		if raw == "" {
			continue
		}
		dst, err := fieldByPath(root, ev.Field)
		if err != nil {
			// Only reachable if EnvVars and the struct disagree.
			errs = append(errs, &Error{Field: ev.Field, Err: err})
			continue
		}
		if err := decodeEnv(dst, ev, raw); err != nil {
			errs = append(errs, err...)
			continue
		}
		if c.env == nil {
			c.env = make(map[string]envSet)
		}
		// Recorded as topValues shows it, so that [validator.envOrigin]
		// can tell whether a flag changed it since.
		set := envSet{name: ev.Name, value: raw}
		if v, ok := topValues(c)[ev.Field]; ok {
			set.value = v
		}
		c.env[ev.Field] = set
	}
	return joinErrors(errs)
}

// fieldByPath returns the field of root at a dotted yaml path.
func fieldByPath(root reflect.Value, path string) (reflect.Value, error) {
	v := root
	for _, key := range strings.Split(path, ".") {
		idx, ok := fieldsOf(v.Type())[key]
		if !ok {
			return reflect.Value{}, fmt.Errorf("no field %q in %s", key, v.Type())
		}
		v = v.Field(idx)
	}
	return v, nil
}

// decodeEnv decodes the variable's raw value into dst, whole: dst changes
// only if the value decodes without error.
func decodeEnv(dst reflect.Value, ev EnvVar, raw string) []*Error {
	var n *yaml.Node
	switch {
	case ev.Format == "comma-separated list" && !strings.HasPrefix(strings.TrimSpace(raw), "["):
		n = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, item := range strings.Split(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: item})
			}
		}
	case ev.Format == "YAML" || ev.Format == "comma-separated list":
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
			return []*Error{{Field: ev.Field, Err: fmt.Errorf("invalid YAML: %s (set by %s)", strings.TrimPrefix(err.Error(), "yaml: "), ev.Name)}}
		}
		if len(doc.Content) == 0 {
			return nil
		}
		n = doc.Content[0]
	default:
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: raw}
	}
	tmp := reflect.New(dst.Type()).Elem()
	d := &decoder{lookup: func(string) (string, bool) { return "", false }, src: newSource(""), budget: maxNodes, literal: true}
	d.value(n, tmp, ev.Field)
	if len(d.errs) > 0 {
		for _, e := range d.errs {
			e.Line = 0
			e.Err = fmt.Errorf("%w (set by %s)", e.Err, ev.Name)
		}
		return d.errs
	}
	dst.Set(tmp)
	return nil
}

// envSet is a setting's override by an environment variable.
type envSet struct{ name, value string }
