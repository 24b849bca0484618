// Package worker runs one job end to end — validate, prepare the image, upload,
// build the graph, run it on ComfyUI, fetch and deliver the video — and
// defines the Handler that the RunPod loop, the local API and the CLI drive.
package worker

import (
	"context"
	"encoding/json"

	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// Handler runs jobs. Handle returns the job's output (marshalled as the
// contract's result JSON) or an error that apperr.From maps to the contract's
// error object. Handle must honour ctx: on cancellation it interrupts the job
// and returns promptly with a CANCELLED or TIMEOUT error.
type Handler interface {
	Handle(ctx context.Context, id string, input json.RawMessage, progress progress.Func) (*Result, error)
	// Healthy reports whether the handler can take jobs; false with a reason
	// when the worker should be replaced (ComfyUI keeps crashing), which the
	// RunPod loop turns into stopPod/refresh.
	Healthy() (bool, string)
}

// Result is the job output contract (DESIGN.md §4). The first four fields are
// the original spec's.
type Result struct {
	Video      Base64 `json:"video,omitempty"`
	Filename   string `json:"filename"`
	PromptID   string `json:"prompt_id"`
	FilesCount int    `json:"files_count"`

	VideoURL  string  `json:"video_url,omitempty"`
	VideoPath string  `json:"video_path,omitempty"`
	MimeType  string  `json:"mime_type"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Frames    int     `json:"frames"`
	FrameRate float64 `json:"frame_rate"`
	DurationS float64 `json:"duration_s"`
	Seed      uint64  `json:"seed"`
	SizeBytes int64   `json:"size_bytes"`
	SHA256    string  `json:"sha256"`

	LastFrame     string `json:"last_frame,omitempty"`
	LastFrameURL  string `json:"last_frame_url,omitempty"`
	LastFramePath string `json:"last_frame_path,omitempty"`

	// Preset and Options echo the preset and the effective options the job
	// ran with (every default filled in).
	Preset  job.Preset   `json:"preset,omitempty"`
	Options *job.Options `json:"options,omitempty"`

	// SelfTest marks a job run on the generated stand-in models of
	// SELF_TEST=1: the video is noise.
	SelfTest bool `json:"self_test,omitempty"`

	Timings Timings `json:"timings_ms"`
}

// Timings are the per-stage durations in milliseconds.
type Timings struct {
	Validate  int64 `json:"validate"`
	Upload    int64 `json:"upload"`
	Queue     int64 `json:"queue"`
	Inference int64 `json:"inference"`
	Fetch     int64 `json:"fetch"`
	Deliver   int64 `json:"deliver"`
	Total     int64 `json:"total"`
}

// Base64 is base64 text kept as bytes: an inline video's text is megabytes,
// written in place by the delivery and spliced into the result's JSON
// (Result.JSONParts) without being copied or scanned again.
type Base64 []byte

// MarshalJSON encodes the text as a JSON string (base64 needs no escaping).
func (b Base64) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, len(b)+2)
	out = append(out, '"')
	out = append(out, b...)
	return append(out, '"'), nil
}

// JSONParts encodes the result as pieces of JSON text to send one after the
// other. An inline video is by far the largest part of a result, so its
// base64 is a piece of its own, passed through as it is (never copied or run
// through the JSON encoder); the other fields are encoded as usual.
func (r *Result) JSONParts() ([][]byte, error) {
	meta := *r
	meta.Video = nil
	b, err := json.Marshal(&meta)
	if err != nil {
		return nil, err
	}
	if len(r.Video) == 0 {
		return [][]byte{b}, nil
	}
	// b is {"filename":...}: its '{' becomes the video's closing quote and comma.
	b[0] = ','
	return [][]byte{[]byte(`{"video":"`), r.Video, append([]byte{'"'}, b...)}, nil
}
