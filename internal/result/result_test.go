package result_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/golden"
	"github.com/wan22-worker/wan22-worker/internal/result"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func res(id string) *worker.Result {
	return &worker.Result{Video: worker.Base64("AAAA"), Filename: "wan2_2_00001.mp4", PromptID: id, FilesCount: 1,
		MimeType: "video/mp4", Width: 64, Height: 64, Frames: 5, FrameRate: 16, Seed: 7, SizeBytes: 3}
}

func TestFinishShapes(t *testing.T) {
	nan := res("j")
	nan.DurationS = math.NaN()
	timeout := apperr.New(apperr.Timeout, "the job ran longer than JOB_TIMEOUT (30m0s)", "raise JOB_TIMEOUT")
	tests := []struct {
		name  string
		res   *worker.Result
		err   error
		cause error
		stop  bool
	}{
		{"success", res("j"), nil, nil, false},
		{"success stopPod", res("j"), nil, nil, true},
		{"typed error with every field", nil, &apperr.Error{Code: apperr.NodeMissing, Message: "node VHS_VideoCombine is not installed",
			Field: "options.output", Hint: "install ComfyUI-VideoHelperSuite", NodeID: "12", NodeType: "VHS_VideoCombine"}, nil, false},
		{"wrapped typed error", nil, fmt.Errorf("running: %w", apperr.New(apperr.OutOfMemory, "CUDA out of memory", "lower the resolution")), nil, false},
		{"plain error", nil, errors.New("disk on fire"), nil, false},
		{"bare deadline with typed cause", nil, context.DeadlineExceeded, timeout, false},
		{"bare deadline", nil, fmt.Errorf("wait: %w", context.DeadlineExceeded), nil, false},
		{"bare cancel", nil, context.Canceled, nil, false},
		{"neither", nil, nil, nil, false},
		{"unencodable result", nan, nil, nil, false},
	}
	var b bytes.Buffer
	for _, tc := range tests {
		out := result.Finish(tc.res, tc.err, tc.cause)
		out.StopPod = tc.stop
		fmt.Fprintf(&b, "%s\n%s\n\n", tc.name, out.JSON())
		if (tc.err != nil || tc.res == nil || tc.res == nan) != out.Failed() {
			t.Errorf("%s: Failed() = %v", tc.name, out.Failed())
		}
		if out.Failed() {
			var m struct {
				Error  string `json:"error"`
				Output struct {
					Error apperr.Error `json:"error"`
				} `json:"output"`
			}
			if err := json.Unmarshal(out.JSON(), &m); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(m.Error, string(m.Output.Error.Code)+": ") || m.Output.Error.Message == "" {
				t.Errorf("%s: error %q does not match output.error %+v", tc.name, m.Error, m.Output.Error)
			}
		}
	}
	golden.Check(t, filepath.Join("testdata", "outcomes.txt"), b.Bytes(), *update)
}

func TestPartsJoinToJSON(t *testing.T) {
	for _, o := range []result.Outcome{
		{},
		{StopPod: true},
		{Error: "INTERNAL: x"},
		{Error: "INTERNAL: x", StopPod: true},
		{Output: result.Body{[]byte(`{"video":"QUJD"}`)}},
		{Output: result.Body{[]byte(`{"video":"QUJD"}`)}, StopPod: true},
		{Error: "OUT_OF_MEMORY: \"quoted\"", Output: result.Body{[]byte(`{"error":{"code":"OUT_OF_MEMORY"}}`)}, StopPod: true},
	} {
		body := o.JSON()
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%+v: body %s is not JSON: %v", o, body, err)
		}
		want := 0
		if o.Error != "" {
			want++
		}
		if o.Output.Len() > 0 {
			want++
			if string(m["output"]) != string(o.Output.JSON()) {
				t.Errorf("output = %s, want %s", m["output"], o.Output)
			}
		}
		if o.StopPod {
			want++
		}
		if len(m) != want {
			t.Errorf("%s has %d keys, want %d", body, len(m), want)
		}
	}
}
