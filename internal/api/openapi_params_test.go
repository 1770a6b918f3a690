package api

import (
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPIListParams checks the query parameters and statuses the
// document gives each list against those its parser accepts (listKind,
// taskListParams, taskStatuses), so that a filter added to the code and not to the
// document, or the reverse, fails here with what to change. project is
// every route's parameter ([scopeOf]) and left out.
func TestOpenAPIListParams(t *testing.T) {
	doc, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		kind         listKind
	}{
		{"GET", "/requests", requestsKind},
		{"GET", "/events", eventsKind},
		{"GET", "/deliveries", deliveriesKind},
		{"POST", "/deliveries/retry", retryKind},
		{"GET", "/tasks", listKind{name: "tasks", filters: taskListParams, statuses: taskStatuses}},
	} {
		item := spec.Paths.Value(c.path)
		if item == nil || item.GetOperation(c.method) == nil {
			t.Errorf("%s %s is not in openapi.yaml", c.method, c.path)
			continue
		}
		var documented []string
		var statuses []string
		for _, p := range append(slices.Clone(item.Parameters), item.GetOperation(c.method).Parameters...) {
			if p.Value.In != openapi3.ParameterInQuery || p.Value.Name == "project" {
				continue
			}
			documented = append(documented, p.Value.Name)
			if p.Value.Name == "status" {
				for _, v := range p.Value.Schema.Value.Enum {
					statuses = append(statuses, v.(string))
				}
			}
		}
		accepted := c.kind.filters
		if c.kind.name != "tasks" {
			accepted = c.kind.accepted()
		}
		// project, on every route, is the path item's (skipped above).
		accepted = slices.DeleteFunc(slices.Clone(accepted), func(s string) bool { return s == "project" })
		slices.Sort(documented)
		accepted = slices.Sorted(slices.Values(accepted))
		if !slices.Equal(documented, accepted) {
			t.Errorf("%s %s: openapi.yaml documents the query parameters [%s], the code accepts [%s]: make paths: %s: %s: parameters list exactly what the code accepts",
				c.method, c.path, strings.Join(documented, " "), strings.Join(accepted, " "), c.path, strings.ToLower(c.method))
		}
		slices.Sort(statuses)
		want := slices.Sorted(slices.Values(c.kind.statuses))
		if !slices.Equal(statuses, want) {
			t.Errorf("%s %s: openapi.yaml gives status the values [%s], the code accepts [%s]", c.method, c.path, strings.Join(statuses, " "), strings.Join(want, " "))
		}
	}
}
