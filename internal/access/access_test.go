package access

import (
	"context"
	"testing"
)

func TestInProject(t *testing.T) {
	for _, tc := range []struct {
		p       Principal
		project string
		want    bool
	}{
		{Anonymous, "b", true},
		{Principal{Role: RoleAdmin, Project: "a"}, "b", false},
		{Principal{Role: RoleOperator, Project: "a"}, "a", true},
		{Principal{Role: RoleViewer, Project: "a"}, "b", false},
		{Principal{Role: RoleViewer}, "", true},
		{Principal{Role: RoleViewer}, DefaultProject, true},
		{Principal{Role: RoleViewer}, "b", false},
	} {
		if got := tc.p.InProject(tc.project); got != tc.want {
			t.Errorf("%+v.InProject(%q) = %v, want %v", tc.p, tc.project, got, tc.want)
		}
	}
	if _, ok := From(context.Background()); ok {
		t.Error("empty context carries a principal")
	}
	p := Principal{TokenID: "t", Role: RoleMCP, Project: "a"}
	if got, ok := From(With(context.Background(), p)); !ok || got != p {
		t.Errorf("From(With(p)) = %+v, %v", got, ok)
	}
}
