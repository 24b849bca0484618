package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/workflow"
)

// workflowJob returns a job document with a w×h PNG image.
func workflowJob(t *testing.T, id string, w, h int, options string) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, 0, color.RGBA{R: 200, A: 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"input": map[string]any{
		"prompt": "a red fox in the snow", "image": base64.StdEncoding.EncodeToString(buf.Bytes()),
		"options": json.RawMessage(options),
	}}
	if id != "" {
		doc["id"] = id
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWorkflowCommand(t *testing.T) {
	dir := t.TempDir()
	jobFile := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jobFile, []byte(workflowJob(t, "", 320, 320, `{"width": 512, "height": 512, "seed": 7}`)), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		stdin string
		env   map[string]string
		code  int
		check func(t *testing.T, g workflow.Graph, stderr string)
	}{
		{
			name: "job from stdin", args: []string{"workflow"},
			stdin: workflowJob(t, "job-9", 640, 360, `{"length": 33, "loras": [{"name": "x.safetensors", "expert": "high"}]}`),
			check: func(t *testing.T, g workflow.Graph, _ string) {
				if got := g[workflow.NodeImage].Inputs["image"]; got != "wan22_job-9.png" {
					t.Errorf("image = %v, want the upload name of job-9", got)
				}
				if got := g[workflow.NodeVideo].ClassType; got != "VHS_VideoCombine" {
					t.Errorf("writer %s", got)
				}
				if got := g[workflow.LoRANode("high", 1)].Inputs["lora_name"]; got != "x.safetensors" {
					t.Errorf("request LoRA = %v", got)
				}
				if got := g[workflow.NodeImageToVideo].Inputs["length"]; got != json.Number("33") {
					t.Errorf("length = %v", got)
				}
			},
		},
		{
			name: "job file, no id, capabilities and config from flags and env",
			args: []string{"workflow", "--vhs=false", "--torch-compile-node=false", "--model-vae=my_vae.safetensors", jobFile},
			env:  map[string]string{"TORCH_COMPILE": "0"},
			check: func(t *testing.T, g workflow.Graph, _ string) {
				if got := g[workflow.NodeImage].Inputs["image"]; got != "wan22_local_test.png" {
					t.Errorf("image = %v", got)
				}
				if g[workflow.NodeVideo].ClassType != "SaveVideo" || g[workflow.NodeCompileHigh].ClassType != "" {
					t.Errorf("want the core writer and no compile nodes")
				}
				if got := g[workflow.NodeVAE].Inputs["vae_name"]; got != "my_vae.safetensors" {
					t.Errorf("vae = %v", got)
				}
				if got := g[workflow.NodeImageToVideo].Inputs["width"]; got != json.Number("512") {
					t.Errorf("width = %v", got)
				}
			},
		},
		{
			name: "end frame, resolution, quality preset, cfg_high, interpolation", args: []string{"workflow"},
			stdin: withEndImage(t, workflowJob(t, "job-e", 640, 360, `{"resolution": "480p", "aspect_ratio": "16:9", "preset": "quality",
				"cfg_high": 4, "interpolate": {"factor": 2}}`)),
			check: func(t *testing.T, g workflow.Graph, _ string) {
				cond := g[workflow.NodeImageToVideo]
				if cond.ClassType != workflow.ClassFirstLastFrame || cond.Inputs["width"] != json.Number("848") || cond.Inputs["height"] != json.Number("480") {
					t.Errorf("conditioning %s %v×%v", cond.ClassType, cond.Inputs["width"], cond.Inputs["height"])
				}
				if got := g[workflow.NodeEndImage].Inputs["image"]; got != "wan22_job-e_end.png" {
					t.Errorf("end image = %v", got)
				}
				if h, l := g[workflow.NodeSamplerHigh].Inputs, g[workflow.NodeSamplerLow].Inputs; h["cfg"] != json.Number("4") ||
					l["cfg"] != json.Number("3.5") || h["steps"] != json.Number("20") {
					t.Errorf("samplers: high cfg %v steps %v, low cfg %v", h["cfg"], h["steps"], l["cfg"])
				}
				if _, ok := g[workflow.LoRANode("high", 0)]; ok {
					t.Error("the quality preset has no step-distill LoRA")
				}
				if got := g[workflow.NodeVideo].Inputs["frame_rate"]; got != json.Number("16") {
					t.Errorf("the writer's rate is %v, want the model's 16 (interpolated to 32 afterwards)", got)
				}
			},
		},
		{
			name: "--id wins", args: []string{"workflow", "--id", "abc", jobFile},
			check: func(t *testing.T, g workflow.Graph, _ string) {
				if got := g[workflow.NodeVideo].Inputs["filename_prefix"]; got != "wan22/abc/wan2_2" {
					t.Errorf("prefix = %v", got)
				}
			},
		},
		{
			name: "warm-up graph", args: []string{"workflow", "--warmup-graph"},
			check: func(t *testing.T, g workflow.Graph, _ string) {
				if got := g[workflow.NodeImageToVideo].Inputs["width"]; got != json.Number("64") {
					t.Errorf("width = %v", got)
				}
			},
		},
		{name: "warm-up takes no file", args: []string{"workflow", "--warmup-graph", jobFile}, code: exitInvalid},
		{
			name: "invalid job", args: []string{"workflow", "-"}, stdin: `{"input": {"prompt": "", "image": "x"}}`, code: exitInvalid,
			check: func(t *testing.T, _ workflow.Graph, stderr string) {
				if !strings.Contains(stderr, `"code": "INVALID_INPUT"`) || !strings.Contains(stderr, `"field": "prompt"`) {
					t.Errorf("stderr lacks the field error:\n%s", stderr)
				}
			},
		},
		{
			name: "TorchCompileModel missing", args: []string{"workflow", "--torch-compile-node=false", jobFile}, code: exitFailed,
			check: func(t *testing.T, _ workflow.Graph, stderr string) {
				if !strings.Contains(stderr, `"code": "NODE_MISSING"`) || !strings.Contains(stderr, "TORCH_COMPILE=0") {
					t.Errorf("stderr:\n%s", stderr)
				}
			},
		},
		{name: "bad config", args: []string{"workflow", "--unet-weight-dtype=fp4", jobFile}, code: exitInvalid},
		{name: "missing file", args: []string{"workflow", filepath.Join(dir, "nope.json")}, code: exitInvalid},
		{name: "two files", args: []string{"workflow", jobFile, jobFile}, code: exitInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := &Env{Stdin: strings.NewReader(tc.stdin), Stdout: &stdout, Stderr: &stderr,
				Getenv: func(k string) string { return tc.env[k] }}
			code := Main(t.Context(), env, tc.args)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tc.code, stderr.String())
			}
			var g workflow.Graph
			if code == exitOK {
				var err error
				if g, err = workflow.ParseGraph(stdout.Bytes()); err != nil {
					t.Fatalf("stdout is not a graph: %v\n%s", err, stdout.String())
				}
			} else if stdout.Len() > 0 {
				t.Errorf("stdout on failure: %s", stdout.String())
			}
			if tc.check != nil {
				tc.check(t, g, stderr.String())
			}
		})
	}
}

// withEndImage gives a job document an end_image (its own image).
func withEndImage(t *testing.T, doc string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	in := m["input"].(map[string]any)
	in["end_image"] = in["image"]
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
