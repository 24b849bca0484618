package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseModels(t *testing.T) {
	got, err := parseModels("diffusion_models=b.safetensors, a.safetensors;vae=v.safetensors;loras=")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"diffusion_models": {"a.safetensors", "b.safetensors"}, "vae": {"v.safetensors"}, "loras": nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	if _, err := parseModels("nonsense"); err == nil {
		t.Error("want an error for a part without '='")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-fault", "meteor"}, {"-no-such-flag"}, {"-models", "x"}} {
		if code := run(args); code != 2 {
			t.Errorf("run(%v) = %d, want 2", args, code)
		}
	}
}

// TestHelpExitsZero: -h prints the usage and succeeds.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		if code := run(args); code != 0 {
			t.Errorf("run(%v) = %d, want 0", args, code)
		}
	}
}

func TestComfyArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		rest []string
		ok   bool
	}{
		{"supervisor's form", []string{"-u", "/opt/comfy/main.py", "--port", "1"}, []string{"--port", "1"}, true},
		{"bare main.py", []string{"main.py", "--listen", "127.0.0.1"}, []string{"--listen", "127.0.0.1"}, true},
		{"several interpreter flags", []string{"-B", "-u", "main.py"}, []string{}, true},
		{"fake flags", []string{"--addr", "127.0.0.1:1"}, nil, false},
		{"long flag before main.py", []string{"--dir", "main.py"}, nil, false},
		{"no arguments", nil, nil, false},
		{"other script", []string{"-u", "server.py"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest, ok := comfyArgs(tt.args)
			if ok != tt.ok || (ok && !reflect.DeepEqual(rest, tt.rest)) {
				t.Errorf("comfyArgs(%q) = %q, %v; want %q, %v", tt.args, rest, ok, tt.rest, tt.ok)
			}
		})
	}
}

func TestParseComfyArgs(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want comfyLaunch
		fake []string
	}{
		{
			name: "the supervisor's command line",
			args: []string{"--listen", "127.0.0.1", "--port", "41234", "--disable-auto-launch",
				"--input-directory", "/w/input", "--output-directory", "/w/output", "--temp-directory", "/w",
				"--extra-model-paths-config", "/w/extra_model_paths.yaml", "--preview-method", "none",
				"--disable-metadata", "--disable-api-nodes", "--fast", "fp16_accumulation", "cublas_ops",
				"--reserve-vram", "1.5", "--step-delay", "500ms", "--fault-once", "--node-delay=1ms"},
			want: comfyLaunch{listen: "127.0.0.1", port: 41234, input: "/w/input", output: "/w/output", temp: "/w", base: wd,
				extraPaths: "/w/extra_model_paths.yaml"},
			fake: []string{"-step-delay=500ms", "--fault-once", "-node-delay=1ms"},
		},
		{
			name: "defaults, = forms, several listen addresses, unknown flags",
			args: []string{"--listen=127.0.0.2,::1", "--port=9", "--no-such-flag", "--weird=1", "--cpu"},
			want: comfyLaunch{listen: "127.0.0.2", port: 9, base: wd},
		},
		{
			name: "bare --listen",
			args: []string{"--listen", "--port", "7"},
			want: comfyLaunch{listen: "0.0.0.0", port: 7, base: wd},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fake, err := parseComfyArgs(tt.args, newFlags(io.Discard).fs)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || !reflect.DeepEqual(fake, tt.fake) {
				t.Errorf("got %+v, fake flags %q; want %+v, %q", got, fake, tt.want, tt.fake)
			}
		})
	}
	for _, args := range [][]string{{"--port", "http"}, {"--port"}, {"--input-directory"}, {"--step-delay"}} {
		if _, _, err := parseComfyArgs(args, newFlags(io.Discard).fs); err == nil {
			t.Errorf("parseComfyArgs(%q): want an error", args)
		}
	}
	// A bad fake flag among ComfyUI's fails like any bad flag.
	if code := run([]string{"-u", "main.py", "--step-delay", "soon"}); code != 2 {
		t.Errorf("bad fake flag in ComfyUI mode: exit %d, want 2", code)
	}
}

func TestComfyWorkDir(t *testing.T) {
	t.Run("the supervisor's layout is used as is", func(t *testing.T) {
		w := t.TempDir()
		c := comfyLaunch{input: filepath.Join(w, "input"), output: filepath.Join(w, "output"), temp: w, base: t.TempDir()}
		dir, cleanup, err := c.workDir()
		if err != nil {
			t.Fatal(err)
		}
		defer cleanup()
		if dir != w {
			t.Errorf("dir = %s, want %s", dir, w)
		}
	})
	t.Run("other layouts are linked", func(t *testing.T) {
		in, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
		c := comfyLaunch{input: in, output: out, temp: tmp, base: t.TempDir()}
		dir, cleanup, err := c.workDir()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "input", "x.png"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(in, "x.png")); err != nil {
			t.Errorf("a file written to the fake's input/ is not in --input-directory: %v", err)
		}
		for _, d := range []string{filepath.Join(dir, "output"), filepath.Join(tmp, "temp")} {
			if st, err := os.Stat(d); err != nil || !st.IsDir() {
				t.Errorf("%s: not a directory (%v)", d, err)
			}
		}
		cleanup()
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("cleanup left %s", dir)
		}
		if _, err := os.Stat(filepath.Join(in, "x.png")); err != nil {
			t.Errorf("cleanup removed the linked directory's content: %v", err)
		}
	})
}
