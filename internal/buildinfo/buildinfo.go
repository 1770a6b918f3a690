// Package buildinfo is the one place that says which build of mailroom is
// running: its version, commit, build date and Go version. Everything that
// shows a version (the version command, the startup log, /healthz, MCP
// serverInfo, the mailroom_build_info metric, the User-Agent of
// deliveries) reads it from [Read], so they cannot disagree.
//
// Release builds set the values at link time (scripts/release.sh):
//
//	go build -ldflags "-X github.com/mailroomhq/mailroom/internal/buildinfo.version=v1.2.3
//	  -X github.com/mailroomhq/mailroom/internal/buildinfo.commit=<sha>
//	  -X github.com/mailroomhq/mailroom/internal/buildinfo.date=<RFC 3339>"
//
// Without them (go install, go build in a clone) [Read] falls back to what
// the Go toolchain embeds: the module version `go install …@v1.2.3`
// records, or the pseudo-version and VCS stamp of a build in a checkout.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at link time with -X; empty in a plain `go build`. They are never
// written at run time.
var (
	version string
	commit  string
	date    string
)

// DevVersion is the version of a build that has neither a link-time
// version nor a module version (go run, go test, a build outside VCS).
const DevVersion = "dev"

// Info describes one build. The zero value is not useful; use [Read].
type Info struct {
	// Version is the release version (v1.2.3), a Go pseudo-version for a
	// build from a checkout, or [DevVersion].
	Version string `json:"version"`
	// Commit is the full VCS revision, or empty when unknown.
	Commit string `json:"commit,omitempty"`
	// Date is the build date in RFC 3339 (a release's is its commit time,
	// so rebuilding the same commit gives the same bytes), or empty.
	Date string `json:"date,omitempty"`
	// Modified is true when the working tree had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary (go1.26.8).
	GoVersion string `json:"go_version"`
	// Platform is GOOS/GOARCH of the binary.
	Platform string `json:"platform"`
}

// Read returns the running binary's build information: the link-time
// values where set, else the Go toolchain's embedded build information.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuild(version, commit, date, bi)
}

// fromBuild merges link-time values (preferred) with the toolchain's
// build information (bi may be nil).
func fromBuild(version, commit, date string, bi *debug.BuildInfo) Info {
	info := Info{Version: version, Commit: commit, Date: date,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		if info.Version == "" {
			info.Version = DevVersion
		}
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = DevVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.Commit == "" {
				info.Commit = s.Value
			}
		case "vcs.time":
			if info.Date == "" {
				info.Date = s.Value
			}
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// UserAgent is the User-Agent mailroom sends with its own HTTP requests
// (deliveries): "mailroom/<version>".
func (i Info) UserAgent() string {
	return "mailroom/" + i.Version
}

// ShortCommit is the first 12 characters of the commit, or "unknown".
func (i Info) ShortCommit() string {
	if i.Commit == "" {
		return "unknown"
	}
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}

// String is the one-line form `mailroom --version` prints:
// "v1.2.3 (commit 0123456789ab, built 2026-12-03T10:00:00Z, go1.26.8 linux/amd64)".
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (commit %s", i.Version, i.ShortCommit())
	if i.Modified {
		b.WriteString("+modified")
	}
	if i.Date != "" {
		fmt.Fprintf(&b, ", built %s", i.Date)
	}
	fmt.Fprintf(&b, ", %s %s)", i.GoVersion, i.Platform)
	return b.String()
}
