// Package version holds the build's version, set at link time with
// -ldflags "-X github.com/wan22-worker/wan22-worker/internal/version.Version=...".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker; see the Makefile.
var (
	Version = "dev"
	Commit  = ""
)

// Info is the build's identity.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Get returns the build's identity, falling back to the VCS stamp Go embeds
// when the linker did not set a commit.
func Get() Info {
	commit := Commit
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	return Info{Version: Version, Commit: commit, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

func (i Info) String() string {
	return fmt.Sprintf("wan22-worker %s (commit %s, %s, %s)", i.Version, i.Commit, i.GoVersion, i.Platform)
}
