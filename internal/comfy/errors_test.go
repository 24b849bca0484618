package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"github.com/wan22-worker/wan22-worker/internal/golden"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func recorded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("comfytest", "testdata", "recorded", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recordedBody returns the body of a recorded {request, status, body} file.
func recordedBody(t *testing.T, name string) (int, []byte) {
	var ex struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(recorded(t, name), &ex); err != nil {
		t.Fatal(err)
	}
	return ex.Status, ex.Body
}

// TestErrorMapping maps every kind of failure ComfyUI reports (the recorded
// bodies, and execution errors shaped as the server sends them) and compares
// the contract errors with testdata/errors.golden.json (-update rewrites it).
func TestErrorMapping(t *testing.T) {
	type result struct {
		Name   string          `json:"name"`
		Errors []*apperr.Error `json:"errors"`
	}
	flatten := func(err error) []*apperr.Error {
		var l apperr.List
		if errors.As(err, &l) {
			return l
		}
		return []*apperr.Error{apperr.From(err)}
	}
	var results []result
	add := func(name string, err error) {
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		results = append(results, result{name, flatten(err)})
	}
	lookup := func(folder string) []string {
		return map[string][]string{"diffusion_models": {"wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors", "wan2.2_i2v_high_noise_14B_fp16.safetensors"}}[folder]
	}
	for _, name := range []string{"prompt_unknown_class.json", "prompt_missing_image.json", "prompt_unet_not_in_list.json",
		"prompt_no_outputs.json", "prompt_no_prompt.json", "prompt_wan_graph_no_models.json", "prompt_partial_node_errors.json"} {
		status, body := recordedBody(t, name)
		add(name, errPrompt(status, body, lookup))
	}
	add("VHS_VideoCombine missing", errPrompt(400, []byte(`{"error": {"type": "invalid_prompt", "message": "Cannot execute because node VHS_VideoCombine does not exist.", "details": "Node ID '#16'", "extra_info": {}}, "node_errors": {}}`), nil))
	add("missing_node_type (newer ComfyUI)", errPrompt(400, []byte(`{"error": {"type": "missing_node_type", "message": "Node 'VHS_VideoCombine' not found. The custom node may not be installed.", "details": "Node ID '#16'", "extra_info": {"node_id": "16", "class_type": "VHS_VideoCombine", "node_title": "Video Combine"}}, "node_errors": {}}`), nil))
	add("long model list (input_config null)", errPrompt(400, []byte(`{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": {"1": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "unet_name: 'x.safetensors' not in (list of length 25)", "extra_info": {"input_name": "unet_name", "input_config": null, "received_value": "x.safetensors"}}], "dependent_outputs": ["16"], "class_type": "UNETLoader"}}}`), lookup))
	add("required input missing", errPrompt(400, []byte(`{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "Required input is missing: vae", "extra_info": {}}, "node_errors": {"15": {"errors": [{"type": "required_input_missing", "message": "Required input is missing", "details": "vae", "extra_info": {"input_name": "vae"}}], "dependent_outputs": ["16"], "class_type": "VAEDecode"}}}`), nil))
	add("HTML error page", errPrompt(400, []byte(`<html>bad</html>`), nil))

	var history map[string]struct {
		Status historyStatus `json:"status"`
	}
	if err := json.Unmarshal(recorded(t, "history_error.json"), &history); err != nil {
		t.Fatal(err)
	}
	add("history_error.json", errFromHistory("job-0003", history["job-0003"].Status))
	for _, e := range []execError{
		{NodeID: "14", NodeType: "KSamplerAdvanced", ExceptionType: "torch.OutOfMemoryError",
			ExceptionMessage: "Allocation on device \nThis error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number."},
		{NodeID: "15", NodeType: "VAEDecode", ExceptionType: "RuntimeError", ExceptionMessage: "CUDA out of memory. Tried to allocate 2.00 GiB\n"},
		{NodeID: "16", NodeType: "VHS_VideoCombine", ExceptionType: "ProcessLookupError", ExceptionMessage: "ffmpeg is required for video outputs and could not be found.\nIn order to use video outputs..."},
		{NodeID: "13", NodeType: "KSamplerAdvanced", ExceptionType: "RuntimeError", ExceptionMessage: "CUDA error: an illegal memory access was encountered\n"},
		{NodeID: "12", NodeType: "WanImageToVideo", ExceptionType: "ValueError", ExceptionMessage: "bad shape\n"},
	} {
		add("execution_error "+e.ExceptionType+" "+e.NodeType, errExecution(e))
	}
	add("execution_interrupted", errInterrupted(interrupted{NodeID: "13", NodeType: "KSamplerAdvanced"}))
	add("prompt lost", errPromptLost("job-1"))
	add("no video", errNoVideo("job-1", []OutputFile{{Filename: "x_00001.png"}}))
	for _, st := range []int{503, 413, 500} {
		add("HTTP status "+strconv.Itoa(st), mapStatus(&statusError{op: "POST /upload/image", status: st, body: []byte("oops")}))
	}
	add("view 404", errViewMissing(OutputFile{Filename: "wan2_2_00001.mp4", Subfolder: "wan22/job-1", Type: "output"}, &statusError{op: "GET /view", status: 404}))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	add("context cancelled", errContext(cancelled))
	shutdown, cancelShutdown := context.WithCancelCause(context.Background())
	cancelShutdown(apperr.New(apperr.Cancelled, "the worker is shutting down and the job did not finish within SHUTDOWN_GRACE",
		"submit the job again; it will run on another worker"))
	add("context cancelled by shutdown", errContext(shutdown))
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	add("context deadline", errContext(expired))

	got, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden.Check(t, filepath.Join("testdata", "errors.golden.json"), got, *update)
	for _, r := range results {
		for _, e := range r.Errors {
			if e.Hint == "" && e.Code != apperr.Cancelled {
				t.Errorf("%s: %s has no hint", r.Name, e.Code)
			}
		}
	}
}

// TestCancelCauseKeptWhole: a typed cancel cause is the job's error as it
// is: one code, one message, its hint (no "CANCELLED: ... CANCELLED: ...").
func TestCancelCauseKeptWhole(t *testing.T) {
	cause := apperr.New(apperr.Cancelled, "the worker is shutting down and the job did not finish within SHUTDOWN_GRACE",
		"submit the job again; it will run on another worker")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	e := errContext(ctx)
	if e == nil || e.Code != apperr.Cancelled || e.Message != cause.Message || e.Hint != cause.Hint {
		t.Fatalf("errContext = %+v, want %+v", e, cause)
	}
	if n := strings.Count(e.Error(), "CANCELLED"); n != 1 {
		t.Errorf("%q names CANCELLED %d times", e.Error(), n)
	}
}

func TestErrorCodes(t *testing.T) {
	status, body := recordedBody(t, "prompt_wan_graph_no_models.json")
	err := errPrompt(status, body, nil)
	var l apperr.List
	if !errors.As(err, &l) {
		t.Fatalf("want a list, got %v", err)
	}
	// Sorted: model files first (by node id), the missing input image last.
	var ids []string
	for _, e := range l {
		ids = append(ids, e.NodeID+":"+string(e.Code))
	}
	want := "1:MODEL_MISSING 2:MODEL_MISSING 3:MODEL_MISSING 4:MODEL_MISSING 7:MODEL_MISSING 10:MODEL_MISSING 11:EXECUTION_FAILED"
	if got := join(ids); got != want {
		t.Errorf("order %s\nwant  %s", got, want)
	}
	if apperr.CodeOf(err) != apperr.ModelMissing {
		t.Errorf("code %s", apperr.CodeOf(err))
	}
	if !errors.Is(errPromptLost("x"), ErrPromptLost) {
		t.Error("ErrPromptLost not in the chain")
	}
}

func join(s []string) string { return strings.Join(s, " ") }

func TestClosest(t *testing.T) {
	for _, tc := range []struct {
		name string
		have []string
		want string
	}{
		{"wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
			[]string{"umt5.safetensors", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors", "wan2.2_i2v_high_noise_14B_fp8_scaled.sft"},
			"wan2.2_i2v_high_noise_14B_fp8_scaled.sft wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors umt5.safetensors"},
		{"wan/lora.safetensors", []string{"b.safetensors", "lora.safetensors", "a.safetensors"}, "lora.safetensors a.safetensors b.safetensors"},
		{"x", nil, ""},
	} {
		if got := join(closest(tc.name, tc.have)); got != tc.want {
			t.Errorf("closest(%s) = %s, want %s", tc.name, got, tc.want)
		}
	}
}
