package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	Check(t, path, []byte("a\nb\n"), true) // writes
	if b, err := os.ReadFile(path); err != nil || string(b) != "a\nb\n" {
		t.Fatalf("update wrote %q, %v", b, err)
	}
	Check(t, path, []byte("a\nb\n"), false) // same: passes

	r := &recorder{TB: t}
	Check(r, path, []byte("a\nc\n"), false)
	if len(r.errors) != 1 {
		t.Fatalf("a difference was not reported: %v", r.errors)
	}
}

func TestDiff(t *testing.T) {
	d := Diff("a\nb\nc", "a\nB\nc\nd")
	if !strings.Contains(d, "line 2:\n  want: b\n  got:  B") || !strings.Contains(d, "line 4:") || strings.Contains(d, "line 1:") {
		t.Errorf("Diff = %q", d)
	}
}
