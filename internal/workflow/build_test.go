package workflow

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// goldenCases are the graphs pinned in testdata/golden. Each also passes the
// checker against the recorded schema.
func goldenCases() []struct {
	name string
	job  func() *job.Job
	prof func() Profile
	caps Capabilities
} {
	withOpts := func(f func(o *job.Options)) func() *job.Job {
		return func() *job.Job {
			j := defaultJob()
			f(&j.Options)
			return j
		}
	}
	return []struct {
		name string
		job  func() *job.Job
		prof func() Profile
		caps Capabilities
	}{
		{"default", defaultJob, defaultProfile, allCaps},
		{"1280x720x121", withOpts(func(o *job.Options) { o.Width, o.Height, o.Length = 1280, 720, 121 }), defaultProfile, allCaps},
		{"custom_split", withOpts(func(o *job.Options) { o.Steps, o.SplitStep, o.CFG, o.Shift = 8, 5, 3.5, 5 }), defaultProfile, allCaps},
		{"loras_high", withOpts(func(o *job.Options) {
			o.LoRAs = []job.LoRA{{Name: "styles/anime_high.safetensors", Strength: 0.8, Expert: job.ExpertHigh}}
		}), defaultProfile, allCaps},
		{"loras_low", withOpts(func(o *job.Options) {
			o.LoRAs = []job.LoRA{{Name: "detail_low.safetensors", Strength: -0.5, Expert: job.ExpertLow}}
		}), defaultProfile, allCaps},
		{"loras_both", withOpts(func(o *job.Options) {
			o.LoRAs = []job.LoRA{{Name: "motion.safetensors", Strength: 1.25, Expert: job.ExpertBoth}}
		}), defaultProfile, allCaps},
		{"loras_mixed", withOpts(func(o *job.Options) {
			o.LoRAs = []job.LoRA{
				{Name: "a.safetensors", Strength: 1, Expert: job.ExpertBoth},
				{Name: "b.safetensors", Strength: 0.5, Expert: job.ExpertHigh},
				{Name: "c.safetensors", Strength: 2, Expert: job.ExpertLow},
				{Name: "d.safetensors", Strength: -1, Expert: job.ExpertBoth},
			}
		}), defaultProfile, allCaps},
		{"lora_url", withOpts(func(o *job.Options) {
			o.LoRAs = []job.LoRA{
				{URL: "https://huggingface.co/u/r/resolve/main/style.safetensors", Strength: 0.7, Expert: job.ExpertBoth,
					SHA256: "2b2c0a6f1d0e4b7a9c3e5f8a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"},
				{Name: "detail_low.safetensors", Strength: 0.5, Expert: job.ExpertLow},
			}
		}), defaultProfile, allCaps},
		{"no_profile_loras", defaultJob, func() Profile {
			p := defaultProfile()
			p.LoRAHigh, p.LoRALow = "", ""
			return p
		}, allCaps},
		{"torch_compile_off", defaultJob, func() Profile {
			p := defaultProfile()
			p.TorchCompile = false
			return p
		}, Capabilities{VideoHelperSuite: true}},
		{"core_writer", defaultJob, defaultProfile, Capabilities{TorchCompile: true}},
		// Issue 12: end frame, presets, per-expert cfg, distill LoRA placement, interpolation.
		{"end_frame", withEnd(defaultJob), defaultProfile, allCaps},
		{"end_frame_core_writer", withEnd(defaultJob), defaultProfile, Capabilities{TorchCompile: true}},
		{"preset_quality", withOpts(presetOpts(job.PresetQuality)), defaultProfile, allCaps},
		{"preset_balanced", withOpts(presetOpts(job.PresetBalanced)), defaultProfile, allCaps},
		{"cfg_high_low", withOpts(func(o *job.Options) { o.CFGHigh, o.CFGLow, o.DistillLoRA = 3.5, 1, job.DistillLow }), defaultProfile, allCaps},
		{"interpolate_x2", withOpts(func(o *job.Options) {
			o.Interpolate, o.FrameRate = &job.Interpolate{Factor: 2, Method: job.InterpolateFFmpeg}, 32
		}), defaultProfile, allCaps},
		{"end_frame_480p_16x9_quality_x2", withEnd(withOpts(func(o *job.Options) {
			presetOpts(job.PresetQuality)(o)
			o.Width, o.Height, o.Resolution, o.AspectRatio = 848, 480, job.Res480p, job.Aspect16x9
			o.CFGHigh = 4
			o.Interpolate, o.FrameRate, o.CRF, o.VideoQuality = &job.Interpolate{Factor: 2, Method: job.InterpolateFFmpeg}, 32, 12, job.QualityMaximum
			o.LoRAs = []job.LoRA{{Name: "styles/anime_high.safetensors", Strength: 0.8, Expert: job.ExpertHigh}}
		})), defaultProfile, allCaps},
	}
}

// withEnd adds an end frame to a job.
func withEnd(f func() *job.Job) func() *job.Job {
	return func() *job.Job {
		j := f()
		j.EndImage = &job.ImageInfo{Source: "base64", Format: "png", Width: 832, Height: 832, Bytes: 1000}
		return j
	}
}

// presetOpts sets the options a preset gives a job that names nothing else.
func presetOpts(p job.Preset) func(o *job.Options) {
	return func(o *job.Options) {
		v := p.Values()
		o.Preset, o.Steps, o.SplitStep, o.CFG, o.CFGHigh, o.CFGLow, o.Shift, o.DistillLoRA =
			p, v.Steps, (v.Steps+1)/2, v.CFGHigh, v.CFGHigh, v.CFGLow, v.Shift, v.DistillLoRA
	}
}

func TestGolden(t *testing.T) {
	schema := recordedSchema(t)
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			j, p := tc.job(), tc.prof()
			b := mustBuild(t, j, p, tc.caps)
			goldenGraph(t, tc.name, encode(t, b.Graph))
			if probs := Check(b.Graph, schema, modelsFor(p, j)); len(probs) > 0 {
				t.Errorf("graph fails the checker:\n%s", problemsText(probs))
			}
		})
	}
}

func TestGoldenWarmup(t *testing.T) {
	p := defaultProfile()
	b, err := Warmup(p, allCaps, "wan22_warmup.png")
	if err != nil {
		t.Fatal(err)
	}
	goldenGraph(t, "warmup", encode(t, b.Graph))
	if probs := Check(b.Graph, recordedSchema(t), modelsFor(p, &job.Job{})); len(probs) > 0 {
		t.Errorf("warm-up graph fails the checker:\n%s", problemsText(probs))
	}
}

// TestDefaultsMatchOriginalSpec pins the settings of the original spec: 6
// steps split 3/3, cfg 1.0, the step-distill LoRA on both experts at 1.0,
// H.264 yuv420p MP4 (and TORCH_COMPILE=1 adding TorchCompileModel).
func TestDefaultsMatchOriginalSpec(t *testing.T) {
	b := mustBuild(t, defaultJob(), defaultProfile(), allCaps)
	g := b.Graph
	in := func(id, name string) any {
		t.Helper()
		n, ok := g[id]
		if !ok {
			t.Fatalf("no node %q", id)
		}
		return n.Inputs[name]
	}
	const distill = "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"
	checks := []struct {
		id, input string
		want      any
	}{
		{NodeSamplerHigh, "steps", 6},
		{NodeSamplerHigh, "start_at_step", 0},
		{NodeSamplerHigh, "end_at_step", 3},
		{NodeSamplerHigh, "add_noise", "enable"},
		{NodeSamplerHigh, "return_with_leftover_noise", "enable"},
		{NodeSamplerHigh, "cfg", 1.0},
		{NodeSamplerHigh, "sampler_name", "euler"},
		{NodeSamplerHigh, "scheduler", "simple"},
		{NodeSamplerHigh, "noise_seed", uint64(123456)},
		{NodeSamplerLow, "steps", 6},
		{NodeSamplerLow, "start_at_step", 3},
		{NodeSamplerLow, "end_at_step", 6},
		{NodeSamplerLow, "add_noise", "disable"},
		{NodeSamplerLow, "return_with_leftover_noise", "disable"},
		{NodeSamplerLow, "cfg", 1.0},
		{LoRANode(job.ExpertHigh, 0), "lora_name", distill},
		{LoRANode(job.ExpertHigh, 0), "strength_model", 1.0},
		{LoRANode(job.ExpertLow, 0), "lora_name", distill},
		{LoRANode(job.ExpertLow, 0), "strength_model", 1.0},
		{NodeUNetHigh, "unet_name", "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"},
		{NodeUNetLow, "unet_name", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"},
		{NodeUNetHigh, "weight_dtype", "default"},
		{NodeTextEncoder, "clip_name", "umt5_xxl_fp8_e4m3fn_scaled.safetensors"},
		{NodeTextEncoder, "type", "wan"},
		{NodeVAE, "vae_name", "wan_2.1_vae.safetensors"},
		{NodeShiftHigh, "shift", 8.0},
		{NodeShiftLow, "shift", 8.0},
		{NodeCompileHigh, "backend", "inductor"},
		{NodeCompileLow, "backend", "inductor"},
		{NodeImageToVideo, "length", 81},
		{NodeImageToVideo, "batch_size", 1},
		{NodeImage, "image", "wan22_job-123.png"},
		{NodeVideo, "format", "video/h264-mp4"},
		{NodeVideo, "pix_fmt", "yuv420p"},
		{NodeVideo, "crf", 19},
		{NodeVideo, "frame_rate", 16.0},
		{NodeVideo, "loop_count", 0},
		{NodeVideo, "pingpong", false},
		{NodeVideo, "save_output", true},
		{NodeVideo, "filename_prefix", "wan22/job-123/wan2_2"},
	}
	for _, c := range checks {
		if got := in(c.id, c.input); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s.%s = %#v, want %#v", c.id, c.input, got, c.want)
		}
	}
	// The LoRA chains have exactly the one profile LoRA; the experts run
	// through shift and compile into their samplers.
	for _, id := range []string{LoRANode(job.ExpertHigh, 1), LoRANode(job.ExpertLow, 1)} {
		if _, ok := g[id]; ok {
			t.Errorf("unexpected node %q", id)
		}
	}
	wantLinks := []struct {
		id, input, from string
		out             int
	}{
		{LoRANode(job.ExpertHigh, 0), "model", NodeUNetHigh, 0},
		{NodeShiftHigh, "model", LoRANode(job.ExpertHigh, 0), 0},
		{NodeCompileHigh, "model", NodeShiftHigh, 0},
		{NodeSamplerHigh, "model", NodeCompileHigh, 0},
		{LoRANode(job.ExpertLow, 0), "model", NodeUNetLow, 0},
		{NodeShiftLow, "model", LoRANode(job.ExpertLow, 0), 0},
		{NodeCompileLow, "model", NodeShiftLow, 0},
		{NodeSamplerLow, "model", NodeCompileLow, 0},
		{NodeSamplerHigh, "latent_image", NodeImageToVideo, 2},
		{NodeSamplerLow, "latent_image", NodeSamplerHigh, 0},
		{NodeSamplerLow, "positive", NodeImageToVideo, 0},
		{NodeSamplerLow, "negative", NodeImageToVideo, 1},
		{NodeImageToVideo, "start_image", NodeImage, 0},
		{NodeDecode, "samples", NodeSamplerLow, 0},
		{NodeVideo, "images", NodeDecode, 0},
	}
	for _, l := range wantLinks {
		id, out, ok := AsLink(in(l.id, l.input))
		if !ok || id != l.from || out != l.out {
			t.Errorf("%s.%s links %v, want [%q, %d]", l.id, l.input, in(l.id, l.input), l.from, l.out)
		}
	}
	if _, ok := g[NodeImageToVideo].Inputs["clip_vision_output"]; ok {
		t.Errorf("clip_vision_output is set; WAN 2.2 I2V takes none")
	}
	if b.OutputNode != NodeVideo || b.SamplerHigh != NodeSamplerHigh || b.SamplerLow != NodeSamplerLow ||
		b.Steps != 6 || b.Split != 3 || b.Writer != WriterVHS || b.ImageName != "wan22_job-123.png" {
		t.Errorf("Built metadata = %+v", *b)
	}
	if got := b.ExtraPNGInfo["workflow"].(map[string]any)["extra"].(map[string]any)["VHS_MetadataImage"]; got != false {
		t.Errorf("ExtraPNGInfo does not switch VHS's metadata PNG off: %v", b.ExtraPNGInfo)
	}
}

func TestCoreWriter(t *testing.T) {
	j := defaultJob()
	j.Options.FrameRate = 24
	b := mustBuild(t, j, defaultProfile(), Capabilities{TorchCompile: true})
	if b.Writer != WriterCore || b.ExtraPNGInfo != nil {
		t.Errorf("Writer %q, ExtraPNGInfo %v; want core, nil", b.Writer, b.ExtraPNGInfo)
	}
	save, frames := b.Graph[NodeVideo], b.Graph[NodeFrames]
	if save.ClassType != "SaveVideo" || frames.ClassType != "CreateVideo" {
		t.Fatalf("writer nodes %s, %s", save.ClassType, frames.ClassType)
	}
	if save.Inputs["format"] != "mp4" || save.Inputs["codec"] != "h264" || frames.Inputs["fps"] != 24.0 {
		t.Errorf("SaveVideo %v, CreateVideo %v", save.Inputs, frames.Inputs)
	}
}

func TestTorchCompileMissingNode(t *testing.T) {
	_, err := Build(defaultJob(), defaultProfile(), Capabilities{VideoHelperSuite: true})
	if e := apperr.As(err); e == nil || e.Code != apperr.NodeMissing || e.NodeType != ClassTorchCompile || e.Hint == "" {
		t.Fatalf("err = %#v, want NODE_MISSING for TorchCompileModel with a hint", err)
	}
	if _, err := Warmup(defaultProfile(), Capabilities{}, "w.png"); apperr.CodeOf(err) != apperr.NodeMissing {
		t.Errorf("Warmup err = %v, want NODE_MISSING", err)
	}
	// TORCH_COMPILE=0 needs no such node, and leaves the nodes out.
	p := defaultProfile()
	p.TorchCompile = false
	b := mustBuild(t, defaultJob(), p, allCaps)
	for id, n := range b.Graph {
		if n.ClassType == ClassTorchCompile {
			t.Errorf("node %q is TorchCompileModel with TORCH_COMPILE=0", id)
		}
	}
	if id, _, _ := AsLink(b.Graph[NodeSamplerHigh].Inputs["model"]); id != NodeShiftHigh {
		t.Errorf("high sampler takes its model from %q, want %q", id, NodeShiftHigh)
	}
}

func TestRequestLoRAChains(t *testing.T) {
	j := defaultJob()
	j.Options.LoRAs = []job.LoRA{
		{Name: "both.safetensors", Strength: 1, Expert: job.ExpertBoth},
		{Name: "high.safetensors", Strength: 0.5, Expert: job.ExpertHigh},
		{Name: "low.safetensors", Strength: 2, Expert: job.ExpertLow},
	}
	b := mustBuild(t, j, defaultProfile(), allCaps)
	chain := func(e job.Expert) []string {
		var names []string
		for i := 0; ; i++ {
			n, ok := b.Graph[LoRANode(e, i)]
			if !ok {
				return names
			}
			names = append(names, n.Inputs["lora_name"].(string))
		}
	}
	const distill = "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"
	if got, want := chain(job.ExpertHigh), []string{distill, "both.safetensors", "high.safetensors"}; !slices.Equal(got, want) {
		t.Errorf("high chain %v, want %v", got, want)
	}
	if got, want := chain(job.ExpertLow), []string{distill, "both.safetensors", "low.safetensors"}; !slices.Equal(got, want) {
		t.Errorf("low chain %v, want %v", got, want)
	}
	if id, _, _ := AsLink(b.Graph[NodeShiftLow].Inputs["model"]); id != LoRANode(job.ExpertLow, 2) {
		t.Errorf("low shift takes %q, want the end of the chain", id)
	}
}

func TestBuildDeterministic(t *testing.T) {
	j := defaultJob()
	j.Options.LoRAs = []job.LoRA{{Name: "x.safetensors", Strength: 1, Expert: job.ExpertBoth}}
	var first []byte
	for i := range 20 {
		b := mustBuild(t, j, defaultProfile(), allCaps)
		data, err := json.Marshal(b.Graph)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = data
		} else if !bytes.Equal(first, data) {
			t.Fatalf("build %d differs from the first", i)
		}
	}
}

func TestBuildRejectsBrokenJobs(t *testing.T) {
	cases := []struct {
		name  string
		mod   func(o *job.Options)
		field string
	}{
		{"width", func(o *job.Options) { o.Width = 840 }, "options.width"},
		{"height", func(o *job.Options) { o.Height = 0 }, "options.height"},
		{"length", func(o *job.Options) { o.Length = 82 }, "options.length"},
		{"steps", func(o *job.Options) { o.Steps, o.SplitStep = 1, 1 }, "options.steps"},
		{"split zero", func(o *job.Options) { o.SplitStep = 0 }, "options.split_step"},
		{"split at end", func(o *job.Options) { o.SplitStep = o.Steps }, "options.split_step"},
		{"sampler", func(o *job.Options) { o.Sampler = "" }, "options.sampler"},
		{"frame rate", func(o *job.Options) { o.FrameRate = 0 }, "options.frame_rate"},
		{"lora expert", func(o *job.Options) { o.LoRAs = []job.LoRA{{Name: "a", Expert: "mid"}} }, "options.loras[0].expert"},
		{"lora name", func(o *job.Options) { o.LoRAs = []job.LoRA{{Expert: job.ExpertHigh}} }, "options.loras[0].name"},
		{"lora url not downloaded", func(o *job.Options) {
			o.LoRAs = []job.LoRA{{Name: "a.safetensors"}, {URL: "https://example.com/x.safetensors?token=s"}}
		}, "options.loras[1].url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := defaultJob()
			tc.mod(&j.Options)
			_, err := Build(j, defaultProfile(), allCaps)
			e := apperr.As(err)
			if e == nil || e.Code != apperr.InvalidInput || e.Field != tc.field {
				t.Fatalf("err = %v, want INVALID_INPUT on %s", err, tc.field)
			}
		})
	}
}

func TestStages(t *testing.T) {
	j := defaultJob()
	j.Options.LoRAs = []job.LoRA{{Name: "x.safetensors", Strength: 1, Expert: job.ExpertLow}}
	for _, caps := range []Capabilities{allCaps, {TorchCompile: true}} {
		b := mustBuild(t, j, defaultProfile(), caps)
		st := b.Stages()
		if len(st) != len(b.Graph) {
			t.Errorf("%d stages for %d nodes", len(st), len(b.Graph))
		}
		want := map[string]progress.Stage{
			NodeUNetHigh: progress.LoadingModels, NodeUNetLow: progress.LoadingModels,
			LoRANode(job.ExpertLow, 1): progress.LoadingModels, NodeShiftHigh: progress.LoadingModels,
			NodeCompileLow: progress.LoadingModels, NodeTextEncoder: progress.LoadingModels,
			NodeVAE: progress.LoadingModels, NodeImage: progress.LoadingModels,
			NodePositive: progress.EncodingPrompt, NodeNegative: progress.EncodingPrompt,
			NodeImageToVideo: progress.EncodingPrompt,
			NodeSamplerHigh:  progress.SamplingHigh, NodeSamplerLow: progress.SamplingLow,
			NodeDecode: progress.Decoding, NodeVideo: progress.EncodingVideo,
		}
		if !caps.VideoHelperSuite {
			want[NodeFrames] = progress.EncodingVideo
		}
		for id, w := range want {
			if st[id] != w {
				t.Errorf("stage of %q = %q, want %q", id, st[id], w)
			}
		}
	}
}

// TestWarmupSharesLoaders: the warm-up graph has the same loader and model
// patch nodes as a default job, input for input, so that ComfyUI's cache
// keeps what the warm-up loaded.
func TestWarmupSharesLoaders(t *testing.T) {
	p := defaultProfile()
	w, err := Warmup(p, allCaps, "wan22_warmup.png")
	if err != nil {
		t.Fatal(err)
	}
	b := mustBuild(t, defaultJob(), p, allCaps)
	shared := []string{NodeUNetHigh, NodeUNetLow, LoRANode(job.ExpertHigh, 0), LoRANode(job.ExpertLow, 0),
		NodeShiftHigh, NodeShiftLow, NodeCompileHigh, NodeCompileLow, NodeTextEncoder, NodeVAE, NodeNegative}
	for _, id := range shared {
		if !reflect.DeepEqual(w.Graph[id], b.Graph[id]) {
			t.Errorf("node %q differs:\nwarm-up %+v\njob     %+v", id, w.Graph[id], b.Graph[id])
		}
	}
	itv := w.Graph[NodeImageToVideo].Inputs
	if itv["width"] != WarmupWidth || itv["height"] != WarmupHeight || itv["length"] != WarmupLength {
		t.Errorf("warm-up size %v×%v×%v", itv["width"], itv["height"], itv["length"])
	}
	if w.Steps != 2 || w.Split != 1 || w.ImageName != "wan22_warmup.png" || w.FilenamePrefix != "wan22/warmup/wan2_2" {
		t.Errorf("warm-up plan %+v", *w)
	}
	if len(w.Graph) != len(b.Graph) {
		t.Errorf("warm-up has %d nodes, a job %d", len(w.Graph), len(b.Graph))
	}
}

func TestJobDir(t *testing.T) {
	cases := map[string]string{
		"": "job",
		"sync-5f1c3c1e-7e4b-4c1f-9b9f-1c2d3e4f5a6b-u1": "sync-5f1c3c1e-7e4b-4c1f-9b9f-1c2d3e4f5a6b-u1",
		"../../etc":               "______etc",
		"a/b c%d.e":               "a_b_c_d_e",
		string(make([]byte, 200)): string(bytes.Repeat([]byte("_"), 96)),
	}
	for in, want := range cases {
		if got := jobDir(in); got != want {
			t.Errorf("jobDir(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEndFrameGraph pins the end-frame graph's shape and checks it against
// the recorded WanFirstLastFrameToVideo: the checker must reject the graph
// on a server without the class, and a wrong link into end_image.
func TestEndFrameGraph(t *testing.T) {
	schema := recordedSchema(t)
	if schema[ClassFirstLastFrame] == nil {
		t.Fatal("the recorded /object_info has no WanFirstLastFrameToVideo")
	}
	j := withEnd(defaultJob)()
	p := defaultProfile()
	b := mustBuild(t, j, p, allCaps)
	n := b.Graph[NodeImageToVideo]
	if n.ClassType != ClassFirstLastFrame {
		t.Fatalf("conditioning node is %s", n.ClassType)
	}
	if id, _, _ := AsLink(n.Inputs["start_image"]); id != NodeImage {
		t.Errorf("start_image from %q", id)
	}
	if id, _, _ := AsLink(n.Inputs["end_image"]); id != NodeEndImage {
		t.Errorf("end_image from %q", id)
	}
	if got := b.Graph[NodeEndImage].Inputs["image"]; got != "wan22_job-123_end.png" || b.EndImageName != got || b.EndImageNode != NodeEndImage {
		t.Errorf("end image %v, built %q %q", got, b.EndImageNode, b.EndImageName)
	}
	if b.Stages()[NodeImageToVideo] != progress.EncodingPrompt {
		t.Errorf("stage of %s: %s", ClassFirstLastFrame, b.Stages()[NodeImageToVideo])
	}
	if probs := Check(b.Graph, schema, modelsFor(p, j)); len(probs) > 0 {
		t.Fatalf("end-frame graph fails the checker:\n%s", problemsText(probs))
	}

	without := Schema{}
	for k, v := range schema {
		if k != ClassFirstLastFrame {
			without[k] = v
		}
	}
	if probs := Check(b.Graph, without, modelsFor(p, j)); !hasProblem(probs, NodeImageToVideo, ProblemInvalidPrompt) {
		t.Errorf("no invalid_prompt for a server without the class:\n%s", problemsText(probs))
	}
	bad := mustBuild(t, j, p, allCaps)
	bad.Graph[NodeImageToVideo].Inputs["end_image"] = Link(NodePositive, 0)
	if probs := Check(bad.Graph, schema, modelsFor(p, j)); !hasProblem(probs, NodeImageToVideo, ProblemReturnTypeMismatch) {
		t.Errorf("no type mismatch for CONDITIONING into end_image:\n%s", problemsText(probs))
	}
	bad.Graph[NodeImageToVideo].Inputs["end_image"] = Link(NodeEndImage, 0)
	bad.Graph[NodeImageToVideo].Inputs["length"] = 80
	if probs := Check(bad.Graph, schema, modelsFor(p, j)); !hasProblem(probs, NodeImageToVideo, ProblemRule) {
		t.Errorf("no rule violation for length 80:\n%s", problemsText(probs))
	}
	// Without an end frame the graph is the image-to-video one, with no end node.
	plain := mustBuild(t, defaultJob(), p, allCaps)
	if _, ok := plain.Graph[NodeEndImage]; ok || plain.Graph[NodeImageToVideo].ClassType != ClassImageToVideo || plain.EndImageName != "" {
		t.Errorf("a job without end_image got an end frame")
	}
}

func hasProblem(ps []Problem, node, typ string) bool {
	for _, p := range ps {
		if p.NodeID == node && p.Type == typ {
			return true
		}
	}
	return false
}

// TestSamplingOptions checks cfg per expert, the step-distill LoRA's
// placement and the writer's rate with interpolation.
func TestSamplingOptions(t *testing.T) {
	const distill = "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"
	tests := []struct {
		name      string
		set       func(o *job.Options)
		high, low float64
		loraHigh  bool
		loraLow   bool
		rate      float64
	}{
		{"defaults", func(o *job.Options) {}, 1, 1, true, true, 16},
		{"cfg only", func(o *job.Options) { o.CFG = 2.5 }, 2.5, 2.5, true, true, 16},
		{"cfg_high and cfg_low", func(o *job.Options) { o.CFGHigh, o.CFGLow = 3.5, 1 }, 3.5, 1, true, true, 16},
		{"distill both", func(o *job.Options) { o.DistillLoRA = job.DistillBoth }, 1, 1, true, true, 16},
		{"distill low", func(o *job.Options) { o.DistillLoRA = job.DistillLow }, 1, 1, false, true, 16},
		{"distill none", func(o *job.Options) { o.DistillLoRA = job.DistillNone }, 1, 1, false, false, 16},
		{"interpolate x3 to 48", func(o *job.Options) {
			o.Interpolate, o.FrameRate = &job.Interpolate{Factor: 3, Method: job.InterpolateFFmpeg}, 48
		}, 1, 1, true, true, 16},
		{"interpolate x2 to 30", func(o *job.Options) {
			o.Interpolate, o.FrameRate = &job.Interpolate{Factor: 2, Method: job.InterpolateFFmpeg}, 30
		}, 1, 1, true, true, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, caps := range []Capabilities{allCaps, {TorchCompile: true}} {
				j := defaultJob()
				tt.set(&j.Options)
				g := mustBuild(t, j, defaultProfile(), caps).Graph
				if got := g[NodeSamplerHigh].Inputs["cfg"]; got != tt.high {
					t.Errorf("high cfg %v, want %v", got, tt.high)
				}
				if got := g[NodeSamplerLow].Inputs["cfg"]; got != tt.low {
					t.Errorf("low cfg %v, want %v", got, tt.low)
				}
				for _, c := range []struct {
					e    job.Expert
					want bool
				}{{job.ExpertHigh, tt.loraHigh}, {job.ExpertLow, tt.loraLow}} {
					n, ok := g[LoRANode(c.e, 0)]
					has := ok && n.Inputs["lora_name"] == distill
					if has != c.want {
						t.Errorf("%s expert has the distill LoRA: %v, want %v", c.e, has, c.want)
					}
				}
				rate := g[NodeVideo].Inputs["frame_rate"]
				if caps.VideoHelperSuite == false {
					rate = g[NodeFrames].Inputs["fps"]
				}
				if rate != tt.rate {
					t.Errorf("writer rate %v, want %v", rate, tt.rate)
				}
				if probs := Check(g, recordedSchema(t), modelsFor(defaultProfile(), j)); len(probs) > 0 {
					t.Errorf("graph fails the checker:\n%s", problemsText(probs))
				}
			}
		})
	}
}
