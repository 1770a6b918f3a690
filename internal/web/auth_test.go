package web

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, next, want string
	}{
		{"Empty", "", "/"},
		{"Root", "/", "/"},
		{"Page", "/ui/events", "/ui/events"},
		{"PageWithQuery", "/ui/events?source=stripe&status=dead", "/ui/events?source=stripe&status=dead"},
		{"Fragment", "/ui/events#top", "/ui/events#top"},
		{"EncodedKept", "/ui/events/evt%2F1", "/ui/events/evt%2F1"},
		{"Tab", "/\t/evil.example", "/"},
		{"EncodedTabArrivesDecoded", mustUnescape(t, "/%09/evil.example"), "/"},
		{"DoubleEncodedTabStaysAPath", "/%09/evil.example", "/%09/evil.example"},
		{"Newline", "/\n/evil.example", "/"},
		{"CarriageReturn", "/\r//evil.example", "/"},
		{"Nul", "/\x00/evil.example", "/"},
		{"Del", "/\x7f/evil.example", "/"},
		{"SchemeRelative", "//evil.example", "/"},
		{"SchemeRelativeTriple", "///evil.example", "/"},
		{"Backslash", "/\\evil.example", "/"},
		{"BackslashFirst", "\\\\evil.example", "/"},
		{"Absolute", "https://evil.example", "/"},
		{"AbsoluteUpper", "HTTPS://evil.example/x", "/"},
		{"JavaScript", "javascript:alert(1)", "/"},
		{"Relative", "evil.example", "/"},
		{"LeadingSpace", " //evil.example", "/"},
		{"Userinfo", "//user@evil.example", "/"},
		{"EncodedSlashes", "/%2F%2Fevil.example", "/%2F%2Fevil.example"},
		{"DotSegments", "/..//evil.example", "/..//evil.example"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := safeNext(tt.next)
			if got != tt.want {
				t.Errorf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
			}
			if !staysOnSite(got) {
				t.Errorf("safeNext(%q) = %q leaves the site", tt.next, got)
			}
		})
	}
}

func mustUnescape(t *testing.T, s string) string {
	t.Helper()
	u, err := url.QueryUnescape(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// site is the origin the oracle resolves redirects against.
const site = "https://mailroom.example:8443"

// staysOnSite is the oracle: a browser given Location: loc on a page of
// site stays on site. It applies what the WHATWG URL parser does before
// parsing (strip leading and trailing C0 controls and spaces, remove
// tabs and newlines, read "\" as "/" in a special scheme's URL), then
// resolves loc against the site and compares the origin.
func staysOnSite(loc string) bool {
	loc = strings.TrimFunc(loc, func(c rune) bool { return c <= 0x20 })
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(loc)
	base, _ := url.Parse(site + "/ui/login")
	ref, err := url.Parse(loc)
	if err != nil {
		return false
	}
	got := base.ResolveReference(ref)
	return got.Scheme == "https" && got.Host == "mailroom.example:8443" && got.User == nil
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/ui/events?x=1", "/\t/evil.example", "//evil", "/\\evil", "https://evil", "/%09/evil",
		"/%2F%2Fevil", " //evil", "\\/evil", "/\u3000/evil", "/?next=//evil#//evil", "http:/evil", "/\x00//evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !staysOnSite(got) {
			t.Fatalf("safeNext(%q) = %q leaves %s", next, got, site)
		}
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("safeNext(%q) = %q is not a path-absolute reference", next, got)
		}
		if again := safeNext(got); again != got {
			t.Fatalf("safeNext is not stable: %q → %q → %q", next, got, again)
		}
	})
}
