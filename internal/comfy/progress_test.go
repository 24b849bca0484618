package comfy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/progress"
)

func TestTracker(t *testing.T) {
	stages := map[string]progress.Stage{
		"unet": progress.LoadingModels, "clip": progress.LoadingModels,
		"pos": progress.EncodingPrompt, "i2v": progress.EncodingPrompt,
		"high": progress.SamplingHigh, "low": progress.SamplingLow,
		"decode": progress.Decoding, "video": progress.EncodingVideo,
	}
	type step func(tr *tracker)
	exec := func(n string) step { return func(tr *tracker) { tr.executing(n) } }
	prog := func(n string, v, m float64) step { return func(tr *tracker) { tr.nodeProgress(n, v, m) } }
	for _, tc := range []struct {
		name         string
		steps, split int
		events       []step
		want         string // stage:percent[:step] of every update
	}{
		{
			name: "full run, 6 steps split 3", steps: 6, split: 3,
			events: []step{func(tr *tracker) { tr.started() }, exec("unet"), exec("clip"), exec("pos"), exec("i2v"),
				exec("high"), prog("high", 1, 3), prog("high", 2, 3), prog("high", 3, 3),
				exec("low"), prog("low", 1, 3), prog("low", 2, 3), prog("low", 3, 3),
				exec("decode"), exec("video"), prog("video", 40, 81), prog("video", 81, 81), func(tr *tracker) { tr.complete() }},
			want: "loading_models:0 loading_models:5 encoding_prompt:10 encoding_prompt:12 sampling_high:15:0 sampling_high:26:1 " +
				"sampling_high:38:2 sampling_high:50:3 sampling_low:50:3 sampling_low:61:4 sampling_low:73:5 sampling_low:85:6 " +
				"decoding:85 encoding_video:93 encoding_video:95 encoding_video:99",
		},
		{
			name: "low sampler steps count after the split", steps: 8, split: 2,
			events: []step{exec("low"), prog("low", 1, 6)},
			want:   "sampling_low:32:2 sampling_low:41:3",
		},
		{
			name: "no step plan: halves by node", steps: 0, split: 0,
			events: []step{exec("high"), prog("high", 5, 10), exec("low"), prog("low", 5, 10)},
			want:   "sampling_high:15 sampling_high:32 sampling_low:50 sampling_low:67",
		},
		{
			name: "percent and stage never go back (a loader after sampling)", steps: 4, split: 2,
			events: []step{exec("high"), prog("high", 2, 2), exec("unet"), exec("low"), prog("low", 1, 2)},
			want:   "sampling_high:15:0 sampling_high:50:2 sampling_low:50:2 sampling_low:67:3",
		},
		{
			// ComfyUI's order for the production graph: the text encoder's
			// loader and the prompt run before the video model's loaders.
			name: "loader after the prompt stays under encoding_prompt", steps: 6, split: 3,
			events: []step{func(tr *tracker) { tr.started() }, exec("clip"), exec("pos"), exec("unet"), exec("i2v"), exec("high")},
			want:   "loading_models:0 encoding_prompt:10 encoding_prompt:12 sampling_high:15:0",
		},
		{
			name: "unknown nodes change nothing", steps: 4, split: 2,
			events: []step{exec("unet"), exec("lora_x"), prog("lora_x", 1, 1)},
			want:   "loading_models:0",
		},
		{
			name: "cached loaders count as done", steps: 4, split: 2,
			events: []step{func(tr *tracker) { tr.cached([]string{"unet"}) }, exec("clip"), prog("clip", 1, 2)},
			want:   "loading_models:5 loading_models:7",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			tr := newTracker(stages, tc.steps, tc.split, func(p progress.Progress) {
				s := fmt.Sprintf("%s:%d", p.Stage, p.Percent)
				if p.Stage == progress.SamplingHigh || p.Stage == progress.SamplingLow {
					if tc.steps > 0 {
						s += fmt.Sprintf(":%d", p.Step)
					}
				}
				if p.Step > 0 && p.Steps != tc.steps {
					t.Errorf("steps %d, want %d", p.Steps, tc.steps)
				}
				got = append(got, s)
			})
			for _, e := range tc.events {
				e(tr)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("updates\n got %s\nwant %s", g, tc.want)
			}
		})
	}
}

func TestCollectOutputsFromRecordedHistory(t *testing.T) {
	for _, tc := range []struct {
		file, id, writer string
		want             string // node/key/subfolder/filename/type/animated of the picked video
		ok               bool
	}{
		{"history_vhs.json", "job-0005", "3", "3/gifs//wan22_00001.mp4/output/false video/h264-mp4", true},
		{"history_savevideo.json", "job-0004", "3", "3/images/video/wan22_00001_.mp4/output/true ", true},
		{"history_success.json", "job-0001", "2", "", false}, // a PNG only
	} {
		var h map[string]historyEntry
		if err := json.Unmarshal(recorded(t, tc.file), &h); err != nil {
			t.Fatal(err)
		}
		files := collectOutputs(h[tc.id].Outputs)
		if len(files) == 0 {
			t.Fatalf("%s: no files", tc.file)
		}
		v, ok := pickVideo(files, tc.writer)
		if ok != tc.ok {
			t.Fatalf("%s: video found %v", tc.file, ok)
		}
		if !ok {
			continue
		}
		got := fmt.Sprintf("%s/%s/%s/%s/%s/%v %s", v.Node, v.Key, v.Subfolder, v.Filename, v.Type, v.Animated, v.Format)
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.file, got, tc.want)
		}
	}
}

func TestPickVideo(t *testing.T) {
	raw := `{
	  "9":  {"images": [{"filename": "preview_00001_.png", "subfolder": "", "type": "temp"}]},
	  "12": {"videos": [{"filename": "other.webm", "subfolder": "", "type": "output"}], "text": ["hello"]},
	  "16": {"gifs": [{"filename": "w_00001.mp4", "subfolder": "wan22", "type": "temp", "format": "video/h264-mp4", "frame_rate": 16.0}]},
	  "20": {"audio": [{"filename": "a.flac", "subfolder": "", "type": "output"}], "x": {"not": "a list"}}
	}`
	var outputs map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &outputs); err != nil {
		t.Fatal(err)
	}
	files := collectOutputs(outputs)
	var names []string
	for _, f := range files {
		names = append(names, f.Node+":"+f.Filename)
	}
	if got := strings.Join(names, " "); got != "9:preview_00001_.png 12:other.webm 16:w_00001.mp4 20:a.flac" {
		t.Errorf("files %s", got)
	}
	for writer, want := range map[string]string{"16": "w_00001.mp4", "99": "other.webm", "": "other.webm"} {
		v, ok := pickVideo(files, writer)
		if !ok || v.Filename != want {
			t.Errorf("writer %q: picked %+v", writer, v)
		}
	}
	if v, _ := pickVideo(files, "16"); v.FrameRate != 16 || v.Format != "video/h264-mp4" {
		t.Errorf("VHS fields lost: %+v", v)
	}
}
