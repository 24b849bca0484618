package comfy_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/comfy"
	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// checkProgress verifies the updates: percent never goes down, every stage
// of the run appears, sampler steps count over both experts.
func checkProgress(t *testing.T, ps []progress.Progress, steps int) {
	t.Helper()
	if len(ps) == 0 {
		t.Fatal("no progress")
	}
	seen := map[progress.Stage]bool{}
	last, lastStep := -1, 0
	for _, p := range ps {
		if p.Percent < last {
			t.Errorf("percent went down: %d after %d (%v)", p.Percent, last, ps)
		}
		if p.Percent < 0 || p.Percent > 99 {
			t.Errorf("percent %d out of 0..99", p.Percent)
		}
		last = p.Percent
		seen[p.Stage] = true
		if p.Step > 0 {
			if p.Steps != steps || p.Step > steps || p.Step < lastStep {
				t.Errorf("bad step %d/%d after %d", p.Step, p.Steps, lastStep)
			}
			lastStep = p.Step
		}
	}
	for _, s := range []progress.Stage{progress.LoadingModels, progress.EncodingPrompt, progress.SamplingHigh,
		progress.SamplingLow, progress.Decoding, progress.EncodingVideo} {
		if !seen[s] {
			t.Errorf("stage %s never reported (%v)", s, ps)
		}
	}
	if lastStep != steps {
		t.Errorf("last sampler step %d, want %d", lastStep, steps)
	}
	if ps[len(ps)-1].Percent != 99 {
		t.Errorf("final percent %d, want 99", ps[len(ps)-1].Percent)
	}
}

func TestRunWritesRealVideo(t *testing.T) {
	needFFmpeg(t)
	for _, tc := range []struct {
		name        string
		core        bool
		width       int
		height      int
		length      int
		fps         float64
		wantFrames  string
		wantKey     string
		wantSuffix  string
		wantSubdir  string
		wantAnimate bool
	}{
		{"vhs", false, 64, 48, 9, 16, "9", "gifs", "wan2_2_00001.mp4", "wan22/test", false},
		{"savevideo", true, 80, 64, 13, 24, "13", "images", "wan2_2_00001_.mp4", "wan22/test", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fake(t, comfytest.Options{})
			c := client(t, s.URL)
			var log progress.Recorder
			spec := defaultSpec("")
			spec.core, spec.width, spec.height, spec.length, spec.fps = tc.core, tc.width, tc.height, tc.length, tc.fps
			req := request(t, c, "job-"+tc.name, spec, &log)
			out, err := c.Run(testCtx(t), req)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			v := out.Video
			if v.Node != req.OutputNode || v.Key != tc.wantKey || v.Filename != tc.wantSuffix || v.Subfolder != tc.wantSubdir ||
				v.Type != "output" || v.Animated != tc.wantAnimate {
				t.Errorf("video %+v", v)
			}
			if !tc.core && (v.Format != "video/h264-mp4" || v.FrameRate != tc.fps || v.FullPath == "") {
				t.Errorf("VHS fields %+v", v)
			}
			if out.Cached || out.Timings.Execution <= 0 || out.Timings.Queued < 0 {
				t.Errorf("outcome %+v", out)
			}
			// Every node ran, so every node has a wall time, and together they fit in the execution.
			var sum time.Duration
			for id := range req.Stages {
				d, ok := out.Timings.Nodes[id]
				if !ok {
					t.Errorf("node %s has no time: %v", id, out.Timings.Nodes)
				}
				sum += d.Took
			}
			if len(out.Timings.Nodes) < len(req.Stages) || sum > out.Timings.Execution {
				t.Errorf("node times %v (sum %v) for %d nodes, execution %v", out.Timings.Nodes, sum, len(req.Stages), out.Timings.Execution)
			}
			checkProgress(t, log.List(), spec.steps)

			info := probe(t, download(t, c, v))
			if info.Codec != "h264" || info.PixFmt != "yuv420p" || info.Width != tc.width || info.Height != tc.height ||
				info.Frames != tc.wantFrames || fps(info.FrameRate) != tc.fps {
				t.Errorf("ffprobe: %+v", info)
			}
			// VideoHelperSuite was told not to write its first-frame PNG.
			for _, f := range out.Outputs {
				if strings.HasSuffix(f.Filename, ".png") {
					t.Errorf("unexpected PNG output %+v", f)
				}
			}

			if !s.HasHistory(req.PromptID) {
				t.Fatal("no history before Cleanup")
			}
			if err := c.Cleanup(t.Context(), req.PromptID); err != nil {
				t.Fatal(err)
			}
			if s.HasHistory(req.PromptID) {
				t.Error("history still there after Cleanup")
			}
		})
	}
}

func TestRunWithoutFFmpegOutputFails(t *testing.T) {
	s := fake(t, comfytest.Options{FFmpeg: "/nonexistent/ffmpeg"})
	c := client(t, s.URL)
	_, err := c.Run(testCtx(t), request(t, c, "job-noff", defaultSpec(""), nil))
	e := requireCode(t, err, apperr.ExecutionFailed)
	if e.NodeType != "VHS_VideoCombine" || !strings.Contains(e.Hint, "ffmpeg") {
		t.Errorf("error %+v", e)
	}
}

func TestRunCachedResubmission(t *testing.T) {
	s := fake(t, comfytest.Options{Video: []byte("not really a video")})
	c := client(t, s.URL)
	spec := defaultSpec("same.png")
	if _, err := c.Upload(t.Context(), "same.png", bytes.NewReader(comfytest.GradientPNG(64, 64))); err != nil {
		t.Fatal(err)
	}
	g, stages, outNode := wanGraph(spec)
	first, err := c.Run(testCtx(t), comfy.RunRequest{PromptID: "a", Graph: g, Stages: stages, OutputNode: outNode, Steps: 4, Split: 2})
	if err != nil {
		t.Fatal(err)
	}
	var log progress.Recorder
	second, err := c.Run(testCtx(t), comfy.RunRequest{PromptID: "b", Graph: g, Stages: stages, OutputNode: outNode, Steps: 4, Split: 2,
		OnProgress: log.Add})
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || !second.Cached || second.Video.Filename != first.Video.Filename || len(second.CachedNodes) != len(g) {
		t.Errorf("first %+v\nsecond %+v", first, second)
	}
	if ps := log.List(); len(ps) == 0 || ps[len(ps)-1].Percent != 99 {
		t.Errorf("progress of a cached run: %v", ps)
	}
	// A new seed reruns the samplers and everything after them only.
	g["13"].(map[string]any)["inputs"].(map[string]any)["noise_seed"] = 7
	third, err := c.Run(testCtx(t), comfy.RunRequest{PromptID: "c", Graph: g, Stages: stages, OutputNode: outNode, Steps: 4, Split: 2})
	if err != nil {
		t.Fatal(err)
	}
	if third.Cached || third.Video.Filename == first.Video.Filename || len(third.CachedNodes) == 0 {
		t.Errorf("third %+v", third)
	}
}

func TestRunRejectedPrompt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   comfytest.Options
		modify func(*graphSpec)
		upload bool
		code   apperr.Code
		check  func(t *testing.T, e *apperr.Error, err error)
	}{
		{
			name:   "model missing",
			opts:   comfytest.Options{Models: map[string][]string{"diffusion_models": {"wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors", "wan2.2_i2v_high_noise_14B_fp16.safetensors", "other.safetensors"}, "text_encoders": {"umt5_xxl_fp8_e4m3fn_scaled.safetensors"}, "vae": {"wan_2.1_vae.safetensors"}, "loras": {"wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"}}},
			upload: true,
			code:   apperr.ModelMissing,
			check: func(t *testing.T, e *apperr.Error, err error) {
				if e.NodeID != "1" || e.NodeType != "UNETLoader" ||
					!strings.Contains(e.Message, `"wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"`) ||
					!strings.Contains(e.Message, "diffusion_models") ||
					!strings.Contains(e.Message, "closest first: wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors, wan2.2_i2v_high_noise_14B_fp16.safetensors, other") {
					t.Errorf("error %+v", e)
				}
			},
		},
		{
			name:   "everything missing",
			opts:   comfytest.Options{Models: map[string][]string{}},
			upload: true,
			code:   apperr.ModelMissing,
			check: func(t *testing.T, e *apperr.Error, err error) {
				var list apperr.List
				if !errors.As(err, &list) || len(list) != 6 {
					t.Fatalf("want 6 errors (2 unets, 2 loras, clip, vae), got %v", err)
				}
				for _, e := range list {
					if e.Code != apperr.ModelMissing {
						t.Errorf("%v", e)
					}
				}
				if !strings.Contains(list[0].Message, "empty") {
					t.Errorf("first error %v should say the folder is empty", list[0])
				}
			},
		},
		{
			name:   "VideoHelperSuite not installed",
			opts:   comfytest.Options{MissingNodes: []string{"VHS_VideoCombine"}},
			upload: true,
			code:   apperr.NodeMissing,
			check: func(t *testing.T, e *apperr.Error, err error) {
				if e.NodeType != "VHS_VideoCombine" || e.NodeID != "16" || !strings.Contains(e.Message, "ComfyUI-VideoHelperSuite") {
					t.Errorf("error %+v", e)
				}
			},
		},
		{
			name:   "input image not uploaded",
			modify: func(s *graphSpec) { s.image = "never-uploaded.png" },
			upload: true,
			code:   apperr.ExecutionFailed,
			check: func(t *testing.T, e *apperr.Error, err error) {
				if e.NodeType != "LoadImage" || !strings.Contains(e.Message, "never-uploaded.png") {
					t.Errorf("error %+v", e)
				}
			},
		},
		{
			name:   "width below the node's minimum",
			modify: func(s *graphSpec) { s.width = 8 },
			upload: true,
			code:   apperr.InvalidInput,
			check: func(t *testing.T, e *apperr.Error, err error) {
				if e.Field != "options.width" || !strings.Contains(e.Message, "smaller than min of 16") {
					t.Errorf("error %+v", e)
				}
			},
		},
		{
			name:   "sampler not in ComfyUI's list",
			modify: func(s *graphSpec) { s.sampler = "warp_drive" },
			upload: true,
			code:   apperr.InvalidInput,
			check: func(t *testing.T, e *apperr.Error, err error) {
				if e.Field != "options.sampler" || !strings.Contains(e.Message, "warp_drive") {
					t.Errorf("error %+v", e)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fake(t, tc.opts)
			c := client(t, s.URL)
			spec := defaultSpec("")
			if tc.modify != nil {
				tc.modify(&spec)
			}
			req := request(t, c, "job-bad", spec, nil)
			start := time.Now()
			_, err := c.Run(testCtx(t), req)
			e := requireCode(t, err, tc.code)
			tc.check(t, e, err)
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if s.QueueLen() != 0 {
				t.Errorf("queue holds %d prompts", s.QueueLen())
			}
		})
	}
}

// A 200 with node_errors: one output valid (runs), one dropped. The job must
// fail, and the queued prompt must be stopped.
func TestRunPartialNodeErrors(t *testing.T) {
	s := fake(t, comfytest.Options{PauseAt: &comfytest.Point{Class: "KSamplerAdvanced", Step: 1}})
	c := client(t, s.URL)
	req := request(t, c, "job-partial", defaultSpec(""), nil)
	g := req.Graph.(map[string]any)
	g["90"] = node("LoadImage", map[string]any{"image": "missing.png"})
	g["91"] = node("SaveImage", map[string]any{"images": link("90", 0), "filename_prefix": "x"})
	_, err := c.Run(testCtx(t), req)
	e := requireCode(t, err, apperr.ExecutionFailed)
	if e.NodeID != "90" {
		t.Errorf("error %+v", e)
	}
	if len(requests(s, "POST", "/interrupt")) != 1 || len(requests(s, "POST", "/queue")) != 1 {
		t.Errorf("the queued prompt was not stopped: %v", s.Requests())
	}
}

func TestRunExecutionErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   comfytest.Options
		image  []byte
		code   apperr.Code
		node   string
		class  string
		substr string
	}{
		{
			name:   "GPU out of memory in the low-noise sampler",
			opts:   comfytest.Options{Fault: comfytest.Fault{Kind: comfytest.FaultOOM, At: comfytest.Point{Node: "14", Step: 1}}},
			code:   apperr.OutOfMemory,
			node:   "14",
			class:  "KSamplerAdvanced",
			substr: "ran out of memory",
		},
		{
			name:   "exception in the decoder",
			opts:   comfytest.Options{Fault: comfytest.Fault{Kind: comfytest.FaultError, At: comfytest.Point{Class: "VAEDecode"}, ExceptionType: "RuntimeError", ExceptionMessage: "shape mismatch\nsecond line"}},
			code:   apperr.ExecutionFailed,
			node:   "15",
			class:  "VAEDecode",
			substr: "node 15 (VAEDecode) failed: RuntimeError: shape mismatch",
		},
		{
			name:   "input image unreadable",
			image:  []byte("this is not a PNG"),
			code:   apperr.ExecutionFailed,
			node:   "11",
			class:  "LoadImage",
			substr: "PIL.UnidentifiedImageError: cannot identify image file",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fake(t, tc.opts)
			c := client(t, s.URL)
			req := request(t, c, "job-err", defaultSpec(""), nil)
			if tc.image != nil {
				if _, err := c.Upload(t.Context(), "job-err.png", bytes.NewReader(tc.image)); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			_, err := c.Run(testCtx(t), req)
			e := requireCode(t, err, tc.code)
			if e.NodeID != tc.node || e.NodeType != tc.class || !strings.Contains(e.Message, tc.substr) {
				t.Errorf("error %+v", e)
			}
			if strings.Contains(e.Message, "{") || strings.Contains(e.Message, "Traceback") {
				t.Errorf("raw dump in message: %s", e.Message)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			// The run's end was awaited: its history can be cleaned up.
			if !s.HasHistory(req.PromptID) {
				t.Error("returned before ComfyUI wrote the history")
			}
		})
	}
}

func TestRunSurvivesWebsocketTrouble(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts comfytest.Options
	}{
		{"socket dropped mid-run, prompt goes on", comfytest.Options{StepDelay: 10 * time.Millisecond,
			Fault: comfytest.Fault{Kind: comfytest.FaultDropWS, At: comfytest.Point{Node: "13", Step: 2}, WSDownFor: 150 * time.Millisecond}}},
		{"socket dropped, prompt finishes in the gap", comfytest.Options{StepDelay: 10 * time.Millisecond,
			Fault: comfytest.Fault{Kind: comfytest.FaultDropWSFinish, At: comfytest.Point{Node: "13", Step: 1}}}},
		{"socket silently dead", comfytest.Options{
			Fault: comfytest.Fault{Kind: comfytest.FaultMuteWS, At: comfytest.Point{Node: "13", Step: 1}}}},
		{"history written after the end event", comfytest.Options{HistoryDelay: 300 * time.Millisecond}},
		{"slow nodes, keepalive pings", comfytest.Options{NodeDelay: 30 * time.Millisecond, StepDelay: 100 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Video = []byte("video bytes")
			s := fake(t, tc.opts)
			c := client(t, s.URL)
			var log progress.Recorder
			req := request(t, c, "job-ws", defaultSpec(""), &log)
			out, err := c.Run(testCtx(t), req)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if out.Video.Node != "16" || !strings.HasSuffix(out.Video.Filename, ".mp4") {
				t.Errorf("video %+v", out.Video)
			}
			ps := log.List()
			for i := 1; i < len(ps); i++ {
				if ps[i].Percent < ps[i-1].Percent {
					t.Errorf("percent went down: %v", ps)
				}
			}
			if len(ps) == 0 || ps[len(ps)-1].Percent != 99 {
				t.Errorf("progress %v", ps)
			}
		})
	}
}

func TestRunComfyCrash(t *testing.T) {
	s := fake(t, comfytest.Options{Fault: comfytest.Fault{Kind: comfytest.FaultCrash, At: comfytest.Point{Node: "13", Step: 2}}})
	c := client(t, s.URL)
	req := request(t, c, "job-crash", defaultSpec(""), nil)
	start := time.Now()
	_, err := c.Run(testCtx(t), req)
	requireCode(t, err, apperr.ComfyUnavailable)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to notice the crash", d)
	}
	// Later calls fail fast the same way.
	if err := c.Ready(t.Context()); apperr.CodeOf(err) != apperr.ComfyUnavailable {
		t.Errorf("Ready after crash: %v", err)
	}
}

func TestRunCancelAndTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     apperr.Code
		sentinel error
	}{
		{"cancel", apperr.Cancelled, context.Canceled},
		{"deadline", apperr.Timeout, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fake(t, comfytest.Options{PauseAt: &comfytest.Point{Node: "14", Step: 1}})
			c := client(t, s.URL)
			req := request(t, c, "job-"+tc.name, defaultSpec(""), nil)
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			if tc.sentinel == context.DeadlineExceeded {
				ctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
			} else {
				go func() {
					select {
					case <-s.Paused():
						cancel()
					case <-ctx.Done():
					}
				}()
			}
			_, err := c.Run(ctx, req)
			requireCode(t, err, tc.code)
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.sentinel)
			}
			ints := requests(s, "POST", "/interrupt")
			if len(ints) != 1 || !strings.Contains(ints[0].Body, `"prompt_id":"job-`+tc.name+`"`) {
				t.Errorf("interrupts %+v", ints)
			}
			dels := requests(s, "POST", "/queue")
			if len(dels) != 1 || !strings.Contains(dels[0].Body, `"delete":["job-`+tc.name+`"]`) {
				t.Errorf("queue deletes %+v", dels)
			}
			// ComfyUI honoured the interrupt at the next step; Run waited for it.
			if s.QueueLen() != 0 || !s.HasHistory(req.PromptID) {
				t.Errorf("prompt still running after Run returned (queue %d)", s.QueueLen())
			}
		})
	}
}

func TestRunCancelWhilePending(t *testing.T) {
	s := fake(t, comfytest.Options{PauseAt: &comfytest.Point{Node: "13", Step: 1}})
	c := client(t, s.URL)
	first := request(t, c, "job-first", defaultSpec(""), nil)
	firstDone := make(chan error, 1)
	ctx1, cancel1 := context.WithCancel(testCtx(t))
	defer cancel1()
	go func() {
		_, err := c.Run(ctx1, first)
		firstDone <- err
	}()
	<-s.Paused()
	second := request(t, c, "job-second", defaultSpec(""), nil)
	ctx2, cancel2 := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel2()
	_, err := c.Run(ctx2, second)
	requireCode(t, err, apperr.Timeout)
	if q := s.QueueLen(); q != 1 {
		t.Errorf("queue length %d, want only the first prompt", q)
	}
	s.Resume()
	if err := <-firstDone; err != nil {
		t.Errorf("first job: %v", err)
	}
	if s.HasHistory("job-second") {
		t.Error("the cancelled pending prompt ran")
	}
}

func TestRunInterruptedElsewhere(t *testing.T) {
	s := fake(t, comfytest.Options{PauseAt: &comfytest.Point{Node: "13", Step: 2}})
	c := client(t, s.URL)
	req := request(t, c, "job-int", defaultSpec(""), nil)
	go func() {
		<-s.Paused()
		// Someone else (ComfyUI's web UI) interrupts whatever runs.
		other := client(t, s.URL)
		other.Interrupt(context.Background(), "job-int")
	}()
	_, err := c.Run(testCtx(t), req)
	e := requireCode(t, err, apperr.Cancelled)
	if e.NodeID != "13" || !strings.Contains(e.Message, "interrupted") {
		t.Errorf("error %+v", e)
	}
}

func TestRunSlowStart(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		name := "503"
		if refuse {
			name = "refused"
		}
		t.Run(name, func(t *testing.T) {
			s := fake(t, comfytest.Options{ReadyAfter: time.Second, RefuseUntilReady: refuse, Video: []byte("v")})
			c := client(t, s.URL)
			g, stages, out := wanGraph(defaultSpec("x.png"))
			_, err := c.Run(testCtx(t), comfy.RunRequest{PromptID: "early", Graph: g, Stages: stages, OutputNode: out})
			requireCode(t, err, apperr.ComfyUnavailable)
			if err := c.WaitReady(testCtx(t), 20*time.Millisecond); err != nil {
				t.Fatalf("WaitReady: %v", err)
			}
			if _, err := c.Run(testCtx(t), request(t, c, "late", defaultSpec(""), nil)); err != nil {
				t.Fatalf("Run once ready: %v", err)
			}
		})
	}
}

func TestWaitReadyGivesUp(t *testing.T) {
	s := fake(t, comfytest.Options{ReadyAfter: time.Hour})
	c := client(t, s.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	requireCode(t, c.WaitReady(ctx, 20*time.Millisecond), apperr.ComfyUnavailable)
}

func TestOpenSlowView(t *testing.T) {
	video := bytes.Repeat([]byte("0123456789"), 10000) // 100 kB
	s := fake(t, comfytest.Options{Video: video, ViewDelay: 50 * time.Millisecond, ViewBytesPerSecond: 100000})
	c := client(t, s.URL)
	out, err := c.Run(testCtx(t), request(t, c, "job-view", defaultSpec(""), nil))
	if err != nil {
		t.Fatal(err)
	}
	// Slow but within the deadline: complete.
	p := download(t, c, out.Video)
	if got := readFile(t, p); !bytes.Equal(got, video) {
		t.Errorf("downloaded %d bytes, want %d", len(got), len(video))
	}
	// Past the deadline: a typed TIMEOUT from Read, not a hang.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	rc, size, err := c.Open(ctx, out.Video)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if size != int64(len(video)) {
		t.Errorf("size %d", size)
	}
	_, err = readAll(rc)
	requireCode(t, err, apperr.Timeout)
	// A file that is gone.
	_, _, err = c.Open(t.Context(), comfy.OutputFile{Filename: "gone.mp4", Type: "output"})
	requireCode(t, err, apperr.OutputMissing)
}

// A retried job reuses its id; ComfyUI keeps the failed attempt's history
// entry until the new run replaces it. Reconciling must not take the old one.
func TestRunIgnoresStaleHistory(t *testing.T) {
	s := fake(t, comfytest.Options{Video: []byte("v"), StepDelay: 200 * time.Millisecond, Faults: []comfytest.Fault{
		{Kind: comfytest.FaultError, At: comfytest.Point{Class: "VAEDecode"}, Once: true},
		{Kind: comfytest.FaultMuteWS, At: comfytest.Point{Node: "13", Step: 1}},
	}})
	c := client(t, s.URL)
	req := request(t, c, "job-retry", defaultSpec(""), nil)
	_, err := c.Run(testCtx(t), req)
	requireCode(t, err, apperr.ExecutionFailed)
	// The retry: same id, no cleanup in between, events muted again. (A new
	// seed, or ComfyUI would serve the samplers from its cache at once.)
	req.Graph.(map[string]any)["13"].(map[string]any)["inputs"].(map[string]any)["noise_seed"] = 43
	out, err := c.Run(testCtx(t), req)
	if err != nil {
		t.Fatalf("retry took the stale history entry: %v", err)
	}
	if out.Video.Node != "16" {
		t.Errorf("video %+v", out.Video)
	}
}
