package runpod

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/wan22-worker/wan22-worker/internal/result"
	"io"

	"github.com/wan22-worker/wan22-worker/internal/worker"
)

// LocalTestID is the job id RunOnce uses when the test input has none, as
// RunPod's SDK does.
const LocalTestID = "local_test"

// RunOnce runs one job from a test input (the whole test_input.json:
// {"input": {...}}, optionally with "id"), writes the outcome as one JSON
// line in the shape posted to RunPod ({"output": ...} or {"error": ...,
// "output": ...}) to w, and returns the exit code: 0 when the job succeeded,
// 1 when it failed or the test input is unusable.
func RunOnce(ctx context.Context, h worker.Handler, input []byte, w io.Writer) (exitCode int) {
	out := runOnce(ctx, h, input)
	b := out.JSON()
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return 1
	}
	if out.Failed() {
		return 1
	}
	return 0
}

func runOnce(ctx context.Context, h worker.Handler, input []byte) result.Outcome {
	var test struct {
		ID    *string         `json:"id"`
		Input json.RawMessage `json:"input"`
	}
	dec := json.NewDecoder(bytes.NewReader(input))
	if err := dec.Decode(&test); err != nil {
		return result.Fail(errInvalidJob("the test input is not a JSON object: " + err.Error()))
	}
	if dec.More() {
		return result.Fail(errInvalidJob("the test input has data after its JSON object"))
	}
	if len(test.Input) == 0 || string(test.Input) == "null" {
		return result.Fail(errInvalidJob(`the test input has no "input"`))
	}
	id := LocalTestID
	if test.ID != nil && *test.ID != "" {
		id = *test.ID
	}
	res, err := result.Call(ctx, h, id, test.Input, nil)
	var cause error
	if ctx.Err() != nil {
		cause = context.Cause(ctx)
	}
	return result.Finish(res, err, cause)
}
