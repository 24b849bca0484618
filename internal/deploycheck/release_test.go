package deploycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests run scripts/release.sh (what `make patch|minor|major` runs) in a
// throwaway git repository.

const changelog = `# Changelog

Intro text.

## [Unreleased]
### Added
- a feature
### Fixed
- a bug

## [0.1.0] - 2025-12-01
### Added
- the first release
`

// releaseRepo makes a git repository with VERSION 0.1.0, a changelog with
// Unreleased entries, a Dockerfile carrying WORKER_VERSION and the release
// script, all committed.
func releaseRepo(t *testing.T) (dir string, run func(args ...string) (string, error)) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir = t.TempDir()
	home := t.TempDir()
	env := append(os.Environ(),
		"GIT_AUTHOR_NAME=Release Test", "GIT_AUTHOR_EMAIL=release@example.invalid",
		"GIT_COMMITTER_NAME=Release Test", "GIT_COMMITTER_EMAIL=release@example.invalid",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "HOME="+home,
		"RELEASE_DATE=2026-01-02")
	run = func(args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) {
		t.Helper()
		if out, err := run(args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	script := readRepoFile(t, "scripts/release.sh")
	write(t, dir, "scripts/release.sh", string(script), 0o755)
	write(t, dir, "VERSION", "0.1.0\n", 0o644)
	write(t, dir, "CHANGELOG.md", changelog, 0o644)
	write(t, dir, "Dockerfile", "FROM x\nARG WORKER_VERSION=0.1.0\nFROM y\nARG WORKER_VERSION=0.1.0\n", 0o644)
	must("git", "init", "-q")
	must("git", "add", ".")
	must("git", "commit", "-q", "-m", "initial")
	return dir, run
}

func write(t *testing.T, dir, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReleaseBumps(t *testing.T) {
	tests := []struct{ part, want string }{
		{"patch", "0.1.1"},
		{"minor", "0.2.0"},
		{"major", "1.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.part, func(t *testing.T) {
			dir, run := releaseRepo(t)
			out, err := run("./scripts/release.sh", tc.part)
			if err != nil {
				t.Fatalf("release %s: %v\n%s", tc.part, err, out)
			}
			if got := readFile(t, dir, "VERSION"); got != tc.want+"\n" {
				t.Errorf("VERSION %q, want %q", got, tc.want)
			}
			wantLog := strings.Replace(changelog, "## [Unreleased]\n",
				"## [Unreleased]\n\n## ["+tc.want+"] - 2026-01-02\n", 1)
			if got := readFile(t, dir, "CHANGELOG.md"); got != wantLog {
				t.Errorf("CHANGELOG.md:\n%s\nwant:\n%s", got, wantLog)
			}
			if got := readFile(t, dir, "Dockerfile"); strings.Count(got, "ARG WORKER_VERSION="+tc.want+"\n") != 2 {
				t.Errorf("Dockerfile's WORKER_VERSION not bumped in both stages:\n%s", got)
			}
			tag := "v" + tc.want
			gitOut := func(args ...string) string {
				t.Helper()
				out, err := run(append([]string{"git"}, args...)...)
				if err != nil {
					t.Fatalf("git %v: %v\n%s", args, err, out)
				}
				return strings.TrimSpace(out)
			}
			if got := gitOut("log", "-1", "--format=%s"); got != "Release "+tag {
				t.Errorf("commit message %q, want %q", got, "Release "+tag)
			}
			if got := gitOut("cat-file", "-t", tag); got != "tag" {
				t.Errorf("%s is a %s, want an annotated tag", tag, got)
			}
			if gitOut("rev-parse", tag+"^{commit}") != gitOut("rev-parse", "HEAD") {
				t.Errorf("%s does not point at the release commit", tag)
			}
			if msg := gitOut("tag", "-l", "--format=%(contents)", tag); !strings.Contains(msg, "- a feature") {
				t.Errorf("tag message lacks the release notes:\n%s", msg)
			}
			if st := gitOut("status", "--porcelain"); st != "" {
				t.Errorf("work tree not clean after the release:\n%s", st)
			}
			if files := gitOut("show", "--name-only", "--format=", "HEAD"); files != "CHANGELOG.md\nDockerfile\nVERSION" {
				t.Errorf("release commit holds %q", files)
			}

			// Released: Unreleased is now empty, so a second release is refused until entries are added.
			out, err = run("./scripts/release.sh", "patch")
			if err == nil || !strings.Contains(out, "Unreleased section of CHANGELOG.md is empty") {
				t.Errorf("second release without entries: err %v\n%s", err, out)
			}
		})
	}
}

func TestReleaseRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string, run func(...string) (string, error))
		args  []string
		want  string
	}{
		{"modified file", func(t *testing.T, dir string, _ func(...string) (string, error)) {
			write(t, dir, "CHANGELOG.md", changelog+"- uncommitted\n", 0o644)
		}, []string{"patch"}, "uncommitted changes"},
		{"untracked file", func(t *testing.T, dir string, _ func(...string) (string, error)) {
			write(t, dir, "notes.txt", "x", 0o644)
		}, []string{"patch"}, "uncommitted changes"},
		{"tag exists", func(t *testing.T, _ string, run func(...string) (string, error)) {
			if out, err := run("git", "tag", "v0.2.0"); err != nil {
				t.Fatal(err, out)
			}
		}, []string{"minor"}, "tag v0.2.0 already exists"},
		{"empty unreleased", func(t *testing.T, dir string, run func(...string) (string, error)) {
			empty := strings.Replace(changelog, "### Added\n- a feature\n### Fixed\n- a bug\n", "### Added\n\n", 1)
			write(t, dir, "CHANGELOG.md", empty, 0o644)
			if out, err := run("git", "commit", "-q", "-am", "empty"); err != nil {
				t.Fatal(err, out)
			}
		}, []string{"patch"}, "add what changed under '## [Unreleased]'"},
		{"bad version", func(t *testing.T, dir string, run func(...string) (string, error)) {
			write(t, dir, "VERSION", "1.2\n", 0o644)
			if out, err := run("git", "commit", "-q", "-am", "bad"); err != nil {
				t.Fatal(err, out)
			}
		}, []string{"patch"}, "not MAJOR.MINOR.PATCH"},
		{"no argument", nil, nil, "usage:"},
		{"bad argument", nil, []string{"feature"}, "usage:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, run := releaseRepo(t)
			if tc.setup != nil {
				tc.setup(t, dir, run)
			}
			head, _ := run("git", "rev-parse", "HEAD")
			version := readFile(t, dir, "VERSION")
			out, err := run(append([]string{"./scripts/release.sh"}, tc.args...)...)
			if err == nil {
				t.Fatalf("release succeeded:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("message lacks %q:\n%s", tc.want, out)
			}
			if after, _ := run("git", "rev-parse", "HEAD"); after != head {
				t.Error("a refused release made a commit")
			}
			if got := readFile(t, dir, "VERSION"); got != version {
				t.Errorf("a refused release changed VERSION to %q", got)
			}
		})
	}
}
