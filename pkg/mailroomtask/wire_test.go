package mailroomtask

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

// The package reads mailroom's admin API and may not import the store, so
// it keeps its own copy of the task statuses' terminal rule and of the
// task's JSON form. These tests tie both copies to the store's, the one
// place of the rule: a status or field renamed there fails here.

func TestTerminalIsTheStoresRule(t *testing.T) {
	t.Parallel()
	for _, s := range []string{store.TaskWorking, store.TaskInputRequired, store.TaskCompleted, store.TaskFailed, store.TaskCancelled, "unknown"} {
		if got, want := terminal(s), store.TaskTerminal(s); got != want {
			t.Errorf("terminal(%q) = %v, store.TaskTerminal = %v", s, got, want)
		}
	}
}

func TestAPITaskIsTheStoresJSON(t *testing.T) {
	t.Parallel()
	fields := func(typ reflect.Type) map[string]reflect.Type {
		out := map[string]reflect.Type{}
		for f := range typ.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				out[name] = f.Type
			}
		}
		return out
	}
	stored := fields(reflect.TypeFor[store.Task]())
	for name, typ := range fields(reflect.TypeFor[apiTask]()) {
		if st, ok := stored[name]; !ok {
			t.Errorf("apiTask.%s: store.Task has no JSON field %q", name, name)
		} else if st != typ {
			t.Errorf("apiTask.%s is %v, store.Task's is %v", name, typ, st)
		}
	}
}
