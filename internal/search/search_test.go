package search

import (
	"bytes"
	"encoding/json"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParsePath(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // rendered steps, "" when refused
	}{
		{"data.object.id", "data|object|id"},
		{"items[0].sku", "items|[0]|sku"},
		{"items.0.sku", "items|0|sku"},
		{"[2]", "[2]"},
		{"[2][10].a", "[2]|[10]|a"},
		{"a-b.c_d.$ref.ключ", "a-b|c_d|$ref|ключ"},
		{"", ""},
		{".a", ""},
		{"a.", ""},
		{"a..b", ""},
		{"a.[0]", ""},
		{"a[0]b", ""},
		{"a[01]", ""},
		{"a[]", ""},
		{"a[-1]", ""},
		{"a[1000000000]", ""},
		{"a[999999999]", "a|[999999999]"},
		{"a[0", ""},
		{"a]", ""},
		{"a b", ""},
		{`a"b`, ""},
		{"a=b", ""},
		{"a\x00", ""},
		{"a\xff", ""},
		{strings.Repeat("a.", 32) + "a", ""},
		{strings.Repeat("a.", 31) + "a", strings.Repeat("a|", 31) + "a"},
	} {
		p, err := ParsePath(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParsePath(%q) = %v, want an error", tt.in, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.in, err)
			continue
		}
		var parts []string
		for _, s := range p {
			if s.IsIndex {
				parts = append(parts, "["+strconv.Itoa(s.Index)+"]")
			} else {
				parts = append(parts, s.Key)
			}
		}
		if got := strings.Join(parts, "|"); got != tt.want {
			t.Errorf("ParsePath(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if p.String() != tt.in {
			t.Errorf("ParsePath(%q).String() = %q", tt.in, p.String())
		}
	}
}

func TestParseCond(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{"data.object.customer=cus_123", `data.object.customer="cus_123"`, ""},
		{" a = 12 ", "a=12", ""},
		{`a="x=y"`, `a="x=y"`, ""},
		{"a=x=y", `a="x=y"`, ""},
		{"a=", `a=""`, ""},
		{"a=true", "a=true", ""},
		{"a=null", "a=null", ""},
		{"a=+1", `a="+1"`, ""},
		{"a", "", "not path=value"},
		{"=x", "", "empty path"},
		{`a="unterminated`, "", "not a JSON string"},
		{`a={"b":1}`, "", "object or array"},
		{`a=[1]`, "", "object or array"},
		{"a..b=1", "", "empty key"},
	} {
		c, err := ParseCond(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCond(%q) = %v, %v; want an error with %q", tt.in, c, err, tt.err)
			}
			continue
		}
		if err != nil || c.String() != tt.want {
			t.Errorf("ParseCond(%q) = %q, %v; want %q", tt.in, c.String(), err, tt.want)
		}
	}
	if _, err := ParseFilter(make([]string, MaxConds+1)); err == nil {
		t.Errorf("ParseFilter takes %d conditions", MaxConds+1)
	}
}

func TestCanonNumber(t *testing.T) {
	same := [][]string{
		{"9007199254740993", "9007199254740993.0", "9.007199254740993e15", "90071992547409930E-1"},
		{"1", "1.0", "10e-1", "0.1e1", "1e0", "1E+0", "100e-2"},
		{"0", "-0", "0.000", "0e5", "-0.0e-7"},
		{"-12.5", "-125e-1", "-1.25E1"},
		{"1e999999999999999", "1e999999999999999"},
	}
	for _, group := range same {
		for _, s := range group {
			if !isJSONNumber(s) {
				t.Fatalf("%q is not a JSON number", s)
			}
			if canonNumber(s) != canonNumber(group[0]) {
				t.Errorf("canon(%s) = %s, canon(%s) = %s; want equal", s, canonNumber(s), group[0], canonNumber(group[0]))
			}
		}
	}
	for _, pair := range [][2]string{{"9007199254740993", "9007199254740992"}, {"1", "-1"}, {"1.5", "15"}, {"1e2", "1e-2"},
		{"1e9999999999999999", "1e9999999999999998"}} {
		if canonNumber(pair[0]) == canonNumber(pair[1]) {
			t.Errorf("canon(%s) = canon(%s) = %s", pair[0], pair[1], canonNumber(pair[0]))
		}
	}
	for _, s := range []string{"", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x10", "1_000", "Infinity", "NaN", " 1"} {
		if isJSONNumber(s) {
			t.Errorf("isJSONNumber(%q) = true", s)
		}
	}
}

// The oracle of the path grammar, written as a regular expression.
var (
	keyRE  = `[^.\[\]="\\\p{Z}\p{Cc}\x{FFFD}]+`
	idxRE  = `\[(?:0|[1-9][0-9]{0,8})\]`
	pathRE = regexp.MustCompile(`^(?:` + keyRE + `|` + idxRE + `)(?:` + idxRE + `)*(?:\.` + keyRE + `(?:` + idxRE + `)*)*$`)
)

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"data.object.id", "items[0].sku", "[2][10].a", "a..b", "a.[0]", "a[01]", "ключ.a", "a\u00a0b", "a\u2028", "a\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		want := utf8.ValidString(s) && len(s) <= MaxPathLen && pathRE.MatchString(s)
		if want {
			// Steps: each key and each index.
			steps := len(regexp.MustCompile(idxRE).FindAllString(s, -1)) + len(regexp.MustCompile(keyRE).FindAllString(regexp.MustCompile(idxRE).ReplaceAllString(s, "."), -1))
			want = steps <= MaxSteps
		}
		if (err == nil) != want {
			t.Fatalf("ParsePath(%q) = %v, %v; oracle accepts: %v", s, p, err, want)
		}
		if err == nil && p.String() != s {
			t.Fatalf("ParsePath(%q).String() = %q", s, p.String())
		}
	})
}

// ratOf is the oracle's value of a JSON number, or nil when its exponent
// is too large to compute with.
func ratOf(s string) *big.Rat {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e := strings.TrimLeft(strings.TrimLeft(s[i+1:], "+-"), "0")
		if len(e) > 4 {
			return nil
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("big.Rat refuses " + s)
	}
	return r
}

func FuzzCanonNumber(f *testing.F) {
	f.Add("9007199254740993", "9007199254740992")
	f.Add("1.0", "10e-1")
	f.Add("-0", "0.0e9")
	f.Add("1e00001", "10")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !isJSONNumber(a) || !isJSONNumber(b) {
			return
		}
		ra, rb := ratOf(a), ratOf(b)
		if ra == nil || rb == nil {
			return
		}
		if got, want := canonNumber(a) == canonNumber(b), ra.Cmp(rb) == 0; got != want {
			t.Fatalf("canon(%s) = %s, canon(%s) = %s; equal values: %v", a, canonNumber(a), b, canonNumber(b), want)
		}
	})
}

// oracleMatch decides a condition on a JSON body another way: the body
// fully decoded with json.Number, walked through maps and slices, and
// numbers compared as rationals.
func oracleMatch(body []byte, c Cond) (match, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return false, false
	}
	for _, st := range c.Path {
		switch x := v.(type) {
		case map[string]any:
			if st.IsIndex {
				return false, true
			}
			next, found := x[st.Key]
			if !found {
				return false, true
			}
			v = next
		case []any:
			i := st.Index
			if !st.IsIndex {
				n, err := strconv.Atoi(st.Key)
				if err != nil || strconv.Itoa(n) != st.Key || n < 0 {
					return false, true
				}
				i = n
			}
			if i >= len(x) {
				return false, true
			}
			v = x[i]
		default:
			return false, true
		}
	}
	switch x := v.(type) {
	case string:
		return c.Value.kind == String && c.Value.s == x, true
	case json.Number:
		if c.Value.kind != Number {
			return false, true
		}
		ra, rb := ratOf(string(x)), ratOf(c.Value.text)
		if ra == nil || rb == nil {
			return false, false
		}
		return ra.Cmp(rb) == 0, true
	case bool:
		return c.Value.kind == Bool && c.Value.s == strconv.FormatBool(x), true
	case nil:
		return c.Value.kind == Null, true
	}
	return false, true
}

func FuzzMatch(f *testing.F) {
	f.Add([]byte(`{"data":{"object":{"customer":"cus_123"}}}`), "data.object.customer=cus_123")
	f.Add([]byte(`{"n":9007199254740993}`), "n=9007199254740992")
	f.Add([]byte(`{"n":1.0,"n":2}`), "n=2")
	f.Add([]byte(`[{"a":[true,null]}]`), "[0].a.1=null")
	f.Add([]byte(`{"k\u0065y":"v\u00e9"}`), `key="vé"`)
	f.Fuzz(func(t *testing.T, body []byte, cond string) {
		c, err := ParseCond(cond)
		if err != nil || !json.Valid(body) {
			return
		}
		want, ok := oracleMatch(body, c)
		if !ok {
			return
		}
		if got := (Filter{c}).MatchBody("application/json", body); got != want {
			t.Fatalf("%s on %s: got %v, oracle %v", c, body, got, want)
		}
	})
}

func TestMatchForms(t *testing.T) {
	body := []byte("Body=hello+world&From=%2B1555&Body=second&Num=12")
	for _, tt := range []struct {
		cond string
		want bool
	}{
		{"Body=hello world", true},
		{"Body=second", false},
		{`From="+1555"`, true},
		{"Num=12", false},
		{`Num="12"`, true},
		{"Body.x=hello world", false},
		{"[0]=Body", false},
		{"Missing=null", false},
	} {
		c, err := ParseCond(tt.cond)
		if err != nil {
			t.Fatal(err)
		}
		if got := (Filter{c}).MatchBody("application/x-www-form-urlencoded", body); got != tt.want {
			t.Errorf("%s on a form: %v, want %v", tt.cond, got, tt.want)
		}
		if (Filter{c}).MatchBody("text/plain", body) {
			t.Errorf("%s matches a text body", tt.cond)
		}
	}
}
