package comfy

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// FuzzServerMessages feeds arbitrary server data — websocket messages,
// history outputs and /prompt error bodies — through the client's parsers:
// whatever ComfyUI (or something in its place) sends, the worker must not
// panic, its progress must stay within 0–100 and never go back, and every
// rejected prompt must map to a typed error.
func FuzzServerMessages(f *testing.F) {
	for _, name := range []string{"ws_success.jsonl", "ws_vhs.jsonl", "ws_error.jsonl", "ws_cached.jsonl"} {
		b, err := os.ReadFile(filepath.Join("comfytest", "testdata", "recorded", name))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				f.Add([]byte(line))
			}
		}
	}
	for _, name := range []string{"prompt_unknown_class.json", "prompt_unet_not_in_list.json", "prompt_wan_graph_no_models.json"} {
		if b, err := os.ReadFile(filepath.Join("comfytest", "testdata", "recorded", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"type":"progress","data":{"prompt_id":"p","node":"sampler_high","value":1e308,"max":-1}}`))
	f.Add([]byte(`{"type":"progress_state","data":{"prompt_id":"p","nodes":{"sampler_low":{"value":3,"max":0,"state":"running"}}}}`))
	f.Add([]byte(`{"gifs":[{"filename":"a.mp4","subfolder":"","type":"output","format":"video/h264-mp4"}]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		last := -1
		track := newTracker(map[string]progress.Stage{"sampler_high": progress.SamplingHigh, "sampler_low": progress.SamplingLow,
			"decode": progress.Decoding, "video": progress.EncodingVideo}, 6, 3, func(p progress.Progress) {
			if p.Percent < 0 || p.Percent > 100 || p.Percent < last {
				t.Fatalf("percent %d after %d", p.Percent, last)
			}
			last = p.Percent
		})
		r := &runner{req: RunRequest{PromptID: "p", OutputNode: "video"}, log: slog.New(slog.DiscardHandler),
			track: track, executed: map[string]map[string]json.RawMessage{}}

		var ev event
		if json.Unmarshal(data, &ev) == nil {
			r.handle(ev)
			// The same data as if it were ours, whatever it said.
			ev.Data = []byte(strings.Replace(string(ev.Data), `"prompt_id"`, `"_"`, 1))
			r.handle(event{Type: ev.Type, Data: data})
		}

		var outputs map[string]map[string]json.RawMessage
		if json.Unmarshal(data, &outputs) == nil {
			files := collectOutputs(outputs)
			if v, ok := pickVideo(files, "video"); ok && !v.IsVideo() {
				t.Fatalf("picked a non-video %+v", v)
			}
		}

		for _, status := range []int{200, 400, 500} {
			err := errPrompt(status, data, func(string) []string { return []string{"a.safetensors"} })
			if status != 200 && apperr.As(err) == nil {
				t.Fatalf("status %d body %q: untyped error %v", status, data, err)
			}
		}
	})
}
