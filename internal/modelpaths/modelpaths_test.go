package modelpaths

import (
	"bytes"
	"flag"
	"github.com/wan22-worker/wan22-worker/internal/golden"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.yaml")

// fakeFS is a tree of directories and files given as paths; parents of every
// entry exist as directories.
type fakeFS map[string]bool // path → is a directory

func newFS(dirs []string, files ...string) fakeFS {
	f := fakeFS{}
	add := func(p string, dir bool) {
		f[p] = dir
		for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
			f[d] = true
		}
	}
	for _, d := range dirs {
		add(d, true)
	}
	for _, p := range files {
		add(p, false)
	}
	return f
}

func (f fakeFS) stat(name string) (fs.FileInfo, error) {
	dir, ok := f[filepath.Clean(name)]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return fakeInfo{name: filepath.Base(name), dir: dir}, nil
}

type fakeInfo struct {
	name string
	dir  bool
}

func (i fakeInfo) Name() string { return i.name }
func (i fakeInfo) Size() int64  { return 0 }
func (i fakeInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i fakeInfo) ModTime() time.Time { return time.Time{} }
func (i fakeInfo) IsDir() bool        { return i.dir }
func (i fakeInfo) Sys() any           { return nil }

var defaultDirs = []string{"/runpod-volume/models", "/comfyui/models"}

func sub(base string, names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(base, n)
	}
	return out
}

func cat(xs ...[]string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x...)
	}
	return out
}

var cases = []struct {
	name    string
	dirs    []string
	fs      fakeFS
	roots   []string // Root.Dir, in order
	missing []string
}{
	{
		name: "default_current_names",
		dirs: defaultDirs,
		fs: newFS(cat(sub("/runpod-volume/models", "diffusion_models", "text_encoders", "vae", "loras/wan"),
			sub("/comfyui/models", "checkpoints", "vae", "loras", "upscale_models"))),
		roots: []string{"/runpod-volume/models", "/comfyui/models"},
	},
	{
		name:    "original_spec_layout",
		dirs:    defaultDirs,
		fs:      newFS(sub("/runpod-volume/models", "unet", "clip", "vae", "loras/wan")),
		roots:   []string{"/runpod-volume/models"},
		missing: []string{"/comfyui/models"},
	},
	{
		name:  "both_layouts_in_one_folder",
		dirs:  []string{"/runpod-volume/models"},
		fs:    newFS(sub("/runpod-volume/models", "unet", "diffusion_models", "clip", "text_encoders", "vae", "loras", "clip_vision", "audio_encoders", "model_patches", "controlnet", "t2i_adapter")),
		roots: []string{"/runpod-volume/models"},
	},
	{
		name:  "volume_holds_comfyui_tree",
		dirs:  defaultDirs,
		fs:    newFS(cat(sub("/runpod-volume/comfyui/models", "unet", "clip", "vae", "loras/wan"), []string{"/comfyui/models"})),
		roots: []string{"/runpod-volume/comfyui/models", "/comfyui/models"},
	},
	{
		name:  "volume_root_configured",
		dirs:  []string{"/runpod-volume", "/comfyui"},
		fs:    newFS(cat(sub("/runpod-volume/models", "diffusion_models", "vae"), sub("/comfyui/models", "unet"))),
		roots: []string{"/runpod-volume/models", "/comfyui/models"},
	},
	{
		name:  "same_folder_twice",
		dirs:  []string{"/data/models", "/data/models/", "/data"},
		fs:    newFS(sub("/data/models", "vae")),
		roots: []string{"/data/models"},
	},
	{
		name:    "nothing_exists",
		dirs:    defaultDirs,
		fs:      newFS(nil),
		missing: defaultDirs,
	},
	{
		name:  "empty_models_folder",
		dirs:  []string{"/comfyui/models"},
		fs:    newFS([]string{"/comfyui/models"}),
		roots: []string{"/comfyui/models"},
	},
	{
		name:  "odd_characters_in_path",
		dirs:  []string{`/mnt/my "volume": #1/models`},
		fs:    newFS(sub(`/mnt/my "volume": #1/models`, "unet", "loras")),
		roots: []string{`/mnt/my "volume": #1/models`},
	},
}

func TestResolveGolden(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Resolve(tc.dirs, tc.fs.stat)
			var roots []string
			for _, r := range p.Roots {
				roots = append(roots, r.Dir)
			}
			if !reflect.DeepEqual(roots, tc.roots) {
				t.Errorf("roots = %q, want %q", roots, tc.roots)
			}
			if !reflect.DeepEqual(p.Missing, tc.missing) {
				t.Errorf("missing = %q, want %q", p.Missing, tc.missing)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".yaml"), p.YAML(), *update)
		})
	}
}

func TestDirsAcceptsLegacyNames(t *testing.T) {
	f := newFS(cat(sub("/v/models", "unet", "diffusion_models", "clip"), sub("/c/models", "text_encoders")))
	p := Resolve([]string{"/v/models", "/c/models"}, f.stat)
	tests := []struct {
		folder string
		want   []string
	}{
		{"diffusion_models", []string{"/v/models/unet", "/v/models/diffusion_models"}},
		{"unet", []string{"/v/models/unet", "/v/models/diffusion_models"}},
		{"text_encoders", []string{"/v/models/clip", "/c/models/text_encoders"}},
		{"clip", []string{"/v/models/clip", "/c/models/text_encoders"}},
		{"vae", nil},
	}
	for _, tc := range tests {
		if got := p.Dirs(tc.folder); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Dirs(%q) = %q, want %q", tc.folder, got, tc.want)
		}
	}
}

func TestLocate(t *testing.T) {
	f := newFS(
		cat(sub("/runpod-volume/models", "diffusion_models", "loras"), sub("/comfyui/models", "unet", "clip")),
		"/comfyui/models/unet/high.safetensors",
		"/runpod-volume/models/diffusion_models/both.safetensors",
		"/comfyui/models/unet/both.safetensors",
		"/runpod-volume/models/loras/wan/l.safetensors",
		"/comfyui/models/clip/umt5.safetensors",
	)
	p := Resolve(defaultDirs, f.stat)
	tests := []struct {
		folder, name string
		found        string
		tried        []string
	}{
		{"diffusion_models", "high.safetensors", "/comfyui/models/unet/high.safetensors", []string{
			"/runpod-volume/models/unet/high.safetensors", "/runpod-volume/models/diffusion_models/high.safetensors",
			"/comfyui/models/unet/high.safetensors", "/comfyui/models/diffusion_models/high.safetensors"}},
		{"unet", "both.safetensors", "/runpod-volume/models/diffusion_models/both.safetensors", []string{
			"/runpod-volume/models/unet/both.safetensors", "/runpod-volume/models/diffusion_models/both.safetensors",
			"/comfyui/models/unet/both.safetensors", "/comfyui/models/diffusion_models/both.safetensors"}},
		{"loras", "wan/l.safetensors", "/runpod-volume/models/loras/wan/l.safetensors", []string{
			"/runpod-volume/models/loras/wan/l.safetensors", "/comfyui/models/loras/wan/l.safetensors"}},
		{"text_encoders", "umt5.safetensors", "/comfyui/models/clip/umt5.safetensors", []string{
			"/runpod-volume/models/text_encoders/umt5.safetensors", "/runpod-volume/models/clip/umt5.safetensors",
			"/comfyui/models/text_encoders/umt5.safetensors", "/comfyui/models/clip/umt5.safetensors"}},
		{"vae", "missing.safetensors", "", []string{
			"/runpod-volume/models/vae/missing.safetensors", "/comfyui/models/vae/missing.safetensors"}},
		{"loras", "wan", "", []string{ // a directory is not a model file
			"/runpod-volume/models/loras/wan", "/comfyui/models/loras/wan"}},
		{"loras", "../unet/high.safetensors", "", nil},
		{"loras", "/etc/passwd", "", nil},
		{"loras", "", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.folder+"/"+tc.name, func(t *testing.T) {
			found, tried := p.Locate(tc.folder, tc.name)
			if found != tc.found {
				t.Errorf("found = %q, want %q", found, tc.found)
			}
			if !reflect.DeepEqual(tried, tc.tried) {
				t.Errorf("tried = %q\nwant    %q", tried, tc.tried)
			}
		})
	}
}

func TestLocateWithNoFolderListsConfigured(t *testing.T) {
	p := Resolve(defaultDirs, newFS(nil).stat)
	found, tried := p.Locate("vae", "v.safetensors")
	want := []string{"/runpod-volume/models/vae/v.safetensors", "/comfyui/models/vae/v.safetensors"}
	if found != "" || !reflect.DeepEqual(tried, want) {
		t.Errorf("Locate = %q, %q; want \"\", %q", found, tried, want)
	}
}

func TestSummary(t *testing.T) {
	f := newFS(cat(sub("/runpod-volume/comfyui/models", "unet", "diffusion_models", "vae")))
	got := strings.Join(Resolve(defaultDirs, f.stat).Summary(), "\n")
	want := "/runpod-volume/comfyui/models (found under /runpod-volume/models): diffusion_models=unet+diffusion_models vae=vae\n" +
		"/comfyui/models: does not exist"
	if got != want {
		t.Errorf("Summary =\n%s\nwant\n%s", got, want)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "loras"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := Resolve([]string{dir}, nil) // the real filesystem
	name := filepath.Join(dir, "extra_model_paths.yaml")
	if err := p.WriteFile(name); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p.YAML()) {
		t.Errorf("file content differs from YAML()")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 { // loras and the yaml, no temporary file left
		t.Errorf("dir holds %d entries, want 2", len(entries))
	}
	if err := p.WriteFile(filepath.Join(dir, "no", "such", "dir", "x.yaml")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

// comfyLoader mimics how ComfyUI 0.3.64 reads the file: each section's
// base_path is joined to every line, and is_default inserts the path at the
// front of the folder's list (moving it there if present). It prints the
// resulting list of one folder, seeded with ComfyUI's own default paths.
const comfyLoader = `
import os, sys, yaml
folder, defaults = sys.argv[2], sys.argv[3:]
paths = list(defaults)
def add(name, full, is_default):
    if name in ("unet",): name = "diffusion_models"
    if name in ("clip",): name = "text_encoders"
    if name != folder: return
    if full in paths:
        if is_default and paths[0] != full:
            paths.remove(full); paths.insert(0, full)
    elif is_default: paths.insert(0, full)
    else: paths.append(full)
conf = yaml.safe_load(open(sys.argv[1]))
for section in conf:
    c = dict(conf[section])
    base = c.pop("base_path", None)
    is_default = c.pop("is_default", False)
    for key, value in c.items():
        for line in value.split("\n"):
            if line:
                add(key, os.path.join(base, line) if base else line, is_default)
print("\n".join(paths))
`

// TestYAMLSearchOrderInPython checks the written-last-first trick with a real
// YAML parser: after loading, the folder's search order must be MODELS_DIRS
// order, then ComfyUI's own models folder. Skips without python3 + PyYAML.
func TestYAMLSearchOrderInPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if err := exec.CommandContext(t.Context(), py, "-c", "import yaml").Run(); err != nil {
		t.Skip("PyYAML not installed")
	}
	f := newFS(cat(sub("/runpod-volume/models", "unet", "diffusion_models", "loras"),
		sub(`/mnt/a "b": #c/models`, "diffusion_models"),
		sub("/comfyui/models", "unet", "diffusion_models", "loras")))
	p := Resolve([]string{"/runpod-volume/models", `/mnt/a "b": #c/models`, "/comfyui/models"}, f.stat)
	dir := t.TempDir()
	name := filepath.Join(dir, "x.yaml")
	if err := p.WriteFile(name); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "load.py")
	if err := os.WriteFile(script, []byte(comfyLoader), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		folder   string
		defaults []string
		want     []string
	}{
		{"diffusion_models", []string{"/comfyui/models/unet", "/comfyui/models/diffusion_models"}, []string{
			"/runpod-volume/models/unet", "/runpod-volume/models/diffusion_models",
			`/mnt/a "b": #c/models/diffusion_models`,
			"/comfyui/models/unet", "/comfyui/models/diffusion_models"}},
		{"loras", []string{"/comfyui/models/loras"}, []string{"/runpod-volume/models/loras", "/comfyui/models/loras"}},
		{"vae", []string{"/comfyui/models/vae"}, []string{"/comfyui/models/vae"}},
	}
	for _, tc := range tests {
		out, err := exec.CommandContext(t.Context(), py, append([]string{script, name, tc.folder}, tc.defaults...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		got := strings.Split(strings.TrimSpace(string(out)), "\n")
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s search order =\n%q\nwant\n%q", tc.folder, got, tc.want)
		}
	}
}
