// Command wan22-worker is a RunPod Serverless worker that turns an image and a
// prompt into a short MP4 with WAN 2.2 image-to-video, driving ComfyUI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/wan22-worker/wan22-worker/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, &cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}
