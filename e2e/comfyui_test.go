//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
)

// e2eConfig is the worker's configuration for the CPU runs: the defaults
// (the production model names), without torch.compile.
func e2eConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string {
		if k == "TORCH_COMPILE" {
			return "0"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// stageOf groups the graph's node classes into the stages reported.
func stageOf(class string) string {
	switch class {
	case "UNETLoader", "LoraLoaderModelOnly", "ModelSamplingSD3", "CLIPLoader", "VAELoader", "LoadImage":
		return "1 model load"
	case "CLIPTextEncode":
		return "2 text encode"
	case "WanImageToVideo", "WanFirstLastFrameToVideo":
		return "3 image encode (VAE)"
	case "KSamplerAdvanced":
		return "4 sampling"
	case "VAEDecode":
		return "5 decode"
	}
	return "6 video write"
}

// reportTimings logs the time per node and per stage of a run and returns
// the stage totals.
func reportTimings(t *testing.T, b *workflow.Built, r *run) map[string]time.Duration {
	t.Helper()
	stages := map[string]time.Duration{}
	nodes := r.nodeTimes()
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var lines []string
	for _, id := range ids {
		class := b.Graph[id].ClassType
		stages[stageOf(class)] += nodes[id]
		lines = append(lines, fmt.Sprintf("  %-16s %-22s %8.2fs", id, class, nodes[id].Seconds()))
	}
	t.Logf("per node:\n%s", strings.Join(lines, "\n"))
	names := make([]string, 0, len(stages))
	for s := range stages {
		names = append(names, s)
	}
	sort.Strings(names)
	lines = lines[:0]
	for _, s := range names {
		lines = append(lines, fmt.Sprintf("  %-22s %8.2fs", s[2:], stages[s].Seconds()))
	}
	lines = append(lines, fmt.Sprintf("  %-22s %8.2fs", "total (post → done)", r.end.Sub(r.start).Seconds()))
	t.Logf("per stage:\n%s", strings.Join(lines, "\n"))
	return stages
}

// TestComfyUIProductionGraph runs the worker's production graph, unchanged,
// on the real ComfyUI with the tiny model fixtures: the graph is built by
// internal/workflow from a job parsed by internal/job, the models are wired
// by internal/modelpaths in the original layout, and the MP4 is checked with
// ffprobe. One server serves every case (the text encoder runs once).
// graphRig is a ComfyUI started on the model fixtures, a client of it, and
// what the worker builds graphs with: the configuration, its model profile
// and the server's capabilities (from /object_info).
type graphRig struct {
	e       *env
	models  string
	srv     *server
	c       *comfyClient
	cfg     *config.Config
	profile workflow.Profile
	caps    workflow.Capabilities
}

// startGraphRig starts the rig, or skips the test without ComfyUI.
func startGraphRig(t *testing.T) graphRig {
	t.Helper()
	r := graphRig{e: requireComfyUI(t)}
	r.models = r.e.fixtures(t)
	r.srv = r.e.startComfyUI(t, r.models)
	r.c = newComfyClient(r.srv.url)
	r.cfg = e2eConfig(t)
	r.profile = workflow.ProfileFrom(r.cfg)
	var info map[string]json.RawMessage
	if err := r.c.getJSON(ensureTimeout(t, time.Minute), "/object_info", &info); err != nil {
		t.Fatal(err)
	}
	r.caps = workflow.CapabilitiesFrom(info)
	return r
}

func TestComfyUIProductionGraph(t *testing.T) {
	r := startGraphRig(t)
	e, models, srv, c, cfg, profile, caps := r.e, r.models, r.srv, r.c, r.cfg, r.profile, r.caps
	t.Logf("capabilities: %+v", caps)

	parse := func(t *testing.T, id string, input map[string]any) *job.Job {
		t.Helper()
		raw, err := json.Marshal(input)
		if err != nil {
			t.Fatal(err)
		}
		j, err := job.Parse(t.Context(), id, raw, job.LimitsFrom(cfg), nil)
		if err != nil {
			t.Fatalf("job.Parse: %v", err)
		}
		return j
	}
	// runJob builds, uploads, runs and checks one job; it returns the run.
	runJob := func(t *testing.T, j *job.Job, caps workflow.Capabilities) (*workflow.Built, *run) {
		t.Helper()
		ctx := ensureTimeout(t, 20*time.Minute)
		b, err := workflow.Build(j, profile, caps)
		if err != nil {
			t.Fatalf("workflow.Build: %v", err)
		}
		r, f, data := c.runBuilt(ctx, t, srv, b, j)
		wantPrefix := workflow.OutputSubfolder + "/" + j.ID
		if !strings.HasPrefix(f.Subfolder, wantPrefix) || !strings.HasPrefix(f.Filename, workflow.OutputBaseName) || !strings.HasSuffix(f.Filename, ".mp4") {
			t.Errorf("output file %+v, want %s/%s*.mp4", f, wantPrefix, workflow.OutputBaseName)
		}
		checkVideo(t, data)
		return b, r
	}

	const prompt = "a yellow ball rolls across a blue floor"
	writer := map[bool]string{true: "vhs", false: "core"}[caps.VideoHelperSuite]
	var first map[string]time.Duration
	t.Run("writer="+writer, func(t *testing.T) {
		j := parse(t, "e2e-main", jobInput(t, prompt, 42, nil))
		b, r := runJob(t, j, caps)
		first = reportTimings(t, b, r)
		mem, _ := srv.memory()
		t.Logf("ComfyUI start %.1fs; peak memory of the ComfyUI process: %s (peak RssAnon and RssFile are sampled every 0.5 s)", srv.started.Seconds(), mem)
	})

	if caps.VideoHelperSuite {
		// The same job with core CreateVideo + SaveVideo: everything but the
		// writer comes from ComfyUI's cache.
		t.Run("writer=core", func(t *testing.T) {
			j := parse(t, "e2e-core", jobInput(t, prompt, 42, nil))
			core := caps
			core.VideoHelperSuite = false
			b, r := runJob(t, j, core)
			if len(r.cached()) == 0 {
				t.Error("nothing was cached: the second run should reuse the models and the sampling")
			}
			reportTimings(t, b, r)
		})
	}

	// A new seed, shift and frame rate with the same prompt: the text
	// encoder's output is reused (encoding a new prompt costs minutes on a CPU).
	t.Run("new seed, shift and frame rate", func(t *testing.T) {
		j := parse(t, "e2e-seed", jobInput(t, prompt, 7, map[string]any{"shift": 5.0, "frame_rate": 24}))
		b, r := runJob(t, j, caps)
		reportTimings(t, b, r)
	})

	// The worker's one-shot command, attached to this server (COMFY_URL):
	// the same prompt, so it reuses the encoding too. TestWorkerAPI covers
	// the worker supervising its own ComfyUI.
	t.Run("worker generate", func(t *testing.T) {
		bin := buildWorker(t)
		runGenerate(t, bin, e.workerEnv(t, models, e.logPath(t, "generate-comfyui.log"), "COMFY_URL="+srv.url), prompt, 42)
	})

	t.Run("missing LoRA is refused before running", func(t *testing.T) {
		j := parse(t, "e2e-nolora", jobInput(t, "x", 1, map[string]any{"loras": []map[string]any{{"name": "nope.safetensors"}}}))
		b, err := workflow.Build(j, profile, caps)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.upload(t.Context(), b.ImageName, j.Prepared); err != nil {
			t.Fatal(err)
		}
		r, err := c.runPrompt(ensureTimeout(t, time.Minute), b.Graph, j.ID, b.ExtraPNGInfo)
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			NodeErrors map[string]struct {
				Errors []struct {
					Type string `json:"type"`
				} `json:"errors"`
				ClassType string `json:"class_type"`
			} `json:"node_errors"`
		}
		json.Unmarshal(r.body, &resp)
		node := workflow.LoRANode(job.ExpertHigh, 1)
		ne := resp.NodeErrors[node]
		if r.status != 400 || len(ne.Errors) == 0 || ne.Errors[0].Type != "value_not_in_list" {
			t.Errorf("POST /prompt = %d %s; want 400 with value_not_in_list on %s", r.status, truncate(string(r.body), 500), node)
		}
	})

	checkLog(t, srv.log)
	if first != nil {
		writeTimings(t, e, srv, first)
	}
}

// writeTimings keeps the first run's stage times next to the logs.
func writeTimings(t *testing.T, e *env, srv *server, stages map[string]time.Duration) {
	_, mem := srv.memory()
	out := map[string]float64{"comfyui_start_s": srv.started.Seconds()}
	for k, v := range mem {
		out["peak_"+k+"_gib"] = v
	}
	for s, d := range stages {
		out[strings.ReplaceAll(s[2:], " ", "_")+"_s"] = d.Seconds()
	}
	data, _ := json.MarshalIndent(out, "", "  ")
	path := e.logPath(t, "timings-"+sanitize(t.Name())+".json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Log(err)
	}
}
