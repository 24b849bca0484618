package workflow

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/job"
)

// randomJob draws a valid job: every option within the contract of
// DESIGN.md §3 with the default limits (1280×720 pixels, 121 frames, 40 steps).
func randomJob(r *rand.Rand, samplers, schedulers []string) *job.Job {
	const maxPixels, maxFrames, maxSteps = 1280 * 720, 121, 40
	o := job.Options{}
	for {
		o.Width, o.Height = 16*(1+r.IntN(100)), 16*(1+r.IntN(100))
		if o.Width*o.Height <= maxPixels {
			break
		}
	}
	o.Fit = []job.Fit{job.FitCrop, job.FitPad, job.FitStretch}[r.IntN(3)]
	o.Length = 4*(1+r.IntN((maxFrames-1)/4)) + 1 // 5 … 121
	o.Steps = 2 + r.IntN(maxSteps-1)
	o.SplitStep = 1 + r.IntN(o.Steps-1)
	o.CFG = 1 + r.Float64()*19
	o.Shift = 0.5 + r.Float64()*19.5
	o.Sampler = samplers[r.IntN(len(samplers))]
	o.Scheduler = schedulers[r.IntN(len(schedulers))]
	o.FrameRate = 1 + r.Float64()*59
	switch r.IntN(4) {
	case 0:
		o.Seed = 0
	case 1:
		o.Seed = 1<<64 - 1
	default:
		o.Seed = r.Uint64()
	}
	experts := []job.Expert{job.ExpertBoth, job.ExpertHigh, job.ExpertLow}
	names := []string{"a.safetensors", "styles/b.safetensors", "c d.safetensors", "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"}
	for range r.IntN(job.MaxLoRAs + 1) {
		o.LoRAs = append(o.LoRAs, job.LoRA{Name: names[r.IntN(len(names))], Strength: -4 + 8*r.Float64(), Expert: experts[r.IntN(3)]})
	}
	o.CRF = r.IntN(52)
	o.LastFrame = r.IntN(2) == 0
	o.Output = []job.Output{job.OutputAuto, job.OutputBase64, job.OutputS3, job.OutputVolume}[r.IntN(4)]
	texts := []string{"", "a cat", "quotes \" and \\ and <tags> & ünïcödé 🐉", job.DefaultNegativePrompt, "line\nbreak\ttab"}
	id := make([]byte, 1+r.IntN(40))
	for i := range id {
		id[i] = byte(32 + r.IntN(95))
	}
	return &job.Job{
		ID: string(id), Prompt: texts[1+r.IntN(len(texts)-1)], NegativePrompt: texts[r.IntN(len(texts))],
		Options: o, SeedRandom: r.IntN(2) == 0,
	}
}

func randomProfile(r *rand.Rand) Profile {
	p := defaultProfile()
	loras := []string{"", "wan/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors",
		"wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors", "wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors"}
	p.LoRAHigh, p.LoRALow = loras[r.IntN(len(loras))], loras[r.IntN(len(loras))]
	p.LoRAStrengthHigh, p.LoRAStrengthLow = -4+8*r.Float64(), -4+8*r.Float64()
	p.WeightDType = []string{"", "default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"}[r.IntN(5)]
	p.TorchCompile = r.IntN(2) == 0
	p.TorchCompileBackend = []string{"", "inductor", "cudagraphs"}[r.IntN(3)]
	return p
}

// TestRandomJobsPassCheck: thousands of random valid jobs, profiles and
// server capabilities all build graphs that pass the checker against the
// recorded schema, with exactly the model files the profile and job name;
// a sample of them also after a JSON round trip.
func TestRandomJobsPassCheck(t *testing.T) {
	schema := recordedSchema(t)
	var samplers, schedulers []string
	for _, o := range schema["KSamplerAdvanced"].Required["sampler_name"].Options {
		samplers = append(samplers, o.(string))
	}
	for _, o := range schema["KSamplerAdvanced"].Required["scheduler"].Options {
		schedulers = append(schedulers, o.(string))
	}
	r := rand.New(rand.NewPCG(2025, 22))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		j, p := randomJob(r, samplers, schedulers), randomProfile(r)
		caps := Capabilities{VideoHelperSuite: r.IntN(2) == 0, TorchCompile: p.TorchCompile || r.IntN(2) == 0}
		b, err := Build(j, p, caps)
		if err != nil {
			t.Fatalf("case %d: Build: %v\njob %+v", i, err, j)
		}
		if probs := Check(b.Graph, schema, modelsFor(p, j)); len(probs) > 0 {
			t.Fatalf("case %d: job %+v\nprofile %+v\ncaps %+v\n%s", i, j.Options, p, caps, problemsText(probs))
		}
		if i%10 == 0 {
			data, err := json.Marshal(b.Graph)
			if err != nil {
				t.Fatal(err)
			}
			g, err := ParseGraph(data)
			if err != nil {
				t.Fatal(err)
			}
			if probs := Check(g, schema, modelsFor(p, j)); len(probs) > 0 {
				t.Fatalf("case %d after JSON:\n%s", i, problemsText(probs))
			}
		}
		// The plan the client follows matches the graph.
		if b.Steps != j.Options.Steps || b.Split != j.Options.SplitStep || len(b.Stages()) != len(b.Graph) {
			t.Fatalf("case %d: Built %+v", i, b)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	j, p := defaultJob(), defaultProfile()
	for b.Loop() {
		if _, err := Build(j, p, allCaps); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	schema := recordedSchema(b)
	j, p := defaultJob(), defaultProfile()
	built := mustBuild(b, j, p, allCaps)
	models := modelsFor(p, j)
	for b.Loop() {
		if probs := Check(built.Graph, schema, models); len(probs) > 0 {
			b.Fatal(problemsText(probs))
		}
	}
}
