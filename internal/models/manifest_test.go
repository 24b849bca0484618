package models

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
)

func TestDefaultManifestIsWellFormed(t *testing.T) {
	sha := regexp.MustCompile(`^[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for _, f := range DefaultManifest() {
		if !sha.MatchString(f.SHA256) {
			t.Errorf("%s: SHA256 %q is not 64 lower-case hex digits", f.Name, f.SHA256)
		}
		if f.Size <= 0 && f.ApproxSize <= 0 {
			t.Errorf("%s: neither Size nor ApproxSize", f.Name)
		}
		if f.Repo == "" || f.Path == "" || strings.HasPrefix(f.Path, "/") {
			t.Errorf("%s: bad source %q %q", f.Name, f.Repo, f.Path)
		}
		if filepath.Base(f.Path) != filepath.Base(f.Name) {
			t.Errorf("%s: repository path %s has another file name", f.Name, f.Path)
		}
		if !slices.Contains([]string{FolderDiffusionModels, FolderTextEncoders, FolderVAE, FolderLoRAs}, f.Folder) {
			t.Errorf("%s: folder %q", f.Name, f.Folder)
		}
		if seen[f.Folder+"/"+filepath.Base(f.Name)] {
			t.Errorf("%s: listed twice", f.Name)
		}
		seen[f.Folder+"/"+filepath.Base(f.Name)] = true
	}
}

func TestDefaultProfileIsInTheManifest(t *testing.T) {
	items := DefaultManifest().Items(Wanted(config.Default()))
	if len(items) != 5 {
		t.Fatalf("default profile has %d files, want the original spec's 5", len(items))
	}
	for _, it := range items {
		if !it.Known() {
			t.Errorf("%s/%s is not in the manifest", it.Folder, it.Name)
		}
	}
}

// Wanted must list exactly the files the graph loads.
func TestWantedMatchesTheGraphProfile(t *testing.T) {
	cfgs := map[string]map[string]string{
		"defaults":      {},
		"no LoRAs":      {"MODEL_LORA_HIGH": "none", "MODEL_LORA_LOW": "none"},
		"two LoRAs":     {"MODEL_LORA_HIGH": "wan/a.safetensors", "MODEL_LORA_LOW": "b.safetensors"},
		"custom expert": {"MODEL_UNET_HIGH": "x/high.safetensors"},
	}
	for name, env := range cfgs {
		t.Run(name, func(t *testing.T) {
			c, err := config.Load(nil, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for _, w := range Wanted(c) {
				got = append(got, w.Folder+":"+w.Name)
			}
			for _, r := range workflow.ProfileFrom(c).Required() {
				want = append(want, r.Folder+":"+r.Name)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("Wanted = %v\ngraph  = %v", got, want)
			}
		})
	}
}

func TestWantedMergesSettings(t *testing.T) {
	ws := Wanted(config.Default())
	last := ws[len(ws)-1]
	if strings.Join(last.Settings, ",") != "MODEL_LORA_HIGH,MODEL_LORA_LOW" {
		t.Errorf("shared LoRA settings = %v", last.Settings)
	}
}

func TestLookup(t *testing.T) {
	m := DefaultManifest()
	tests := []struct {
		folder, name string
		want         string // manifest name, "" for not found
	}{
		{"diffusion_models", "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"},
		{"unet", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"},
		{"clip", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors"},
		{"loras", "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors", "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"},
		{"loras", "other/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors", "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"},
		{"vae", "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", ""}, // wrong folder
		{"loras", "my_style.safetensors", ""},
	}
	for _, tc := range tests {
		f, ok := m.Lookup(tc.folder, tc.name)
		if got := map[bool]string{true: f.Name, false: ""}[ok]; got != tc.want {
			t.Errorf("Lookup(%s, %s) = %q, want %q", tc.folder, tc.name, got, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	m := DefaultManifest()
	items := m.Items(Wanted(config.Default()))
	tests := []struct {
		only        []string
		wantNames   []string
		wantUnknown []string
	}{
		{nil, []string{"wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
			"umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan_2.1_vae.safetensors", "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"}, nil},
		{[]string{"wan_2.1_vae.safetensors"}, []string{"wan_2.1_vae.safetensors"}, nil},
		{[]string{"Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"}, []string{"wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"}, nil},
		{[]string{"wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors"}, []string{"wan/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors"}, nil},
		{[]string{"nope.safetensors", "wan_2.1_vae.safetensors"}, []string{"wan_2.1_vae.safetensors"}, []string{"nope.safetensors"}},
	}
	for _, tc := range tests {
		sel, unknown := m.Select(items, tc.only)
		var names []string
		for _, it := range sel {
			names = append(names, it.Name)
		}
		if strings.Join(names, ",") != strings.Join(tc.wantNames, ",") || strings.Join(unknown, ",") != strings.Join(tc.wantUnknown, ",") {
			t.Errorf("Select(%v) = %v, %v; want %v, %v", tc.only, names, unknown, tc.wantNames, tc.wantUnknown)
		}
	}
}

func TestLayoutAndDestination(t *testing.T) {
	it := Item{Want: Want{Folder: FolderLoRAs, Name: "wan/x.safetensors"}}
	tests := []struct {
		layout Layout
		item   Item
		want   string
	}{
		{LayoutComfy, Item{Want: Want{Folder: FolderDiffusionModels, Name: "h.safetensors"}}, "diffusion_models/h.safetensors"},
		{LayoutOriginal, Item{Want: Want{Folder: FolderDiffusionModels, Name: "h.safetensors"}}, "unet/h.safetensors"},
		{LayoutComfy, Item{Want: Want{Folder: FolderTextEncoders, Name: "t.safetensors"}}, "text_encoders/t.safetensors"},
		{LayoutOriginal, Item{Want: Want{Folder: FolderTextEncoders, Name: "t.safetensors"}}, "clip/t.safetensors"},
		{LayoutOriginal, Item{Want: Want{Folder: FolderVAE, Name: "v.safetensors"}}, "vae/v.safetensors"},
		{LayoutOriginal, it, "loras/wan/x.safetensors"},
		{LayoutComfy, it, "loras/wan/x.safetensors"},
	}
	for _, tc := range tests {
		got, err := Destination("/m", tc.layout, tc.item)
		if err != nil || got != filepath.Join("/m", filepath.FromSlash(tc.want)) {
			t.Errorf("Destination(%s, %s) = %q, %v; want /m/%s", tc.layout, tc.item.Name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"../x.safetensors", "/abs.safetensors", "a/../../x", ""} {
		if _, err := Destination("/m", LayoutComfy, Item{Want: Want{Folder: FolderLoRAs, Name: bad}}); err == nil {
			t.Errorf("Destination accepted %q", bad)
		}
	}
}

func TestDetectLayout(t *testing.T) {
	tests := []struct {
		dirs []string
		want Layout
	}{
		{nil, LayoutComfy},
		{[]string{"unet", "clip", "vae"}, LayoutOriginal},
		{[]string{"clip"}, LayoutOriginal},
		{[]string{"unet", "diffusion_models"}, LayoutComfy},
		{[]string{"diffusion_models", "text_encoders"}, LayoutComfy},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		for _, d := range tc.dirs {
			os.MkdirAll(filepath.Join(dir, d), 0o755)
		}
		if got := DetectLayout(dir, nil); got != tc.want {
			t.Errorf("DetectLayout(%v) = %s, want %s", tc.dirs, got, tc.want)
		}
	}
}

func TestInspect(t *testing.T) {
	a := newFixture("a.safetensors", FolderDiffusionModels, 100, 1)
	b := newFixture("wan/b.safetensors", FolderLoRAs, 200, 2)
	c := newFixture("c.safetensors", FolderVAE, 300, 3)
	d := newFixture("d.safetensors", FolderTextEncoders, 400, 4)
	m := Manifest{a.file, b.file, c.file, d.file}

	first, second := t.TempDir(), t.TempDir()
	write := func(p string, n int) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(second, "unet", "a.safetensors"), 100)             // original layout, second folder
	write(filepath.Join(first, "loras", "wan", "b.safetensors"), 10)       // wrong size
	write(filepath.Join(first, "vae", "c.safetensors"+PartialSuffix), 120) // partial download
	write(filepath.Join(first, "loras", "mine.safetensors"), 5)            // not in the manifest
	write(filepath.Join(second, "text_encoders", "d.safetensors"), 400)    // comfy layout
	paths := modelpaths.Resolve([]string{first, second}, nil)

	wants := []Want{
		{Folder: FolderDiffusionModels, Name: "a.safetensors"},
		{Folder: FolderLoRAs, Name: "wan/b.safetensors"},
		{Folder: FolderVAE, Name: "c.safetensors"},
		{Folder: FolderTextEncoders, Name: "d.safetensors"},
		{Folder: FolderLoRAs, Name: "mine.safetensors"},
		{Folder: FolderLoRAs, Name: "gone.safetensors"},
	}
	got := Inspect(paths, m.Items(wants), nil)
	want := []struct {
		state   State
		path    string
		known   bool
		partial int64
	}{
		{StatePresent, filepath.Join(second, "unet", "a.safetensors"), true, 0},
		{StateSizeMismatch, filepath.Join(first, "loras", "wan", "b.safetensors"), true, 0},
		{StateMissing, "", true, 120},
		{StatePresent, filepath.Join(second, "text_encoders", "d.safetensors"), true, 0},
		{StatePresent, filepath.Join(first, "loras", "mine.safetensors"), false, 0},
		{StateMissing, "", false, 0},
	}
	for i, w := range want {
		g := got[i]
		if g.State != w.state || g.Path != w.path || g.Known() != w.known || g.PartialSize != w.partial {
			t.Errorf("%s: state %s path %q known %v partial %d; want %s %q %v %d", g.Name, g.State, g.Path, g.Known(), g.PartialSize, w.state, w.path, w.known, w.partial)
		}
		if !w.known && g.Note != UnknownNote {
			t.Errorf("%s: note %q", g.Name, g.Note)
		}
		if len(g.LookedIn) == 0 {
			t.Errorf("%s: no looked-in paths", g.Name)
		}
	}
	// ComfyUI's search order: first folder before second, in both layouts.
	wantTried := []string{
		filepath.Join(first, "unet", "a.safetensors"), filepath.Join(first, "diffusion_models", "a.safetensors"),
		filepath.Join(second, "unet", "a.safetensors"), filepath.Join(second, "diffusion_models", "a.safetensors"),
	}
	if strings.Join(got[0].LookedIn, ",") != strings.Join(wantTried, ",") {
		t.Errorf("looked in %v\nwant %v", got[0].LookedIn, wantTried)
	}
}

// docs/models.md shows the manifest; every entry's name, size and checksum
// must appear there.
func TestDocsListTheManifest(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "models.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range DefaultManifest() {
		wants := []string{"`" + f.Name + "`", "`" + f.SHA256 + "`", "`" + f.Repo + "`"}
		if f.Size > 0 {
			wants = append(wants, "| "+commas(f.Size)+" |")
		}
		for _, w := range wants {
			if !strings.Contains(string(doc), w) {
				t.Errorf("docs/models.md lacks %s (entry %s)", w, f.Name)
			}
		}
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
