// Package runpod speaks RunPod Serverless' worker protocol: it takes jobs,
// runs them on a worker.Handler one at a time, posts results (retried, never
// silently lost), forwards progress, keeps the heartbeat going on its own
// goroutine, honours the per-job stop channel and drains on shutdown. It also
// runs one job from a test_input.json (RunOnce). Results take the shape of
// package result.
package runpod

import (
	"fmt"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// The typed errors the loop itself produces.

func errShutdown() *apperr.Error {
	return apperr.New(apperr.Cancelled, "the worker is shutting down and the job did not finish within SHUTDOWN_GRACE",
		"submit the job again; it will run on another worker")
}

func errJobTimeout(limit string) *apperr.Error {
	return apperr.New(apperr.Timeout, "the job ran longer than JOB_TIMEOUT ("+limit+")",
		"ask for fewer frames or steps, or raise JOB_TIMEOUT")
}

func errTooLarge(size, status int) *apperr.Error {
	return apperr.New(apperr.OutputTooLarge,
		fmt.Sprintf("the result is %d bytes and RunPod refused it (HTTP %d)", size, status),
		"configure an S3-compatible bucket (BUCKET_ENDPOINT_URL) or ask for options.output=s3 (or volume); "+
			"inline results must stay under RunPod's limits (about 10 MB for /run, 20 MB for /runsync)")
}

func errRejected(status int, body string) *apperr.Error {
	return apperr.New(apperr.Internal, fmt.Sprintf("RunPod refused the job's result (HTTP %d: %s)", status, body),
		"this is a bug in the worker; report it with the worker's log")
}

func errInvalidJob(msg string) *apperr.Error {
	return apperr.New(apperr.InvalidInput, msg, `send {"input": {...}} with the job's fields inside "input"`)
}

func errAbandoned(waited string) *apperr.Error {
	return apperr.New(apperr.Internal, "the job did not stop within "+waited+" after it was cancelled",
		"the worker asks RunPod for a fresh worker; report this with the worker's log")
}
