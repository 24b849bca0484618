package job

import (
	"encoding/json"
	"flag"
	"github.com/wan22-worker/wan22-worker/internal/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden parses valid jobs and compares the normalized job (everything
// but the image bytes) with testdata/golden/<name>.json.
func TestGolden(t *testing.T) {
	pngB64 := b64(encodePNG(t, gradient(64, 48)))
	portrait := b64(jpegWithEXIF(encodeJPEG(t, quadrants(64, 32)), tiffWithOrientation(6, false)))
	webpB64 := b64(fixture(t, "lossless.webp"))
	tests := []struct{ name, doc string }{
		{"minimal", `{"prompt": "a cat turning its head slowly", "image": "PNG"}`},
		{"original_spec", `{"prompt": "description of the desired video", "image": "PNG",
			"options": {"width": 832, "height": 832, "length": 81, "steps": 6, "cfg": 1.0, "frame_rate": 24, "seed": 123456}}`},
		{"every_option", `{"prompt": "a ship in a storm", "negative_prompt": "blurry", "image": "PNG",
			"options": {"width": 1280, "height": 720, "fit": "pad", "length": 121, "steps": 20, "split_step": 10,
			"cfg": 3.5, "shift": 5, "sampler": "dpmpp_2m", "scheduler": "karras", "frame_rate": 23.976,
			"seed": 18446744073709551615, "crf": 0, "last_frame": true, "output": "s3",
			"loras": [{"name": "wan/style.safetensors", "strength": 0.75, "expert": "high"},
			          {"name": "detail.pt"}]}}`},
		{"exif_portrait_width_only", `{"prompt": "a portrait", "image": "PORTRAIT", "options": {"width": 480, "fit": "stretch"}}`},
		{"height_only", `{"prompt": "x", "image": "PNG", "options": {"height": 480, "seed": 7}}`},
		{"webp_data_uri", `{"prompt": "x", "image": "data:image/webp;base64,WEBP", "options": {"seed": 1, "output": "volume"}}`},
		{"nulls", `{"prompt": "x", "image": "PNG", "negative_prompt": null,
			"options": {"width": null, "height": null, "seed": null, "loras": null, "output": null}}`},
		// Issue 12's job: end frame, resolution and aspect ratio, interpolation, per-expert cfg, preset.
		{"end_frame_480p_16x9_quality", `{"prompt": "a door opening", "image": "PNG", "end_image": "PORTRAIT",
			"options": {"resolution": "480p", "aspect_ratio": "16:9", "preset": "quality", "cfg_high": 4,
			"interpolate": {"factor": 2, "method": "ffmpeg"}, "video_quality": "maximum", "seed": 3}}`},
		{"resolution_720p_auto", `{"prompt": "x", "image": "PORTRAIT", "options": {"resolution": "720p", "seed": 5}}`},
		{"preset_balanced_crf_wins", `{"prompt": "x", "image": "PNG",
			"options": {"preset": "balanced", "video_quality": "low", "crf": 21, "distill_lora": "none", "seed": 9,
			"interpolate": {"factor": 3}, "frame_rate": 30}}`},
		{"aspect_only", `{"prompt": "x", "image": "PNG", "options": {"aspect_ratio": "9:16", "seed": 11}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.NewReplacer(`"PNG"`, `"`+pngB64+`"`, `"PORTRAIT"`, `"`+portrait+`"`, "WEBP", webpB64).Replace(tt.doc)
			j, err := parseTest(t, []byte(doc), testLimits())
			if err != nil {
				t.Fatal(err)
			}
			j.ID = "golden-" + tt.name
			cfg := decodePNG(t, j.Prepared).Bounds()
			if cfg.Dx() != j.Options.Width || cfg.Dy() != j.Options.Height {
				t.Errorf("prepared image %v, options say %dx%d", cfg, j.Options.Width, j.Options.Height)
			}
			if (j.EndImage != nil) != (j.EndPNG != nil) {
				t.Errorf("end image info %v but %d PNG bytes", j.EndImage, len(j.EndPNG))
			}
			if j.EndPNG != nil {
				if b := decodePNG(t, j.EndPNG).Bounds(); b != cfg {
					t.Errorf("prepared end image %v, start image %v", b, cfg)
				}
			}
			got, err := json.MarshalIndent(j, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden.Check(t, filepath.Join("testdata", "golden", tt.name+".json"), got, *update)
		})
	}
}

// TestRepoTestInput keeps the repository's test_input.json a valid job.
func TestRepoTestInput(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "test_input.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 20<<10 {
		t.Errorf("test_input.json is %d bytes; keep it under 20 KiB", len(data))
	}
	req, err := DecodeRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	j, err := parseTest(t, req.Input, testLimits())
	if err != nil {
		t.Fatal(err)
	}
	if j.Image.Format != FormatPNG || j.Image.Width < 64 || j.Options.Width != 832 || j.Options.Height != 832 {
		t.Errorf("test_input.json: image %+v, size %dx%d", j.Image, j.Options.Width, j.Options.Height)
	}
}
