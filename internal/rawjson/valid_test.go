package rawjson

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// validCases are documents on both sides of every rule of the grammar;
// each is checked against encoding/json.Valid, and seeds the fuzzer.
var validCases = []string{
	``, ` `, `{}`, `[]`, ` { } `, `[ ]`, `{`, `}`, `[`, `]`, `{]`, `[}`, `[[]]`, `[[]`, `[]]`,
	`{"a":1}`, `{"a" : 1 , "b":[true,false,null]}`, `{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{"a":1 "b":2}`,
	`[1,2]`, `[1 2]`, `[1,]`, `[,1]`, `[,]`, `["a""b"]`, `[{}{}]`, `[{},{}]`,
	`0`, `-0`, `01`, `-01`, `1.`, `1.5`, `.5`, `-`, `+1`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `1.5e3`, `-1.5E-03`, `123456789012345678901234567890`,
	`1x`, `1 2`, `0x10`, `1.e3`, `- 1`, `--1`,
	`true`, `false`, `null`, `tru`, `nul`, `truex`, `True`, `NULL`, `true false`, `[true]x`,
	`""`, `"a"`, `"a`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, `"\`, `"\u`,
	"\"\x00\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\"", "\"\xc3\xa9\"", "\"tab\there\"", "\"new\nline\"",
	"\t\r\n [1] \n", "\f[1]", "[1]\x00", "\xef\xbb\xbf[1]",
	`{"id":"evt_1","type":"bench.event","data":{"object":{"amount":4200,"currency":"eur"}},"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxx"}`,
	`{"a":{"b":{"c":[1,{"d":"e"}]}}}`, `{"a":{"b":{"c":[1,{"d":"e"}]}}`, `{"a":{"b":{"c":[1,{"d":"e"]}}}`,
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range validCases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

func TestValidDepth(t *testing.T) {
	for _, n := range []int{63, 64, 65, MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			close := "]"
			if open != "[" {
				close = "}"
			}
			doc := []byte(strings.Repeat(open, n) + "1" + strings.Repeat(close, n))
			if got, want := Valid(doc), json.Valid(doc); got != want || want != (n <= MaxDepth) {
				t.Errorf("%d × %s: Valid = %v, encoding/json says %v", n, open, got, want)
			}
		}
	}
}

func TestValidDoesNotAllocate(t *testing.T) {
	doc := []byte(`{"id":"evt_1","data":{"object":{"items":[[1,2],[3,{"x":null}]]}},"pad":"` + strings.Repeat("x", 900) + `"}`)
	if n := testing.AllocsPerRun(100, func() { Valid(doc) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

// FuzzValid: Valid answers exactly what encoding/json.Valid answers.
func FuzzValid(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

// benchBody is mailroom bench's 1 KiB body.
func benchBody() []byte {
	b := []byte(`{"id":"evt_run_1_42","type":"bench.event","sent":`)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, `,"data":{"object":{"amount":4200,"currency":"eur"}},"pad":"`...)
	for len(b) < 1022 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// BenchmarkValid compares Valid with encoding/json.Valid on the bench's
// body and on one of many short fields.
func BenchmarkValid(b *testing.B) {
	var fields strings.Builder
	fields.WriteString(`{"items":[`)
	for i := range 40 {
		if i > 0 {
			fields.WriteByte(',')
		}
		fields.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"item \u00e9 ` + strconv.Itoa(i) + `","ok":true,"price":-12.5e1}`)
	}
	fields.WriteString(`]}`)
	for _, doc := range []struct {
		name string
		b    []byte
	}{{"bench-1KiB", benchBody()}, {"fields", []byte(fields.String())}} {
		b.Run(doc.name+"/rawjson", func(b *testing.B) {
			b.SetBytes(int64(len(doc.b)))
			for b.Loop() {
				if !Valid(doc.b) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(doc.name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(doc.b)))
			for b.Loop() {
				if !json.Valid(doc.b) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
