package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/endpoint"
)

func runSubmitCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code := Main(t.Context(), e, append([]string{"submit"}, args...))
	return code, out.String(), errb.String()
}

func TestSubmitUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no endpoint", nil, []string{"--image", "x.png", "--prompt", "p"}, "--endpoint <RunPod endpoint id> or --api-url"},
		{"both", nil, []string{"--endpoint", "e", "--api-url", "http://h"}, "not both"},
		{"no key", nil, []string{"--endpoint", "abc123", "--image", "x.png", "--prompt", "p"}, "RUNPOD_API_KEY is not set"},
		{"bad url", nil, []string{"--api-url", "localhost:8000"}, "want http://host:port"},
		{"no image", nil, []string{"--api-url", "http://127.0.0.1:1", "--prompt", "p"}, "--image and --prompt"},
		{"missing image file", nil, []string{"--api-url", "http://127.0.0.1:1", "--image", "/nonexistent/x.png", "--prompt", "p"}, "reading the image"},
		{"batch without out-dir", nil, []string{"--api-url", "http://127.0.0.1:1", "--batch", "jobs.jsonl"}, "--batch needs --out-dir"},
		{"prompt and prompts", nil, []string{"--api-url", "http://127.0.0.1:1", "--image", "x", "--prompt", "a", "--prompts", "f"}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runSubmitCmd(t, tc.env, tc.args...)
			if code != exitInvalid || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant %q", code, stderr, tc.want)
			}
		})
	}
}

func TestSubmitClientTarget(t *testing.T) {
	cfg := &config.Config{APIToken: "local-token"}
	env := &Env{Getenv: func(k string) string { return map[string]string{"RUNPOD_API_KEY": "rp-key"}[k] }}
	c, err := (&submitFlags{endpoint: "abc123"}).client(env, cfg)
	if err != nil || c.Base() != "https://api.runpod.ai/v2/abc123" {
		t.Errorf("--endpoint: base %v, %v", c, err)
	}
	c, err = (&submitFlags{apiURL: "http://127.0.0.1:8000/"}).client(env, cfg)
	if err != nil || c.Base() != "http://127.0.0.1:8000" {
		t.Errorf("--api-url: %v, %v", c, err)
	}
}

func TestJobError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		st    endpoint.Status
		code  apperr.Code
		hint  string
		input bool
	}{
		{"typed", endpoint.Status{Status: "FAILED", Error: "INVALID_INPUT: bad",
			Output: json.RawMessage(`{"error":{"code":"INVALID_INPUT","message":"bad","field":"options.length","hint":"use 81"}}`)},
			apperr.InvalidInput, "use 81", true},
		{"string only", endpoint.Status{Status: "FAILED", Error: "OUT_OF_MEMORY: CUDA out of memory"}, apperr.OutOfMemory, "", false},
		{"plain text", endpoint.Status{Status: "FAILED", Error: "handler crashed"}, apperr.ExecutionFailed, "", false},
		{"timed out", endpoint.Status{Status: "TIMED_OUT"}, apperr.Timeout, "raise the endpoint's execution timeout, or make the job shorter", false},
		{"cancelled", endpoint.Status{ID: "j", Status: "CANCELLED"}, apperr.Cancelled, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := apperr.As(jobError(&tc.st))
			if e == nil || e.Code != tc.code || e.Hint != tc.hint || inputCode(e.Code) != tc.input {
				t.Errorf("jobError = %#v", e)
			}
		})
	}
}

func TestPromptsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "prompts.txt")
	if err := os.WriteFile(p, []byte("# a comment\nfirst\n\n  second  \nthird\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := jobFlags{promptsFile: p}
	got, err := g.promptList()
	if err != nil || strings.Join(got, "|") != "first|second|third" {
		t.Errorf("promptList = %q, %v", got, err)
	}
}

func TestResumeCommandLine(t *testing.T) {
	args := []string{"--api-url", "http://h", "--prompt", "it's night", "--from-clip", "2", "--from-clip=3", "-o", "a b.mp4"}
	got := shellJoin(withoutFlag(args, "from-clip"))
	want := `--api-url http://h --prompt 'it'\''s night' -o 'a b.mp4'`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestJobFileInputReadsLocalImage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cat.png"), []byte("PNGDATA"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ image, want string }{
		{"cat.png", "UE5HREFUQQ=="},
		{"https://example.com/cat.png", "https://example.com/cat.png"},
		{"aGVsbG8=", "aGVsbG8="},
		{"missing.png", "missing.png"},
	} {
		in, err := jobFileInput([]byte(`{"input": {"prompt": "p", "image": "`+tc.image+`", "options": {"seed": 18446744073709551615}}}`), dir)
		if err != nil {
			t.Fatal(err)
		}
		if in["image"] != tc.want {
			t.Errorf("image %q → %q, want %q", tc.image, in["image"], tc.want)
		}
		if s := optionsOf(in)["seed"]; s != json.Number("18446744073709551615") {
			t.Errorf("seed = %v", s)
		}
	}
}
