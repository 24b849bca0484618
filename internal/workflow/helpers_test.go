package workflow

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/wan22-worker/wan22-worker/internal/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/job"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// recordedSchema loads the /object_info recorded from ComfyUI v0.3.64 + VHS.
func recordedSchema(t testing.TB) Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "object_info.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := LoadSchema(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recordedObjectInfo(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "object_info.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

// defaultProfile is the profile of the default configuration.
func defaultProfile() Profile { return ProfileFrom(config.Default()) }

// allCaps is a server with VideoHelperSuite and TorchCompileModel.
var allCaps = Capabilities{VideoHelperSuite: true, TorchCompile: true}

// defaultJob is a job with every option at its default (DESIGN.md §3), an
// 832×832 image and a fixed seed.
func defaultJob() *job.Job {
	return &job.Job{
		ID:             "job-123",
		Prompt:         "A white dragon warrior stands still; the camera slowly circles around it.",
		NegativePrompt: job.DefaultNegativePrompt,
		Options: job.Options{
			Width: 832, Height: 832, Fit: job.DefaultFit, Length: job.DefaultLength,
			Steps: job.DefaultSteps, SplitStep: (job.DefaultSteps + 1) / 2, CFG: job.DefaultCFG,
			Shift: job.DefaultShift, Sampler: job.DefaultSampler, Scheduler: job.DefaultScheduler,
			FrameRate: job.DefaultFrameRate, Seed: 123456, CRF: job.DefaultCRF, Output: job.DefaultOutput,
		},
		Image: job.ImageInfo{Source: "base64", Format: "png", Width: 832, Height: 832, Bytes: 1000},
	}
}

// modelsFor lists exactly the models the profile and the job need.
func modelsFor(p Profile, j *job.Job) ModelLists {
	m := ModelLists{}
	for _, r := range append(p.Required(), RequestModels(j)...) {
		m[r.Folder] = append(m[r.Folder], r.Name)
	}
	return m
}

func mustBuild(t testing.TB, j *job.Job, p Profile, caps Capabilities) *Built {
	t.Helper()
	b, err := Build(j, p, caps)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

// encode is the graph as the golden files hold it: indented JSON.
func encode(t testing.TB, g Graph) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// goldenGraph compares got with testdata/golden/<name>.json, or rewrites it with -update.
func goldenGraph(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "golden", name+".json"), got, *update)
}

// problemsText renders problems one per line, for failure messages.
func problemsText(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}
