package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/config"
)

func TestChooseServeMode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "job.json")
	if err := os.WriteFile(file, []byte(`{"input":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	off := config.Default()
	on := config.Default()
	on.RunPodGetJobURL = "http://127.0.0.1/job-take/$ID?gpu=x"

	tests := []struct {
		name      string
		cfg       *config.Config
		api       bool
		testInput string
		cwdFile   bool // ./test_input.json exists
		want      string
		wantErr   string
	}{
		{name: "api", cfg: off, api: true, want: "api"},
		{name: "api beats RunPod", cfg: on, api: true, want: "api"},
		{name: "test input", cfg: off, testInput: file, want: "once"},
		{name: "test input beats RunPod", cfg: on, testInput: file, want: "once"},
		{name: "on RunPod", cfg: on, cwdFile: true, want: "runpod"},
		{name: "off RunPod with ./test_input.json", cfg: off, cwdFile: true, want: "once"},
		{name: "off RunPod without one", cfg: off, wantErr: "RUNPOD_WEBHOOK_GET_JOB is unset"},
		{name: "both flags", cfg: off, api: true, testInput: file, wantErr: "exclude"},
		{name: "missing file", cfg: off, testInput: filepath.Join(dir, "nope.json"), wantErr: "reading the test input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wd := t.TempDir()
			if tc.cwdFile {
				if err := os.WriteFile(filepath.Join(wd, defaultTestInput), []byte(`{"input":{}}`), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(wd)
			mode, input, err := chooseServeMode(tc.cfg, tc.api, tc.testInput)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || mode != tc.want {
				t.Fatalf("mode = %q, %v; want %q", mode, err, tc.want)
			}
			if mode == "once" && len(input) == 0 {
				t.Error("once without the job")
			}
		})
	}
}
