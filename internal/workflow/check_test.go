package workflow

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/job"
)

func TestLoadSchema(t *testing.T) {
	s := recordedSchema(t)
	for _, class := range []string{"UNETLoader", "LoraLoaderModelOnly", "ModelSamplingSD3", "TorchCompileModel",
		"CLIPLoader", "CLIPTextEncode", "VAELoader", "LoadImage", "WanImageToVideo", "KSamplerAdvanced",
		"VAEDecode", "VHS_VideoCombine", "CreateVideo", "SaveVideo"} {
		if s[class] == nil {
			t.Errorf("class %s missing from the recorded schema", class)
		}
	}
	spec := func(class, input string) *InputSpec {
		t.Helper()
		sp, _, ok := s[class].Input(input)
		if !ok {
			t.Fatalf("%s has no input %s", class, input)
		}
		return sp
	}
	// Classic combo: [[values], {...}].
	if sp := spec("UNETLoader", "weight_dtype"); sp.Type != TypeCombo || !slices.Equal(sp.Options, []any{"default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"}) {
		t.Errorf("weight_dtype = %+v", sp)
	}
	// New-style combo: ["COMBO", {"options": [...]}].
	if sp := spec("SaveVideo", "codec"); sp.Type != TypeCombo || !slices.Equal(sp.Options, []any{"auto", "h264"}) {
		t.Errorf("SaveVideo codec = %+v", sp)
	}
	// Empty model list: a combo with no values.
	if sp := spec("UNETLoader", "unet_name"); sp.Type != TypeCombo || len(sp.Options) != 0 {
		t.Errorf("unet_name = %+v", sp)
	}
	// 64-bit bounds stay exact.
	maxSeed, _ := new(big.Rat).SetString("18446744073709551615")
	if sp := spec("KSamplerAdvanced", "noise_seed"); sp.Type != TypeInt || sp.Max == nil || sp.Max.Cmp(maxSeed) != 0 || sp.Min.Sign() != 0 {
		t.Errorf("noise_seed = %+v", sp)
	}
	if sp := spec("WanImageToVideo", "clip_vision_output"); sp.Type != "CLIP_VISION_OUTPUT" {
		t.Errorf("clip_vision_output = %+v", sp)
	}
	if _, req, _ := s["WanImageToVideo"].Input("start_image"); req {
		t.Errorf("start_image should be optional")
	}
	// VideoHelperSuite's per-format widgets.
	f := spec("VHS_VideoCombine", "format")
	var names []string
	for _, w := range f.Formats["video/h264-mp4"] {
		names = append(names, w.Name)
	}
	if !slices.Equal(names, []string{"pix_fmt", "crf", "save_metadata", "trim_to_audio"}) {
		t.Errorf("h264-mp4 widgets = %v", names)
	}
	if !slices.Equal(s["WanImageToVideo"].Output, []string{"CONDITIONING", "CONDITIONING", "LATENT"}) || !s["SaveVideo"].OutputNode || s["VAEDecode"].OutputNode {
		t.Errorf("outputs parsed wrong")
	}
}

func TestLoadSchemaErrors(t *testing.T) {
	for _, in := range []string{
		`not json`,
		`{"X": {"input": {"required": {"a": []}}}}`,
		`{"X": {"input": {"required": {"a": [5]}}}}`,
		`{"X": {"input": {"required": {"a": ["INT", 5]}}}}`,
		`{} {}`,
	} {
		if _, err := LoadSchema(strings.NewReader(in)); err == nil {
			t.Errorf("LoadSchema(%s) succeeded", in)
		}
	}
}

// TestSamplerListsMatchServer: the job contract's sampler and scheduler
// lists are exactly what the pinned ComfyUI accepts, and every value of
// them gives a graph that passes the checker.
func TestSamplerListsMatchServer(t *testing.T) {
	s := recordedSchema(t)
	combo := func(input string) []string {
		sp, _, _ := s["KSamplerAdvanced"].Input(input)
		var out []string
		for _, o := range sp.Options {
			out = append(out, o.(string))
		}
		return out
	}
	samplers, schedulers := combo("sampler_name"), combo("scheduler")
	if !slices.Equal(samplers, job.Samplers()) {
		t.Errorf("job.Samplers() = %v\nserver lists      %v", job.Samplers(), samplers)
	}
	if !slices.Equal(schedulers, job.Schedulers()) {
		t.Errorf("job.Schedulers() = %v\nserver lists        %v", job.Schedulers(), schedulers)
	}
	p := defaultProfile()
	check := func(sampler, scheduler string) {
		j := defaultJob()
		j.Options.Sampler, j.Options.Scheduler = sampler, scheduler
		b := mustBuild(t, j, p, allCaps)
		if probs := Check(b.Graph, s, modelsFor(p, j)); len(probs) > 0 {
			t.Errorf("%s/%s:\n%s", sampler, scheduler, problemsText(probs))
		}
	}
	for _, sm := range samplers {
		check(sm, "simple")
	}
	for _, sc := range schedulers {
		check("euler", sc)
	}
}

// TestCheckFindsProblems breaks a valid graph in one way at a time and
// expects exactly the problems listed.
func TestCheckFindsProblems(t *testing.T) {
	schema := recordedSchema(t)
	type want struct {
		node, input, typ string
		strict           bool
	}
	cases := []struct {
		name  string
		core  bool // build with the core writer
		mod   func(g Graph, m ModelLists)
		wants []want
	}{
		{name: "unknown class", mod: func(g Graph, _ ModelLists) { setClass(g, NodeDecode, "VAEDecodeTiledX") },
			wants: []want{{NodeDecode, "", ProblemInvalidPrompt, false}}},
		{name: "no class_type", mod: func(g Graph, _ ModelLists) { setClass(g, NodeDecode, "") },
			wants: []want{{NodeDecode, "", ProblemInvalidPrompt, false}}},
		{name: "required input missing", mod: func(g Graph, _ ModelLists) { delete(g[NodeUNetHigh].Inputs, "weight_dtype") },
			wants: []want{{NodeUNetHigh, "weight_dtype", ProblemRequiredMissing, false}}},
		{name: "unknown input", mod: func(g Graph, _ ModelLists) { g[NodeDecode].Inputs["tile_size"] = 512 },
			wants: []want{{NodeDecode, "tile_size", ProblemUnknownInput, true}}},
		{name: "widget of another format", mod: func(g Graph, _ ModelLists) { g[NodeVideo].Inputs["lossless"] = true },
			wants: []want{{NodeVideo, "lossless", ProblemUnknownInput, true}}},
		{name: "link type mismatch", mod: func(g Graph, _ ModelLists) { g[NodeSamplerHigh].Inputs["model"] = Link(NodeVAE, 0) },
			wants: []want{{NodeCompileHigh, "", ProblemUnreachable, true}, {LoRANode(job.ExpertHigh, 0), "", ProblemUnreachable, true},
				{NodeSamplerHigh, "model", ProblemReturnTypeMismatch, false}, {NodeShiftHigh, "", ProblemUnreachable, true}, {NodeUNetHigh, "", ProblemUnreachable, true}}},
		{name: "output index out of range", mod: func(g Graph, _ ModelLists) { g[NodeSamplerLow].Inputs["latent_image"] = Link(NodeSamplerHigh, 1) },
			wants: []want{{NodeSamplerLow, "latent_image", ProblemBadOutput, false}}},
		{name: "link to a missing node", mod: func(g Graph, _ ModelLists) { g[NodeDecode].Inputs["vae"] = Link("99", 0) },
			wants: []want{{NodeDecode, "vae", ProblemBadLinkedInput, false}}},
		{name: "malformed link", mod: func(g Graph, _ ModelLists) { g[NodeDecode].Inputs["vae"] = []any{NodeVAE} },
			wants: []want{{NodeDecode, "vae", ProblemBadLinkedInput, false}}},
		{name: "constant for a link input", mod: func(g Graph, _ ModelLists) { g[NodeDecode].Inputs["vae"] = "vae" },
			wants: []want{{NodeDecode, "vae", ProblemInvalidInputType, true}}},
		{name: "classic combo value not listed", mod: func(g Graph, _ ModelLists) { g[NodeSamplerLow].Inputs["scheduler"] = "cosine" },
			wants: []want{{NodeSamplerLow, "scheduler", ProblemNotInList, false}}},
		{name: "new-style combo value not listed", mod: func(g Graph, _ ModelLists) { g[NodeCompileHigh].Inputs["backend"] = "eager" },
			wants: []want{{NodeCompileHigh, "backend", ProblemNotInList, true}}},
		{name: "SaveVideo format not listed", core: true, mod: func(g Graph, _ ModelLists) { g[NodeVideo].Inputs["format"] = "mov" },
			wants: []want{{NodeVideo, "format", ProblemNotInList, true}}},
		{name: "int below min", mod: func(g Graph, _ ModelLists) { g[NodeImageToVideo].Inputs["batch_size"] = 0 },
			wants: []want{{NodeImageToVideo, "batch_size", ProblemSmallerThanMin, false}}},
		{name: "int above max", mod: func(g Graph, _ ModelLists) { g[NodeImageToVideo].Inputs["width"] = 16400 },
			wants: []want{{NodeImageToVideo, "width", ProblemBiggerThanMax, false}}},
		{name: "float above max", mod: func(g Graph, _ ModelLists) { g[NodeShiftLow].Inputs["shift"] = 100.5 },
			wants: []want{{NodeShiftLow, "shift", ProblemBiggerThanMax, false}}},
		{name: "seed above 64 bits", mod: func(g Graph, _ ModelLists) {
			g[NodeSamplerHigh].Inputs["noise_seed"] = json.Number("18446744073709551616")
		},
			wants: []want{{NodeSamplerHigh, "noise_seed", ProblemBiggerThanMax, false}}},
		{name: "int not whole", mod: func(g Graph, _ ModelLists) { g[NodeImageToVideo].Inputs["batch_size"] = 1.5 },
			wants: []want{{NodeImageToVideo, "batch_size", ProblemInvalidInputType, true}}},
		{name: "float as a string", mod: func(g Graph, _ ModelLists) { g[NodeSamplerHigh].Inputs["cfg"] = "1.0" },
			wants: []want{{NodeSamplerHigh, "cfg", ProblemInvalidInputType, true}}},
		{name: "float as an object", mod: func(g Graph, _ ModelLists) { g[NodeSamplerHigh].Inputs["cfg"] = map[string]any{} },
			wants: []want{{NodeSamplerHigh, "cfg", ProblemInvalidInputType, false}}},
		{name: "string not a string", mod: func(g Graph, _ ModelLists) { g[NodePositive].Inputs["text"] = 5 },
			wants: []want{{NodePositive, "text", ProblemInvalidInputType, true}}},
		{name: "boolean not a bool", mod: func(g Graph, _ ModelLists) { g[NodeVideo].Inputs["pingpong"] = "false" },
			wants: []want{{NodeVideo, "pingpong", ProblemInvalidInputType, true}}},
		{name: "null value", mod: func(g Graph, _ ModelLists) { g[NodeVideo].Inputs["loop_count"] = nil },
			wants: []want{{NodeVideo, "loop_count", ProblemInvalidInputType, true}}},
		{name: "format widget out of range", mod: func(g Graph, _ ModelLists) { g[NodeVideo].Inputs["crf"] = 101 },
			wants: []want{{NodeVideo, "crf", ProblemBiggerThanMax, true}}},
		{name: "format widget not listed", mod: func(g Graph, _ ModelLists) { g[NodeVideo].Inputs["pix_fmt"] = "rgb24" },
			wants: []want{{NodeVideo, "pix_fmt", ProblemNotInList, true}}},
		{name: "model file missing", mod: func(_ Graph, m ModelLists) { m[FolderVAE] = []string{"wan2.2_vae.safetensors"} },
			wants: []want{{NodeVAE, "vae_name", ProblemNotInList, false}}},
		{name: "LoRA file missing", mod: func(_ Graph, m ModelLists) { delete(m, FolderLoRAs) },
			wants: []want{{LoRANode(job.ExpertHigh, 0), "lora_name", ProblemNotInList, false}, {LoRANode(job.ExpertLow, 0), "lora_name", ProblemNotInList, false}}},
		{name: "image name climbs out", mod: func(g Graph, _ ModelLists) { g[NodeImage].Inputs["image"] = "../secret.png" },
			wants: []want{{NodeImage, "image", ProblemBadImage, true}}},
		{name: "image name absolute", mod: func(g Graph, _ ModelLists) { g[NodeImage].Inputs["image"] = "/etc/passwd" },
			wants: []want{{NodeImage, "image", ProblemBadImage, true}}},
		{name: "width off the grid", mod: func(g Graph, _ ModelLists) { g[NodeImageToVideo].Inputs["width"] = 840 },
			wants: []want{{NodeImageToVideo, "width", ProblemRule, true}}},
		{name: "length not 4k+1", mod: func(g Graph, _ ModelLists) { g[NodeImageToVideo].Inputs["length"] = 82 },
			wants: []want{{NodeImageToVideo, "length", ProblemRule, true}}},
		{name: "split at the last step", mod: func(g Graph, _ ModelLists) {
			g[NodeSamplerHigh].Inputs["end_at_step"] = 6
			g[NodeSamplerLow].Inputs["start_at_step"] = 6
		}, wants: []want{{NodeSamplerHigh, "end_at_step", ProblemRule, true}, {NodeSamplerLow, "start_at_step", ProblemRule, true}}},
		{name: "gap between the passes", mod: func(g Graph, _ ModelLists) { g[NodeSamplerLow].Inputs["start_at_step"] = 4 },
			wants: []want{{NodeSamplerLow, "start_at_step", ProblemRule, true}}},
		{name: "passes disagree on steps", mod: func(g Graph, _ ModelLists) {
			g[NodeSamplerLow].Inputs["steps"] = 8
			g[NodeSamplerLow].Inputs["end_at_step"] = 8
		},
			wants: []want{{NodeSamplerLow, "steps", ProblemRule, true}}},
		{name: "high pass drops its leftover noise", mod: func(g Graph, _ ModelLists) { g[NodeSamplerHigh].Inputs["return_with_leftover_noise"] = "disable" },
			wants: []want{{NodeSamplerHigh, "return_with_leftover_noise", ProblemRule, true}}},
		{name: "low pass adds noise again", mod: func(g Graph, _ ModelLists) { g[NodeSamplerLow].Inputs["add_noise"] = "enable" },
			wants: []want{{NodeSamplerLow, "add_noise", ProblemRule, true}}},
		{name: "high pass adds no noise", mod: func(g Graph, _ ModelLists) { g[NodeSamplerHigh].Inputs["add_noise"] = "disable" },
			wants: []want{{NodeSamplerHigh, "add_noise", ProblemRule, true}}},
		{name: "low pass stops early", mod: func(g Graph, _ ModelLists) { g[NodeSamplerLow].Inputs["end_at_step"] = 5 },
			wants: []want{{NodeSamplerLow, "end_at_step", ProblemRule, true}}},
		{name: "empty step range", mod: func(g Graph, _ ModelLists) { g[NodeSamplerLow].Inputs["end_at_step"] = 3 },
			wants: []want{{NodeSamplerLow, "start_at_step", ProblemRule, true}}},
		{name: "cycle", mod: func(g Graph, _ ModelLists) { g[NodeShiftHigh].Inputs["model"] = Link(NodeCompileHigh, 0) },
			wants: []want{{LoRANode(job.ExpertHigh, 0), "", ProblemUnreachable, true}, {NodeShiftHigh, "", ProblemCycle, false}, {NodeUNetHigh, "", ProblemUnreachable, true}}},
		{name: "unreachable node", mod: func(g Graph, _ ModelLists) {
			g["spare_vae"] = Node{ClassType: "VAELoader", Inputs: map[string]any{"vae_name": "wan_2.1_vae.safetensors"}}
		}, wants: []want{{"spare_vae", "", ProblemUnreachable, true}}},
		{name: "no output node", mod: func(g Graph, _ ModelLists) { delete(g, NodeVideo) },
			wants: []want{{"", "", ProblemNoOutputs, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, p := defaultJob(), defaultProfile()
			caps := allCaps
			if tc.core {
				caps.VideoHelperSuite = false
			}
			b := mustBuild(t, j, p, caps)
			models := modelsFor(p, j)
			tc.mod(b.Graph, models)
			probs := Check(b.Graph, schema, models)
			var got []want
			for _, pr := range probs {
				got = append(got, want{pr.NodeID, pr.Input, pr.Type, pr.Strict})
				if pr.Message == "" || (pr.NodeID != "" && pr.ClassType == "" && b.Graph[pr.NodeID].ClassType != "") {
					t.Errorf("problem without message or class: %+v", pr)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wants) {
				t.Errorf("problems:\n%s\nwant %v", problemsText(probs), tc.wants)
			}
		})
	}
}

func setClass(g Graph, id, class string) {
	n := g[id]
	n.ClassType = class
	g[id] = n
}

// TestCheckDecodedGraph: a graph that went through JSON checks the same,
// 64-bit seeds included, when decoded by ParseGraph (numbers kept exact);
// a float64 decoder rounds the largest seed up past the maximum.
func TestCheckDecodedGraph(t *testing.T) {
	schema := recordedSchema(t)
	j, p := defaultJob(), defaultProfile()
	j.Options.Seed = 1<<64 - 1
	b := mustBuild(t, j, p, allCaps)
	data, err := json.Marshal(b.Graph)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseGraph(data)
	if err != nil {
		t.Fatal(err)
	}
	if probs := Check(g, schema, modelsFor(p, j)); len(probs) > 0 {
		t.Errorf("decoded graph (json.Number):\n%s", problemsText(probs))
	}
	if got := g[NodeSamplerHigh].Inputs["noise_seed"]; got != json.Number("18446744073709551615") {
		t.Errorf("seed decoded as %v", got)
	}
	var plain Graph
	if err := json.Unmarshal(data, &plain); err != nil {
		t.Fatal(err)
	}
	probs := Check(plain, schema, modelsFor(p, j))
	if len(probs) != 2 || probs[0].Type != ProblemBiggerThanMax || probs[0].Input != "noise_seed" {
		t.Errorf("float64-decoded graph with the largest seed:\n%s", problemsText(probs))
	}
	plain[NodeSamplerHigh].Inputs["noise_seed"] = float64(123456)
	plain[NodeSamplerLow].Inputs["noise_seed"] = float64(123456)
	if probs := Check(plain, schema, modelsFor(p, j)); len(probs) > 0 {
		t.Errorf("decoded graph (float64):\n%s", problemsText(probs))
	}
	if _, err := ParseGraph([]byte(`{"a": 1}`)); err == nil {
		t.Error("ParseGraph accepted a non-node")
	}
}

// TestCheckSkipsModelsWithoutLists: nil model lists skip the file names
// (the recorded schema lists none), but a name must still be a string.
func TestCheckSkipsModelsWithoutLists(t *testing.T) {
	schema := recordedSchema(t)
	b := mustBuild(t, defaultJob(), defaultProfile(), allCaps)
	if probs := Check(b.Graph, schema, nil); len(probs) > 0 {
		t.Errorf("nil model lists:\n%s", problemsText(probs))
	}
	b.Graph[NodeUNetLow].Inputs["unet_name"] = 7
	probs := Check(b.Graph, schema, nil)
	if len(probs) != 1 || probs[0].Type != ProblemInvalidInputType || probs[0].Input != "unet_name" {
		t.Errorf("numeric model name:\n%s", problemsText(probs))
	}
}

func TestAsLink(t *testing.T) {
	cases := []struct {
		v    any
		id   string
		out  int
		isOK bool
	}{
		{Link("a", 2), "a", 2, true},
		{[]any{"a", 2.0}, "a", 2, true},
		{[]any{"a", json.Number("1")}, "a", 1, true},
		{[]any{"a", 1.5}, "", 0, false},
		{[]any{"a", -1}, "", 0, false},
		{[]any{1, 0}, "", 0, false},
		{[]any{"a"}, "", 0, false},
		{"a", "", 0, false},
	}
	for _, c := range cases {
		id, out, ok := AsLink(c.v)
		if id != c.id || out != c.out || ok != c.isOK {
			t.Errorf("AsLink(%#v) = %q, %d, %v", c.v, id, out, ok)
		}
	}
}

func TestTypesFit(t *testing.T) {
	cases := []struct {
		got, in string
		fit     bool
	}{
		{"MODEL", "MODEL", true}, {"MODEL", "VAE", false}, {"*", "VAE", true}, {"IMAGE", "*", true},
		{"IMAGE", "IMAGE,LATENT", true}, {"STRING,INT", "INT", true}, {"STRING", "INT,FLOAT", false},
	}
	for _, c := range cases {
		if typesFit(c.got, c.in) != c.fit {
			t.Errorf("typesFit(%q, %q) != %v", c.got, c.in, c.fit)
		}
	}
}

func TestProblemString(t *testing.T) {
	p := Problem{NodeID: "vae", ClassType: "VAELoader", Input: "vae_name", Type: ProblemNotInList, Message: "model file x is missing"}
	if got, want := p.String(), `node "vae" (VAELoader) input "vae_name": value_not_in_list: model file x is missing`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Problem{Type: ProblemNoOutputs, Message: "none"}).String(); got != "prompt_no_outputs: none" {
		t.Errorf("String() = %q", got)
	}
}

func TestToRat(t *testing.T) {
	cases := []struct {
		v    any
		want string // "" when not a number
	}{
		{int(3), "3/1"}, {int32(-3), "-3/1"}, {int64(5), "5/1"}, {uint(6), "6/1"}, {uint32(7), "7/1"},
		{uint64(1<<64 - 1), "18446744073709551615/1"}, {float32(0.5), "1/2"}, {0.25, "1/4"},
		{json.Number("1e3"), "1000/1"}, {json.Number("x"), ""}, {math.NaN(), ""}, {math.Inf(1), ""},
		{"5", ""}, {true, ""}, {nil, ""},
	}
	for _, c := range cases {
		r, ok := toRat(c.v)
		if got := ""; ok {
			got = r.String()
			if got != c.want {
				t.Errorf("toRat(%#v) = %s, want %s", c.v, got, c.want)
			}
		} else if c.want != "" {
			t.Errorf("toRat(%#v) failed, want %s", c.v, c.want)
		}
	}
}

// TestCheckNumericCombo: combos of numbers (VHS's ffv1 "level" is a list of
// strings, but other nodes list numbers) compare by value.
func TestCheckNumericCombo(t *testing.T) {
	schema, err := LoadSchema(strings.NewReader(`{
	  "Src": {"input": {"required": {"n": [[1, 2.5, 4]], "f": ["FLOAT", {"min": 0.5, "max": 1.5}]}}, "output": [], "output_node": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	for v, ok := range map[any]bool{2.5: true, 4: true, json.Number("1.0"): true, 3: false, "1": false} {
		g := Graph{"a": {ClassType: "Src", Inputs: map[string]any{"n": v, "f": 1}}}
		if probs := Check(g, schema, nil); (len(probs) == 0) != ok {
			t.Errorf("n = %#v: %v", v, probs)
		}
	}
	g := Graph{"a": {ClassType: "Src", Inputs: map[string]any{"n": 1, "f": 0.25}}}
	probs := Check(g, schema, nil)
	if len(probs) != 1 || probs[0].Type != ProblemSmallerThanMin || !strings.Contains(probs[0].Message, "0.5") {
		t.Errorf("f below a fractional minimum: %v", probs)
	}
}
