package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/wan22-worker/wan22-worker/internal/golden"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/docker"
	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/hfcache/hfcachetest"
	"github.com/wan22-worker/wan22-worker/internal/models"
	"github.com/wan22-worker/wan22-worker/internal/pylock"
	"github.com/wan22-worker/wan22-worker/internal/startup"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// run is one fake program run: what it prints and how it ends.
type run struct {
	stdout, stderr string
	err            error
}

// fakeRunner answers by the full command line, else by the program name;
// unknown programs are not found.
type fakeRunner map[string]run

func (f fakeRunner) run(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
	r, ok := f[strings.Join(append([]string{name}, args...), " ")]
	if !ok {
		r, ok = f[name]
	}
	if !ok {
		return nil, nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	return []byte(r.stdout), []byte(r.stderr), r.err
}

func loadConfig(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	c, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newDeps returns dependencies that see nothing: no programs, lots of disk,
// an empty file system under a temporary root.
func newDeps(t *testing.T, env map[string]string) *Deps {
	t.Helper()
	return &Deps{
		Config:    loadConfig(t, env),
		Run:       fakeRunner{}.run,
		LookPath:  func(string) (string, error) { return "", exec.ErrNotFound },
		FreeSpace: func(p string) (models.Space, error) { return models.Space{Dir: p, Free: 100 << 30}, nil },
		Root:      t.TempDir(),
		TempDir:   "/tmp",
	}
}

func runCheck(t *testing.T, d *Deps, check func(context.Context, *Deps) []Result) []Result {
	t.Helper()
	return check(t.Context(), d.withDefaults())
}

// expect checks one result's status and that its text holds every want.
func expect(t *testing.T, rs []Result, i int, status Status, wants ...string) {
	t.Helper()
	if i >= len(rs) {
		t.Fatalf("only %d results: %+v", len(rs), rs)
	}
	r := rs[i]
	if r.Status != status {
		t.Errorf("%s: status %s, want %s (%s | %s)", r.Name, r.Status, status, r.Detail, r.Hint)
	}
	if r.Status != Pass && r.Hint == "" && status != Pass {
		t.Errorf("%s: %s without a hint", r.Name, r.Status)
	}
	text := r.Detail + " | " + r.Hint
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s: %q lacks %q", r.Name, text, w)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

var onRunPod = map[string]string{"RUNPOD_WEBHOOK_GET_JOB": "http://rp/job-take/$ID"}

func TestCheckConfig(t *testing.T) {
	d := newDeps(t, map[string]string{"MAX_STEPS": "12"})
	expect(t, runCheck(t, d, checkConfig), 0, Pass, "1 setting(s)")
	d.ConfigErr = errors.New(`MAX_FRAMES="x" (from environment): must be a whole number`)
	expect(t, runCheck(t, d, checkConfig), 0, Fail, "MAX_FRAMES", "docs/configuration.md")
}

func TestCheckComfyUIDir(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		status  Status
		wants   []string
		comfyIn string
	}{
		{"no main.py", nil, Fail, []string{"no main.py", "COMFY_URL"}, ""},
		{"pinned version", map[string]string{"main.py": "", "comfyui_version.py": "__version__ = \"0.3.64\"\n"}, Pass, []string{"ComfyUI 0.3.64"}, ""},
		{"other version", map[string]string{"main.py": "", "comfyui_version.py": "__version__ = '0.3.46'\n"}, Warn, []string{"0.3.46", "checkout v0.3.64"}, ""},
		{"no version file", map[string]string{"main.py": ""}, Warn, []string{"version unknown"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeps(t, map[string]string{"COMFYUI_DIR": "/opt/comfy"})
			for f, c := range tc.files {
				writeFile(t, filepath.Join(d.Root, "opt", "comfy", f), c)
			}
			expect(t, runCheck(t, d, checkComfyUI), 0, tc.status, tc.wants...)
		})
	}
}

func TestCheckComfyUIURL(t *testing.T) {
	fake := comfytest.New(comfytest.Options{})
	t.Cleanup(fake.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"system":{"comfyui_version":"0.3.40","pytorch_version":"2.7.1"},"devices":[{"name":"cuda:0 NVIDIA L4"}]}`)
	}))
	t.Cleanup(other.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	tests := []struct {
		name, url string
		status    Status
		wants     []string
	}{
		{"pinned", fake.URL, Pass, []string{"ComfyUI 0.3.64"}},
		{"other version", other.URL, Warn, []string{"0.3.40", "NVIDIA L4", "0.3.64"}},
		{"unreachable", down.URL, Fail, []string{"does not answer", "unset COMFY_URL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeps(t, map[string]string{"COMFY_URL": tc.url})
			expect(t, runCheck(t, d, checkComfyUI), 0, tc.status, tc.wants...)
		})
	}
}

func TestCheckPython(t *testing.T) {
	probe := "python3 -c " + torchProbe
	good := `{"torch": "2.8.0+cu128", "cuda": "12.8", "cuda_available": true}`
	tests := []struct {
		name   string
		env    map[string]string
		runs   fakeRunner
		status Status
		wants  []string
	}{
		{"attached", map[string]string{"COMFY_URL": "http://127.0.0.1:1"}, nil, Pass, []string{"not checked"}},
		{"no python", nil, fakeRunner{}, Fail, []string{"COMFY_PYTHON=python3 not found"}},
		{"no torch", nil, fakeRunner{probe: {stderr: "Traceback (most recent call last):\n  File \"<string>\", line 1\nModuleNotFoundError: No module named 'torch'\n", err: errors.New("exit status 1")}},
			Fail, []string{"No module named 'torch'", "torch 2.8.0", "uv pip sync --python python3 --require-hashes docker/requirements.lock"}},
		{"good", nil, fakeRunner{probe: {stdout: good + "\n"}}, Pass, []string{"torch 2.8.0+cu128, CUDA 12.8, GPU available: true"}},
		{"warnings before the report", nil, fakeRunner{probe: {stdout: "some warning\n" + good + "\n"}}, Pass, nil},
		{"cpu build off RunPod", nil, fakeRunner{probe: {stdout: `{"torch": "2.8.0+cpu", "cuda": null, "cuda_available": false}`}}, Warn, []string{"CPU build", "development"}},
		{"no GPU on RunPod", onRunPod, fakeRunner{probe: {stdout: `{"torch": "2.8.0+cu128", "cuda": "12.8", "cuda_available": false}`}}, Fail, []string{"GPU available: false"}},
		{"other torch", nil, fakeRunner{probe: {stdout: `{"torch": "2.7.1+cu126", "cuda": "12.6", "cuda_available": true}`}}, Warn, []string{"2.7.1", "no kernel image", "tested with torch 2.8.0", "docker/requirements.lock"}},
		{"newer patch", nil, fakeRunner{probe: {stdout: `{"torch": "2.8.1", "cuda": "12.8", "cuda_available": true}`}}, Warn, []string{"2.8.1", "tested with torch 2.8.0"}},
		{"garbage", nil, fakeRunner{probe: {stdout: "hello"}}, Fail, []string{"no torch report"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeps(t, tc.env)
			d.Run = tc.runs.run
			expect(t, runCheck(t, d, checkPython), 0, tc.status, tc.wants...)
		})
	}
}

// TestTorchHintIsTheLock checks that doctor's torch advice names the lock's versions, the one truth: no
// other index, no other version.
func TestTorchHintIsTheLock(t *testing.T) {
	pins, errs := pylock.Parse(docker.RequirementsLock())
	if len(errs) > 0 || pylock.Version(pins, "torch") == "" {
		t.Fatalf("the embedded lock: %v, torch %q", errs, pylock.Version(pins, "torch"))
	}
	hint := installHint("py")
	if !strings.Contains(hint, "torch "+pylock.Version(pins, "torch")+",") || strings.Contains(hint, "download.pytorch.org") {
		t.Errorf("hint %q does not state the lock's torch %s", hint, pylock.Version(pins, "torch"))
	}
}

func TestCheckPackages(t *testing.T) {
	probe := "python3 -c " + packagesProbe
	pins, _ := pylock.Parse(docker.RequirementsLock())
	all := map[string]string{"pip": "25.2"}
	for _, p := range pins {
		all[p.Name] = p.Version
	}
	all["torch"] += "+cu128"
	js := func(m map[string]string) string { b, _ := json.Marshal(m); return string(b) + "\n" }
	drift := map[string]string{}
	for k, v := range all {
		drift[k] = v
	}
	drift["numpy"] = "2.3.3"
	drift["av"] = "16.0.1"
	delete(drift, "pyyaml")
	drift["requests-toolbelt"] = "1.0.0"
	tests := []struct {
		name   string
		env    map[string]string
		runs   fakeRunner
		status Status
		wants  []string
	}{
		{"attached", map[string]string{"COMFY_URL": "http://127.0.0.1:1"}, nil, Pass, []string{"not checked"}},
		{"as locked", nil, fakeRunner{probe: {stdout: js(all)}}, Pass, []string{fmt.Sprintf("all %d packages", len(pins))}},
		{"drifted", nil, fakeRunner{probe: {stdout: js(drift)}}, Warn, []string{"4 package(s) differ", "av 16.0.1 (locked 15.1.0)",
			"numpy 2.3.3 (locked 2.2.6)", "pyyaml (locked 6.0.3, not installed)", "requests-toolbelt 1.0.0 (not in the lock)", "uv pip sync"}},
		{"probe fails", nil, fakeRunner{probe: {stderr: "boom\n", err: errors.New("exit status 1")}}, Warn, []string{"could not list", "boom"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeps(t, tc.env)
			d.Run = tc.runs.run
			expect(t, runCheck(t, d, checkPackages), 0, tc.status, tc.wants...)
		})
	}
}

// TestFailedCheckSkipsItsDependents: with ComfyUI absent, the custom nodes check (VideoHelperSuite,
// TorchCompileModel) does not repeat the failure in its own words; it is skipped and says why. A check that
// needs a skipped check is skipped too.
func TestFailedCheckSkipsItsDependents(t *testing.T) {
	d := newDeps(t, map[string]string{"COMFYUI_DIR": "/c"})
	rep := Run(t.Context(), d, Checks())
	byName := map[string][]Result{}
	for _, r := range rep.Checks {
		byName[r.Name] = append(byName[r.Name], r)
	}
	expect(t, byName["comfyui"], 0, Fail, "no main.py")
	expect(t, byName["custom nodes"], 0, Skip, "not checked", "comfyui check, which failed")
	if len(byName["custom nodes"]) != 1 || len(byName["TorchCompileModel"]) != 0 || len(byName["VideoHelperSuite"]) != 0 {
		t.Errorf("custom nodes checked although ComfyUI is absent: %+v %+v", byName["custom nodes"], byName["torch.compile"])
	}
	expect(t, byName["python/packages"], 0, Skip, "python/torch check")
	if !strings.Contains(fmt.Sprint(rep.Checks), "skip") {
		t.Error("no skip")
	}

	chain := []Check{
		{Name: "a", Run: func(context.Context, *Deps) []Result { return []Result{fail("", "broken", "fix")} }},
		{Name: "b", Needs: []string{"a"}, Run: func(context.Context, *Deps) []Result { t.Error("b ran"); return nil }},
		{Name: "c", Needs: []string{"b"}, Run: func(context.Context, *Deps) []Result { t.Error("c ran"); return nil }},
		{Name: "d", Run: func(context.Context, *Deps) []Result { return []Result{pass("", "fine")} }},
		{Name: "e", Needs: []string{"d"}, Run: func(context.Context, *Deps) []Result { return []Result{pass("", "ran")} }},
	}
	rep = Run(t.Context(), newDeps(t, nil), chain)
	var got []Status
	for _, r := range rep.Checks {
		got = append(got, r.Status)
	}
	if want := []Status{Fail, Skip, Skip, Pass, Pass}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "- b ") || !strings.Contains(text.String(), "2 passed, 0 warnings, 2 skipped, 1 failed: NOT ready") {
		t.Errorf("report:\n%s", text.String())
	}
}

const smiQuery = "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader"

func smiReport(cuda string) string {
	return "+-----------------------------------------------------------------------------------------+\n" +
		"| NVIDIA-SMI 570.124.06             Driver Version: 570.124.06     CUDA Version: " + cuda + "     |\n" +
		"|-----------------------------------------+------------------------+----------------------+\n"
}

func TestCheckGPU(t *testing.T) {
	h200 := run{stdout: "NVIDIA H200, 143771 MiB, 570.124.06\n"}
	tests := []struct {
		name   string
		env    map[string]string
		runs   fakeRunner
		status Status
		wants  []string
	}{
		{"absent on a dev box", nil, fakeRunner{}, Warn, []string{"nvidia-smi not found", "development"}},
		{"absent on RunPod", onRunPod, fakeRunner{}, Fail, []string{"nvidia-smi not found", "CUDA 12.8"}},
		{"driver not loaded", nil, fakeRunner{smiQuery: {stderr: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", err: errors.New("exit status 9")}},
			Warn, []string{"couldn't communicate"}},
		{"h200", nil, fakeRunner{smiQuery: h200, "nvidia-smi": {stdout: smiReport("12.8")}}, Pass, []string{"NVIDIA H200, 143771 MiB, driver 570.124.06, CUDA 12.8"}},
		{"two gpus, newer cuda", nil, fakeRunner{smiQuery: {stdout: "NVIDIA A100, 81920 MiB, 580.1\nNVIDIA A100, 81920 MiB, 580.1\n"}, "nvidia-smi": {stdout: smiReport("13.0")}},
			Pass, []string{"A100", "; NVIDIA A100", "CUDA 13.0"}},
		{"old driver", nil, fakeRunner{smiQuery: h200, "nvidia-smi": {stdout: smiReport("12.4")}}, Fail, []string{"CUDA 12.4", "no kernel image"}},
		{"cuda unknown", nil, fakeRunner{smiQuery: h200, "nvidia-smi": {stdout: "odd output"}}, Warn, []string{"CUDA version unknown"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeps(t, tc.env)
			d.Run = tc.runs.run
			expect(t, runCheck(t, d, checkGPU), 0, tc.status, tc.wants...)
		})
	}
}

// A fake nvidia-smi on PATH, run through the real runner.
func TestCheckGPUWithFakeNvidiaSMI(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell script")
	}
	bin := t.TempDir()
	script := "#!/bin/sh\nif [ \"$1\" = \"\" ]; then\n  cat <<'EOF'\n" + smiReport("12.8") + "EOF\nelse\n  echo 'NVIDIA RTX 5090, 32607 MiB, 575.51.02'\nfi\n"
	if err := os.WriteFile(filepath.Join(bin, "nvidia-smi"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	d := newDeps(t, nil)
	d.Run = ExecRunner
	expect(t, runCheck(t, d, checkGPU), 0, Pass, "NVIDIA RTX 5090, 32607 MiB, driver 575.51.02, CUDA 12.8")
}

func TestCheckModels(t *testing.T) {
	data := []byte("tiny model")
	m := models.Manifest{
		{Name: "high.safetensors", Folder: "diffusion_models", Repo: "o/r", Path: "high.safetensors", Size: int64(len(data)), SHA256: strings.Repeat("a", 64)},
		{Name: "low.safetensors", Folder: "diffusion_models", Repo: "o/r", Path: "low.safetensors", Size: 999, SHA256: strings.Repeat("b", 64)},
		{Name: "t5.safetensors", Folder: "text_encoders", Repo: "o/r", Path: "t5.safetensors", Size: 5, SHA256: strings.Repeat("c", 64)},
	}
	env := map[string]string{
		"MODELS_DIRS":     "/vol/models:/comfyui/models",
		"MODEL_UNET_HIGH": "high.safetensors", "MODEL_UNET_LOW": "low.safetensors", "MODEL_TEXT_ENCODER": "t5.safetensors",
		"MODEL_VAE": "vae.safetensors", "MODEL_LORA_HIGH": "mine.safetensors", "MODEL_LORA_LOW": "none",
	}
	d := newDeps(t, env)
	d.Manifest = m
	writeFile(t, filepath.Join(d.Root, "vol/models/unet/high.safetensors"), string(data))        // present
	writeFile(t, filepath.Join(d.Root, "vol/models/diffusion_models/low.safetensors"), "short")  // size mismatch
	writeFile(t, filepath.Join(d.Root, "vol/models/text_encoders/t5.safetensors.partial"), "ab") // missing, partial
	writeFile(t, filepath.Join(d.Root, "comfyui/models/loras/mine.safetensors"), "x")            // unknown, present
	rs := runCheck(t, d, checkModels)                                                            // vae: unknown, missing
	expect(t, rs, 0, Pass, "vol/models: diffusion_models=unet+diffusion_models")
	expect(t, rs, 1, Pass, "vol/models/unet/high.safetensors")
	expect(t, rs, 2, Fail, "5 bytes, the manifest says 999", "models pull")
	expect(t, rs, 3, Fail, "not found; looked in", "vol/models/text_encoders/t5.safetensors", "comfyui/models/clip/t5.safetensors", "partial download (2 B)")
	expect(t, rs, 4, Fail, "vae/vae.safetensors", "unknown to the manifest (cannot download/verify checksum)", "MODEL_VAE")
	expect(t, rs, 5, Warn, "comfyui/models/loras/mine.safetensors", "unknown to the manifest")
	if len(rs) != 6 {
		t.Errorf("%d results, want 6", len(rs))
	}

	t.Run("no folders", func(t *testing.T) {
		d := newDeps(t, env)
		d.Manifest = m
		expect(t, runCheck(t, d, checkModels), 0, Fail, "none of MODELS_DIRS exists")
	})
	t.Run("Hugging Face cache", func(t *testing.T) {
		env := map[string]string{
			"MODELS_DIRS":     "/runpod-volume/models",
			"MODEL_UNET_HIGH": "high.safetensors", "MODEL_UNET_LOW": "low.safetensors", "MODEL_TEXT_ENCODER": "t5.safetensors",
			"MODEL_VAE": "none", "MODEL_LORA_HIGH": "none", "MODEL_LORA_LOW": "none",
		}
		d := newDeps(t, env)
		d.Manifest = m
		writeFile(t, filepath.Join(d.Root, "runpod-volume/models/unet/high.safetensors"), string(data)) // volume and cache
		hub := filepath.Join(d.Root, "runpod-volume/huggingface-cache/hub")
		const rev = "2222222222222222222222222222222222222222"
		hfcachetest.WriteRepo(t, hub, "me/wan22-models", rev, map[string][]hfcachetest.File{rev: {
			{Rel: "split_files/diffusion_models/high.safetensors", Content: string(data)},
			{Rel: "split_files/text_encoders/t5.safetensors", Content: "t5..."},
		}})
		rs := runCheck(t, d, checkModels)
		expect(t, rs, 0, Pass, "Hugging Face cache me/wan22-models@222222222222: diffusion_models/high.safetensors")
		expect(t, rs, 1, Warn, "runpod-volume/models/unet/high.safetensors (volume", "although the Hugging Face cache has it too", "me/wan22-models", "MODELS_PREFER_CACHE=1")
		expect(t, rs, 2, Fail, "low.safetensors", "not found")
		expect(t, rs, 3, Pass, "snapshots/"+rev+"/split_files/text_encoders/t5.safetensors (cache")

		env["MODELS_PREFER_CACHE"] = "1"
		d.Config = loadConfig(t, env)
		rs = runCheck(t, d, checkModels)
		expect(t, rs, 1, Pass, "split_files/diffusion_models/high.safetensors (cache")
	})
	t.Run("attached: missing is a warning", func(t *testing.T) {
		d := newDeps(t, map[string]string{"COMFY_URL": "http://127.0.0.1:1", "MODEL_LORA_HIGH": "none", "MODEL_LORA_LOW": "none"})
		rs := runCheck(t, d, checkModels)
		for _, r := range rs[1:] {
			if r.Status != Warn {
				t.Errorf("%s: %s, want warn", r.Name, r.Status)
			}
		}
	})
}

func TestCheckNodes(t *testing.T) {
	t.Run("dir", func(t *testing.T) {
		d := newDeps(t, map[string]string{"COMFYUI_DIR": "/c"})
		rs := runCheck(t, d, checkNodes)
		expect(t, rs, 0, Warn, "not in /c/custom_nodes", "CreateVideo")
		expect(t, rs, 1, Warn, "nodes_torch_compile.py is missing", "TORCH_COMPILE=0")
		writeFile(t, filepath.Join(d.Root, "c/custom_nodes/ComfyUI-VideoHelperSuite/__init__.py"), "")
		writeFile(t, filepath.Join(d.Root, "c/comfy_extras/nodes_torch_compile.py"), "")
		rs = runCheck(t, d, checkNodes)
		expect(t, rs, 0, Pass, "ComfyUI-VideoHelperSuite")
		expect(t, rs, 1, Pass, "TORCH_COMPILE=1")
		d.Config = loadConfig(t, map[string]string{"COMFYUI_DIR": "/c", "TORCH_COMPILE": "0"})
		if rs := runCheck(t, d, checkNodes); len(rs) != 1 {
			t.Errorf("TORCH_COMPILE=0 still checks TorchCompileModel: %+v", rs)
		}
	})
	t.Run("url", func(t *testing.T) {
		tests := []struct {
			name    string
			missing []string
			vhs     Status
			compile Status
		}{
			{"all there", nil, Pass, Pass},
			{"no VHS", []string{"VHS_VideoCombine"}, Warn, Pass},
			{"no TorchCompileModel", []string{"TorchCompileModel"}, Pass, Fail},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				fake := comfytest.New(comfytest.Options{MissingNodes: tc.missing})
				t.Cleanup(fake.Close)
				d := newDeps(t, map[string]string{"COMFY_URL": fake.URL})
				rs := runCheck(t, d, checkNodes)
				expect(t, rs, 0, tc.vhs)
				expect(t, rs, 1, tc.compile)
			})
		}
	})
}

func TestCheckFFmpeg(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/ffmpeg", nil }
	tests := []struct {
		name   string
		look   func(string) (string, error)
		runs   fakeRunner
		status Status
		wants  []string
	}{
		{"absent", nil, nil, Warn, []string{"not on PATH"}},
		{"libx264", found, fakeRunner{"/usr/bin/ffmpeg": {stdout: " V....D libx264  libx264 H.264 / AVC\n"}}, Pass, []string{"libx264"}},
		{"no libx264", found, fakeRunner{"/usr/bin/ffmpeg": {stdout: " V....D mpeg4\n"}}, Warn, []string{"no libx264"}},
		{"broken", found, fakeRunner{"/usr/bin/ffmpeg": {stderr: "error while loading shared libraries", err: errors.New("exit status 127")}}, Warn, []string{"shared libraries"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeps(t, nil)
			if tc.look != nil {
				d.LookPath = tc.look
			}
			d.Run = tc.runs.run
			expect(t, runCheck(t, d, checkFFmpeg), 0, tc.status, tc.wants...)
		})
	}
}

func TestCheckDisk(t *testing.T) {
	tests := []struct {
		free   int64
		status Status
	}{
		{500 << 20, Fail},
		{5 << 30, Warn},
		{50 << 30, Pass},
	}
	for _, tc := range tests {
		d := newDeps(t, map[string]string{"OUTPUT_DIR": "/out"})
		d.FreeSpace = func(p string) (models.Space, error) { return models.Space{Dir: p, Free: tc.free}, nil }
		rs := runCheck(t, d, checkDisk)
		expect(t, rs, 0, tc.status, "OUTPUT_DIR /out")
		expect(t, rs, 1, tc.status, "temporary folder /tmp")
	}
	d := newDeps(t, nil)
	d.FreeSpace = func(string) (models.Space, error) { return models.Space{}, errors.New("statfs: no") }
	expect(t, runCheck(t, d, checkDisk), 0, Warn, "free space unknown")
}

func TestCheckRunPodS3API(t *testing.T) {
	full := map[string]string{
		"RUNPOD_WEBHOOK_GET_JOB": "u", "RUNPOD_WEBHOOK_POST_OUTPUT": "u", "RUNPOD_WEBHOOK_POST_STREAM": "u",
		"RUNPOD_WEBHOOK_PING": "u", "RUNPOD_AI_API_KEY": "k", "RUNPOD_POD_ID": "pod-1",
	}
	tests := []struct {
		name   string
		check  func(context.Context, *Deps) []Result
		env    map[string]string
		status Status
		wants  []string
	}{
		{"runpod: off", checkRunPod, nil, Pass, []string{"not on RunPod"}},
		{"runpod: complete", checkRunPod, full, Pass, []string{"pod-1"}},
		{"runpod: incomplete", checkRunPod, onRunPod, Fail, []string{"RUNPOD_WEBHOOK_POST_OUTPUT", "RUNPOD_AI_API_KEY", "RUNPOD_POD_ID"}},
		{"s3: off", checkS3, nil, Pass, []string{"not configured"}},
		{"s3: keys without endpoint", checkS3, map[string]string{"BUCKET_ACCESS_KEY_ID": "a"}, Warn, []string{"BUCKET_ENDPOINT_URL is empty"}},
		{"s3: endpoint without keys", checkS3, map[string]string{"BUCKET_ENDPOINT_URL": "https://s3.example.com"}, Fail, []string{"BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY"}},
		{"s3: endpoint with one key", checkS3, map[string]string{"BUCKET_ENDPOINT_URL": "https://s3.example.com", "BUCKET_ACCESS_KEY_ID": "a"}, Fail, []string{"BUCKET_SECRET_ACCESS_KEY not"}},
		{"s3: bad endpoint", checkS3, map[string]string{"BUCKET_ENDPOINT_URL": "s3.example.com", "BUCKET_ACCESS_KEY_ID": "a", "BUCKET_SECRET_ACCESS_KEY": "b"}, Fail, []string{"not an http(s) URL"}},
		{"s3: complete", checkS3, map[string]string{"BUCKET_ENDPOINT_URL": "https://s3.example.com", "BUCKET_ACCESS_KEY_ID": "a", "BUCKET_SECRET_ACCESS_KEY": "b", "BUCKET_NAME": "vids"}, Pass, []string{"s3.example.com", "vids"}},
		{"api: loopback", checkAPI, nil, Pass, []string{"this machine only"}},
		{"api: localhost", checkAPI, map[string]string{"API_ADDR": "localhost:8000"}, Pass, nil},
		{"api: ipv6 loopback", checkAPI, map[string]string{"API_ADDR": "[::1]:8000"}, Pass, nil},
		{"api: all interfaces, no token", checkAPI, map[string]string{"API_ADDR": ":8000"}, Fail, []string{"API_TOKEN"}},
		{"api: public, no token", checkAPI, map[string]string{"API_ADDR": "0.0.0.0:8000"}, Fail, []string{"API_ALLOW_INSECURE"}},
		{"api: public, token", checkAPI, map[string]string{"API_ADDR": "0.0.0.0:8000", "API_TOKEN": "t"}, Pass, []string{"need API_TOKEN"}},
		{"api: public, insecure allowed", checkAPI, map[string]string{"API_ADDR": "10.0.0.5:8000", "API_ALLOW_INSECURE": "1"}, Warn, []string{"without API_TOKEN"}},
		{"api: bad address", checkAPI, map[string]string{"API_ADDR": "8000"}, Fail, []string{"host:port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, runCheck(t, newDeps(t, tc.env), tc.check), 0, tc.status, tc.wants...)
		})
	}
}

func TestRunAndReport(t *testing.T) {
	checks := []Check{
		{Name: "one", Run: func(context.Context, *Deps) []Result { return []Result{pass("", "fine")} }},
		{Name: "two", Run: func(context.Context, *Deps) []Result {
			return []Result{warn("two: a", "so-so", "do this"), pass("two: b", "ok\twith a tab"),
				warn("model loras/a-long-file-name.safetensors", "found", "check it")}
		}},
		{Name: "three", Run: func(context.Context, *Deps) []Result {
			return []Result{fail("", "broken\nover two lines", "fix it like so")}
		}},
	}
	rep := Run(t.Context(), newDeps(t, nil), checks)
	if rep.OK {
		t.Error("OK with a failure")
	}
	if rep.Checks[0].Name != "one" {
		t.Errorf("unnamed result not given the check's name: %q", rep.Checks[0].Name)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	rep.Config = []config.Entry{{Name: "API_TOKEN", Value: "<set>", Source: "environment"}, {Name: "LOG_LEVEL", Value: "info", Source: "default"}}
	text.WriteString("--- verbose ---\n")
	rep.WriteText(&text)
	goldenFile(t, "report.golden", text.Bytes())

	var js bytes.Buffer
	rep.Config = nil
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Checks []map[string]string `json:"checks"`
		OK     *bool               `json:"ok"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.OK == nil || *back.OK || len(back.Checks) != 5 {
		t.Fatalf("JSON = %s (%v)", js.String(), err)
	}
	for _, k := range []string{"name", "status", "detail"} {
		if _, ok := back.Checks[0][k]; !ok {
			t.Errorf("JSON check lacks %q", k)
		}
	}

	okOnly := Run(t.Context(), newDeps(t, nil), checks[:2])
	if !okOnly.OK {
		t.Error("warnings made the report not OK")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if rep := Run(ctx, newDeps(t, nil), checks); rep.OK || !strings.Contains(rep.Checks[0].Detail, "not run") {
		t.Errorf("cancelled run: %+v", rep)
	}
}

// Every check runs against an empty machine without panicking, and the
// default checks have distinct names.
func TestChecksOnAnEmptyMachine(t *testing.T) {
	names := map[string]bool{}
	for _, c := range Checks() {
		if names[c.Name] {
			t.Errorf("check %q twice", c.Name)
		}
		names[c.Name] = true
	}
	rep := Run(t.Context(), newDeps(t, nil), Checks())
	if rep.OK {
		t.Error("an empty machine (no ComfyUI, no models) passed")
	}
	for _, r := range rep.Checks {
		if r.Status != Pass && r.Hint == "" {
			t.Errorf("%s: %s without a hint", r.Name, r.Status)
		}
	}
}

func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got, *update)
}

// TestStartupTimeline: doctor reads the timeline the worker keeps and serves it whole in -o json.
func TestStartupTimeline(t *testing.T) {
	d := newDeps(t, nil)
	d.StartupFile = "/tmp/wan22-worker-startup.json"
	expect(t, runCheck(t, d, checkStartup), 0, Pass, "no worker start recorded")

	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tl := startup.New(t0)
	writeFile(t, filepath.Join(d.Root, "tmp/wan22-worker-startup.json"), "")
	tl.WriteTo(filepath.Join(d.Root, "tmp/wan22-worker-startup.json"))
	tl.At(t0.Add(9500*time.Millisecond), startup.Step{Name: startup.ComfyReady})
	tl.Model(t0.Add(20*time.Second), 10*time.Second, startup.Step{File: "vae/v.safetensors", Bytes: 2_000_000_000})
	tl.At(t0.Add(21*time.Second), startup.Step{Name: startup.WarmupDone})
	tl.At(t0.Add(22*time.Second), startup.Step{Name: startup.FirstJobTaken})
	expect(t, runCheck(t, d, checkStartup), 0, Pass, "ComfyUI answering at 9.5 s", "warm-up done at 21.0 s (1 model file(s), 2.00 GB in 10.0 s)", "first job at 22.0 s")

	rep := Run(t.Context(), d, Checks()[len(Checks())-1:])
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Startup startup.Report `json:"startup"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Startup.Steps) != 5 || !back.Startup.Complete {
		t.Errorf("doctor -o json startup: %+v, %v\n%s", back.Startup, err, js.String())
	}
}
