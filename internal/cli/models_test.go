package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/models"
)

// modelsFixture is a small test manifest and a fake Hugging Face serving it.
type modelsFixture struct {
	manifest models.Manifest
	data     map[string][]byte // by manifest name
	srv      *httptest.Server
	mu       sync.Mutex
	paths    []string // requested URL paths
	missing  map[string]bool
}

// The test profile: the configuration names these files (env below).
var modelsTestEnv = map[string]string{
	"MODEL_UNET_HIGH":    "high.safetensors",
	"MODEL_UNET_LOW":     "low.safetensors",
	"MODEL_TEXT_ENCODER": "t5.safetensors",
	"MODEL_VAE":          "vae.safetensors",
	"MODEL_LORA_HIGH":    "wan/lora.safetensors",
	"MODEL_LORA_LOW":     "wan/lora.safetensors",
}

func newModelsFixture(t *testing.T) *modelsFixture {
	t.Helper()
	fx := &modelsFixture{data: map[string][]byte{}, missing: map[string]bool{}}
	files := []struct {
		name, folder string
		size         int
	}{
		{"high.safetensors", models.FolderDiffusionModels, 30_000},
		{"low.safetensors", models.FolderDiffusionModels, 20_000},
		{"t5.safetensors", models.FolderTextEncoders, 10_000},
		{"vae.safetensors", models.FolderVAE, 5_000},
		{"wan/lora.safetensors", models.FolderLoRAs, 3_000},
	}
	mux := http.NewServeMux()
	for i, f := range files {
		data := bytes.Repeat([]byte{byte(i + 1), byte(i * 7)}, f.size/2)
		sum := sha256.Sum256(data)
		mf := models.File{Name: f.name, Folder: f.folder, Repo: "org/repo", Path: "files/" + filepath.Base(f.name),
			Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
		fx.manifest = append(fx.manifest, mf)
		fx.data[f.name] = data
		mux.HandleFunc("/org/repo/resolve/main/"+mf.Path, func(w http.ResponseWriter, r *http.Request) {
			fx.mu.Lock()
			fx.paths = append(fx.paths, r.URL.Path)
			gone := fx.missing[mf.Name]
			fx.mu.Unlock()
			if gone {
				http.NotFound(w, r)
				return
			}
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		})
	}
	fx.srv = httptest.NewServer(mux)
	t.Cleanup(fx.srv.Close)
	return fx
}

func (fx *modelsFixture) deps() modelsDeps {
	return modelsDeps{manifest: fx.manifest, stallTimeout: 5 * time.Second, backoffUnit: time.Millisecond,
		freeSpace: func(string) (models.Space, error) { return models.Space{Dir: "/", Free: 1 << 40, Device: 1}, nil }}
}

func (fx *modelsFixture) requests() int {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return len(fx.paths)
}

func runModelsTest(t *testing.T, deps modelsDeps, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code = runModels(t.Context(), e, args, deps)
	return code, out.String(), errb.String()
}

func withEnv(extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range modelsTestEnv {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// TestModelsPullHFRepo: --hf-repo fills a folder in the layout of a Hugging Face repo (split_files/<folder>/),
// which the cache search finds once uploaded and cached; a second pull finds the files there.
func TestModelsPullHFRepo(t *testing.T) {
	fx := newModelsFixture(t)
	dir := t.TempDir()
	env := withEnv(map[string]string{"HF_ENDPOINT": fx.srv.URL})
	code, _, stderr := runModelsTest(t, fx.deps(), env, "pull", "--dir", dir, "--hf-repo")
	if code != exitOK {
		t.Fatalf("pull exit %d:\n%s", code, stderr)
	}
	for name, want := range map[string]string{
		"high.safetensors": "split_files/diffusion_models/high.safetensors", "t5.safetensors": "split_files/text_encoders/t5.safetensors",
		"vae.safetensors": "split_files/vae/vae.safetensors", "wan/lora.safetensors": "split_files/loras/wan/lora.safetensors",
	} {
		if got, err := os.ReadFile(filepath.Join(dir, want)); err != nil || !bytes.Equal(got, fx.data[name]) {
			t.Errorf("%s: %v", want, err)
		}
	}
	before := fx.requests()
	code, _, stderr = runModelsTest(t, fx.deps(), env, "pull", "--dir", dir, "--layout", "hf")
	if code != exitOK || fx.requests() != before || !strings.Contains(stderr, "Nothing to download") {
		t.Errorf("second pull: exit %d, %d new requests:\n%s", code, fx.requests()-before, stderr)
	}
}

func TestModelsPullListVerify(t *testing.T) {
	fx := newModelsFixture(t)
	dir := t.TempDir()
	env := withEnv(map[string]string{"HF_ENDPOINT": fx.srv.URL})

	code, _, stderr := runModelsTest(t, fx.deps(), env, "pull", "--dir", dir, "--layout", "original", "--parallel", "3")
	if code != exitOK {
		t.Fatalf("pull exit %d:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "\033[") {
		t.Error("stderr is not a terminal, but the output has escape sequences")
	}
	for name, want := range map[string]string{
		"high.safetensors": "unet/high.safetensors", "t5.safetensors": "clip/t5.safetensors",
		"vae.safetensors": "vae/vae.safetensors", "wan/lora.safetensors": "loras/wan/lora.safetensors",
	} {
		got, err := os.ReadFile(filepath.Join(dir, want))
		if err != nil || !bytes.Equal(got, fx.data[name]) {
			t.Errorf("%s: %v (content equal: %v)", want, err, bytes.Equal(got, fx.data[name]))
		}
		if !strings.Contains(stderr, name+": downloaded and verified") {
			t.Errorf("stderr does not report %s:\n%s", name, stderr)
		}
	}
	if !strings.Contains(stderr, "100%") {
		t.Errorf("no progress lines in stderr:\n%s", stderr)
	}

	// A second pull downloads nothing.
	before := fx.requests()
	code, _, stderr = runModelsTest(t, fx.deps(), env, "pull", "--dir", dir)
	if code != exitOK || fx.requests() != before || !strings.Contains(stderr, "Nothing to download") {
		t.Errorf("second pull: exit %d, %d new requests:\n%s", code, fx.requests()-before, stderr)
	}

	// list -o json sees every file, in the original layout.
	code, stdout, _ := runModelsTest(t, fx.deps(), env, "list", "--dir", dir, "-o", "json")
	var listed struct {
		Models []struct {
			Name  string `json:"name"`
			State string `json:"state"`
			Path  string `json:"path"`
		} `json:"models"`
	}
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil || code != exitOK {
		t.Fatalf("list: exit %d, %v:\n%s", code, err, stdout)
	}
	if len(listed.Models) != 5 {
		t.Fatalf("listed %d files", len(listed.Models))
	}
	for _, m := range listed.Models {
		if m.State != "present" {
			t.Errorf("%s: %s", m.Name, m.State)
		}
	}

	// verify passes, then fails on a corrupted file.
	if code, stdout, stderr := runModelsTest(t, fx.deps(), env, "verify", "--dir", dir); code != exitOK {
		t.Fatalf("verify: exit %d\n%s\n%s", code, stdout, stderr)
	}
	vae := filepath.Join(dir, "vae", "vae.safetensors")
	b, _ := os.ReadFile(vae)
	b[10] ^= 0xff
	os.WriteFile(vae, b, 0o644)
	code, stdout, _ = runModelsTest(t, fx.deps(), env, "verify", "--dir", dir, "-o", "json")
	var verified struct {
		Models []struct {
			Name   string `json:"name"`
			Result string `json:"result"`
		} `json:"models"`
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal([]byte(stdout), &verified); err != nil {
		t.Fatal(err, stdout)
	}
	if code != exitFailed || verified.OK {
		t.Errorf("verify after corruption: exit %d ok %v", code, verified.OK)
	}
	for _, m := range verified.Models {
		want := "ok"
		if m.Name == "vae.safetensors" {
			want = "mismatch"
		}
		if m.Result != want {
			t.Errorf("%s: %s, want %s", m.Name, m.Result, want)
		}
	}
}

func TestModelsPullFailures(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		missing    string // manifest file the server does not have
		noSpace    bool
		code       int
		wantStderr []string
		notStderr  []string
		noRequests bool
	}{
		{name: "404 names the URL with a hint", args: []string{"--only", "vae.safetensors"}, missing: "vae.safetensors", code: exitFailed,
			wantStderr: []string{"404 Not Found", "/org/repo/resolve/main/files/vae.safetensors", "hint:", "HF_ENDPOINT"}},
		{name: "file unknown to the manifest", env: map[string]string{"MODEL_LORA_HIGH": "mine.safetensors"}, code: exitFailed,
			wantStderr: []string{"loras/mine.safetensors (MODEL_LORA_HIGH): unknown to the manifest (cannot download/verify checksum)"}},
		{name: "not enough disk space", noSpace: true, code: exitFailed, noRequests: true,
			wantStderr: []string{"not enough disk space", "hint:", "--dir"}, notStderr: []string{"▕"}},
		{name: "unknown --only", args: []string{"--only", "nope.safetensors"}, code: exitInvalid, noRequests: true,
			wantStderr: []string{"--only nope.safetensors", "high.safetensors"}},
		{name: "bad layout", args: []string{"--layout", "flat"}, code: exitInvalid, noRequests: true},
		{name: "bad config", env: map[string]string{"TORCH_COMPILE": "maybe"}, code: exitInvalid, noRequests: true,
			wantStderr: []string{"TORCH_COMPILE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newModelsFixture(t)
			if tc.missing != "" {
				fx.missing[tc.missing] = true
			}
			deps := fx.deps()
			if tc.noSpace {
				deps.freeSpace = func(string) (models.Space, error) { return models.Space{Dir: "/vol", Free: 1000, Device: 1}, nil }
			}
			env := withEnv(tc.env)
			args := append([]string{"pull", "--dir", t.TempDir(), "--hf-endpoint", fx.srv.URL}, tc.args...)
			code, _, stderr := runModelsTest(t, deps, env, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tc.notStderr {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, stderr)
				}
			}
			if tc.noRequests && fx.requests() != 0 {
				t.Errorf("%d requests made", fx.requests())
			}
		})
	}
}

func TestModelsListUnknownAndMissing(t *testing.T) {
	fx := newModelsFixture(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "loras"), 0o755)
	os.WriteFile(filepath.Join(dir, "loras", "mine.safetensors"), []byte("x"), 0o644)
	env := withEnv(map[string]string{"MODEL_LORA_HIGH": "mine.safetensors", "MODEL_LORA_LOW": "none"})
	code, stdout, _ := runModelsTest(t, fx.deps(), env, "list", "--dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"? present  loras/mine.safetensors",
		"loras/mine.safetensors (MODEL_LORA_HIGH): unknown to the manifest (cannot download/verify checksum)",
		"✗ missing  diffusion_models/high.safetensors",
		filepath.Join(dir, "unet", "high.safetensors"),
		filepath.Join(dir, "diffusion_models", "high.safetensors"),
		"4 of 5 files need downloading",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("list output lacks %q:\n%s", want, stdout)
		}
	}
	// verify: missing files fail, the unknown one is reported but not failed on its own.
	code, stdout, _ = runModelsTest(t, fx.deps(), env, "verify", "--dir", dir)
	if code != exitFailed || !strings.Contains(stdout, "? unverifiable") || !strings.Contains(stdout, "✗ missing") {
		t.Errorf("verify: exit %d:\n%s", code, stdout)
	}
	code, _, _ = runModelsTest(t, fx.deps(), env, "verify", "--dir", dir, "--only", "mine.safetensors")
	if code != exitOK {
		t.Errorf("verify of only the unknown file: exit %d, want 0", code)
	}
}

func TestModelsUsage(t *testing.T) {
	fx := newModelsFixture(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, exitInvalid},
		{[]string{"fetch"}, exitInvalid},
		{[]string{"-h"}, exitOK},
		{[]string{"pull", "-h"}, exitOK},
		{[]string{"list", "extra"}, exitInvalid},
		{[]string{"list", "-o", "yaml"}, exitInvalid},
	} {
		if code, _, stderr := runModelsTest(t, fx.deps(), modelsTestEnv, tc.args...); code != tc.code {
			t.Errorf("models %v: exit %d, want %d:\n%s", tc.args, code, tc.code, stderr)
		}
	}
}
