package deploycheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/job"
)

func TestRepoHubJSON(t *testing.T) {
	src := readRepoFile(t, ".runpod/hub.json")
	fs, err := CheckHub(".runpod/hub.json", src)
	noFindings(t, fs, err)

	var hub struct {
		Type     string `json:"type"`
		Category string `json:"category"`
		Config   struct {
			ContainerDiskInGb   int      `json:"containerDiskInGb"`
			GPUCount            int      `json:"gpuCount"`
			GPUIDs              string   `json:"gpuIds"`
			AllowedCudaVersions []string `json:"allowedCudaVersions"`
			Env                 []struct {
				Key string `json:"key"`
			} `json:"env"`
		} `json:"config"`
	}
	if err := json.Unmarshal(src, &hub); err != nil {
		t.Fatal(err)
	}
	if hub.Type != "serverless" || hub.Category != "video" {
		t.Errorf("type %q category %q, want serverless video", hub.Type, hub.Category)
	}
	if hub.Config.GPUCount != 1 || hub.Config.ContainerDiskInGb < 50 {
		t.Errorf("gpuCount %d containerDiskInGb %d, want 1 and at least 50", hub.Config.GPUCount, hub.Config.ContainerDiskInGb)
	}
	pools := strings.Split(hub.Config.GPUIDs, ",")
	// RTX 5090, H100, H200, A100 80 GB.
	for _, want := range []string{"ADA_32_PRO", "ADA_80_PRO", "HOPPER_141", "AMPERE_80"} {
		if !slices.Contains(pools, want) {
			t.Errorf("gpuIds %q lacks %s", hub.Config.GPUIDs, want)
		}
	}
	// The image is built for CUDA 12.8: hosts with an older driver cannot run it.
	if !slices.Contains(hub.Config.AllowedCudaVersions, "12.8") {
		t.Errorf("allowedCudaVersions %v lacks 12.8", hub.Config.AllowedCudaVersions)
	}
	for _, v := range hub.Config.AllowedCudaVersions {
		var major, minor int
		if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil || major < 12 || major == 12 && minor < 8 {
			t.Errorf("allowedCudaVersions has %s, older than the image's CUDA 12.8", v)
		}
	}
	keys := map[string]bool{}
	for _, e := range hub.Config.Env {
		keys[e.Key] = true
		if strings.HasPrefix(e.Key, "RUNPOD_") || strings.HasPrefix(e.Key, "API_") {
			t.Errorf("env %s is set by RunPod or is for the local API; it does not belong in the Hub form", e.Key)
		}
	}
	for _, want := range []string{"MODEL_UNET_HIGH", "MODEL_UNET_LOW", "MODEL_TEXT_ENCODER", "MODEL_VAE", "MODEL_LORA_HIGH",
		"MODEL_LORA_LOW", "TORCH_COMPILE", "WARMUP", "MAX_PIXELS", "MAX_FRAMES", "JOB_TIMEOUT", "BUCKET_ENDPOINT_URL",
		"BUCKET_ACCESS_KEY_ID", "BUCKET_SECRET_ACCESS_KEY", "INLINE_MAX_BYTES"} {
		if !keys[want] {
			t.Errorf("hub.json env lacks %s", want)
		}
	}
}

// parseJob validates a job input as the worker does (no image downloads).
func parseJob(t *testing.T) func(json.RawMessage) error {
	return func(in json.RawMessage) error {
		_, err := job.Parse(t.Context(), "hub-test", in, job.LimitsFrom(config.Default()), nil)
		return err
	}
}

func TestRepoTestsJSON(t *testing.T) {
	src := readRepoFile(t, ".runpod/tests.json")
	fs, err := CheckHubTests(".runpod/tests.json", src, parseJob(t))
	noFindings(t, fs, err)

	var doc struct {
		Tests []struct {
			Input   json.RawMessage `json:"input"`
			Timeout int             `json:"timeout"`
		} `json:"tests"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range doc.Tests {
		j, err := job.Parse(t.Context(), "hub-test", tc.Input, job.LimitsFrom(config.Default()), nil)
		if err != nil {
			t.Fatal(err)
		}
		// A smoke test, not a benchmark: small enough for any listed GPU within the timeout.
		o := j.Options
		if o.Width*o.Height > 512*512 || o.Length > 33 || o.Steps > 4 {
			t.Errorf("test job %dx%d, %d frames, %d steps: keep the Hub test modest", o.Width, o.Height, o.Length, o.Steps)
		}
		if tc.Timeout < 300_000 {
			t.Errorf("timeout %d ms leaves no room for a cold start (model load from the volume)", tc.Timeout)
		}
	}
}

const validHub = `{
  "title": "T", "description": "D", "type": "serverless", "category": "video",
  "config": {
    "runsOn": "GPU", "containerDiskInGb": 50, "gpuCount": 1, "gpuIds": "ADA_32_PRO,-NVIDIA GeForce RTX 4090",
    "allowedCudaVersions": ["12.8"],
    "presets": [{"name": "P", "defaults": {"TORCH_COMPILE": false, "MAX_FRAMES": 81, "WARMUP": "on"}}],
    "env": [
      {"key": "LOG_FORMAT", "value": "json"},
      {"key": "TORCH_COMPILE", "input": {"name": "n", "type": "boolean", "description": "d", "default": true, "trueValue": "1", "falseValue": "0"}},
      {"key": "MAX_FRAMES", "input": {"name": "n", "type": "number", "description": "d", "default": 121, "min": 5, "max": 241}},
      {"key": "WARMUP", "input": {"name": "n", "type": "string", "description": "d", "default": "auto",
        "options": [{"label": "a", "value": "auto"}, {"label": "b", "value": "on"}], "advanced": true}}
    ]
  }
}`

func TestHubRules(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string // replace old by new in validHub
		wantRules []string
		wantText  string
	}{
		{"valid", "", "", nil, ""},
		{"unknown key", `"title": "T"`, `"title": "T", "icon": "x"`, []string{"hub-schema"}, `unknown key "icon"`},
		{"bad category", `"category": "video"`, `"category": "videos"`, []string{"hub-schema"}, "category"},
		{"bad type", `"type": "serverless"`, `"type": "pod"`, []string{"hub-schema"}, "serverless"},
		{"missing title", `"title": "T", `, ``, []string{"hub-schema"}, `"title" is required`},
		{"disk not integer", `"containerDiskInGb": 50`, `"containerDiskInGb": "50"`, []string{"hub-schema"}, "integer"},
		{"gpu name in gpuIds", `"gpuIds": "ADA_32_PRO,`, `"gpuIds": "NVIDIA GeForce RTX 5090,`, []string{"hub-schema"}, "pool id"},
		{"cuda not a string", `["12.8"]`, `[12.8]`, []string{"hub-schema"}, "allowedCudaVersions"},
		{"unknown setting", `"key": "LOG_FORMAT"`, `"key": "LOG_FORMATT"`, []string{"hub-env"}, "not a setting"},
		{"static value refused", `"value": "json"`, `"value": "yaml"`, []string{"hub-env"}, "refused"},
		{"default differs", `"default": 121`, `"default": 81`, []string{"hub-env"}, "differs from the worker's default"},
		{"bool default differs", `"default": true`, `"default": false`, []string{"hub-env"}, "differs"},
		{"bool values refused", `"trueValue": "1"`, `"trueValue": "enabled"`, []string{"hub-env", "hub-env"}, "refused"},
		{"bound refused", `"max": 241`, `"max": 1000000`, []string{"hub-env"}, "max"},
		{"option refused", `"value": "on"}`, `"value": "sometimes"}`, []string{"hub-env"}, "option"},
		{"default not an option", `"default": "auto",`, `"default": "off",`, []string{"hub-env", "hub-schema"}, "not among the options"},
		{"number default is a string", `"default": 121`, `"default": "121"`, []string{"hub-schema"}, "must be a number"},
		{"value and input", `{"key": "LOG_FORMAT", "value": "json"}`, `{"key": "LOG_FORMAT", "value": "json", "input": {}}`, []string{"hub-schema"}, "exactly one"},
		{"input type", `"type": "number"`, `"type": "int"`, []string{"hub-schema"}, "input type"},
		{"preset unknown key", `"MAX_FRAMES": 81,`, `"MAX_FRAME": 81,`, []string{"hub-schema"}, "not an input"},
		{"preset value refused", `"MAX_FRAMES": 81,`, `"MAX_FRAMES": 1,`, []string{"hub-env"}, "refused"},
		{"preset wrong type", `"TORCH_COMPILE": false,`, `"TORCH_COMPILE": "no",`, []string{"hub-schema"}, "true or false"},
		{"duplicate key", `{"key": "LOG_FORMAT", "value": "json"},`, `{"key": "LOG_FORMAT", "value": "json"}, {"key": "LOG_FORMAT", "value": "text"},`, []string{"hub-schema"}, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := validHub
			if tc.old != "" {
				if !strings.Contains(src, tc.old) {
					t.Fatalf("fixture lacks %q", tc.old)
				}
				src = strings.Replace(src, tc.old, tc.new, 1)
			}
			fs, err := CheckHub("hub.json", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			checkRules(t, fs, tc.wantRules, tc.wantText)
		})
	}
	if _, err := CheckHub("hub.json", []byte(`{"title": `)); err == nil {
		t.Error("invalid JSON: no error")
	}
}

const validTests = `{
  "tests": [{"name": "t", "input": {"prompt": "p"}, "timeout": 600000}],
  "config": {"gpuTypeId": "NVIDIA GeForce RTX 5090", "gpuCount": 1, "env": [{"key": "TORCH_COMPILE", "value": "0"},
    {"key": "SELF_TEST", "value": "1"}], "allowedCudaVersions": ["12.8"]}
}`

func TestHubTestsRules(t *testing.T) {
	needPrompt := func(in json.RawMessage) error {
		var m map[string]any
		if err := json.Unmarshal(in, &m); err != nil {
			return err
		}
		if _, ok := m["prompt"]; !ok {
			return errors.New("prompt is required")
		}
		return nil
	}
	tests := []struct {
		name      string
		old, new  string
		wantRules []string
		wantText  string
	}{
		{"valid", "", "", nil, ""},
		{"invalid job", `{"prompt": "p"}`, `{"promt": "p"}`, []string{"hub-input"}, "prompt is required"},
		{"timeout in seconds", `600000`, `600`, []string{"hub-schema"}, "milliseconds"},
		{"no name", `"name": "t", `, ``, []string{"hub-schema"}, `"name" is required`},
		{"no tests", `[{"name": "t", "input": {"prompt": "p"}, "timeout": 600000}]`, `[]`, []string{"hub-schema"}, "no tests"},
		{"pool id as gpu", `"NVIDIA GeForce RTX 5090"`, `"ADA_32_PRO"`, []string{"hub-schema"}, "not a pool id"},
		{"no machine", `"gpuTypeId": "NVIDIA GeForce RTX 5090", "gpuCount": 1, `, ``, []string{"hub-schema"}, "gpuTypeId"},
		{"unknown env", `"key": "TORCH_COMPILE"`, `"key": "TORCH_COMPIL"`, []string{"hub-env"}, "not a setting"},
		{"env refused", `"value": "0"`, `"value": "maybe"`, []string{"hub-env"}, "refused"},
		{"no self-test", `,
    {"key": "SELF_TEST", "value": "1"}`, ``, []string{"hub-env"}, "SELF_TEST to 1"},
		{"self-test off", `"key": "SELF_TEST", "value": "1"`, `"key": "SELF_TEST", "value": "false"`, []string{"hub-env"}, "MODEL_MISSING"},
		{"no config", `,
  "config": {"gpuTypeId": "NVIDIA GeForce RTX 5090", "gpuCount": 1, "env": [{"key": "TORCH_COMPILE", "value": "0"},
    {"key": "SELF_TEST", "value": "1"}], "allowedCudaVersions": ["12.8"]}`, ``, []string{"hub-env"}, "SELF_TEST"},
		{"unknown key", `"timeout": 600000`, `"timeout": 600000, "expected": {}`, []string{"hub-schema"}, `unknown key "expected"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := validTests
			if tc.old != "" {
				if !strings.Contains(src, tc.old) {
					t.Fatalf("fixture lacks %q", tc.old)
				}
				src = strings.Replace(src, tc.old, tc.new, 1)
			}
			fs, err := CheckHubTests("tests.json", []byte(src), needPrompt)
			if err != nil {
				t.Fatal(err)
			}
			checkRules(t, fs, tc.wantRules, tc.wantText)
		})
	}
}

func checkRules(t *testing.T, fs []Finding, wantRules []string, wantText string) {
	t.Helper()
	var got []string
	text := ""
	for _, f := range fs {
		got = append(got, f.Rule)
		text += f.String() + "\n"
	}
	slices.Sort(got)
	if !slices.Equal(got, wantRules) {
		t.Errorf("rules %v, want %v\n%s", got, wantRules, text)
	}
	if wantText != "" && !strings.Contains(text, wantText) {
		t.Errorf("findings do not mention %q:\n%s", wantText, text)
	}
}
