package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/config"
)

func TestProjects(t *testing.T) {
	t.Parallel()
	opts := realOptions(t, nil)
	cfg, err := config.Parse([]byte(`projects:
  - name: acme
    ingest_rate: 10/s
    max_destinations: 2
    retention: 72h
sources:
  - name: stripe
  - name: stripe
    project: acme
destinations:
  - name: billing
    url: http://127.0.0.1:9000/a
  - name: billing
    project: acme
    url: http://127.0.0.1:9000/b
connections:
  - source: stripe
    destination: billing
  - project: acme
    source: stripe
    destination: billing
`), "mailroom.yaml", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Projects) != 1 || cfg.Projects[0].MaxDestinations != 2 || cfg.Projects[0].Retention.D() != 72*time.Hour {
		t.Errorf("projects = %+v", cfg.Projects)
	}
	if cfg.Sources[1].Project != "acme" || cfg.Connections[1].Project != "acme" {
		t.Errorf("entries' projects: %+v, %+v", cfg.Sources[1], cfg.Connections[1])
	}

	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"UndeclaredProject", "sources:\n  - name: s\n    project: acme\n",
			[]string{`mailroom.yaml:3: sources[0].project: unknown project "acme": declare it under projects: (none are declared)`}},
		{"BadProjectFields", "projects:\n  - name: a/b\n    ingest_rate: fast\n    max_destinations: -1\n    retention: 1m\n",
			[]string{"mailroom.yaml:2: projects[0].name: invalid project", "mailroom.yaml:3: projects[0].ingest_rate: invalid rate", "mailroom.yaml:4: projects[0].max_destinations: must not be negative", "mailroom.yaml:5: projects[0].retention: 1m0s is shorter"}},
		{"DuplicateProject", "projects:\n  - name: a\n  - name: a\n",
			[]string{`mailroom.yaml:3: projects[1].name: duplicate project "a" (first at line 2)`}},
		{"DuplicateInProject", "projects: [{name: a}]\nsources:\n  - {name: s, project: a}\n  - {name: s, project: a}\n",
			[]string{`mailroom.yaml:4: sources[1].name: duplicate source name "s" in project "a" (first at line 3)`}},
		{"SlashInName", "sources:\n  - name: a/s\n",
			[]string{`mailroom.yaml:2: sources[0].name: invalid name "a/s": a name holds no '/'; put the entry in a project with project:`}},
		{"ConnectionAcrossProjects", "projects: [{name: a}]\nsources:\n  - {name: s, project: a}\ndestinations:\n  - {name: d, url: 'http://127.0.0.1:1/'}\nconnections:\n  - {project: a, source: s, destination: d}\n",
			[]string{`mailroom.yaml:7: connections[0].destination: unknown destination "d" in project "a"`}},
		{"MaxDestinations", "projects: [{name: a, max_destinations: 1}]\ndestinations:\n  - {name: d, project: a, url: 'http://127.0.0.1:1/'}\n  - {name: e, project: a, url: 'http://127.0.0.1:1/'}\n",
			[]string{`mailroom.yaml:4: destinations[1]: max_destinations reached: project "a" has 1 destinations and allows 1`}},
		{"SourceNamedLikeProject", "projects: [{name: acme}]\nsources:\n  - name: acme\n",
			[]string{`mailroom.yaml:3: sources[0].name: "acme" is the name of a project`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml), "mailroom.yaml", opts)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q; got:\n%s", w, err)
				}
			}
		})
	}
}
