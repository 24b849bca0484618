package comfy_test

import (
	"bytes"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/comfy"
	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
)

// The graph builder's warm-up graph, validated by the fake with ComfyUI's
// own rules against the recorded /object_info, runs end to end with either
// writer.
func TestRunBuiltGraph(t *testing.T) {
	needFFmpeg(t)
	for _, tc := range []struct {
		name    string
		missing []string
		writer  workflow.Writer
	}{
		{"VideoHelperSuite", nil, workflow.WriterVHS},
		{"core SaveVideo", []string{"VHS_VideoCombine"}, workflow.WriterCore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fake(t, comfytest.Options{MissingNodes: tc.missing})
			c := client(t, s.URL)
			info, err := c.ObjectInfo(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			caps := workflow.CapabilitiesFrom(info)
			b, err := workflow.Warmup(workflow.ProfileFrom(config.Default()), caps, "warmup.png")
			if err != nil {
				t.Fatalf("Warmup: %v", err)
			}
			if b.Writer != tc.writer {
				t.Fatalf("writer %s, want %s", b.Writer, tc.writer)
			}
			name, err := c.Upload(t.Context(), b.ImageName, bytes.NewReader(comfytest.GradientPNG(workflow.WarmupWidth, workflow.WarmupHeight)))
			if err != nil {
				t.Fatal(err)
			}
			if name != b.ImageName {
				t.Fatalf("uploaded as %q, graph loads %q", name, b.ImageName)
			}
			var log progress.Recorder
			out, err := c.Run(testCtx(t), comfy.RunRequest{PromptID: "warmup", Graph: b.Graph, Stages: b.Stages(),
				OutputNode: b.OutputNode, Steps: b.Steps, Split: b.Split, OnProgress: log.Add, ExtraPNGInfo: b.ExtraPNGInfo})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if out.Video.Node != b.OutputNode {
				t.Errorf("video from node %s, want %s", out.Video.Node, b.OutputNode)
			}
			checkProgress(t, log.List(), b.Steps)
			info2 := probe(t, download(t, c, out.Video))
			if info2.Codec != "h264" || info2.PixFmt != "yuv420p" || info2.Width != workflow.WarmupWidth ||
				info2.Height != workflow.WarmupHeight || info2.Frames != "5" {
				t.Errorf("ffprobe %+v", info2)
			}
		})
	}
}
