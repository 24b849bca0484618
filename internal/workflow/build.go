package workflow

import (
	"fmt"
	"strconv"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// The node ids of the graph. They are fixed, so that identical jobs give
// identical graphs and every job reuses the loaders ComfyUI has cached.
// LoRA nodes are numbered per expert: LoRANode(job.ExpertHigh, 0) is
// "lora_high_0", the first LoRA of the high-noise chain.
const (
	NodeUNetHigh     = "unet_high"      // UNETLoader, high-noise expert
	NodeUNetLow      = "unet_low"       // UNETLoader, low-noise expert
	NodeShiftHigh    = "shift_high"     // ModelSamplingSD3 on the high-noise chain
	NodeShiftLow     = "shift_low"      // ModelSamplingSD3 on the low-noise chain
	NodeCompileHigh  = "compile_high"   // TorchCompileModel (TORCH_COMPILE=1)
	NodeCompileLow   = "compile_low"    // TorchCompileModel (TORCH_COMPILE=1)
	NodeTextEncoder  = "text_encoder"   // CLIPLoader, type wan
	NodePositive     = "prompt"         // CLIPTextEncode of the prompt
	NodeNegative     = "negative"       // CLIPTextEncode of the negative prompt
	NodeVAE          = "vae"            // VAELoader
	NodeImage        = "image"          // LoadImage of the uploaded image
	NodeEndImage     = "end_image"      // LoadImage of the uploaded end frame (end_image only)
	NodeImageToVideo = "image_to_video" // WanImageToVideo, or WanFirstLastFrameToVideo with an end frame
	NodeSamplerHigh  = "sampler_high"   // KSamplerAdvanced, steps [0, split)
	NodeSamplerLow   = "sampler_low"    // KSamplerAdvanced, steps [split, steps)
	NodeDecode       = "decode"         // VAEDecode
	NodeFrames       = "frames"         // CreateVideo (core writer only)
	NodeVideo        = "video"          // VHS_VideoCombine or SaveVideo: the output
)

// LoRANode returns the id of the i-th LoRA (from 0) of an expert's chain.
func LoRANode(e job.Expert, i int) string { return "lora_" + string(e) + "_" + strconv.Itoa(i) }

// Writer names the node(s) that encode the video.
type Writer string

// The writers.
const (
	WriterVHS  Writer = "vhs"  // VHS_VideoCombine, video/h264-mp4
	WriterCore Writer = "core" // CreateVideo + SaveVideo, mp4/h264
)

// Built is a graph ready to submit, with what the ComfyUI client needs to
// follow it.
type Built struct {
	Graph Graph
	// OutputNode is the node whose history output holds the video.
	OutputNode string
	// SamplerHigh and SamplerLow are the two sampler nodes (their progress
	// events are the sampler steps).
	SamplerHigh, SamplerLow string
	// Steps and Split are the sampler plan: steps [0,Split) high, [Split,Steps) low.
	Steps, Split int
	// ImageNode is the LoadImage node and ImageName the input file it loads;
	// the image must be uploaded under that name before submitting.
	ImageNode, ImageName string
	// EndImageNode and EndImageName are the end frame's LoadImage node and
	// file, "" without an end frame.
	EndImageNode, EndImageName string
	// FilenamePrefix is the writer's filename_prefix: "wan22/<job>/wan2_2",
	// giving output/wan22/<job>/wan2_2_00001.mp4 (VHS) or wan2_2_00001_.mp4
	// (SaveVideo).
	FilenamePrefix string
	Writer         Writer
	// ExtraPNGInfo goes into POST /prompt's extra_data.extra_pnginfo. It
	// tells VideoHelperSuite not to write its first-frame PNG next to the
	// video.
	ExtraPNGInfo map[string]any
}

// Stages maps every node id to the progress stage it belongs to, for the
// ComfyUI client's "executing" and "progress" events.
func (b *Built) Stages() map[string]progress.Stage {
	out := make(map[string]progress.Stage, len(b.Graph))
	for id, n := range b.Graph {
		switch {
		case id == b.SamplerHigh:
			out[id] = progress.SamplingHigh
		case id == b.SamplerLow:
			out[id] = progress.SamplingLow
		default:
			out[id] = classStage(n.ClassType)
		}
	}
	return out
}

func classStage(class string) progress.Stage {
	switch class {
	case "CLIPTextEncode", ClassImageToVideo, ClassFirstLastFrame:
		return progress.EncodingPrompt
	case "KSamplerAdvanced":
		return progress.SamplingHigh
	case "VAEDecode":
		return progress.Decoding
	case "VHS_VideoCombine", "CreateVideo", "SaveVideo":
		return progress.EncodingVideo
	}
	// Loaders and the model patches after them (LoRA, shift, compile).
	return progress.LoadingModels
}

// Output names the file layout of the writer.
const (
	// OutputSubfolder is the folder under ComfyUI's output directory that
	// holds one folder per job.
	OutputSubfolder = "wan22"
	// OutputBaseName is the base of the video's file name.
	OutputBaseName = "wan2_2"
)

// Build turns a validated job into the graph that runs it. The image is
// loaded from j.UploadName(). It fails with NODE_MISSING when the profile
// asks for a node the server lacks, and INVALID_INPUT when the job breaks a
// rule of the graph (which a job from job.Parse never does).
func Build(j *job.Job, p Profile, caps Capabilities) (*Built, error) {
	return build(j, j.UploadName(), p, caps)
}

// The conditioning node classes.
const (
	ClassImageToVideo   = "WanImageToVideo"
	ClassFirstLastFrame = "WanFirstLastFrameToVideo"
)

// The warm-up run: the smallest run of the same graph. WarmupWidth ×
// WarmupHeight is the size of the image Warmup's graph expects.
const (
	WarmupWidth  = 64
	WarmupHeight = 64
	WarmupLength = 5 // frames (4k+1)
	WarmupSteps  = 2 // one step on each expert
	WarmupJobID  = "warmup"
)

// Warmup returns the warm-up graph: the job graph with the same loader nodes
// (same ids, same files, same LoRA chain and shift) at WarmupWidth ×
// WarmupHeight, WarmupLength frames and one sampler step per expert, loading
// imageName. Running it loads every model; since ComfyUI keys its cache by
// the loaders' inputs, the first real job finds them loaded. Options are the
// job defaults (shift, sampler, cfg, negative prompt), so that a default job
// also reuses the shift nodes and the negative prompt's encoding.
func Warmup(p Profile, caps Capabilities, imageName string) (*Built, error) {
	j := &job.Job{
		ID:             WarmupJobID,
		Prompt:         "a still photograph",
		NegativePrompt: job.DefaultNegativePrompt,
		Options: job.Options{
			Width: WarmupWidth, Height: WarmupHeight, Fit: job.DefaultFit, Length: WarmupLength,
			Steps: WarmupSteps, SplitStep: WarmupSteps / 2, CFG: job.DefaultCFG, Shift: job.DefaultShift,
			Sampler: job.DefaultSampler, Scheduler: job.DefaultScheduler, FrameRate: job.DefaultFrameRate,
			CRF: job.DefaultCRF, Output: job.DefaultOutput,
		},
	}
	return build(j, imageName, p, caps)
}

func build(j *job.Job, imageName string, p Profile, caps Capabilities) (*Built, error) {
	o := j.Options
	endName := ""
	if j.EndImage != nil {
		endName = j.EndUploadName()
	}
	if err := checkJob(j, imageName); err != nil {
		return nil, err
	}
	if p.TorchCompile && !caps.TorchCompile {
		return nil, &apperr.Error{Code: apperr.NodeMissing, NodeType: ClassTorchCompile,
			Message: "TORCH_COMPILE=1 asks for the TorchCompileModel node, which this ComfyUI does not have",
			Hint:    "set TORCH_COMPILE=0, or use a ComfyUI that has comfy_extras/nodes_torch_compile.py (v0.3.64 has it)"}
	}

	g := Graph{}
	add := func(id, class, title string, inputs map[string]any) {
		g[id] = Node{ClassType: class, Inputs: inputs, Meta: &Meta{Title: title}}
	}

	// Experts: loader → LoRA chain → shift → [compile].
	chains := map[job.Expert]string{}
	// The profile's LoRA (the step-distill LoRA) goes where
	// options.distill_lora says.
	highLoRA, lowLoRA := p.LoRAHigh, p.LoRALow
	if !o.DistillLoRA.OnHigh() {
		highLoRA = ""
	}
	if !o.DistillLoRA.OnLow() {
		lowLoRA = ""
	}
	for _, e := range []struct {
		expert         job.Expert
		name           string
		unet, shift    string
		compile, title string
		lora           string
		strength       float64
	}{
		{job.ExpertHigh, "High-noise", NodeUNetHigh, NodeShiftHigh, NodeCompileHigh, "High-noise expert", highLoRA, p.LoRAStrengthHigh},
		{job.ExpertLow, "Low-noise", NodeUNetLow, NodeShiftLow, NodeCompileLow, "Low-noise expert", lowLoRA, p.LoRAStrengthLow},
	} {
		unet := p.UNetHigh
		if e.expert == job.ExpertLow {
			unet = p.UNetLow
		}
		add(e.unet, "UNETLoader", e.title, map[string]any{"unet_name": unet, "weight_dtype": p.weightDType()})
		model := e.unet
		n := 0
		addLoRA := func(name string, strength float64, what string) {
			id := LoRANode(e.expert, n)
			add(id, "LoraLoaderModelOnly", fmt.Sprintf("%s LoRA %d (%s)", e.name, n, what),
				map[string]any{"model": Link(model, 0), "lora_name": name, "strength_model": strength})
			model, n = id, n+1
		}
		if e.lora != "" {
			addLoRA(e.lora, e.strength, "profile")
		}
		for _, l := range o.LoRAs {
			if appliesTo(l.Expert, e.expert) {
				addLoRA(l.File(), l.Strength, "request")
			}
		}
		add(e.shift, "ModelSamplingSD3", e.name+" shift", map[string]any{"model": Link(model, 0), "shift": o.Shift})
		model = e.shift
		if p.TorchCompile {
			add(e.compile, ClassTorchCompile, e.name+" torch.compile", map[string]any{"model": Link(model, 0), "backend": p.compileBackend()})
			model = e.compile
		}
		chains[e.expert] = model
	}

	// Text, VAE, image, conditioning.
	add(NodeTextEncoder, "CLIPLoader", "Text encoder (UMT5-XXL)", map[string]any{"clip_name": p.TextEncoder, "type": "wan", "device": "default"})
	add(NodePositive, "CLIPTextEncode", "Prompt", map[string]any{"clip": Link(NodeTextEncoder, 0), "text": j.Prompt})
	add(NodeNegative, "CLIPTextEncode", "Negative prompt", map[string]any{"clip": Link(NodeTextEncoder, 0), "text": j.NegativePrompt})
	add(NodeVAE, "VAELoader", "VAE", map[string]any{"vae_name": p.VAE})
	add(NodeImage, "LoadImage", "Input image", map[string]any{"image": imageName})
	cond := map[string]any{
		"positive": Link(NodePositive, 0), "negative": Link(NodeNegative, 0), "vae": Link(NodeVAE, 0),
		"start_image": Link(NodeImage, 0),
		"width":       o.Width, "height": o.Height, "length": o.Length, "batch_size": 1,
	}
	if endName != "" {
		add(NodeEndImage, "LoadImage", "End frame", map[string]any{"image": endName})
		cond["end_image"] = Link(NodeEndImage, 0)
		add(NodeImageToVideo, ClassFirstLastFrame, "First and last frame to video", cond)
	} else {
		add(NodeImageToVideo, ClassImageToVideo, "Image to video", cond)
	}

	// Samplers: high-noise [0, split) with leftover noise, low-noise [split, steps).
	sampler := func(model string, latent []any, cfg float64) map[string]any {
		return map[string]any{
			"model": Link(model, 0), "positive": Link(NodeImageToVideo, 0), "negative": Link(NodeImageToVideo, 1),
			"latent_image": latent, "noise_seed": o.Seed, "steps": o.Steps, "cfg": cfg,
			"sampler_name": o.Sampler, "scheduler": o.Scheduler,
		}
	}
	high := sampler(chains[job.ExpertHigh], Link(NodeImageToVideo, 2), o.HighCFG())
	high["add_noise"], high["start_at_step"], high["end_at_step"], high["return_with_leftover_noise"] = "enable", 0, o.SplitStep, "enable"
	add(NodeSamplerHigh, "KSamplerAdvanced", fmt.Sprintf("Sampler, high-noise (steps 0-%d)", o.SplitStep), high)
	low := sampler(chains[job.ExpertLow], Link(NodeSamplerHigh, 0), o.LowCFG())
	low["add_noise"], low["start_at_step"], low["end_at_step"], low["return_with_leftover_noise"] = "disable", o.SplitStep, o.Steps, "disable"
	add(NodeSamplerLow, "KSamplerAdvanced", fmt.Sprintf("Sampler, low-noise (steps %d-%d)", o.SplitStep, o.Steps), low)
	add(NodeDecode, "VAEDecode", "Decode", map[string]any{"samples": Link(NodeSamplerLow, 0), "vae": Link(NodeVAE, 0)})

	// Writer.
	prefix := OutputSubfolder + "/" + jobDir(j.ID) + "/" + OutputBaseName
	b := &Built{Graph: g, OutputNode: NodeVideo, SamplerHigh: NodeSamplerHigh, SamplerLow: NodeSamplerLow,
		Steps: o.Steps, Split: o.SplitStep, ImageNode: NodeImage, ImageName: imageName, FilenamePrefix: prefix}
	if endName != "" {
		b.EndImageNode, b.EndImageName = NodeEndImage, endName
	}
	if caps.VideoHelperSuite {
		b.Writer = WriterVHS
		add(NodeVideo, ClassVideoCombine, "Video (H.264 MP4)", map[string]any{
			"images": Link(NodeDecode, 0), "frame_rate": o.ModelFrameRate(), "loop_count": 0,
			"filename_prefix": prefix, "format": vhsFormat, "pingpong": false, "save_output": true,
			// The h264-mp4 format's widgets, sent as inputs of the same node.
			"pix_fmt": "yuv420p", "crf": o.CRF, "save_metadata": false, "trim_to_audio": false,
		})
		b.ExtraPNGInfo = map[string]any{"workflow": map[string]any{"extra": map[string]any{"VHS_MetadataImage": false}}}
	} else {
		b.Writer = WriterCore
		add(NodeFrames, "CreateVideo", "Frames to video", map[string]any{"images": Link(NodeDecode, 0), "fps": o.ModelFrameRate()})
		add(NodeVideo, "SaveVideo", "Video (H.264 MP4)", map[string]any{
			"video": Link(NodeFrames, 0), "filename_prefix": prefix, "format": "mp4", "codec": "h264",
		})
	}
	return b, nil
}

// appliesTo reports whether a request LoRA for expert want goes on chain e.
// An empty expert means both (the job default).
func appliesTo(want, e job.Expert) bool {
	return want == e || want == job.ExpertBoth || want == ""
}

// checkJob enforces what the graph itself needs; job.Parse checks all of it
// (and more) already, so this only guards against a hand-built job.
func checkJob(j *job.Job, imageName string) error {
	o := j.Options
	var errs apperr.List
	bad := func(field, format string, args ...any) {
		errs = append(errs, apperr.Field(apperr.InvalidInput, field, fmt.Sprintf(format, args...),
			"see docs/api.md for the valid options"))
	}
	if o.Width < 16 || o.Width%16 != 0 {
		bad("options.width", "width %d is not a positive multiple of 16", o.Width)
	}
	if o.Height < 16 || o.Height%16 != 0 {
		bad("options.height", "height %d is not a positive multiple of 16", o.Height)
	}
	if o.Length < 1 || (o.Length-1)%4 != 0 {
		bad("options.length", "length %d is not 4k+1", o.Length)
	}
	if o.Steps < 2 {
		bad("options.steps", "steps %d is below 2", o.Steps)
	}
	if o.SplitStep < 1 || o.SplitStep >= o.Steps {
		bad("options.split_step", "split_step %d is not within 1…steps-1 (steps %d)", o.SplitStep, o.Steps)
	}
	if o.Sampler == "" || o.Scheduler == "" {
		bad("options.sampler", "sampler and scheduler must be set")
	}
	if !(o.FrameRate > 0) {
		bad("options.frame_rate", "frame_rate %g is not positive", o.FrameRate)
	}
	for i, l := range o.LoRAs {
		switch l.Expert {
		case job.ExpertBoth, job.ExpertHigh, job.ExpertLow, "":
		default:
			bad(fmt.Sprintf("options.loras[%d].expert", i), "expert %q is not both, high or low", l.Expert)
		}
		switch {
		case l.URL != "" && l.File() == "":
			errs = append(errs, apperr.Field(apperr.InvalidInput, fmt.Sprintf("options.loras[%d].url", i),
				"the LoRA at "+job.RedactURL(l.URL)+" is not downloaded yet, so its cache file is not known",
				"the worker downloads it when the job runs; to build the graph beforehand, give its sha256"))
		case l.File() == "":
			bad(fmt.Sprintf("options.loras[%d].name", i), "LoRA name is empty")
		}
	}
	if imageName == "" {
		bad("image", "no image file name")
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// jobDir turns a job id into a folder name: [A-Za-z0-9_-] kept, anything
// else (dots included, so never "..") replaced by '_', at most 96 bytes.
func jobDir(id string) string {
	if id == "" {
		return "job"
	}
	b := []byte(id)
	if len(b) > 96 {
		b = b[:96]
	}
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}
