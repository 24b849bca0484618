package runpod_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/runpod"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

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
