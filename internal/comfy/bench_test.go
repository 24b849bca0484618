package comfy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/comfy"
	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
)

// BenchmarkJobOverhead measures the client's work for one job against a
// zero-latency fake serving a pre-made 5 MB MP4: upload an 832×832 PNG,
// queue, follow the websocket to the end, read the history, stream the
// video, clean up. ComfyUI's own execution time is zero here.
func BenchmarkJobOverhead(b *testing.B) {
	video := bytes.Repeat([]byte{0}, 5<<20)
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		mp4, err := comfytest.MakeMP4(context.Background(), "ffmpeg", comfytest.VideoSpec{Width: 832, Height: 832, Frames: 9, FPS: 16, CRF: 19})
		if err != nil {
			b.Fatal(err)
		}
		video = comfytest.PadMP4(mp4, 5<<20)
	}
	s := fake(b, comfytest.Options{Video: video})
	c := client(b, s.URL)
	img := comfytest.GradientPNG(832, 832)
	spec := defaultSpec("")
	spec.width, spec.height, spec.length, spec.steps, spec.split = 832, 832, 81, 6, 3
	b.ReportAllocs()
	b.SetBytes(int64(len(video)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("bench-%d", i)
		name, err := c.Upload(b.Context(), id+".png", bytes.NewReader(img))
		if err != nil {
			b.Fatal(err)
		}
		spec.image = name
		g, stages, outNode := wanGraph(spec)
		out, err := c.Run(b.Context(), comfy.RunRequest{PromptID: id, Graph: g, Stages: stages, OutputNode: outNode, Steps: 6, Split: 3})
		if err != nil {
			b.Fatal(err)
		}
		rc, _, err := c.Open(b.Context(), out.Video)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
		if err := c.Cleanup(b.Context(), id); err != nil {
			b.Fatal(err)
		}
	}
}
