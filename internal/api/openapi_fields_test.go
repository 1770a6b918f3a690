package api

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/mailroomhq/mailroom/internal/alert"
	"github.com/mailroomhq/mailroom/internal/preview"
	"github.com/mailroomhq/mailroom/internal/reload"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
	"github.com/mailroomhq/mailroom/internal/transform"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// TestOpenAPIFields compares the properties of each schema of the
// document with the JSON fields of the Go type the API encodes or decodes
// for it, both ways. The scenario's validation sees only the fields its
// data fills (an omitempty field left empty never shows); this sees
// every field, so a field added to a type and not to the document fails
// here, naming both.
func TestOpenAPIFields(t *testing.T) {
	doc, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(doc)
	if err != nil {
		t.Fatal(err)
	}
	paired := map[string]any{
		"Source":               store.Source{},
		"SourceWrite":          store.Source{},
		"VerifyConfig":         verify.Config{},
		"DedupConfig":          store.DedupConfig{},
		"Destination":          store.Destination{},
		"DestinationWrite":     store.Destination{},
		"RetryPolicy":          store.RetryPolicy{},
		"SignConfig":           store.SignConfig{},
		"CircuitBreaker":       store.CircuitBreaker{},
		"CircuitState":         store.CircuitState{},
		"OutboundAuth":         store.OutboundAuth{},
		"ClientTLS":            store.ClientTLS{},
		"PauseRequest":         pauseBody{},
		"Connection":           store.Connection{},
		"ConnectionWrite":      store.Connection{},
		"TransformTestRequest": transformTestBody{},
		"TransformTestResult":  preview.Result{},
		"TransformView":        transform.View{},
		"Request":              requestView{},
		"Event":                store.Event{},
		"EventDetail":          eventDetail{},
		"ReplayResult":         replayBody{},
		"StreamOpen":           StreamOpen{},
		"StreamedEvent":        StreamedEvent{},
		"ListenAttempt":        listenAttemptBody{},
		"Delivery":             store.Delivery{},
		"DeliveryDetail":       deliveryDetail{},
		"Attempt":              attemptView{},
		"RetryFilters":         retryManyBody{},
		"RetryManyResult":      retryManyResult{},
		"Stats":                statsBody{},
		"DestinationStats":     destinationStats{},
		"Task":                 taskView{},
		"TaskWait":             store.TaskWait{},
		"FilterCost":           task.FilterCost{},
		"TaskCreate":           taskCreateBody{},
		"Alert":                alert.Alert{},
		"ReloadResult":         reload.Result{},
		"CatalogNames":         store.CatalogNames{},
		"Error":                errorBody{},
		"Token":                store.Token{},
		"CreatedToken":         tokenCreated{},
		"TokenCreate":          tokenCreateBody{},
		"AuditEntry":           store.AuditEntry{},
		"RetryRule":            store.RetryRule{},
		"RetryApplied":         store.RetryApplied{},
		"RequestPage":          list[*requestView]{},
		"EventPage":            list[*store.Event]{},
		"DeliveryPage":         list[*store.Delivery]{},
		"TaskPage":             list[*store.Task]{},
		"AuditPage":            list[*store.AuditEntry]{},
		"Project":              projectView{},
	}
	for schema, ref := range spec.Components.Schemas {
		if _, ok := paired[schema]; ok || notPaired[schema] != "" || (len(ref.Value.Properties) == 0 && len(ref.Value.AllOf) == 0) {
			continue
		}
		t.Errorf("schema %s of openapi.yaml is not paired with a Go type: add it to paired in TestOpenAPIFields (%s), with the value the API encodes or decodes for it, or to notPaired with the reason",
			schema, "internal/api/openapi_fields_test.go")
	}
	for schema, v := range paired {
		ref := spec.Components.Schemas[schema]
		if ref == nil {
			t.Errorf("openapi.yaml has no schema %s (for Go type %T)", schema, v)
			continue
		}
		documented := schemaProperties(ref.Value)
		fields := jsonFields(reflect.TypeOf(v))
		for _, f := range fields {
			if !slices.Contains(documented, f) {
				t.Errorf("%T has the JSON field %q, which schema %s of openapi.yaml does not list: describe it there (under properties)", v, f, schema)
			}
		}
		for _, p := range documented {
			if !slices.Contains(fields, p) {
				t.Errorf("schema %s of openapi.yaml lists %q, which %T does not have: remove it, or the field was renamed", schema, p, v)
			}
		}
	}
}

// notPaired are the object schemas of openapi.yaml that TestOpenAPIFields
// does not compare with a Go type, and why.
var notPaired = map[string]string{
	"SourceSpec":       "part of Source and SourceWrite, compared through them",
	"DestinationSpec":  "part of Destination and DestinationWrite, compared through them",
	"DestinationState": "part of Destination and DestinationWrite, compared through them",
	"ConnectionSpec":   "part of Connection and ConnectionWrite, compared through them",
	"EventFields":      "part of Event and EventDetail, compared through them",
	"DeliveryFields":   "part of Delivery and DeliveryDetail, compared through them",
	"TokenFields":      "part of Token and CreatedToken, compared through them",
	"SourceList":       "list[T] without next_cursor, which only paged lists set",
	"DestinationList":  "list[T] without next_cursor, which only paged lists set",
	"ConnectionList":   "list[T] without next_cursor, which only paged lists set",
	"AttemptList":      "list[T] without next_cursor, which only paged lists set",
	"AlertList":        "list[T] without next_cursor, which only paged lists set",
	"TokenList":        "list[T] without next_cursor, which only paged lists set",
	"ProjectList":      "list[T] without next_cursor, which only paged lists set",
}

// schemaProperties returns the property names of s and of the schemas it
// combines with allOf.
func schemaProperties(s *openapi3.Schema) []string {
	var out []string
	for name := range s.Properties {
		out = append(out, name)
	}
	for _, sub := range s.AllOf {
		out = append(out, schemaProperties(sub.Value)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// jsonFields returns the names encoding/json gives the fields of struct
// type t, embedded structs flattened.
func jsonFields(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
