package cli

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestGenerateInput checks that the option flags become the job's options
// with the JSON types the contract wants, and only when given.
// imgs are the image flags of a case.
type imgs struct{ image, endImage string }

func TestGenerateInput(t *testing.T) {
	dir := t.TempDir()
	img, end := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	for _, p := range []string{img, end} {
		if err := os.WriteFile(p, []byte("png bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		g     imgs
		flags map[string]string
		want  map[string]any // options
		top   map[string]any // top-level fields besides prompt and image
		bad   bool
	}{
		{"none", imgs{image: img}, nil, map[string]any{"output": "volume"}, nil, false},
		{"issue 12 options", imgs{image: img, endImage: "https://example.com/end.png"}, map[string]string{
			"resolution": "480p", "aspect-ratio": "16:9", "preset": "quality", "cfg-high": "3.5", "cfg-low": "1",
			"distill-lora": "low", "video-quality": "high", "interpolate": "3:ffmpeg",
		}, map[string]any{"output": "volume", "resolution": "480p", "aspect_ratio": "16:9", "preset": "quality",
			"cfg_high": 3.5, "cfg_low": 1.0, "distill_lora": "low", "video_quality": "high",
			"interpolate": map[string]any{"factor": 3.0, "method": "ffmpeg"}},
			map[string]any{"end_image": "https://example.com/end.png"}, false},
		{"interpolate factor only, end image file", imgs{image: img, endImage: end}, map[string]string{"interpolate": "2"},
			map[string]any{"output": "volume", "interpolate": map[string]any{"factor": 2.0}},
			map[string]any{"end_image": base64.StdEncoding.EncodeToString([]byte("png bytes"))}, false},
		{"interpolate not a number", imgs{image: img}, map[string]string{"interpolate": "two"}, nil, nil, true},
		{"cfg-high not a number", imgs{image: img}, map[string]string{"cfg-high": "high"}, nil, nil, true},
		{"end image missing", imgs{image: img, endImage: filepath.Join(dir, "nope.png")}, nil, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("generate", flag.ContinueOnError)
			var g jobFlags
			g.register(fs)
			var args []string
			for k, v := range tt.flags {
				if fs.Lookup(k) == nil {
					t.Fatalf("no flag --%s", k)
				}
				args = append(args, "--"+k+"="+v)
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			g.image, g.endImage = tt.g.image, tt.g.endImage
			var b []byte
			in0, err := g.input("x")
			if err == nil {
				in0["options"].(map[string]any)["output"] = "volume"
				b, err = json.Marshal(in0)
			}
			if tt.bad {
				if err == nil {
					t.Fatalf("no error; input %s", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var in map[string]any
			if err := json.Unmarshal(b, &in); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in["options"], tt.want) {
				t.Errorf("options %v, want %v", in["options"], tt.want)
			}
			for k, v := range tt.top {
				if in[k] != v {
					t.Errorf("%s = %v, want %v", k, in[k], v)
				}
			}
			if _, ok := in["end_image"]; ok != (tt.g.endImage != "") {
				t.Errorf("end_image present %v", ok)
			}
		})
	}
}

func TestLoRAFlags(t *testing.T) {
	var l loraFlags
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.Var(&l, "lora", "")
	fs.Var(loraURLFlag{&l}, "lora-url", "")
	err := fs.Parse([]string{"--lora", "wan/a.safetensors:0.5:low", "--lora-url", "https://civitai.com/api/download/models/1?type=Model&x=a:b",
		"--lora", "b.safetensors"})
	if err != nil {
		t.Fatal(err)
	}
	want := loraFlags{
		{"name": "wan/a.safetensors", "strength": 0.5, "expert": "low"},
		{"url": "https://civitai.com/api/download/models/1?type=Model&x=a:b"},
		{"name": "b.safetensors"},
	}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("loras %v, want %v", l, want)
	}
}
