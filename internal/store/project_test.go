package store

import (
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct{ project, name, full string }{
		{"", "stripe", "stripe"},
		{DefaultProject, "stripe", "stripe"},
		{"acme", "stripe", "acme/stripe"},
	} {
		if got := FullName(tc.project, tc.name); got != tc.full {
			t.Errorf("FullName(%q, %q) = %q, want %q", tc.project, tc.name, got, tc.full)
		}
		p, n := SplitName(tc.full)
		if p != ProjectOrDefault(tc.project) || n != tc.name {
			t.Errorf("SplitName(%q) = %q, %q", tc.full, p, n)
		}
	}
	for _, tc := range []struct {
		project, name, want, err string
	}{
		{"", "stripe", "stripe", ""},
		{"acme", "stripe", "acme/stripe", ""},
		{"acme", "acme/stripe", "acme/stripe", ""},
		{"acme", "beta/stripe", "", `in project "beta", not "acme"`},
		{"", "acme/stripe", "", `in project "acme", not "default"`},
	} {
		got, err := Qualify(tc.project, tc.name)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Qualify(%q, %q) = %q, %v; want %q, %q", tc.project, tc.name, got, err, tc.want, tc.err)
		}
	}
	for name, ok := range map[string]bool{"stripe": true, "acme/stripe": true, "default/stripe": false, "a/b/c": false, "/x": false, "acme/": false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
	if got := ConnectionID("acme/stripe", "acme/billing"); got != "acme/stripe->billing" {
		t.Errorf("ConnectionID = %q", got)
	}
	c := &Connection{Project: "acme", Source: "stripe", Destination: "beta/billing"}
	if err := c.Scope(); err == nil || !strings.Contains(err.Error(), "destination") {
		t.Errorf("Scope of a connection across projects = %v", err)
	}
	s := &Source{Name: "acme/stripe"}
	if err := s.Scope(); err != nil || s.Project != "acme" || s.Name != "acme/stripe" {
		t.Errorf("Scope of a full name: %+v, %v", s, err)
	}
}

// TestCheckIngestPaths: a default-project source may not have the name of
// a project, declared (even without sources yet) or holding sources.
func TestCheckIngestPaths(t *testing.T) {
	for _, tc := range []struct {
		sources, projects []string
		clash             string
	}{
		{[]string{"x", "acme"}, []string{"acme"}, "acme"},
		{[]string{"acme", "acme/x"}, nil, "acme"},
		{[]string{"x", "acme/x"}, []string{"acme"}, ""},
		{[]string{"shop", "acme/shop"}, []string{"acme"}, ""},
	} {
		err := CheckIngestPaths(tc.sources, tc.projects)
		switch {
		case tc.clash == "" && err != nil:
			t.Errorf("%v with projects %v: %v", tc.sources, tc.projects, err)
		case tc.clash != "" && (err == nil || !strings.Contains(err.Error(), `"`+tc.clash+`" is the name of a project`)):
			t.Errorf("%v with projects %v: %v, want the clash of %q", tc.sources, tc.projects, err, tc.clash)
		}
	}
}
