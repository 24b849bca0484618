package deploycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the module root (the directory holding go.mod).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func noFindings(t *testing.T, fs []Finding, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		t.Error(f)
	}
}

func TestRepoDockerfileIsPinned(t *testing.T) {
	fs, err := CheckDockerfile("Dockerfile", readRepoFile(t, "Dockerfile"))
	noFindings(t, fs, err)
}

// TestRepoDockerfileContract checks what the rest of the project relies on:
// the versions, the environment the worker reads, the entrypoint and the labels.
func TestRepoDockerfileContract(t *testing.T) {
	df, _, err := ParseDockerfile("Dockerfile", readRepoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(readRepoFile(t, "VERSION")))
	if len(df.Stages) != 2 {
		t.Fatalf("want 2 stages (Go build, runtime), got %d", len(df.Stages))
	}
	build, rt := df.Stages[0], df.Stages[1]
	if !strings.HasPrefix(build.Image, "golang:1.26") {
		t.Errorf("build stage image %q, want golang:1.26.x", build.Image)
	}
	if !strings.HasPrefix(rt.Image, "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04@sha256:") {
		t.Errorf("runtime image %q, want nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 by digest", rt.Image)
	}

	// The Go binary: static, reproducible paths, stamped with VERSION and the commit.
	if build.Env["CGO_ENABLED"] != "0" {
		t.Errorf("build stage CGO_ENABLED=%q, want 0", build.Env["CGO_ENABLED"])
	}
	goBuild := ""
	for _, r := range build.Runs {
		if strings.Contains(r.Text, "go build") {
			goBuild = r.Text
		}
	}
	for _, want := range []string{"-trimpath", "internal/version.Version=${version}", "internal/version.Commit=${COMMIT}",
		`version="$(cat VERSION)"`, "./cmd/wan22-worker"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("the go build RUN lacks %q", want)
		}
	}

	for _, st := range df.Stages {
		if got := st.Args["WORKER_VERSION"]; got != version {
			t.Errorf("stage %s: ARG WORKER_VERSION=%q, VERSION file says %q (scripts/release.sh keeps them equal)", st.Name, got, version)
		}
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": "unknown",
		"org.opencontainers.image.title":    "wan22-worker",
		"wan22-worker.comfyui.version":      "v0.3.64",
		"wan22-worker.torch.version":        "2.8.0",
	}
	for k, want := range wantLabels {
		if got := rt.Labels[k]; got != want {
			t.Errorf("LABEL %s=%q, want %q", k, got, want)
		}
	}

	wantArgs := map[string]string{
		"TORCH_VERSION":    "2.8.0",
		"XFORMERS_VERSION": "0.0.32.post2",
		"COMFYUI_VERSION":  "v0.3.64",
	}
	for k, want := range wantArgs {
		if got := rt.Args[k]; got != want {
			t.Errorf("ARG %s=%q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"COMFYUI_COMMIT", "VHS_COMMIT"} {
		if !shaRE.MatchString(rt.Args[k]) {
			t.Errorf("ARG %s=%q is not a full commit SHA", k, rt.Args[k])
		}
	}

	wantEnv := map[string]string{
		"COMFYUI_DIR":      "/comfyui",
		"COMFY_PYTHON":     "/opt/venv/bin/python",
		"COMFY_LOG_FILE":   "/comfyui/comfyui.log",
		"MODELS_DIRS":      "/runpod-volume/models:/comfyui/models",
		"PYTHONUNBUFFERED": "1",
		"LD_PRELOAD":       "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
	}
	for k, want := range wantEnv {
		if got := rt.Env[k]; got != want {
			t.Errorf("ENV %s=%q, want %q", k, got, want)
		}
	}
	if !slices.Equal(rt.Entrypoint, []string{"/usr/local/bin/wan22-worker"}) || !slices.Equal(rt.Cmd, []string{"serve"}) {
		t.Errorf("ENTRYPOINT %q CMD %q, want [/usr/local/bin/wan22-worker] [serve]", rt.Entrypoint, rt.Cmd)
	}

	var all strings.Builder
	for _, r := range rt.Runs {
		all.WriteString(expandText(r.Text, r.env) + "\n")
	}
	runs := all.String()
	for _, want := range []string{
		"libtcmalloc-minimal4t64", // the package that installs LD_PRELOAD's library
		"gcc", "python3.12-dev",   // Triton's run-time launcher build (torch.compile)
		"pip install --require-hashes --only-binary=:all: -r /opt/wan22/requirements.lock", // only the lock's packages
		"--quick-test-for-ci", // the image's start-up smoke test
	} {
		if !strings.Contains(runs, want) {
			t.Errorf("no RUN of the runtime stage contains %q", want)
		}
	}
	// Model weights are not in the default image (network volume or cached model); only BAKE_MODELS=1 puts
	// them in, through the worker's own checked download.
	if strings.Contains(runs, ".safetensors") {
		t.Error("a RUN downloads model weights directly; use `wan22-worker models pull` under BAKE_MODELS")
	}
	if rt.Args["BAKE_MODELS"] != "0" {
		t.Errorf("ARG BAKE_MODELS=%q, want 0: the default image carries no weights", rt.Args["BAKE_MODELS"])
	}
	for _, r := range rt.Runs {
		if strings.Contains(r.Text, "models pull") && !strings.Contains(r.Text, `if [ "${BAKE_MODELS}" = "1" ]`) {
			t.Errorf("line %d: models pull outside BAKE_MODELS=1", r.Line)
		}
	}
	for _, c := range build.Copies {
		for _, src := range c.Args[:len(c.Args)-1] {
			if src == "." {
				t.Errorf("line %d: COPY . copies the whole context; copy what the build needs", c.Line)
			}
		}
	}
}

// TestDockerignoreKeepsBuildInputs checks that the allowlist in .dockerignore
// lets through every path the build stage copies from the context.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	lines := strings.Split(string(readRepoFile(t, ".dockerignore")), "\n")
	df, _, err := ParseDockerfile("Dockerfile", readRepoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(lines, "*") {
		t.Fatal(".dockerignore should start from '*' (an allowlist)")
	}
	for _, st := range df.Stages {
		for _, c := range st.Copies {
			if c.From != "" {
				continue
			}
			for _, src := range c.Args[:len(c.Args)-1] {
				if !slices.Contains(lines, "!"+src) && !slices.Contains(lines, "!"+src+"/") {
					t.Errorf("Dockerfile:%d copies %s, which .dockerignore does not let through (add !%s)", c.Line, src, src)
				}
			}
		}
	}
}

const (
	digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sha    = "0123456789abcdef0123456789abcdef01234567"
	base   = "FROM ubuntu:24.04@" + digest + "\n"
)

func TestDockerfileRules(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // rule ids, in order
	}{
		{"pinned base", base, nil},
		{"no tag", "FROM ubuntu\n", []string{"from-digest", "from-tag"}},
		{"latest", "FROM ubuntu:latest@" + digest + "\n", []string{"from-tag"}},
		{"tag without digest", "FROM ubuntu:24.04\n", []string{"from-digest"}},
		{"bad digest", "FROM ubuntu:24.04@sha256:abc\n", []string{"from-digest"}},
		{"registry port is not a tag", "FROM localhost:5000/img@" + digest + "\n", []string{"from-tag"}},
		{"global arg image", "ARG IMG=ubuntu:24.04@" + digest + "\nFROM ${IMG}\n", nil},
		{"arg without default", "ARG IMG\nFROM ${IMG}\n", []string{"arg-default", "from-pin"}},
		{"stage arg without default", base + "ARG V\n", []string{"arg-default"}},
		{"platform arg", base + "ARG TARGETARCH\n", nil},
		{"earlier stage", base + "FROM ubuntu:24.04@" + digest + " AS b\nFROM b\nCOPY --from=b /x /x\n", nil},
		{"copy from image", base + "COPY --from=busybox:1.36 /bin/sh /sh\n", []string{"from-digest"}},
		{"pip pinned", base + "RUN pip install torch==2.8.0 'numpy==2.2.6'\n", nil},
		{"pip unpinned", base + "RUN pip install torch\n", []string{"pip-pin"}},
		{"pip range", base + "RUN pip install \"torch>=2.8\"\n", []string{"pip-pin"}},
		{"pip wildcard", base + "RUN pip install torch==2.8.*\n", []string{"pip-pin"}},
		{"python -m pip", base + "RUN python3 -m pip install -q numpy\n", []string{"pip-pin"}},
		{"pip option values", base + "RUN pip install --index-url https://x/simple -c c.txt x==1 --target /t\n", nil},
		{"requirements alone", base + "RUN pip install -r requirements.txt\n", []string{"pip-pin"}},
		{"requirements with constraints", base + "RUN pip install -r requirements.txt -c constraints.txt\n", nil},
		{"requirements with hashes", base + "RUN pip install --require-hashes -r requirements.lock\n", nil},
		{"pinned by arg", base + "ARG V=1.2\nRUN pip install \"x==${V}\"\n", nil},
		{"arg out of scope", "ARG V=1.2\n" + base + "RUN pip install \"x==${V}\"\n", []string{"pip-pin"}},
		{"re-declared global arg", "ARG V=1.2\n" + base + "ARG V\nRUN pip install \"x==${V}\"\n", nil},
		{"pip in a condition", base + "RUN if pip install x; then echo ok; else pip install y==1; fi\n", []string{"pip-pin"}},
		{"pip git commit", base + "RUN pip install git+https://h/r.git@" + sha + "\n", nil},
		{"pip git branch", base + "RUN pip install git+https://h/r.git@main\n", []string{"pip-pin"}},
		{"clone default branch", base + "RUN git clone https://h/r.git /r\n", []string{"git-pin"}},
		{"clone branch", base + "RUN git clone --branch main https://h/r.git /r\n", []string{"git-pin"}},
		{"clone tag unverified", base + "RUN git clone --depth 1 --branch v1.2.3 https://h/r.git /r\n", []string{"git-pin"}},
		{"clone tag verified", base + "ARG C=" + sha + "\nRUN git clone --depth 1 --branch v1.2.3 https://h/r.git /r && test \"$(git -C /r rev-parse HEAD)\" = \"${C}\"\n", nil},
		{"clone then checkout sha", base + "RUN git clone https://h/r.git /r && git -C /r checkout " + sha + "\n", nil},
		{"fetch sha", base + "RUN git init -q && git fetch --depth 1 https://h/r.git " + sha + " && git checkout -q --detach FETCH_HEAD\n", nil},
		{"fetch branch", base + "RUN git fetch origin main && git checkout FETCH_HEAD\n", []string{"git-pin", "git-pin"}},
		{"checkout branch", base + "RUN git checkout main\n", []string{"git-pin"}},
		{"add url", base + "ADD https://h/f.tgz /f.tgz\n", []string{"add-pin"}},
		{"add url checksum", base + "ADD --checksum=sha256:" + strings.Repeat("a", 64) + " https://h/f.tgz /f.tgz\n", nil},
		{"entrypoint shell form", base + "ENTRYPOINT /bin/app serve\n", []string{"exec-form"}},
		{"ld preload unchecked", base + "ENV LD_PRELOAD=/usr/lib/libx.so\n", []string{"ld-preload"}},
		{"ld preload checked", base + "ARG L=/usr/lib/libx.so\nRUN test -e \"${L}\"\nENV LD_PRELOAD=${L}\n", nil},
		{"exec-form run", base + "RUN [\"pip\", \"install\", \"torch\"]\n", []string{"pip-pin"}},
		{"exec-form shell", base + "RUN [\"/bin/bash\", \"-c\", \"pip install torch\"]\n", []string{"pip-pin"}},
		{"run not shell", base + "RUN pip install x==1 && (echo unclosed\n", []string{"parse"}},
		{"pip in a case branch", base + "RUN case \"$A\" in a) pip install x ;; esac\n", []string{"pip-pin"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := CheckDockerfile("Dockerfile", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Rule)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("rules %v, want %v\nfindings: %v", got, tc.want, fs)
			}
		})
	}
}

func TestDockerfileParseError(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n"} {
		if _, err := CheckDockerfile("Dockerfile", []byte(src)); err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}

func TestSplitCommands(t *testing.T) {
	env := map[string]string{"V": "1.0", "DIR": "/opt/x"}
	tests := []struct {
		in   string
		want [][]string
	}{
		{"a b && c 'd e' \"f ${V}\"", [][]string{{"a", "b"}, {"c", "d e", "f 1.0"}}},
		{"if x; then y $DIR; elif z; then w; else v; fi", [][]string{{"x"}, {"y", "/opt/x"}, {"z"}, {"w"}, {"v"}}},
		{"out=\"$(git -C /r rev-parse HEAD)\" || { echo \"$out\"; exit 1; }", [][]string{{"echo", "${out}"}, {"exit", "1"}}},
		{"cmd >/dev/null 2>&1 | tee log <<<\"${V}\"", [][]string{{"cmd"}, {"tee", "log"}}},
		{"a \\\n  b # comment\nc", [][]string{{"a", "b"}, {"c"}}},
		{"FOO=1 pip install x==${UNSET}", [][]string{{"pip", "install", "x==${UNSET}"}}},
		{"echo `date` \"a\\\"b\"", [][]string{{"echo", "`date`", "a\"b"}}},
		{"for f in a b; do echo $f; done", [][]string{{"echo", "${f}"}}},
	}
	for _, tc := range tests {
		got := splitCommands(tc.in, env)
		if !slices.EqualFunc(got, tc.want, slices.Equal[[]string]) {
			t.Errorf("splitCommands(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestDockerfileRunsPassShellcheck lints every RUN of the Dockerfile with the
// shell its stage uses.
func TestDockerfileRunsPassShellcheck(t *testing.T) {
	sc := shellcheckPath(t)
	df, _, err := ParseDockerfile("Dockerfile", readRepoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range df.Stages {
		for _, r := range st.Runs {
			if r.Exec != nil {
				continue
			}
			dialect := "sh"
			if slices.Contains(r.Shell, "/bin/bash") {
				dialect = "bash"
			}
			// Build ARGs and ENVs reach the RUN as environment variables.
			var script strings.Builder
			for _, k := range sortedKeys(r.env) {
				script.WriteString("export " + k + "=x\n")
			}
			script.WriteString(r.Text + "\n")
			cmd := exec.CommandContext(t.Context(), sc, "--shell="+dialect, "--severity=info", "-")
			cmd.Stdin = strings.NewReader(script.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("Dockerfile:%d: shellcheck:\n%s", r.Line, out)
			}
		}
	}
}

// TestShellScriptsPassShellcheck lints the project's shell scripts.
func TestShellScriptsPassShellcheck(t *testing.T) {
	sc := shellcheckPath(t)
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "scripts", "*.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if ci := filepath.Join(root, ".ci", "run"); fileExists(ci) {
		files = append(files, ci)
	}
	if len(files) == 0 {
		t.Fatal("no shell scripts found")
	}
	for _, f := range files {
		cmd := exec.CommandContext(t.Context(), sc, "--severity=info", "-x", f)
		cmd.Dir = filepath.Dir(f)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s:\n%s", f, out)
		}
	}
}

func shellcheckPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (scripts/setup-test-deps.sh installs it)")
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
