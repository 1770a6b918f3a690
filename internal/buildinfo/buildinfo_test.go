package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuild(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/mailroomhq/mailroom", Version: "v0.0.0-20261203101119-6485fcc1a2b3+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "6485fcc1a2b3c4d5e6f708192a3b4c5d6e7f8091"},
			{Key: "vcs.time", Value: "2026-12-03T10:11:19Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
	}{
		{
			name:    "link-time values win over the toolchain's",
			version: "v1.2.3", commit: "abc", date: "2026-01-02T03:04:05Z", bi: stamped,
			want: Info{Version: "v1.2.3", Commit: "abc", Date: "2026-01-02T03:04:05Z", Modified: true, GoVersion: "go1.26.8"},
		},
		{
			name: "checkout build: pseudo-version and VCS stamp",
			bi:   stamped,
			want: Info{Version: "v0.0.0-20261203101119-6485fcc1a2b3+dirty", Commit: "6485fcc1a2b3c4d5e6f708192a3b4c5d6e7f8091",
				Date: "2026-12-03T10:11:19Z", Modified: true, GoVersion: "go1.26.8"},
		},
		{
			name: "go install module@v1.4.0",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			want: Info{Version: "v1.4.0", GoVersion: "go1.26.8"},
		},
		{
			name: "go run: (devel) is dev",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want: Info{Version: DevVersion, GoVersion: "go1.26.8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fromBuild(tt.version, tt.commit, tt.date, tt.bi)
			got.Platform = "" // the test machine's
			if got != tt.want {
				t.Errorf("fromBuild:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestNoBuildInfo(t *testing.T) {
	t.Parallel()
	got := fromBuild("", "", "", nil)
	if got.Version != DevVersion || got.GoVersion == "" || got.Platform == "" {
		t.Errorf("fromBuild without build info = %+v, want version %q and the runtime's Go version and platform", got, DevVersion)
	}
}

func TestStringAndUserAgent(t *testing.T) {
	t.Parallel()
	i := Info{Version: "v1.2.3", Commit: "0123456789abcdef", Date: "2026-12-03T10:00:00Z", Modified: true, GoVersion: "go1.26.8", Platform: "linux/amd64"}
	if got, want := i.String(), "v1.2.3 (commit 0123456789ab+modified, built 2026-12-03T10:00:00Z, go1.26.8 linux/amd64)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := i.UserAgent(), "mailroom/v1.2.3"; got != want {
		t.Errorf("UserAgent() = %q, want %q", got, want)
	}
	if got := (Info{Version: "dev"}).String(); !strings.Contains(got, "commit unknown") {
		t.Errorf("String() without commit = %q, want it to say the commit is unknown", got)
	}
}
