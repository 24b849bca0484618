package deploycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildContextHoldsEveryPackage checks that the Dockerfile's build stage
// copies every directory of this module that the worker binary is compiled
// from, and that .dockerignore lets them in — a package added outside the
// copied folders would otherwise break `docker build` only on a machine with
// Docker.
func TestBuildContextHoldsEveryPackage(t *testing.T) {
	root := filepath.Join("..", "..")
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}",
		"../../cmd/wan22-worker").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df, _, err := ParseDockerfile("Dockerfile", src)
	if err != nil {
		t.Fatal(err)
	}
	// What the first stage copies from the context.
	var copied []string
	for _, c := range df.Stages[0].Copies {
		if c.From != "" {
			continue
		}
		if len(c.Args) > 1 {
			copied = append(copied, c.Args[:len(c.Args)-1]...)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(absRoot, dir)
		if err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, _ := filepath.Rel(absRoot, f)
			if !covered(file, copied) {
				t.Errorf("%s (package %s) is compiled into the worker but the Dockerfile's build stage does not COPY it", file, rel)
			}
			if !allowed(file, string(ignore)) {
				t.Errorf("%s is compiled into the worker but .dockerignore keeps it out of the build context", file)
			}
		}
	}
}

// covered reports whether a COPY source list includes file (a path relative
// to the context root): the file itself or a folder above it.
func covered(file string, sources []string) bool {
	for _, s := range sources {
		s = strings.TrimPrefix(filepath.Clean(s), "./")
		if file == s || strings.HasPrefix(file, s+"/") {
			return true
		}
	}
	return false
}

// allowed applies the allowlist-style .dockerignore the project uses ("*"
// then "!path" lines) to file.
func allowed(file, ignore string) bool {
	ok := true
	for _, line := range strings.Split(ignore, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "*":
			ok = false
		case strings.HasPrefix(line, "!"):
			p := strings.TrimSuffix(strings.TrimPrefix(line, "!"), "/")
			if file == p || strings.HasPrefix(file, p+"/") {
				ok = true
			}
		}
	}
	return ok
}
