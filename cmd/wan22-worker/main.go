// Command wan22-worker is a RunPod Serverless worker that turns an image and a
// prompt into a short MP4 with WAN 2.2 image-to-video, driving ComfyUI.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/cli"
)

// memoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT sets
// one. The worker's heap is small except while a result carries an inline
// video (a few copies of up to ~14 MB of base64); the limit makes the
// collector return that memory promptly instead of letting the heap double,
// which keeps the worker's footprint next to ComfyUI's small. It is soft: a
// larger live heap still works.
const memoryLimit = 40 << 20

func main() {
	started := time.Now()
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, &cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Started: started}, os.Args[1:])
	stop()
	os.Exit(code)
}
