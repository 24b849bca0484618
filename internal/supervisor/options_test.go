package supervisor

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
)

func TestCommandLineFromConfig(t *testing.T) {
	base := "python3 -u /comfyui/main.py --listen 127.0.0.1 --port 8188 --disable-auto-launch " +
		"--input-directory /w/input --output-directory /w/output --temp-directory /w " +
		"--extra-model-paths-config /w/extra_model_paths.yaml --user-directory /w/user --database-url sqlite:////w/user/comfyui.db --preview-method none --disable-metadata --disable-api-nodes"
	tests := []struct {
		name    string
		env     map[string]string
		want    string // the flags after base
		wantErr string
	}{
		{"defaults", nil, "", ""},
		{"vram modes", map[string]string{"COMFY_VRAM_MODE": "gpu-only"}, " --gpu-only", ""},
		{"cpu", map[string]string{"COMFY_VRAM_MODE": "cpu", "COMFY_ATTENTION": "pytorch"}, " --cpu --use-pytorch-cross-attention", ""},
		{"attention split", map[string]string{"COMFY_ATTENTION": "split"}, " --use-split-cross-attention", ""},
		{"attention quad", map[string]string{"COMFY_ATTENTION": "quad"}, " --use-quad-cross-attention", ""},
		{"attention flash", map[string]string{"COMFY_ATTENTION": "flash"}, " --use-flash-attention", ""},
		{"fast all", map[string]string{"COMFY_FAST": "all"}, " --fast", ""},
		{"fast list", map[string]string{"COMFY_FAST": "fp16_accumulation, cublas_ops autotune"}, " --fast fp16_accumulation cublas_ops autotune", ""},
		{"fast unknown", map[string]string{"COMFY_FAST": "warp_speed"}, "", `COMFY_FAST: unknown optimization "warp_speed"`},
		{"reserve", map[string]string{"COMFY_RESERVE_VRAM": "0.75"}, " --reserve-vram 0.75", ""},
		{"extra args last", map[string]string{"COMFY_EXTRA_ARGS": " --cache-lru 8  --verbose DEBUG", "COMFY_VRAM_MODE": "lowvram"},
			" --lowvram --cache-lru 8 --verbose DEBUG", ""},
		{"python", map[string]string{"COMFY_PYTHON": "/venv/bin/python", "COMFYUI_DIR": "/opt/ComfyUI"}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(nil, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			o := OptionsFrom(c)
			o.WorkDir = "/w"
			argv, err := o.CommandLine(8188)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := base + tc.want
			if tc.name == "python" {
				want = strings.Replace(base, "python3 -u /comfyui/main.py", "/venv/bin/python -u /opt/ComfyUI/main.py", 1)
			}
			if got := strings.Join(argv, " "); got != want {
				t.Errorf("command line\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestCommandLineRejectsUnknownModes(t *testing.T) {
	for _, o := range []Options{{VRAMMode: "turbo"}, {Attention: "xformers"}} {
		if _, err := o.CommandLine(1); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestOptionsFrom(t *testing.T) {
	c := config.Default()
	o := OptionsFrom(c)
	if o.ComfyDir != "/comfyui" || o.LogFile != "/comfyui/comfyui.log" || o.MaxRestarts != 3 ||
		o.StartTimeout != 5*time.Minute || strings.Join(o.ModelsDirs, ":") != "/runpod-volume/models:/comfyui/models" {
		t.Errorf("options %+v", o)
	}
	d := o.withDefaults()
	if d.StopGrace != 10*time.Second || d.BackoffMin != time.Second || d.BackoffMax != 30*time.Second ||
		d.RestartWindow != 10*time.Minute || d.TailLines != 64 || d.TailBytes != 16<<10 {
		t.Errorf("defaults %+v", d)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second}, {6, 30 * time.Second}, {60, 30 * time.Second}}
	for _, tc := range tests {
		if got := backoff(tc.n, time.Second, 30*time.Second); got != tc.want {
			t.Errorf("backoff(%d) = %s, want %s", tc.n, got, tc.want)
		}
	}
}

func TestCrashWindow(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	w := crashWindow{span: 10 * time.Minute}
	steps := []struct {
		at   time.Duration
		want int
	}{{0, 1}, {time.Minute, 2}, {9 * time.Minute, 3}, {10 * time.Minute, 3}, {25 * time.Minute, 1}}
	for _, s := range steps {
		if got := w.add(t0.Add(s.at)); got != s.want {
			t.Errorf("crash at +%s: %d in window, want %d", s.at, got, s.want)
		}
	}
	if got := w.count(t0.Add(time.Hour)); got != 0 {
		t.Errorf("an hour later: %d", got)
	}
}

func TestUserError(t *testing.T) {
	tail := strings.Repeat("line\n", 30) + "RuntimeError: CUDA error"
	tests := []struct {
		err      error
		code     apperr.Code
		contains string
	}{
		{&ExitedError{ExitCode: 1, Status: "exit status 1", Tail: tail}, apperr.ComfyUnavailable, "exit status 1); last lines of its log:\n"},
		{&TimeoutError{After: time.Minute, Tail: tail}, apperr.ComfyUnavailable, "within 1m0s"},
		{&CancelledError{Err: context.Canceled}, apperr.Cancelled, "cancelled"},
		{&CrashError{Status: "signal: killed", Tail: tail}, apperr.ComfyCrashed, "RuntimeError: CUDA error"},
		{ErrStopped, apperr.ComfyUnavailable, "stopping"},
		{&setupError{errors.New("COMFY_FAST: bad"), "fix it"}, apperr.ComfyUnavailable, "COMFY_FAST: bad"},
		{errors.New("other"), apperr.ComfyUnavailable, "other"},
	}
	for _, tc := range tests {
		got := userError(tc.err, "/comfyui/comfyui.log")
		e := apperr.As(got)
		if e == nil || e.Code != tc.code || !strings.Contains(e.Message, tc.contains) || e.Hint == "" || !errors.Is(got, tc.err) {
			t.Errorf("%T: %+v", tc.err, e)
			continue
		}
		if n := strings.Count(e.Message, "\n"); n > errTailLines {
			t.Errorf("%T: message quotes %d lines", tc.err, n)
		}
	}
	if userError(nil, "") != nil {
		t.Error("nil maps to an error")
	}
	already := apperr.New(apperr.Internal, "x", "y")
	if userError(already, "") != error(already) {
		t.Error("an *apperr.Error is wrapped again")
	}
}

func TestAttach(t *testing.T) {
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/comfy/system_stats" || !up.Load() {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	a, err := Attach(srv.URL+"/comfy/", 300*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.URL() != srv.URL+"/comfy" {
		t.Errorf("URL %q", a.URL())
	}
	err = a.Start(t.Context())
	var te *TimeoutError
	if !errors.As(err, &te) || apperr.CodeOf(err) != apperr.ComfyUnavailable {
		t.Fatalf("Start on a server that is down = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.Start(ctx); !errors.Is(err, context.Canceled) || apperr.CodeOf(err) != apperr.Cancelled {
		t.Errorf("cancelled Start = %v", err)
	}

	up.Store(true)
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	inc := a.Current()
	if inc.Done() != nil || inc.Err() != nil || inc.URL() != a.URL() || !closed(inc.Ready()) {
		t.Errorf("attached incarnation %+v", inc)
	}
	if ok, _ := a.Healthy(); !ok || a.Crashes() != nil || a.LogTail() != "" {
		t.Error("attached server reports process state")
	}
	if a.RemoveInput("x") != nil || a.RemoveOutput("a", "b") != nil || a.Stop(t.Context()) != nil {
		t.Error("attached no-ops failed")
	}
	up.Store(false)
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := a.Ready(ctx); apperr.CodeOf(err) != apperr.ComfyUnavailable {
		t.Errorf("Ready on a down server = %v", err)
	}
}

func TestAttachRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8188", "ftp://x", "http://", "http://x/?a=1"} {
		if _, err := Attach(u, time.Second, nil); apperr.CodeOf(err) != apperr.ComfyUnavailable {
			t.Errorf("Attach(%q) = %v", u, err)
		}
	}
}

func TestFromConfig(t *testing.T) {
	c := config.Default()
	s, err := FromConfig(c, nil)
	if _, ok := s.(*Supervisor); err != nil || !ok {
		t.Errorf("default: %T, %v", s, err)
	}
	c, _ = config.Load(nil, func(k string) string {
		if k == "COMFY_URL" {
			return "http://comfy:8188"
		}
		return ""
	})
	s, err = FromConfig(c, nil)
	if a, ok := s.(*Attached); err != nil || !ok || a.URL() != "http://comfy:8188" {
		t.Errorf("COMFY_URL: %T, %v", s, err)
	}
}
