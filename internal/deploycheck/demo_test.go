package deploycheck

import (
	"regexp"
	"strings"
	"testing"
)

// TestDemoBuildsStampedBinary: scripts/demo.sh builds the worker as
// `make build` does, stamped with the version and commit, not as a bare
// `go build` that reports "dev (commit unknown)".
func TestDemoBuildsStampedBinary(t *testing.T) {
	demo := string(readRepoFile(t, "scripts/demo.sh"))
	makefile := string(readRepoFile(t, "Makefile"))
	if !regexp.MustCompile(`(?m)^build:`).MatchString(makefile) || !strings.Contains(makefile, "internal/version.Commit=") {
		t.Fatal("the Makefile has no stamped build target to compare with")
	}
	usesMake := regexp.MustCompile(`(?m)^\s*make\b[^\n]*\bbuild\b`).MatchString(demo)
	// Every go build of the worker (a command may span lines) is stamped.
	joined := strings.ReplaceAll(demo, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		if strings.Contains(line, "go build") && strings.Contains(line, "./cmd/wan22-worker") {
			if !strings.Contains(line, "internal/version.Version=") || !strings.Contains(line, "internal/version.Commit=") {
				t.Errorf("unstamped build of the worker: %s", strings.TrimSpace(line))
			}
		}
	}
	if !usesMake && !strings.Contains(joined, "internal/version.Commit=") {
		t.Error("demo.sh neither runs make build nor stamps its build")
	}
}
