// Package models knows the model files the worker needs: where they come
// from (a manifest of Hugging Face files with sizes and SHA256 sums), where
// they belong on disk in either folder layout, whether they are present, and
// how to download them: resumable ranged HTTP downloads with retries, stall
// detection, a streaming checksum and an atomic rename into place.
//
// The package reports progress as data (Event) and knows nothing about
// terminals; the command line draws it.
package models

import (
	"path"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
)

// File is one entry of the manifest: a file on Hugging Face, its size and
// checksum, and where ComfyUI expects it.
type File struct {
	// Name is the file's name as ComfyUI lists it in its folder in the default
	// layout, "/"-separated (e.g. "wan/x.safetensors" for loras/wan/x).
	Name string `json:"name"`
	// Folder is ComfyUI's folder name: diffusion_models, text_encoders, vae
	// or loras.
	Folder string `json:"folder"`
	// Repo and Path locate the file on Hugging Face:
	// <endpoint>/<Repo>/resolve/main/<Path>.
	Repo string `json:"repo"`
	Path string `json:"path"`
	// Size is the exact size in bytes; 0 when no exact size is published, in
	// which case the file is checked by its SHA256 only.
	Size int64 `json:"size,omitempty"`
	// ApproxSize is the published approximate size when Size is 0; it is used
	// for the disk-space estimate only.
	ApproxSize int64 `json:"approx_size,omitempty"`
	// SHA256 is the lower-case hex checksum.
	SHA256 string `json:"sha256"`
}

// EstimatedSize returns Size, or ApproxSize when the exact size is unknown.
func (f File) EstimatedSize() int64 {
	if f.Size > 0 {
		return f.Size
	}
	return f.ApproxSize
}

// Manifest is a set of known files.
type Manifest []File

// DefaultManifest returns the files the worker knows how to fetch: the
// default model profile (the original spec's five files) and the
// WAN 2.2 Lightning 4-step LoRAs that ComfyUI's own template uses. Sizes and
// checksums come from the Hugging Face file pages; see docs/models.md.
func DefaultManifest() Manifest {
	const (
		comfy22 = "Comfy-Org/Wan_2.2_ComfyUI_Repackaged"
		comfy21 = "Comfy-Org/Wan_2.1_ComfyUI_repackaged"
		kijai   = "Kijai/WanVideo_comfy"
	)
	return Manifest{
		{Name: "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", Folder: FolderDiffusionModels, Repo: comfy22,
			Path: "split_files/diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
			Size: 14_294_742_832, SHA256: "6122e79d55e0f235698d11d657f3b196c5273c830da00b2b013c5a048d5e6a42"},
		{Name: "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors", Folder: FolderDiffusionModels, Repo: comfy22,
			Path: "split_files/diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
			Size: 14_294_742_832, SHA256: "5471a457b6ac404202a5fbe6c11595a3d5641fc766b00f38763f72303fffc21e"},
		{Name: "umt5_xxl_fp8_e4m3fn_scaled.safetensors", Folder: FolderTextEncoders, Repo: comfy21,
			Path: "split_files/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
			Size: 6_735_906_897, SHA256: "c3355d30191f1f066b26d93fba017ae9809dce6c627dda5f6a66eaa651204f68"},
		{Name: "wan_2.1_vae.safetensors", Folder: FolderVAE, Repo: comfy22,
			Path: "split_files/vae/wan_2.1_vae.safetensors",
			Size: 253_815_318, SHA256: "2fc39d31359a4b0a64f55876d8ff7fa8d780956ae2cb13463b0223e15148976b"},
		{Name: "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors", Folder: FolderLoRAs, Repo: kijai,
			Path:       "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors",
			ApproxSize: 317_000_000, SHA256: "914fafa5dded72e6c470d6f764b97fe4d71567dae7cc01d1181b310efd5c37a6"},
		{Name: "wan/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors", Folder: FolderLoRAs, Repo: comfy22,
			Path: "split_files/loras/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors",
			Size: 1_226_977_424, SHA256: "d176c808d6fc461999b68e321efcb7501b20b8c3797523ed0df14f7d1deff11e"},
		{Name: "wan/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors", Folder: FolderLoRAs, Repo: comfy22,
			Path: "split_files/loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors",
			Size: 1_226_977_424, SHA256: "024f21de095bc8fad9809ded3e9e49a2e170dcf27075da8145ba7d60d8aab7f9"},
	}
}

// Lookup finds the manifest entry for a file that configuration names in a
// folder. The match is on the folder (legacy names unet and clip accepted)
// and the file's base name, so "x.safetensors" and "wan/x.safetensors" in
// loras are the same download; the configured name still decides where the
// file goes.
func (m Manifest) Lookup(folder, name string) (File, bool) {
	folder = modelpaths.Canonical(folder)
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	for _, f := range m {
		if f.Folder == folder && path.Base(f.Name) == base {
			return f, true
		}
	}
	return File{}, false
}

// The ComfyUI folders the manifest's files go in.
const (
	FolderDiffusionModels = "diffusion_models"
	FolderTextEncoders    = "text_encoders"
	FolderVAE             = "vae"
	FolderLoRAs           = "loras"
)

// Layout is a way of naming the folders inside a models folder.
type Layout string

// The two layouts ComfyUI reads: its current names, and the original spec's
// (unet for diffusion_models, clip for text_encoders); and the layout of a
// Hugging Face repo of one's own, as Comfy-Org's repackaged repos have it
// (split_files/<folder>/<name>), which the worker finds in RunPod's model cache.
const (
	LayoutComfy    Layout = "comfy"
	LayoutOriginal Layout = "original"
	LayoutHF       Layout = "hf"
)

// Dir returns the directory name of a ComfyUI folder in the layout.
func (l Layout) Dir(folder string) string {
	folder = modelpaths.Canonical(folder)
	if l == LayoutHF {
		return "split_files/" + folder
	}
	if l == LayoutOriginal {
		switch folder {
		case FolderDiffusionModels:
			return "unet"
		case FolderTextEncoders:
			return "clip"
		}
	}
	return folder
}
