package job

// DefaultNegativePrompt is WAN's standard negative prompt (Wan's
// sample_neg_prompt, also the default of the official ComfyUI WAN 2.2
// templates). It is used when a job gives no negative_prompt. At cfg 1.0 the
// sampler does not evaluate it, but the graph still encodes it.
const DefaultNegativePrompt = "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"

// Samplers returns the sampler names KSamplerAdvanced accepts in the pinned
// ComfyUI (v0.3.64: comfy/samplers.py KSAMPLER_NAMES + ddim, uni_pc,
// uni_pc_bh2), in ComfyUI's order. The result is a fresh slice.
func Samplers() []string {
	return []string{
		"euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
		"dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive",
		"dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu",
		"dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
		"dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu",
		"ddpm", "lcm", "ipndm", "ipndm_v", "deis",
		"res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp",
		"gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3",
		"sa_solver", "sa_solver_pece",
		"ddim", "uni_pc", "uni_pc_bh2",
	}
}

// Schedulers returns the scheduler names KSamplerAdvanced accepts in the
// pinned ComfyUI (v0.3.64: comfy/samplers.py SCHEDULER_HANDLERS), in
// ComfyUI's order. The result is a fresh slice.
func Schedulers() []string {
	return []string{"simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
		"linear_quadratic", "kl_optimal"}
}

// LoRAExtensions returns the file extensions ComfyUI lists in its loras
// folder (folder_paths.supported_pt_extensions), compared case-insensitively.
func LoRAExtensions() []string {
	return []string{".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl"}
}

// The defaults and fixed bounds of the job input contract (DESIGN.md §3).
// Bounds that depend on the server (MAX_PIXELS, MAX_FRAMES, MAX_STEPS and the
// image limits) are in Limits.
const (
	DefaultFit       = FitCrop
	DefaultLength    = 81
	DefaultSteps     = 6
	DefaultCFG       = 1.0
	DefaultShift     = 8.0
	DefaultSampler   = "euler"
	DefaultScheduler = "simple"
	DefaultFrameRate = 16.0
	DefaultCRF       = 19
	DefaultOutput    = OutputAuto
	DefaultLoRAPower = 1.0
	DefaultExpert    = ExpertBoth

	// MaxPromptChars bounds prompt and negative_prompt, in characters.
	MaxPromptChars = 4000
	// MaxLoRAs is the most request LoRAs a job may add.
	MaxLoRAs = 4
	// SizeStep is the grid width and height snap to.
	SizeStep = 16
	// MaxSide is the largest width or height ComfyUI accepts (MAX_RESOLUTION).
	MaxSide = 16384
	// TargetArea is the area a size derived from the image aims at (832×832).
	TargetArea = 832 * 832
)
