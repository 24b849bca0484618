package deliver

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/mp4"
	"github.com/wan22-worker/wan22-worker/internal/mp4/mp4test"
)

// benchVideo is a real MP4 (832×480, 81 frames) padded with a 'free' box of
// random bytes to the given size: valid for ffprobe and mp4.Probe, and as
// incompressible as a real video.
func benchVideo(b *testing.B, size int) []byte {
	b.Helper()
	v := makeVideo(b, mp4test.Spec{Width: 832, Height: 480, Frames: 81, FPS: "16", FastStart: true})
	pad := size - len(v.data)
	if pad < 8 {
		b.Fatalf("video of %d bytes is larger than %d", len(v.data), size)
	}
	out := make([]byte, size)
	copy(out, v.data)
	binary.BigEndian.PutUint32(out[len(v.data):], uint32(pad))
	copy(out[len(v.data)+4:], "free")
	_, _ = rand.Read(out[len(v.data)+8:])
	return out
}

// peakHeap samples the heap (runtime.MemStats.HeapAlloc, every millisecond)
// while a benchmark runs and reports the largest value above the starting
// point.
type peakHeap struct {
	base, peak uint64
	stop       chan struct{}
	done       sync.WaitGroup
}

func startPeakHeap() *peakHeap {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p := &peakHeap{base: ms.HeapAlloc, peak: ms.HeapAlloc, stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			p.peak = max(p.peak, ms.HeapAlloc)
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakHeap) report(b *testing.B) {
	close(p.stop)
	p.done.Wait()
	b.ReportMetric(float64(p.peak-p.base)/1e6, "peak-heap-MB")
}

// BenchmarkDeliver measures one delivery of a 5, 10 and 20 MB video: inline,
// to the volume, and to S3 when the test server is configured
// (WAN22_TEST_S3_ENDPOINT). peak-heap-MB is the heap above the starting
// point at its highest (DESIGN.md §10: the worker stays under 60 MB RSS
// while delivering a 10 MB video inline).
func BenchmarkDeliver(b *testing.B) {
	for _, mb := range []int{5, 10, 20} {
		data := benchVideo(b, mb*1000*1000)
		run := func(b *testing.B, d *Deliverer, mode job.Output) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			p := startPeakHeap()
			for i := 0; b.Loop(); i++ {
				got, err := d.Deliver(b.Context(), Request{JobID: fmt.Sprintf("bench-%d", i%2), Filename: "wan2_2_00001.mp4",
					Mode: mode, Video: bytes.NewReader(data), Size: int64(len(data))})
				if err != nil {
					b.Fatal(err)
				}
				if got.Info.Frames != 81 {
					b.Fatalf("info %+v", got.Info)
				}
				// One delivery per job: collect the previous result before
				// the next, so that the peak is one delivery's, as in the worker.
				got = nil
				b.StopTimer()
				runtime.GC()
				b.StartTimer()
			}
			p.report(b)
		}
		b.Run(fmt.Sprintf("inline/%dMB", mb), func(b *testing.B) {
			run(b, newDeliverer(b, Options{InlineMaxBytes: 1 << 30}), job.OutputBase64)
		})
		b.Run(fmt.Sprintf("volume/%dMB", mb), func(b *testing.B) {
			run(b, newDeliverer(b, Options{OutputDir: b.TempDir()}), job.OutputVolume)
		})
		b.Run(fmt.Sprintf("s3/%dMB", mb), func(b *testing.B) {
			if os.Getenv("WAN22_TEST_S3_ENDPOINT") == "" {
				b.Skip("WAN22_TEST_S3_ENDPOINT not set")
			}
			env := needS3(b)
			run(b, newDeliverer(b, Options{S3: env.options()}), job.OutputS3)
		})
	}
}

// BenchmarkLastFrame measures the ffmpeg extraction of the last frame of an
// 81-frame clip, the cost options.last_frame adds to a job.
func BenchmarkLastFrame(b *testing.B) {
	for _, s := range []mp4test.Spec{
		{Width: 832, Height: 480, Frames: 81, FPS: "16", CRF: 19},
		{Width: 1280, Height: 720, Frames: 121, FPS: "16", CRF: 19},
	} {
		b.Run(s.Name(), func(b *testing.B) {
			v := makeVideo(b, s)
			info, err := mp4.Probe(bytes.NewReader(v.data), int64(len(v.data)))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := LastFrame(b.Context(), "", v.path, info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
