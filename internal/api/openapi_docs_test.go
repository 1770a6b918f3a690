package api_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docMention is a route the docs name: "POST /api/v1/deliveries/retry" in
// prose, or the method and URL of a curl command.
var docMention = regexp.MustCompile("\\b(GET|POST|PUT|DELETE|PATCH) (/api/v1/[^\\s`)\"'?]+)")

// apiURL is the path of a URL under /api/v1 in a curl command.
var apiURL = regexp.MustCompile(`/api/v1/[^\s"'?]+`)

// curlMethod is curl's -X.
var curlMethod = regexp.MustCompile(`\s-X\s+([A-Z]+)`)

// TestOpenAPIDocsAgree checks the docs against the OpenAPI document: every
// route README.md and docs/*.md name, in prose or in a curl command, is an
// operation of the document, and every curl command that sends a body to
// the API sends it as JSON (the guard answers 415 otherwise).
func TestOpenAPIDocsAgree(t *testing.T) {
	spec := loadSpec(t)
	type template struct {
		method string
		re     *regexp.Regexp
	}
	var ops []template
	param := regexp.MustCompile(`\\\{[^}]*\\\}`)
	for path, item := range spec.Paths.Map() {
		re := regexp.MustCompile("^/api/v1" + param.ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`) + "$")
		for method := range item.Operations() {
			ops = append(ops, template{method, re})
		}
	}
	known := func(method, path string) bool {
		path = strings.TrimRight(path, ".,:;")
		for _, op := range ops {
			if op.method == method && op.re.MatchString(path) {
				return true
			}
		}
		return false
	}
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(f, "../../")
		for i, line := range logicalLines(string(data)) {
			for _, m := range docMention.FindAllStringSubmatch(line, -1) {
				checked++
				if !known(m[1], m[2]) {
					t.Errorf("%s, line %d: %q names %s %s, which is not an operation of %s", name, i+1, line, m[1], m[2], specFile)
				}
			}
			trimmed := strings.TrimSpace(line)
			if !strings.HasPrefix(trimmed, "curl ") || !strings.Contains(trimmed, "/api/v1/") {
				continue
			}
			checked++
			method := "GET"
			body := strings.Contains(trimmed, " -d ") || strings.Contains(trimmed, " --data")
			get := strings.Contains(trimmed, " -G ") || strings.Contains(trimmed, " --get ") // -d goes to the query string
			if body && !get {
				method = "POST"
			}
			if m := curlMethod.FindStringSubmatch(trimmed); m != nil {
				method = m[1]
			}
			path := apiURL.FindString(trimmed)
			if !known(method, path) {
				t.Errorf("%s, line %d: %q calls %s %s, which is not an operation of %s", name, i+1, trimmed, method, path, specFile)
			}
			json := strings.Contains(trimmed, `"$json"`) || strings.Contains(strings.ToLower(trimmed), "content-type: application/json")
			if body && !get && !json && !strings.Contains(trimmed, "text/plain") {
				t.Errorf("%s, line %d: %q sends a body without -H 'Content-Type: application/json' (the guard answers 415)", name, i+1, trimmed)
			}
		}
	}
	t.Logf("%d routes named in the docs checked", checked)
	if checked < 40 {
		t.Errorf("only %d routes named in the docs were checked; is the parsing broken?", checked)
	}
}

// logicalLines splits text into lines, a shell line continued with a
// backslash joined to the next; each is indexed by the number of its
// first line, less one (so some indexes are empty).
func logicalLines(text string) []string {
	lines := strings.Split(text, "\n")
	out := make([]string, len(lines))
	for i := 0; i < len(lines); i++ {
		start := i
		l := lines[i]
		for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, "\\") + " " + lines[i]
		}
		out[start] = l
	}
	return out
}
