package workflow

import (
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/job"
)

// The ComfyUI model folders the graph loads from (names as GET /models and
// folder_paths use them; "unet" and "clip" are legacy aliases of the first two).
const (
	FolderDiffusionModels = "diffusion_models"
	FolderTextEncoders    = "text_encoders"
	FolderVAE             = "vae"
	FolderLoRAs           = "loras"
)

// Profile is the model side of the graph: which files the loaders load and
// how. It comes from configuration (ProfileFrom); jobs cannot change it,
// except by adding LoRAs.
type Profile struct {
	UNetHigh    string // high-noise expert, in diffusion_models
	UNetLow     string // low-noise expert, in diffusion_models
	WeightDType string // UNETLoader weight_dtype; "" means "default"
	TextEncoder string // UMT5-XXL, in text_encoders (CLIPLoader type "wan")
	VAE         string // in vae

	// LoRAHigh and LoRALow are the LoRAs every job gets on the high- and
	// low-noise expert (the step-distill LoRA by default); "" for none.
	LoRAHigh         string
	LoRALow          string
	LoRAStrengthHigh float64
	LoRAStrengthLow  float64

	// TorchCompile adds TorchCompileModel to both experts, with this backend
	// ("" means "inductor").
	TorchCompile        bool
	TorchCompileBackend string
}

// ProfileFrom takes the profile from the configuration.
func ProfileFrom(c *config.Config) Profile {
	return Profile{
		UNetHigh:            c.UNetHigh,
		UNetLow:             c.UNetLow,
		WeightDType:         c.UNetWeightDType,
		TextEncoder:         c.TextEncoder,
		VAE:                 c.VAE,
		LoRAHigh:            c.LoRAHigh,
		LoRALow:             c.LoRALow,
		LoRAStrengthHigh:    c.LoRAStrengthHigh,
		LoRAStrengthLow:     c.LoRAStrengthLow,
		TorchCompile:        c.TorchCompile,
		TorchCompileBackend: c.TorchCompileBackend,
	}
}

func (p Profile) weightDType() string {
	if p.WeightDType == "" {
		return "default"
	}
	return p.WeightDType
}

func (p Profile) compileBackend() string {
	if p.TorchCompileBackend == "" {
		return "inductor"
	}
	return p.TorchCompileBackend
}

// ModelRef is one model file the graph needs: the folder ComfyUI looks in,
// the file name as ComfyUI lists it (relative, "/"-separated), and the loader
// node class and input that name it. It is what the start-up check compares
// against the server's lists (GET /object_info/<Node> or /models/<Folder>).
type ModelRef struct {
	Folder string `json:"folder"`
	Name   string `json:"name"`
	Node   string `json:"node"`
	Input  string `json:"input"`
}

// Required lists every model file the profile loads, each once, in a fixed
// order: experts, text encoder, VAE, LoRAs.
func (p Profile) Required() []ModelRef {
	refs := []ModelRef{
		{Folder: FolderDiffusionModels, Name: p.UNetHigh, Node: "UNETLoader", Input: "unet_name"},
		{Folder: FolderDiffusionModels, Name: p.UNetLow, Node: "UNETLoader", Input: "unet_name"},
		{Folder: FolderTextEncoders, Name: p.TextEncoder, Node: "CLIPLoader", Input: "clip_name"},
		{Folder: FolderVAE, Name: p.VAE, Node: "VAELoader", Input: "vae_name"},
	}
	if p.LoRAHigh != "" {
		refs = append(refs, loraRef(p.LoRAHigh))
	}
	if p.LoRALow != "" {
		refs = append(refs, loraRef(p.LoRALow))
	}
	return dedupe(refs)
}

// RequestModels lists the model files a job adds to the profile's (its
// LoRAs), each once, in request order.
func RequestModels(j *job.Job) []ModelRef {
	var refs []ModelRef
	for _, l := range j.Options.LoRAs {
		refs = append(refs, loraRef(l.File()))
	}
	return dedupe(refs)
}

func loraRef(name string) ModelRef {
	return ModelRef{Folder: FolderLoRAs, Name: name, Node: "LoraLoaderModelOnly", Input: "lora_name"}
}

func dedupe(refs []ModelRef) []ModelRef {
	seen := map[ModelRef]bool{}
	out := refs[:0]
	for _, r := range refs {
		if r.Name == "" || seen[r] {
			continue
		}
		seen[r] = true
		out = append(out, r)
	}
	return out
}

// ModelFolder returns the model folder a loader's input names a file in (as
// ComfyUI's loaders list them), and false when the input is not a model file
// name. The checker, the ComfyUI client's error mapping and the fake ComfyUI
// all use it.
func ModelFolder(class, input string) (string, bool) {
	switch class + "." + input {
	case "UNETLoader.unet_name":
		return FolderDiffusionModels, true
	case "CLIPLoader.clip_name", "DualCLIPLoader.clip_name1", "DualCLIPLoader.clip_name2":
		return FolderTextEncoders, true
	case "VAELoader.vae_name":
		return FolderVAE, true
	case "LoraLoaderModelOnly.lora_name", "LoraLoader.lora_name":
		return FolderLoRAs, true
	case "CheckpointLoaderSimple.ckpt_name":
		return "checkpoints", true
	case "CLIPVisionLoader.clip_name":
		return "clip_vision", true
	}
	return "", false
}

// modelFolder is ModelFolder's folder, "" when the input names no model.
func modelFolder(class, input string) string {
	f, _ := ModelFolder(class, input)
	return f
}
