package api_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoDependencyOnRunPodLoop: the local API shapes results with package
// result and never pulls in the RunPod loop, directly or through another
// package of this module.
func TestNoDependencyOnRunPodLoop(t *testing.T) {
	const module = "github.com/wan22-worker/wan22-worker/"
	const forbidden = module + "internal/runpod"
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(path string, chain []string)
	walk = func(path string, chain []string) {
		if seen[path] {
			return
		}
		seen[path] = true
		if path == forbidden || strings.HasPrefix(path, forbidden+"/") {
			t.Errorf("internal/api depends on %s: %s", forbidden, strings.Join(append(chain, path), " → "))
			return
		}
		pkg, err := build.ImportDir(filepath.Join(root, strings.TrimPrefix(path, module)), 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, module) {
				walk(imp, append(chain, path))
			}
		}
	}
	walk(module+"internal/api", nil)
	if !seen[module+"internal/result"] {
		t.Error("internal/api does not use internal/result")
	}
}
