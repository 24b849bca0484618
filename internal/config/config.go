// Package config reads the worker's configuration once, from flags, the
// environment and defaults (in that order of precedence), into one struct.
//
// Every setting is declared once, in the table returned by settings: its
// environment name, default, meaning and how it is parsed. The same table
// drives flag registration, the redacted view logged at start and shown by
// `doctor`, and docs/configuration.md (kept in step by a golden test).
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration. Zero values are never used: Load fills
// every field from its default.
type Config struct {
	// Logging.
	LogLevel  string // debug, info, warn, error
	LogFormat string // auto, json, text

	// Job limits (the job input contract, DESIGN.md §3).
	MaxPixels              int   // width*height of the video
	MaxFrames              int   // options.length
	MaxSteps               int   // options.steps
	MaxImageBytes          int64 // encoded input image bytes
	MaxImagePixels         int64 // decoded input image pixels, checked from the header
	ImageFetchTimeout      time.Duration
	ImageFetchMaxRedirects int
	AllowPrivateImageURLs  bool
	JobTimeout             time.Duration // per-job deadline when the platform gives none

	// LoRAs given by URL (options.loras[].url).
	MaxLoRABytes         int64 // largest LoRA file downloaded
	LoRACacheBytes       int64 // size cap of the url-cache folder
	LoRAFetchTimeout     time.Duration
	LoRACacheDir         string // the loras folder that holds url-cache/; "" picks the first of MODELS_DIRS
	AllowPrivateLoRAURLs bool
	CivitaiToken         string

	// Model profile (the graph, DESIGN.md §5).
	UNetHigh            string
	UNetLow             string
	UNetWeightDType     string
	VAE                 string
	TextEncoder         string
	LoRAHigh            string // "" disables the step-distill LoRA on the high-noise expert
	LoRALow             string // "" disables it on the low-noise expert
	LoRAStrengthHigh    float64
	LoRAStrengthLow     float64
	TorchCompile        bool
	TorchCompileBackend string
	SelfTest            bool // run on generated tiny model files instead of MODELS_DIRS

	// ComfyUI.
	ComfyURL          string // attach to this server instead of starting one
	ComfyDir          string
	ComfyPython       string
	ComfyStartTimeout time.Duration
	ComfyLogFile      string
	ComfyVRAMMode     string // "", highvram, normalvram, lowvram, novram, gpu-only, cpu
	ComfyAttention    string // "", pytorch, split, quad, sage, flash, xformers-off
	ComfyFast         string // "" off; "all" or a list of optimizations
	ComfyReserveVRAM  float64
	ComfyExtraArgs    string
	ComfyMaxRestarts  int
	ModelsDirs        []string
	ModelsHFCache     []string // Hugging Face hub caches searched for the model files (RunPod's cached models)
	ModelsPreferCache bool     // the HF cache before MODELS_DIRS (else after)
	ModelsPrefetch    bool     // read the model files into the page cache while ComfyUI starts
	HFHubCache        string   // HF_HUB_CACHE, also searched
	HFHome            string   // HF_HOME: <HF_HOME>/hub is also searched
	Warmup            string   // auto, on, off

	// Delivery.
	InlineMaxBytes  int64
	OutputDir       string
	BucketEndpoint  string
	BucketAccessKey string
	BucketSecretKey string
	BucketName      string
	BucketPrefix    string
	BucketRegion    string
	BucketPathStyle bool
	BucketURLExpiry time.Duration
	BucketPublicURL string

	// RunPod (names verbatim from the platform).
	RunPodGetJobURL     string
	RunPodPostOutputURL string
	RunPodPostStreamURL string
	RunPodPingURL       string
	RunPodPingInterval  time.Duration
	RunPodAPIKey        string
	RunPodPodID         string
	RunPodEndpointID    string
	RefreshWorker       bool
	ShutdownGrace       time.Duration

	// Local API.
	APIAddr          string
	APIToken         string
	APIAllowInsecure bool
	APIQueueSize     int
	APIResultTTL     time.Duration
	APIMaxBodyBytes  int64

	// Model tooling.
	HFToken    string
	HFEndpoint string // base URL of the Hugging Face hub (or a mirror)

	// loaded keeps the text and source of every setting as loaded, for the
	// redacted view.
	loaded map[string]Entry
}

// OnRunPod reports whether the worker runs under RunPod Serverless: the
// platform's own switch is the presence of RUNPOD_WEBHOOK_GET_JOB.
func (c *Config) OnRunPod() bool { return c.RunPodGetJobURL != "" }

// WarmupEnabled resolves WARMUP=auto: on under RunPod, off elsewhere.
func (c *Config) WarmupEnabled() bool {
	switch c.Warmup {
	case "on":
		return true
	case "off":
		return false
	}
	return c.OnRunPod()
}

// BucketConfigured reports whether S3-compatible delivery is set up.
func (c *Config) BucketConfigured() bool { return c.BucketEndpoint != "" }

// Setting is one configuration entry of the table.
type Setting struct {
	Name    string // environment variable
	Default string
	Help    string
	Group   string
	Secret  bool // redacted in logs and doctor
	set     func(c *Config, v string) error
}

// Flag is the command-line flag of the setting: lower case, dashes.
func (s Setting) Flag() string { return strings.ToLower(strings.ReplaceAll(s.Name, "_", "-")) }

// Settings returns the table of every setting, in documentation order.
func Settings() []Setting { return settings() }

func settings() []Setting {
	return []Setting{
		{Name: "LOG_LEVEL", Default: "info", Group: "Logging", Help: "debug, info, warn or error", set: oneOf(func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error")},
		{Name: "LOG_FORMAT", Default: "auto", Group: "Logging", Help: "auto (JSON lines when RUNPOD_ENDPOINT_ID is set, else text), json or text", set: oneOf(func(c *Config) *string { return &c.LogFormat }, "auto", "json", "text")},

		{Name: "MAX_PIXELS", Default: "921600", Group: "Job limits", Help: "largest video area, width×height (default 1280×720)", set: intIn(func(c *Config) *int { return &c.MaxPixels }, 256, 1<<26)},
		{Name: "MAX_FRAMES", Default: "121", Group: "Job limits", Help: "largest options.length (frames, 4k+1)", set: intIn(func(c *Config) *int { return &c.MaxFrames }, 5, 100001)},
		{Name: "MAX_STEPS", Default: "40", Group: "Job limits", Help: "largest options.steps", set: intIn(func(c *Config) *int { return &c.MaxSteps }, 2, 10000)},
		{Name: "MAX_IMAGE_BYTES", Default: "25165824", Group: "Job limits", Help: "largest input image, in bytes after base64 decoding or download (default 24 MiB)", set: int64In(func(c *Config) *int64 { return &c.MaxImageBytes }, 1024, 1<<34)},
		{Name: "MAX_IMAGE_PIXELS", Default: "50000000", Group: "Job limits", Help: "largest input image in pixels, read from the header before decoding (guards against decompression bombs)", set: int64In(func(c *Config) *int64 { return &c.MaxImagePixels }, 1, 1<<34)},
		{Name: "IMAGE_FETCH_TIMEOUT", Default: "30s", Group: "Job limits", Help: "time limit for downloading an image given as an http(s) URL", set: duration(func(c *Config) *time.Duration { return &c.ImageFetchTimeout })},
		{Name: "IMAGE_FETCH_MAX_REDIRECTS", Default: "3", Group: "Job limits", Help: "redirects followed when downloading an image URL", set: intIn(func(c *Config) *int { return &c.ImageFetchMaxRedirects }, 0, 20)},
		{Name: "ALLOW_PRIVATE_IMAGE_URLS", Default: "false", Group: "Job limits", Help: "allow image URLs that resolve to loopback, private or link-local addresses (off: public addresses only)", set: boolean(func(c *Config) *bool { return &c.AllowPrivateImageURLs })},
		{Name: "JOB_TIMEOUT", Default: "30m", Group: "Job limits", Help: "deadline for one job, from take to result; on expiry ComfyUI is interrupted and the job fails TIMEOUT", set: duration(func(c *Config) *time.Duration { return &c.JobTimeout })},

		{Name: "MODEL_UNET_HIGH", Default: "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", Group: "Models", Help: "high-noise expert, in diffusion_models (or unet)", set: str(func(c *Config) *string { return &c.UNetHigh })},
		{Name: "MODEL_UNET_LOW", Default: "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors", Group: "Models", Help: "low-noise expert, in diffusion_models (or unet)", set: str(func(c *Config) *string { return &c.UNetLow })},
		{Name: "UNET_WEIGHT_DTYPE", Default: "default", Group: "Models", Help: "UNETLoader weight_dtype: default, fp8_e4m3fn, fp8_e4m3fn_fast or fp8_e5m2", set: oneOf(func(c *Config) *string { return &c.UNetWeightDType }, "default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2")},
		{Name: "MODEL_VAE", Default: "wan_2.1_vae.safetensors", Group: "Models", Help: "VAE, in vae", set: str(func(c *Config) *string { return &c.VAE })},
		{Name: "MODEL_TEXT_ENCODER", Default: "umt5_xxl_fp8_e4m3fn_scaled.safetensors", Group: "Models", Help: "UMT5-XXL text encoder, in text_encoders (or clip)", set: str(func(c *Config) *string { return &c.TextEncoder })},
		{Name: "MODEL_LORA_HIGH", Default: "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors", Group: "Models", Help: "step-distill LoRA on the high-noise expert, in loras; `none` for none", set: optional(func(c *Config) *string { return &c.LoRAHigh })},
		{Name: "MODEL_LORA_LOW", Default: "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors", Group: "Models", Help: "step-distill LoRA on the low-noise expert, in loras; `none` for none", set: optional(func(c *Config) *string { return &c.LoRALow })},
		{Name: "LORA_STRENGTH_HIGH", Default: "1.0", Group: "Models", Help: "strength of MODEL_LORA_HIGH", set: floatIn(func(c *Config) *float64 { return &c.LoRAStrengthHigh }, -4, 4)},
		{Name: "LORA_STRENGTH_LOW", Default: "1.0", Group: "Models", Help: "strength of MODEL_LORA_LOW", set: floatIn(func(c *Config) *float64 { return &c.LoRAStrengthLow }, -4, 4)},
		{Name: "TORCH_COMPILE", Default: "1", Group: "Models", Help: "1 adds TorchCompileModel to both experts (slower first job, faster sampling); 0 leaves it out", set: boolean(func(c *Config) *bool { return &c.TorchCompile })},
		{Name: "TORCH_COMPILE_BACKEND", Default: "inductor", Group: "Models", Help: "TorchCompileModel backend: inductor or cudagraphs", set: oneOf(func(c *Config) *string { return &c.TorchCompileBackend }, "inductor", "cudagraphs")},
		{Name: "SELF_TEST", Default: "false", Group: "Models", Help: "1 writes tiny WAN 2.2 stand-in model files into a temporary folder at start and uses them instead of MODELS_DIRS: jobs return a real (noise) video with self_test: true; for the RunPod Hub test, which has no network volume", set: boolean(func(c *Config) *bool { return &c.SelfTest })},

		{Name: "MAX_LORA_BYTES", Default: "2147483648", Group: "LoRA URLs", Help: "largest LoRA file downloaded for options.loras[].url (default 2 GiB)", set: int64In(func(c *Config) *int64 { return &c.MaxLoRABytes }, 1024, 1<<40)},
		{Name: "LORA_CACHE_BYTES", Default: "21474836480", Group: "LoRA URLs", Help: "size cap of the LoRA URL cache (default 20 GiB); least recently used files are deleted past it", set: int64In(func(c *Config) *int64 { return &c.LoRACacheBytes }, 1024, 1<<50)},
		{Name: "LORA_FETCH_TIMEOUT", Default: "15m", Group: "LoRA URLs", Help: "time limit for downloading one LoRA URL, retries included", set: duration(func(c *Config) *time.Duration { return &c.LoRAFetchTimeout })},
		{Name: "LORA_CACHE_DIR", Default: "", Group: "LoRA URLs", Help: "a loras folder ComfyUI reads; downloaded LoRAs go to its url-cache/ subfolder. Empty: the first loras folder of MODELS_DIRS", set: str(func(c *Config) *string { return &c.LoRACacheDir })},
		{Name: "ALLOW_PRIVATE_LORA_URLS", Default: "false", Group: "LoRA URLs", Help: "allow LoRA URLs that resolve to loopback, private or link-local addresses (off: public addresses only)", set: boolean(func(c *Config) *bool { return &c.AllowPrivateLoRAURLs })},
		{Name: "CIVITAI_TOKEN", Default: "", Group: "LoRA URLs", Help: "Civitai API token, sent (as a bearer token) only to civitai.com for LoRA URLs", Secret: true, set: str(func(c *Config) *string { return &c.CivitaiToken })},

		{Name: "COMFY_URL", Default: "", Group: "ComfyUI", Help: "attach to a running ComfyUI at this URL instead of starting one (no supervision)", set: str(func(c *Config) *string { return &c.ComfyURL })},
		{Name: "COMFYUI_DIR", Default: "/comfyui", Group: "ComfyUI", Help: "ComfyUI checkout the worker starts and supervises", set: str(func(c *Config) *string { return &c.ComfyDir })},
		{Name: "COMFY_PYTHON", Default: "python3", Group: "ComfyUI", Help: "Python interpreter that runs ComfyUI's main.py", set: str(func(c *Config) *string { return &c.ComfyPython })},
		{Name: "COMFY_START_TIMEOUT", Default: "5m", Group: "ComfyUI", Help: "how long to wait for ComfyUI to answer /system_stats after start", set: duration(func(c *Config) *time.Duration { return &c.ComfyStartTimeout })},
		{Name: "COMFY_LOG_FILE", Default: "", Group: "ComfyUI", Help: "file that receives ComfyUI's output (also copied to the worker's log); empty: <COMFYUI_DIR>/comfyui.log", set: str(func(c *Config) *string { return &c.ComfyLogFile })},
		{Name: "COMFY_VRAM_MODE", Default: "", Group: "ComfyUI", Help: "ComfyUI VRAM mode: empty (ComfyUI decides), highvram, normalvram, lowvram, novram, gpu-only or cpu", set: oneOf(func(c *Config) *string { return &c.ComfyVRAMMode }, "", "highvram", "normalvram", "lowvram", "novram", "gpu-only", "cpu")},
		{Name: "COMFY_ATTENTION", Default: "", Group: "ComfyUI", Help: "attention backend: empty (ComfyUI decides), pytorch, split, quad, sage or flash", set: oneOf(func(c *Config) *string { return &c.ComfyAttention }, "", "pytorch", "split", "quad", "sage", "flash")},
		{Name: "COMFY_FAST", Default: "", Group: "ComfyUI", Help: "ComfyUI --fast optimizations: empty for off, 'all', or a space-separated list (e.g. fp16_accumulation)", set: str(func(c *Config) *string { return &c.ComfyFast })},
		{Name: "COMFY_RESERVE_VRAM", Default: "0", Group: "ComfyUI", Help: "GiB of VRAM ComfyUI leaves free (--reserve-vram); 0 for ComfyUI's default", set: floatIn(func(c *Config) *float64 { return &c.ComfyReserveVRAM }, 0, 1024)},
		{Name: "COMFY_EXTRA_ARGS", Default: "", Group: "ComfyUI", Help: "extra arguments for ComfyUI's main.py, split on spaces", set: str(func(c *Config) *string { return &c.ComfyExtraArgs })},
		{Name: "COMFY_MAX_RESTARTS", Default: "3", Group: "ComfyUI", Help: "crashes within 10 minutes after which the worker reports itself unhealthy (and asks RunPod for a fresh worker)", set: intIn(func(c *Config) *int { return &c.ComfyMaxRestarts }, 0, 1000)},
		{Name: "MODELS_DIRS", Default: "/runpod-volume/models:/comfyui/models", Group: "ComfyUI", Help: "model folders, first match wins, separated by ':'; each may use ComfyUI's names (diffusion_models, text_encoders) or the original ones (unet, clip)", set: list(func(c *Config) *[]string { return &c.ModelsDirs })},
		{Name: "MODELS_HF_CACHE", Default: "/runpod-volume/huggingface-cache/hub", Group: "ComfyUI", Help: "Hugging Face hub caches searched for the model files by name (RunPod's cached models are mounted at the default), separated by ':'; found files are wired into ComfyUI after MODELS_DIRS, or before with MODELS_PREFER_CACHE. Empty: no cache search", set: list(func(c *Config) *[]string { return &c.ModelsHFCache })},
		{Name: "MODELS_PREFER_CACHE", Default: "false", Group: "ComfyUI", Help: "read a model file from the Hugging Face cache even when a MODELS_DIRS folder (the network volume) has it too; the cache is local to the host and faster", set: boolean(func(c *Config) *bool { return &c.ModelsPreferCache })},
		{Name: "MODELS_PREFETCH", Default: "true", Group: "ComfyUI", Help: "while ComfyUI starts, read the profile's model files into the page cache (two files at a time, up to half the available memory) so that the warm-up's loaders read memory; a started worker's ComfyUI only", set: boolean(func(c *Config) *bool { return &c.ModelsPrefetch })},
		{Name: "HF_HUB_CACHE", Default: "", Group: "ComfyUI", Help: "Hugging Face's own setting; when set, this hub cache is searched for the model files too (after MODELS_HF_CACHE)", set: str(func(c *Config) *string { return &c.HFHubCache })},
		{Name: "HF_HOME", Default: "", Group: "ComfyUI", Help: "Hugging Face's own setting; when set, <HF_HOME>/hub is searched for the model files too", set: str(func(c *Config) *string { return &c.HFHome })},
		{Name: "WARMUP", Default: "auto", Group: "ComfyUI", Help: "load the models with a minimal run before taking jobs: auto (on under RunPod), on or off", set: oneOf(func(c *Config) *string { return &c.Warmup }, "auto", "on", "off")},

		{Name: "INLINE_MAX_BYTES", Default: "7340032", Group: "Delivery", Help: "largest base64-encoded result returned inline (RunPod /run results are capped near 10 MB; default 7 MiB leaves margin)", set: int64In(func(c *Config) *int64 { return &c.InlineMaxBytes }, 0, 1<<34)},
		{Name: "OUTPUT_DIR", Default: "/runpod-volume/outputs", Group: "Delivery", Help: "where options.output=volume writes <job id>/<file>", set: str(func(c *Config) *string { return &c.OutputDir })},
		{Name: "BUCKET_ENDPOINT_URL", Default: "", Group: "Delivery", Help: "S3-compatible endpoint; when set, output=auto uploads there. A virtual-hosted URL (https://<bucket>.host) also names the bucket", set: str(func(c *Config) *string { return &c.BucketEndpoint })},
		{Name: "BUCKET_ACCESS_KEY_ID", Default: "", Group: "Delivery", Help: "S3 access key", Secret: true, set: str(func(c *Config) *string { return &c.BucketAccessKey })},
		{Name: "BUCKET_SECRET_ACCESS_KEY", Default: "", Group: "Delivery", Help: "S3 secret key", Secret: true, set: str(func(c *Config) *string { return &c.BucketSecretKey })},
		{Name: "BUCKET_NAME", Default: "", Group: "Delivery", Help: "S3 bucket (when BUCKET_ENDPOINT_URL does not name it)", set: str(func(c *Config) *string { return &c.BucketName })},
		{Name: "BUCKET_PREFIX", Default: "wan22", Group: "Delivery", Help: "key prefix; objects are stored at <prefix>/<job id>/<file>", set: str(func(c *Config) *string { return &c.BucketPrefix })},
		{Name: "BUCKET_REGION", Default: "us-east-1", Group: "Delivery", Help: "S3 region used for signing", set: str(func(c *Config) *string { return &c.BucketRegion })},
		{Name: "BUCKET_PATH_STYLE", Default: "true", Group: "Delivery", Help: "path-style addressing (most S3-compatible servers need it)", set: boolean(func(c *Config) *bool { return &c.BucketPathStyle })},
		{Name: "BUCKET_URL_EXPIRY", Default: "168h", Group: "Delivery", Help: "lifetime of the presigned video_url (S3 allows at most 7 days)", set: duration(func(c *Config) *time.Duration { return &c.BucketURLExpiry })},
		{Name: "BUCKET_PUBLIC_URL", Default: "", Group: "Delivery", Help: "when set, video_url is <this>/<key> (a public bucket or CDN) instead of a presigned URL", set: str(func(c *Config) *string { return &c.BucketPublicURL })},

		{Name: "RUNPOD_WEBHOOK_GET_JOB", Default: "", Group: "RunPod", Help: "job-take URL (set by RunPod; its presence means 'on RunPod')", set: str(func(c *Config) *string { return &c.RunPodGetJobURL })},
		{Name: "RUNPOD_WEBHOOK_POST_OUTPUT", Default: "", Group: "RunPod", Help: "job-done URL template (set by RunPod)", set: str(func(c *Config) *string { return &c.RunPodPostOutputURL })},
		{Name: "RUNPOD_WEBHOOK_POST_STREAM", Default: "", Group: "RunPod", Help: "job-stream URL template (set by RunPod)", set: str(func(c *Config) *string { return &c.RunPodPostStreamURL })},
		{Name: "RUNPOD_WEBHOOK_PING", Default: "", Group: "RunPod", Help: "heartbeat URL template (set by RunPod)", set: str(func(c *Config) *string { return &c.RunPodPingURL })},
		{Name: "RUNPOD_PING_INTERVAL", Default: "10000", Group: "RunPod", Help: "heartbeat period in milliseconds", set: millis(func(c *Config) *time.Duration { return &c.RunPodPingInterval })},
		{Name: "RUNPOD_AI_API_KEY", Default: "", Group: "RunPod", Help: "key sent on every call to RunPod (set by RunPod)", Secret: true, set: str(func(c *Config) *string { return &c.RunPodAPIKey })},
		{Name: "RUNPOD_POD_ID", Default: "", Group: "RunPod", Help: "worker id (set by RunPod)", set: str(func(c *Config) *string { return &c.RunPodPodID })},
		{Name: "RUNPOD_ENDPOINT_ID", Default: "", Group: "RunPod", Help: "endpoint id (set by RunPod); switches logs to JSON lines", set: str(func(c *Config) *string { return &c.RunPodEndpointID })},
		{Name: "REFRESH_WORKER", Default: "false", Group: "RunPod", Help: "ask RunPod for a fresh worker after every job (stopPod)", set: boolean(func(c *Config) *bool { return &c.RefreshWorker })},
		{Name: "SHUTDOWN_GRACE", Default: "25s", Group: "RunPod", Help: "on SIGTERM, how long the running job may take to finish before it is interrupted", set: duration(func(c *Config) *time.Duration { return &c.ShutdownGrace })},

		{Name: "API_ADDR", Default: "127.0.0.1:8000", Group: "Local API", Help: "listen address of `serve --api`", set: str(func(c *Config) *string { return &c.APIAddr })},
		{Name: "API_TOKEN", Default: "", Group: "Local API", Help: "bearer token required by the local API; required on a non-loopback address", Secret: true, set: str(func(c *Config) *string { return &c.APIToken })},
		{Name: "API_ALLOW_INSECURE", Default: "false", Group: "Local API", Help: "allow a non-loopback API_ADDR without API_TOKEN", set: boolean(func(c *Config) *bool { return &c.APIAllowInsecure })},
		{Name: "API_QUEUE_SIZE", Default: "16", Group: "Local API", Help: "jobs waiting in the local API's queue before /run answers 429", set: intIn(func(c *Config) *int { return &c.APIQueueSize }, 1, 100000)},
		{Name: "API_RESULT_TTL", Default: "1h", Group: "Local API", Help: "how long finished jobs stay readable at /status", set: duration(func(c *Config) *time.Duration { return &c.APIResultTTL })},
		{Name: "API_MAX_BODY_BYTES", Default: "41943040", Group: "Local API", Help: "largest request body the local API accepts (default 40 MiB)", set: int64In(func(c *Config) *int64 { return &c.APIMaxBodyBytes }, 1024, 1<<34)},

		{Name: "HF_TOKEN", Default: "", Group: "Model tooling", Help: "Hugging Face token for `models pull` and LoRA URLs on huggingface.co (only needed for gated or private files); sent to no other host", Secret: true, set: str(func(c *Config) *string { return &c.HFToken })},
		{Name: "HF_ENDPOINT", Default: "https://huggingface.co", Group: "Model tooling", Help: "Hugging Face base URL for `models pull`; files are fetched from `HF_ENDPOINT/<repo>/resolve/main/<path>` (a mirror, or a local server in tests)", set: str(func(c *Config) *string { return &c.HFEndpoint })},
	}
}

// Default returns the configuration with every default and no environment.
func Default() *Config {
	c, err := Load(nil, func(string) string { return "" })
	if err != nil {
		panic("config: bad default: " + err.Error()) // the table is static; a test covers it
	}
	return c
}

// FromEnv loads the configuration from the process environment, with no flags.
func FromEnv() (*Config, error) { return Load(nil, os.Getenv) }

// Load builds the configuration: flag values set on fs (see Register) beat the
// environment (getenv), which beats the defaults. fs may be nil. Every bad
// value is reported, each naming its variable.
func Load(fs *flag.FlagSet, getenv func(string) string) (*Config, error) {
	set := map[string]string{}
	if fs != nil {
		fs.Visit(func(f *flag.Flag) { set[f.Name] = f.Value.String() })
	}
	c := &Config{loaded: map[string]Entry{}}
	var errs []error
	for _, s := range settings() {
		v, src := s.Default, "default"
		if e := getenv(s.Name); e != "" {
			v, src = e, "environment"
		}
		if f, ok := set[s.Flag()]; ok {
			v, src = f, "flag --"+s.Flag()
		}
		if err := s.set(c, strings.TrimSpace(v)); err != nil {
			shown := v
			if s.Secret {
				shown = "<set>"
			}
			errs = append(errs, fmt.Errorf("%s=%q (from %s): %w", s.Name, shown, src, err))
		}
		c.loaded[s.Name] = Entry{Name: s.Name, Value: strings.TrimSpace(v), Source: src}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if c.ComfyLogFile == "" {
		// Next to the ComfyUI it logs, wherever COMFYUI_DIR points.
		c.ComfyLogFile = filepath.Join(c.ComfyDir, "comfyui.log")
		e := c.loaded["COMFY_LOG_FILE"]
		e.Value = c.ComfyLogFile
		c.loaded["COMFY_LOG_FILE"] = e
	}
	return c, nil
}

// Register adds a flag for every setting to fs (e.g. --max-pixels), so that a
// command accepts any setting on its command line. Flag values are strings;
// Load parses them with the same rules as the environment.
func Register(fs *flag.FlagSet) {
	for _, s := range settings() {
		fs.String(s.Flag(), s.Default, s.Help+" (env "+s.Name+")")
	}
}

// Entry is one line of the redacted view.
type Entry struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"` // default, environment or flag --name
}

// Redacted returns every setting with its effective value, secrets replaced
// by "<set>" or "" so that the view can be logged and shown.
func (c *Config) Redacted() []Entry {
	out := make([]Entry, 0, len(settings()))
	for _, s := range settings() {
		e, ok := c.loaded[s.Name]
		if !ok {
			e = Entry{Name: s.Name, Value: s.Default, Source: "default"}
		}
		if s.Secret && e.Value != "" {
			e.Value = "<set>"
		}
		out = append(out, e)
	}
	return out
}

// LogValue lets a *Config be logged with slog as the redacted view.
func (c *Config) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, e := range c.Redacted() {
		attrs = append(attrs, slog.String(e.Name, e.Value))
	}
	return slog.GroupValue(attrs...)
}

// Markdown renders docs/configuration.md's table.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| name | default | meaning |\n|---|---|---|\n")
	group := ""
	for _, s := range settings() {
		if s.Group != group {
			group = s.Group
			fmt.Fprintf(&b, "| **%s** | | |\n", group)
		}
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, def, strings.ReplaceAll(s.Help, "|", "\\|"))
	}
	return b.String()
}

// --- parsers -------------------------------------------------------------

func str(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

// optional is str where "none" (or an explicitly empty flag) means no value:
// an empty environment variable cannot be told from an unset one.
func optional(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if strings.EqualFold(v, "none") {
			v = ""
		}
		*f(c) = v
		return nil
	}
}

func oneOf(f func(*Config) *string, allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		v = strings.ToLower(v)
		for _, a := range allowed {
			if v == a {
				*f(c) = v
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", quoteList(allowed))
	}
}

func intIn(f func(*Config) *int, lo, hi int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("must be a whole number")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		*f(c) = n
		return nil
	}
}

func int64In(f func(*Config) *int64, lo, hi int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("must be a whole number of bytes")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		*f(c) = n
		return nil
	}
}

func floatIn(f func(*Config) *float64, lo, hi float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return errors.New("must be a number")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %g and %g", lo, hi)
		}
		*f(c) = n
		return nil
	}
}

func boolean(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			*f(c) = true
		case "0", "false", "no", "off", "":
			*f(c) = false
		default:
			return errors.New("must be 1/0, true/false, yes/no or on/off")
		}
		return nil
	}
}

func duration(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("must be a duration such as 30s, 5m or 1h")
		}
		if d <= 0 {
			return errors.New("must be positive")
		}
		*f(c) = d
		return nil
	}
}

func millis(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			return errors.New("must be a whole number of milliseconds, at least 1000")
		}
		*f(c) = time.Duration(n) * time.Millisecond
		return nil
	}
}

func list(f func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, p := range strings.Split(v, ":") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, filepath.Clean(p))
			}
		}
		*f(c) = out
		return nil
	}
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		if x == "" {
			q[i] = `""`
		} else {
			q[i] = x
		}
	}
	sort.Strings(q)
	return strings.Join(q, ", ")
}
