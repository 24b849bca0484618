// Package progress describes how far a job has come: the stages of the job
// output contract's progress updates (DESIGN.md §4), and the value that the
// ComfyUI client produces, RunPod forwards and the CLI draws.
//
// The bars (bar.go) are drawn here rather than with
// github.com/schollz/progressbar/v3 because that library draws a single bar
// on a single line (several bars at once, as `models pull` shows, are not
// supported: its issue #39), has no plain-log mode that prints a line only at
// milestones, and takes no clock to test the rate with.
package progress

import "sync"

// Stage is one stage of a job, in the order they happen.
type Stage string

// The stages of the contract.
const (
	Queued          Stage = "queued"
	DownloadingLoRA Stage = "downloading_lora"
	Uploading       Stage = "uploading"
	LoadingModels   Stage = "loading_models"
	EncodingPrompt  Stage = "encoding_prompt"
	SamplingHigh    Stage = "sampling_high"
	SamplingLow     Stage = "sampling_low"
	Decoding        Stage = "decoding"
	EncodingVideo   Stage = "encoding_video"
	Interpolating   Stage = "interpolating" // options.interpolate: raising the frame rate
	Delivering      Stage = "delivering"
)

// Progress is one progress update: `{"stage", "percent", "step", "steps"}`.
// Step and Steps count sampler steps over both experts (1-based step; 0 when
// not sampling).
type Progress struct {
	Stage   Stage `json:"stage"`
	Percent int   `json:"percent"`
	Step    int   `json:"step,omitempty"`
	Steps   int   `json:"steps,omitempty"`
	// Bytes and TotalBytes count a download (downloading_lora); TotalBytes
	// is 0 while the size is not known.
	Bytes      int64 `json:"bytes,omitempty"`
	TotalBytes int64 `json:"total_bytes,omitempty"`
}

// Func receives progress updates. It must not block for long.
type Func func(Progress)

// Nop discards progress.
func Nop(Progress) {}

// Recorder keeps every update it is given, for callers (and tests) that want
// the whole history of a job's progress. It is safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	all []Progress
}

// Add records one update; it is a Func.
func (r *Recorder) Add(p Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, p)
}

// List returns a copy of the updates so far, in order.
func (r *Recorder) List() []Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Progress(nil), r.all...)
}

// Stages returns the stages the updates went through, each run of equal
// stages once.
func (r *Recorder) Stages() []Stage {
	var out []Stage
	for _, p := range r.List() {
		if len(out) == 0 || out[len(out)-1] != p.Stage {
			out = append(out, p.Stage)
		}
	}
	return out
}
