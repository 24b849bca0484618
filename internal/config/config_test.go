package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md's table")

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"MaxPixels", c.MaxPixels, 1280 * 720},
		{"MaxFrames", c.MaxFrames, 121},
		{"MaxSteps", c.MaxSteps, 40},
		{"TorchCompile", c.TorchCompile, true},
		{"UNetHigh", c.UNetHigh, "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"},
		{"LoRALow", c.LoRALow, "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"},
		{"ComfyDir", c.ComfyDir, "/comfyui"},
		{"ComfyLogFile", c.ComfyLogFile, "/comfyui/comfyui.log"},
		{"ModelsDirs", strings.Join(c.ModelsDirs, ","), "/runpod-volume/models,/comfyui/models"},
		{"RunPodPingInterval", c.RunPodPingInterval, 10 * time.Second},
		{"BucketURLExpiry", c.BucketURLExpiry, 7 * 24 * time.Hour},
		{"OnRunPod", c.OnRunPod(), false},
		{"WarmupEnabled", c.WarmupEnabled(), false},
	}
	for _, tc := range checks {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestComfyLogFileFollowsComfyDir: COMFY_LOG_FILE defaults to
// <COMFYUI_DIR>/comfyui.log; a value set wins.
func TestComfyLogFileFollowsComfyDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "/comfyui/comfyui.log"},
		{map[string]string{"COMFYUI_DIR": "/opt/ComfyUI"}, "/opt/ComfyUI/comfyui.log"},
		{map[string]string{"COMFYUI_DIR": "/opt/ComfyUI", "COMFY_LOG_FILE": "/var/log/comfy.log"}, "/var/log/comfy.log"},
	}
	for _, tc := range tests {
		c, err := Load(nil, env(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if c.ComfyLogFile != tc.want {
			t.Errorf("%v: ComfyLogFile = %q, want %q", tc.env, c.ComfyLogFile, tc.want)
		}
		for _, e := range c.Redacted() {
			if e.Name == "COMFY_LOG_FILE" && e.Value != tc.want {
				t.Errorf("%v: shown as %q, want %q", tc.env, e.Value, tc.want)
			}
		}
	}
}

func TestPrecedence(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	Register(fs)
	if err := fs.Parse([]string{"--max-frames", "81"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fs, env(map[string]string{"MAX_FRAMES": "61", "MAX_STEPS": "12"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxFrames != 81 {
		t.Errorf("flag should beat env: MaxFrames = %d", c.MaxFrames)
	}
	if c.MaxSteps != 12 {
		t.Errorf("env should beat default: MaxSteps = %d", c.MaxSteps)
	}
	src := map[string]string{}
	for _, e := range c.Redacted() {
		src[e.Name] = e.Source
	}
	if src["MAX_FRAMES"] != "flag --max-frames" || src["MAX_STEPS"] != "environment" || src["MAX_PIXELS"] != "default" {
		t.Errorf("sources = %v %v %v", src["MAX_FRAMES"], src["MAX_STEPS"], src["MAX_PIXELS"])
	}
}

func TestInvalidValues(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"MAX_FRAMES", "many", "whole number"},
		{"MAX_PIXELS", "1", "between"},
		{"TORCH_COMPILE", "maybe", "1/0"},
		{"JOB_TIMEOUT", "10", "duration"},
		{"COMFY_VRAM_MODE", "turbo", "must be one of"},
		{"RUNPOD_PING_INTERVAL", "10", "milliseconds"},
		{"LORA_STRENGTH_HIGH", "9", "between"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(nil, env(map[string]string{tc.name: tc.value}))
			if err == nil {
				t.Fatalf("%s=%s accepted", tc.name, tc.value)
			}
			if !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name %s and say %q", err, tc.name, tc.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Load(nil, env(map[string]string{"MAX_FRAMES": "x", "MAX_STEPS": "y"}))
	if err == nil || !strings.Contains(err.Error(), "MAX_FRAMES") || !strings.Contains(err.Error(), "MAX_STEPS") {
		t.Fatalf("want both errors, got %v", err)
	}
}

func TestRedacted(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"BUCKET_SECRET_ACCESS_KEY": "s3cr3t", "API_TOKEN": "tok", "RUNPOD_AI_API_KEY": "k"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Redacted() {
		if strings.Contains(e.Value, "s3cr3t") || e.Value == "tok" || e.Value == "k" {
			t.Errorf("%s leaks its value", e.Name)
		}
	}
	if c.BucketSecretKey != "s3cr3t" {
		t.Error("secret not loaded")
	}
	_, err = Load(nil, env(map[string]string{"API_TOKEN": "tok", "MAX_STEPS": "s3cr3t"}))
	if err == nil {
		t.Fatal("want error")
	}
}

func TestSettingsTableIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings() {
		if seen[s.Name] {
			t.Errorf("%s declared twice", s.Name)
		}
		seen[s.Name] = true
		if s.Help == "" || s.Group == "" || s.set == nil {
			t.Errorf("%s lacks help, group or parser", s.Name)
		}
	}
}

// TestDocs keeps docs/configuration.md's table equal to the settings table.
func TestDocs(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- settings:begin -->\n", "<!-- settings:end -->"
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the settings markers", path)
	}
	want := doc[:i+len(begin)] + Markdown() + doc[j:]
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc != want {
		t.Errorf("%s is out of date with the settings table; run go test ./internal/config -update", path)
	}
}

func TestLoRANone(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"MODEL_LORA_HIGH": "none", "MODEL_LORA_LOW": "NONE"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.LoRAHigh != "" || c.LoRALow != "" {
		t.Errorf("none should disable the LoRAs: %q %q", c.LoRAHigh, c.LoRALow)
	}
	if Default().LoRAHigh == "" {
		t.Error("default LoRA lost")
	}
}
