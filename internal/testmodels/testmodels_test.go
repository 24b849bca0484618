package testmodels

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

func TestPlan(t *testing.T) {
	def := DefaultOptions()
	tests := []struct {
		name    string
		opts    Options
		want    []string
		wantErr string
	}{
		{"defaults, original layout", def, []string{
			"unet/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
			"unet/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
			"vae/wan_2.1_vae.safetensors",
			"clip/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
			"loras/wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors",
		}, ""},
		{"comfy layout, two LoRAs, one empty", Options{Layout: LayoutComfy, Names: Names{
			UNetHigh: "h.safetensors", UNetLow: "l.safetensors", VAE: "v.safetensors", TextEncoder: "t.safetensors",
			LoRAs: []string{"a.safetensors", "", "sub/b.safetensors"}}}, []string{
			"diffusion_models/h.safetensors", "diffusion_models/l.safetensors", "vae/v.safetensors",
			"text_encoders/t.safetensors", "loras/a.safetensors", "loras/sub/b.safetensors",
		}, ""},
		{"escaping name", Options{Names: Names{UNetHigh: "../x", UNetLow: "l", VAE: "v", TextEncoder: "t"}}, nil, "not a relative file name"},
		{"absolute name", Options{Names: Names{UNetHigh: "h", UNetLow: "l", VAE: "v", TextEncoder: "t", LoRAs: []string{"/../../x"}}}, nil, "not a relative file name"},
		{"empty name", Options{Names: Names{UNetHigh: "", UNetLow: "l", VAE: "v", TextEncoder: "t"}}, nil, "not a relative file name"},
		{"layout", Options{Layout: "flat", Names: def.Names}, nil, "unknown layout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Plan(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range files {
				got = append(got, filepath.ToSlash(f.Path))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("paths = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	a := DefaultOptions()
	b := DefaultOptions()
	b.Layout = LayoutComfy
	c := DefaultOptions()
	c.Names.LoRAs = []string{"x.safetensors"}
	d := DefaultOptions()
	d.Layout = ""
	if Key(a) != Key(DefaultOptions()) || Key(a) != Key(d) {
		t.Error("Key is not stable")
	}
	if Key(a) == Key(b) || Key(a) == Key(c) {
		t.Error("Key ignores the layout or the names")
	}
	if !strings.HasPrefix(Key(a), "v1-") {
		t.Errorf("Key = %q, want the generator version first", Key(a))
	}
}

// stats counts tensors (not counting fp8 scales, markers and the tokenizer)
// and their parameters.
func stats(ts []safetensors.Tensor) (count int, params, bytes int64) {
	for i := range ts {
		bytes += ts[i].ByteSize()
		if strings.HasSuffix(ts[i].Name, ".scale_weight") || ts[i].Name == "scaled_fp8" || ts[i].Name == "spiece_model" {
			continue
		}
		count++
		params += ts[i].Elements()
	}
	return
}

// The fixtures have the sizes ComfyUI's fixed architectures dictate.
func TestFixtureSizes(t *testing.T) {
	tests := []struct {
		name             string
		tensors          []safetensors.Tensor
		count            int
		params           int64
		minBytes, maxBey int64
	}{
		{"diffusion model", wanModel(1, tinyWAN), 42, 916_032, 900_000, 1_000_000},
		{"vae", wanVAE(4, safetensors.BF16), 194, 126_892_531, 253_000_000, 254_000_000},
		{"text encoder", umt5(5, false), 242, 5_680_910_336, 6_730_000_000, 6_740_000_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			count, params, bytes := stats(tc.tensors)
			if count != tc.count || params != tc.params {
				t.Errorf("%d tensors, %d parameters; want %d, %d", count, params, tc.count, tc.params)
			}
			if bytes < tc.minBytes || bytes > tc.maxBey {
				t.Errorf("%d bytes of data, want %d…%d", bytes, tc.minBytes, tc.maxBey)
			}
		})
	}
}

func byName(ts []safetensors.Tensor) map[string]safetensors.Tensor {
	m := map[string]safetensors.Tensor{}
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

// Every LoRA key maps onto the model the way ComfyUI maps them
// (comfy/lora.py): "diffusion_model.X" names the model's X.weight, or X itself
// for a parameter that is not a .weight, and the shapes fit.
func TestLoRAMapsOntoModel(t *testing.T) {
	model := byName(wanModel(1, tinyWAN))
	shape := func(name string) []int64 {
		if ts, ok := model[name]; ok {
			return ts.Shape
		}
		return nil
	}
	for _, l := range wanLoRA(3, tinyWAN) {
		name, ok := strings.CutPrefix(l.Name, "diffusion_model.")
		if !ok {
			t.Errorf("%s: no diffusion_model. prefix", l.Name)
			continue
		}
		var base, suffix string
		for _, s := range []string{".lora_down.weight", ".lora_up.weight", ".alpha", ".diff_b", ".diff"} {
			if b, ok := strings.CutSuffix(name, s); ok {
				base, suffix = b, s
				break
			}
		}
		weight := shape(base + ".weight")
		if weight == nil {
			weight = shape(base)
		}
		if weight == nil {
			t.Errorf("%s: %s is not a model key", l.Name, base)
			continue
		}
		var want []int64
		switch suffix {
		case ".lora_down.weight":
			want = []int64{tinyWAN.rank, weight[1]}
		case ".lora_up.weight":
			want = []int64{weight[0], tinyWAN.rank}
		case ".alpha":
			want = []int64{}
		case ".diff":
			want = weight
		case ".diff_b":
			want = shape(base + ".bias")
		default:
			t.Errorf("%s: suffix not accepted by ComfyUI", l.Name)
			continue
		}
		if !slices.Equal(l.Shape, want) {
			t.Errorf("%s: shape %v, want %v", l.Name, l.Shape, want)
		}
	}
}

func TestTokenizer(t *testing.T) {
	ps := spmPieces()
	want := []spmPiece{{"<pad>", 0, spmControl}, {"</s>", 0, spmControl}, {"<unk>", 0, spmUnknown}}
	if !slices.Equal(ps[:3], want) {
		t.Errorf("special pieces = %v, want %v", ps[:3], want)
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.piece] {
			t.Errorf("duplicate piece %q", p.piece)
		}
		seen[p.piece] = true
	}
	// Every merge is the concatenation of two pieces (BPE builds it that way).
	for _, p := range ps[3:] {
		if len([]rune(p.piece)) < 2 {
			continue
		}
		r := []rune(p.piece)
		ok := false
		for i := 1; i < len(r); i++ {
			if seen[string(r[:i])] && seen[string(r[i:])] {
				ok = true
			}
		}
		if !ok {
			t.Errorf("merge %q is not two pieces", p.piece)
		}
	}
	if n := spmVocabSize(); n >= t5Vocab || n < 64 {
		t.Errorf("vocabulary of %d", n)
	}
}

// Generate writes the diffusion models, the LoRA and the text encoder (the
// VAE is left to the Python check: at full size it is slow under the race
// detector); the text encoder file is sparse, the others read back.
func TestGenerate(t *testing.T) {
	files, err := Plan(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f File) bool { return f.Kind == "vae" })
	dir := t.TempDir()
	if err := generate(t.Context(), dir, files); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Path)
		sf, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if sf.Header.Metadata["kind"] != f.Kind || !strings.Contains(sf.Header.Metadata["generator"], "testmodels") {
			t.Errorf("%s: metadata %v", f.Path, sf.Header.Metadata)
		}
		if len(sf.Header.Tensors) != len(f.Tensors()) {
			t.Errorf("%s: %d tensors, want %d", f.Path, len(sf.Header.Tensors), len(f.Tensors()))
		}
		sf.Close()
	}

	te := filepath.Join(dir, "clip", "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
	st, err := os.Stat(te)
	if err != nil {
		t.Fatal(err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Blocks*512 > 64<<20 {
		t.Errorf("text encoder: %d bytes allocated for %d, want a sparse file", sys.Blocks*512, st.Size())
	}
	sf, err := safetensors.Open(te)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	norm, err := sf.Tensor("encoder.final_layer_norm.weight")
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := sf.Header.Lookup("encoder.final_layer_norm.weight"); info.DType != safetensors.F16 {
		t.Errorf("final_layer_norm is %s, want F16 (it sets the encoder's dtype)", info.DType)
	}
	vals, _ := safetensors.DecodeFloats(safetensors.F16, norm)
	if vals[0] != 1 || vals[len(vals)-1] != 1 {
		t.Errorf("final_layer_norm = %v…, want ones", vals[:4])
	}
	if info, _ := sf.Header.Lookup("scaled_fp8"); info.DType != safetensors.F8E4M3 || len(info.Shape) != 1 || info.Shape[0] != 0 {
		t.Errorf("scaled_fp8 = %s%v, want an empty F8_E4M3 tensor", info.DType, info.Shape)
	}
}

// The VAE's convolution weights are N(0, 1/fan_in), finite, and the gammas ones.
func TestVAEValues(t *testing.T) {
	ts := byName(wanVAE(4, safetensors.BF16))
	w := ts["decoder.middle.0.residual.2.weight"]
	buf := make([]byte, w.ByteSize())
	w.Fill(buf)
	vals, _ := safetensors.DecodeFloats(w.DType, buf)
	var sum, sq float64
	for _, v := range vals {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite weight")
		}
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(vals))
	std, want := math.Sqrt(sq/n-(sum/n)*(sum/n)), 1/math.Sqrt(384*27)
	if math.Abs(std-want) > want/20 {
		t.Errorf("std = %g, want %g", std, want)
	}
	g := ts["decoder.head.0.gamma"]
	gv, _ := safetensors.DecodeFloats(g.DType, g.Data)
	if len(gv) != 96 || gv[0] != 1 {
		t.Errorf("gamma = %v", gv)
	}
}

func TestEnsure(t *testing.T) {
	cache := t.TempDir()
	calls := 0
	gen := func(dir string) error {
		calls++
		return os.WriteFile(filepath.Join(dir, "m.safetensors"), []byte("x"), 0o644)
	}
	dir, err := ensure(cache, "v1-abc", gen)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "m.safetensors")); err != nil {
		t.Fatal(err)
	}
	if _, err := ensure(cache, "v1-abc", gen); err != nil || calls != 1 {
		t.Fatalf("second ensure: err %v, %d generations, want 1", err, calls)
	}

	// An unfinished set (no marker) is made again.
	if err := os.Remove(filepath.Join(dir, completeMarker)); err != nil {
		t.Fatal(err)
	}
	if _, err := ensure(cache, "v1-abc", gen); err != nil || calls != 2 {
		t.Fatalf("after losing the marker: err %v, %d generations, want 2", err, calls)
	}

	// A failed generation leaves nothing behind.
	boom := errors.New("boom")
	if _, err := ensure(cache, "v1-def", func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	entries, _ := os.ReadDir(cache)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"v1-abc"}) {
		t.Errorf("cache holds %v, want only v1-abc", names)
	}

	// Prune drops other sets.
	if err := os.Mkdir(filepath.Join(cache, "v0-old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Prune(cache, "v1-abc"); err != nil {
		t.Fatal(err)
	}
	entries, _ = os.ReadDir(cache)
	if len(entries) != 1 || entries[0].Name() != "v1-abc" {
		t.Errorf("after Prune: %v", entries)
	}
}
