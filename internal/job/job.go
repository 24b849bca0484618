// Package job is the job input contract (DESIGN.md §3): strict parsing of a
// RunPod job's input, defaults, limits, and the preparation of the input image
// (decode, orient, flatten, resize to exactly the video size, PNG).
package job

// Fit says how the image is brought to the video's width×height.
type Fit string

// The fit modes.
const (
	FitCrop    Fit = "crop"    // scale to cover, center crop (what WanImageToVideo does itself)
	FitPad     Fit = "pad"     // scale to fit, letterbox with black
	FitStretch Fit = "stretch" // scale each axis independently
)

// Expert names the expert(s) a LoRA applies to.
type Expert string

// The experts.
const (
	ExpertBoth Expert = "both"
	ExpertHigh Expert = "high"
	ExpertLow  Expert = "low"
)

// Output says where the video goes.
type Output string

// The output modes.
const (
	OutputAuto   Output = "auto"   // S3 if configured, else inline if small enough, else OUTPUT_TOO_LARGE
	OutputBase64 Output = "base64" // inline in the result
	OutputS3     Output = "s3"     // S3-compatible bucket, presigned URL
	OutputVolume Output = "volume" // file under OUTPUT_DIR
)

// LoRA is one request LoRA, appended to the chain of the expert(s) it names.
// It is either a file in the loras folder (Name) or a file downloaded from
// URL into the LoRA URL cache (see File).
type LoRA struct {
	Name string `json:"name,omitempty"`
	URL  string `json:"url,omitempty"`
	// SHA256 is the file's checksum for a URL LoRA: the one the job gave
	// (verified after the download), or the one the download found.
	SHA256   string  `json:"sha256,omitempty"`
	Strength float64 `json:"strength"`
	Expert   Expert  `json:"expert"`
}

// Options are the normalized options: every field filled, every rule checked.
type Options struct {
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Fit       Fit     `json:"fit"`
	Length    int     `json:"length"`
	Steps     int     `json:"steps"`
	SplitStep int     `json:"split_step"`
	CFG       float64 `json:"cfg"`
	Shift     float64 `json:"shift"`
	Sampler   string  `json:"sampler"`
	Scheduler string  `json:"scheduler"`
	FrameRate float64 `json:"frame_rate"`
	Seed      uint64  `json:"seed"`
	LoRAs     []LoRA  `json:"loras"`
	CRF       int     `json:"crf"`
	LastFrame bool    `json:"last_frame"`
	Output    Output  `json:"output"`

	// Resolution is the short side the size came from ("480p", "580p",
	// "720p"), "" when the size came from width/height or the image.
	Resolution Resolution `json:"resolution,omitempty"`
	// AspectRatio is the aspect ratio the size follows: "auto" (the image's)
	// or a fixed ratio such as "16:9".
	AspectRatio AspectRatio `json:"aspect_ratio"`
	// Preset is the preset whose defaults the options started from.
	Preset Preset `json:"preset"`
	// CFGHigh and CFGLow are the guidance of the high- and low-noise
	// samplers (default: CFG).
	CFGHigh float64 `json:"cfg_high"`
	CFGLow  float64 `json:"cfg_low"`
	// DistillLoRA says which experts get the configured step-distill LoRA
	// (LORA_HIGH / LORA_LOW); "" means both.
	DistillLoRA DistillLoRA `json:"distill_lora"`
	// VideoQuality is the named quality CRF came from, "" when none was given.
	VideoQuality VideoQuality `json:"video_quality,omitempty"`
	// Interpolate raises the frame rate after generation; nil for off.
	// FrameRate is then the rate of the delivered (interpolated) video.
	Interpolate *Interpolate `json:"interpolate,omitempty"`
}

// ModelFrameRate is the rate the model's frames are written at: FrameRate,
// or FrameRate/factor when the video is interpolated afterwards.
func (o Options) ModelFrameRate() float64 {
	if o.Interpolate != nil && o.Interpolate.Factor > 1 {
		return o.FrameRate / float64(o.Interpolate.Factor)
	}
	return o.FrameRate
}

// HighCFG and LowCFG are the guidance of each sampler: CFGHigh/CFGLow, or CFG
// when they are unset (a hand-built job).
func (o Options) HighCFG() float64 { return orCFG(o.CFGHigh, o.CFG) }

// LowCFG: see HighCFG.
func (o Options) LowCFG() float64 { return orCFG(o.CFGLow, o.CFG) }

func orCFG(v, cfg float64) float64 {
	if v > 0 {
		return v
	}
	return cfg
}

// ImageInfo describes the input image as received (after EXIF orientation).
type ImageInfo struct {
	Source string `json:"source"` // base64, data_uri or url
	Format string `json:"format"` // jpeg, png or webp
	Width  int    `json:"width"`  // oriented width of the original
	Height int    `json:"height"` // oriented height of the original
	Bytes  int    `json:"bytes"`  // encoded size as received
	// Orientation is the EXIF orientation that was applied (1: none).
	Orientation int `json:"orientation"`
}

// Job is a validated, normalized job. It is what the graph builder, the
// ComfyUI client and delivery consume; nothing in it needs checking again.
type Job struct {
	ID             string    `json:"id"`
	Prompt         string    `json:"prompt"`
	NegativePrompt string    `json:"negative_prompt"`
	Options        Options   `json:"options"`
	Image          ImageInfo `json:"image"`
	// EndImage describes the end frame, when the job gives one.
	EndImage *ImageInfo `json:"end_image,omitempty"`
	// SeedRandom is true when the seed was not given and was drawn at random.
	SeedRandom bool `json:"seed_random"`
	// Prepared is the image to upload: exactly Options.Width×Options.Height,
	// opaque, upright. A PNG (RGB, stored) rendered by the worker, or the
	// input file itself when it already was exactly that (PreparedFormat
	// says which: FormatPNG or FormatJPEG). Not part of the normalized JSON.
	Prepared       []byte `json:"-"`
	PreparedFormat string `json:"-"`
	// EndPNG is the prepared end frame (always a rendered PNG); nil without
	// end_image.
	EndPNG []byte `json:"-"`
}

// UploadName is the file name the image is uploaded to ComfyUI under, derived
// from the job id so that concurrent and repeated jobs never collide and a
// retry of the same job overwrites its own file.
func (j *Job) UploadName() string {
	ext := ".png"
	if j.PreparedFormat == FormatJPEG {
		ext = ".jpg"
	}
	return "wan22_" + safeName(j.ID) + ext
}

// EndUploadName is the file name of the end frame's upload.
func (j *Job) EndUploadName() string { return "wan22_" + safeName(j.ID) + "_end.png" }

// safeName keeps [A-Za-z0-9._-] and replaces anything else with '_'.
func safeName(s string) string {
	if s == "" {
		return "job"
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			b[i] = '_'
		}
	}
	if len(b) > 96 {
		b = b[:96]
	}
	return string(b)
}
