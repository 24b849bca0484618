package runpod_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/wan22-worker/wan22-worker/internal/golden"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/runpod"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenFile compares got with testdata/name, or rewrites it with -update.
func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got, *update)
}

func TestFinishShapes(t *testing.T) {
	nan := result("j")
	nan.DurationS = math.NaN()
	timeout := apperr.New(apperr.Timeout, "the job ran longer than JOB_TIMEOUT (30m0s)", "raise JOB_TIMEOUT")
	tests := []struct {
		name  string
		res   *worker.Result
		err   error
		cause error
		stop  bool
	}{
		{"success", result("j"), nil, nil, false},
		{"success stopPod", result("j"), nil, nil, true},
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
		out := runpod.Finish(tc.res, tc.err, tc.cause)
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
	goldenFile(t, "outcomes.txt", b.Bytes())
}

func TestRunOnce(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantExit int
		wantID   string
		wantCode string
	}{
		{name: "success with default id", input: `{"input":{"prompt":"a cat"}}`, wantExit: 0, wantID: "local_test"},
		{name: "id given", input: `{"id":"my-job","input":{"prompt":"a cat"}}`, wantExit: 0, wantID: "my-job"},
		{name: "no input", input: `{"id":"x"}`, wantExit: 1, wantCode: "INVALID_INPUT"},
		{name: "null input", input: `{"input":null}`, wantExit: 1, wantCode: "INVALID_INPUT"},
		{name: "not json", input: `{"input":`, wantExit: 1, wantCode: "INVALID_INPUT"},
		{name: "trailing data", input: `{"input":{}} {}`, wantExit: 1, wantCode: "INVALID_INPUT"},
		{name: "handler fails", input: `{"input":{"fail":true}}`, wantExit: 1, wantID: "local_test", wantCode: "IMAGE_INVALID"},
		{name: "handler panics", input: `{"input":{"panic":true}}`, wantExit: 1, wantID: "local_test", wantCode: "INTERNAL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newScripted(func(ctx context.Context, id string, in json.RawMessage, _ progress.Func) (*worker.Result, error) {
				switch {
				case strings.Contains(string(in), "fail"):
					return nil, apperr.Field(apperr.ImageInvalid, "image", "not an image", "send a PNG")
				case strings.Contains(string(in), "panic"):
					panic("boom")
				}
				return result(id), nil
			})
			var out bytes.Buffer
			code := runpod.RunOnce(t.Context(), h, []byte(tc.input), &out)
			if code != tc.wantExit {
				t.Errorf("exit = %d, want %d", code, tc.wantExit)
			}
			calls := h.Calls()
			if tc.wantID != "" && (len(calls) != 1 || calls[0] != tc.wantID) {
				t.Errorf("handler calls = %v, want [%s]", calls, tc.wantID)
			}
			if tc.wantID == "" && len(calls) != 0 {
				t.Errorf("handler ran on a bad test input: %v", calls)
			}
			if !bytes.HasSuffix(out.Bytes(), []byte("}\n")) || bytes.Count(out.Bytes(), []byte("\n")) != 1 {
				t.Errorf("output is not one JSON line: %q", out.String())
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(out.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m["output"]; !ok {
				t.Errorf("no output key: %s", out.String())
			}
			if tc.wantCode == "" {
				if _, ok := m["error"]; ok {
					t.Errorf("error on success: %s", out.String())
				}
				return
			}
			if !strings.Contains(string(m["error"]), tc.wantCode+": ") {
				t.Errorf("error = %s, want code %s", m["error"], tc.wantCode)
			}
		})
	}
}

func TestPartsJoinToJSON(t *testing.T) {
	for _, o := range []runpod.Outcome{
		{},
		{StopPod: true},
		{Error: "INTERNAL: x"},
		{Error: "INTERNAL: x", StopPod: true},
		{Output: []byte(`{"video":"QUJD"}`)},
		{Output: []byte(`{"video":"QUJD"}`), StopPod: true},
		{Error: "OUT_OF_MEMORY: \"quoted\"", Output: []byte(`{"error":{"code":"OUT_OF_MEMORY"}}`), StopPod: true},
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
		if len(o.Output) > 0 {
			want++
			if string(m["output"]) != string(o.Output) {
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
