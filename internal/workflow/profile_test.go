package workflow

import (
	"encoding/json"
	"flag"
	"reflect"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/job"
)

func TestProfileFromConfig(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	config.Register(fs)
	env := map[string]string{
		"MODEL_LORA_HIGH": "high.safetensors", "LORA_STRENGTH_HIGH": "3",
		"UNET_WEIGHT_DTYPE": "fp8_e4m3fn_fast", "TORCH_COMPILE": "0", "TORCH_COMPILE_BACKEND": "cudagraphs",
	}
	if err := fs.Parse([]string{"--model-vae=other_vae.safetensors", "--model-lora-low="}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(fs, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	got := ProfileFrom(c)
	want := Profile{
		UNetHigh: "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", UNetLow: "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
		WeightDType: "fp8_e4m3fn_fast", TextEncoder: "umt5_xxl_fp8_e4m3fn_scaled.safetensors", VAE: "other_vae.safetensors",
		LoRAHigh: "high.safetensors", LoRALow: "",
		LoRAStrengthHigh: 3, LoRAStrengthLow: 1, TorchCompile: false, TorchCompileBackend: "cudagraphs",
	}
	if got != want {
		t.Errorf("ProfileFrom =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDefaultProfile(t *testing.T) {
	p := defaultProfile()
	const distill = "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"
	if p.LoRAHigh != distill || p.LoRALow != distill || p.LoRAStrengthHigh != 1 || p.LoRAStrengthLow != 1 {
		t.Errorf("default LoRAs: %+v; want the step-distill LoRA on both experts at 1.0", p)
	}
	if !p.TorchCompile || p.weightDType() != "default" || p.compileBackend() != "inductor" {
		t.Errorf("default profile %+v", p)
	}
}

func TestRequired(t *testing.T) {
	p := defaultProfile()
	base := []ModelRef{
		{FolderDiffusionModels, "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", "UNETLoader", "unet_name"},
		{FolderDiffusionModels, "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors", "UNETLoader", "unet_name"},
		{FolderTextEncoders, "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "CLIPLoader", "clip_name"},
		{FolderVAE, "wan_2.1_vae.safetensors", "VAELoader", "vae_name"},
	}
	distill := ModelRef{FolderLoRAs, "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors", "LoraLoaderModelOnly", "lora_name"}
	if got := p.Required(); !reflect.DeepEqual(got, append(base[:4:4], distill)) {
		t.Errorf("default Required() = %v", got)
	}
	p.LoRAHigh, p.LoRALow = "h.safetensors", "l.safetensors"
	want := append(base[:4:4], ModelRef{FolderLoRAs, "h.safetensors", "LoraLoaderModelOnly", "lora_name"},
		ModelRef{FolderLoRAs, "l.safetensors", "LoraLoaderModelOnly", "lora_name"})
	if got := p.Required(); !reflect.DeepEqual(got, want) {
		t.Errorf("Required() with two LoRAs = %v", got)
	}
	p.LoRAHigh, p.LoRALow = "", ""
	if got := p.Required(); !reflect.DeepEqual(got, base) {
		t.Errorf("Required() without LoRAs = %v", got)
	}
	// Every required model is a loader input of the graph.
	for _, r := range defaultProfile().Required() {
		if modelFolder(r.Node, r.Input) != r.Folder {
			t.Errorf("%+v: the checker would look in %q", r, modelFolder(r.Node, r.Input))
		}
	}
}

func TestRequestModels(t *testing.T) {
	j := defaultJob()
	if got := RequestModels(j); len(got) != 0 {
		t.Errorf("no LoRAs: %v", got)
	}
	j.Options.LoRAs = []job.LoRA{{Name: "b.safetensors", Expert: job.ExpertHigh}, {Name: "a.safetensors"}, {Name: "b.safetensors", Expert: job.ExpertLow}}
	want := []ModelRef{
		{FolderLoRAs, "b.safetensors", "LoraLoaderModelOnly", "lora_name"},
		{FolderLoRAs, "a.safetensors", "LoraLoaderModelOnly", "lora_name"},
	}
	if got := RequestModels(j); !reflect.DeepEqual(got, want) {
		t.Errorf("RequestModels = %v, want %v", got, want)
	}
}

func TestCapabilitiesFrom(t *testing.T) {
	full := recordedObjectInfo(t)
	without := func(drop ...string) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for k, v := range full {
			m[k] = v
		}
		for _, d := range drop {
			delete(m, d)
		}
		return m
	}
	cases := []struct {
		name string
		info map[string]json.RawMessage
		want Capabilities
	}{
		{"recorded server", full, Capabilities{VideoHelperSuite: true, TorchCompile: true}},
		{"no VHS", without(ClassVideoCombine), Capabilities{TorchCompile: true}},
		{"no TorchCompileModel", without(ClassTorchCompile), Capabilities{VideoHelperSuite: true}},
		{"only the two classes", map[string]json.RawMessage{ClassVideoCombine: full[ClassVideoCombine], ClassTorchCompile: full[ClassTorchCompile]},
			Capabilities{VideoHelperSuite: true, TorchCompile: true}},
		{"VHS without ffmpeg formats", map[string]json.RawMessage{
			ClassVideoCombine: json.RawMessage(`{"input":{"required":{"format":[["image/gif","image/webp"],{}]}},"output":["VHS_FILENAMES"],"output_node":true}`)},
			Capabilities{}},
		{"VHS entry unreadable", map[string]json.RawMessage{ClassVideoCombine: json.RawMessage(`[]`)}, Capabilities{}},
		{"nothing", nil, Capabilities{}},
	}
	for _, tc := range cases {
		if got := CapabilitiesFrom(tc.info); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
