package hfcache

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/hfcache/hfcachetest"
)

func TestFind(t *testing.T) {
	hub := t.TempDir()
	const oldRev, newRev = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	repack := hfcachetest.WriteRepo(t, hub, "Comfy-Org/Wan_2.2_ComfyUI_Repackaged", newRev, map[string][]hfcachetest.File{
		oldRev: {{Rel: "split_files/vae/wan_2.1_vae.safetensors", Content: "old vae"}},
		newRev: {
			{Rel: "split_files/vae/wan_2.1_vae.safetensors", Content: "new vae"},
			{Rel: "split_files/diffusion_models/high.safetensors", Content: "high"},
			{Rel: "split_files/text_encoders/te.safetensors", Content: ""}, // blob missing: unfinished
		},
	})
	// refs/main is read, not the newest folder: make the old snapshot the newest on disk.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(repack, "snapshots", oldRev), future, future); err != nil {
		t.Fatal(err)
	}
	hfcachetest.WriteRepo(t, hub, "Kijai/WanVideo_comfy", "", map[string][]hfcachetest.File{
		"3333333333333333333333333333333333333333": {{Rel: "Wan21_lora.safetensors", Content: "lora"}, {Rel: "te.safetensors", Content: "kijai te"}},
	})
	hfcachetest.WriteRepo(t, hub, "me/flat", "4444444444444444444444444444444444444444", map[string][]hfcachetest.File{
		"4444444444444444444444444444444444444444": {{Rel: "loras/wan/exact.safetensors", Content: "exact"}},
	})
	if err := os.WriteFile(filepath.Join(hub, "version.txt"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}

	repos := Scan([]string{filepath.Join(hub, "absent"), hub})
	var ids []string
	for _, r := range repos {
		ids = append(ids, r.ID)
	}
	if want := []string{"Comfy-Org/Wan_2.2_ComfyUI_Repackaged", "Kijai/WanVideo_comfy", "me/flat"}; !slices.Equal(ids, want) {
		t.Fatalf("repos %v, want %v", ids, want)
	}
	if repos[0].Main != newRev || filepath.Base(repos[0].Snapshots[0]) != newRev {
		t.Errorf("refs/main's snapshot is not first: %+v", repos[0])
	}

	tests := []struct {
		name      string
		dirs      []string
		file      string
		wantRepo  string
		wantRev   string
		wantBlob  string
		wantExact bool
	}{
		{"split_files, refs/main's revision", []string{"vae"}, "wan_2.1_vae.safetensors", "Comfy-Org/Wan_2.2_ComfyUI_Repackaged", newRev, "new vae", true},
		{"split_files under the legacy name's folder", []string{"unet", "diffusion_models"}, "high.safetensors", "Comfy-Org/Wan_2.2_ComfyUI_Repackaged", newRev, "high", true},
		{"unfinished blob skipped, next repo by base name", []string{"text_encoders", "clip"}, "te.safetensors", "Kijai/WanVideo_comfy", "3333333333333333333333333333333333333333", "kijai te", true},
		{"flat repo, subfolder name, by base name", []string{"loras"}, "wan/Wan21_lora.safetensors", "Kijai/WanVideo_comfy", "3333333333333333333333333333333333333333", "lora", false},
		{"folder/name exact", []string{"loras"}, "wan/exact.safetensors", "me/flat", "4444444444444444444444444444444444444444", "exact", true},
		{"absent", []string{"vae"}, "nope.safetensors", "", "", "", false},
		{"leaves its folder", []string{"vae"}, "../../etc/passwd", "", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := Find(repos, tc.dirs, tc.file)
			if ok != (tc.wantRepo != "") {
				t.Fatalf("found %v (%+v), want %v", ok, m, tc.wantRepo != "")
			}
			if !ok {
				return
			}
			blob, err := os.ReadFile(m.Target)
			if err != nil {
				t.Fatal(err)
			}
			if m.Repo != tc.wantRepo || m.Revision != tc.wantRev || string(blob) != tc.wantBlob || m.Exact != tc.wantExact || m.Size != int64(len(tc.wantBlob)) {
				t.Errorf("match %+v (blob %q), want %s@%s %q exact=%v", m, blob, tc.wantRepo, tc.wantRev, tc.wantBlob, tc.wantExact)
			}
			if want := filepath.Join(hub, "models--"+strings.ReplaceAll(tc.wantRepo, "/", "--"), "blobs"); filepath.Dir(m.Target) != want {
				t.Errorf("target %s not in %s", m.Target, want)
			}
		})
	}
}

func TestHubs(t *testing.T) {
	got := Hubs([]string{DefaultRunPodHub, "/hf/hub-cache/"}, "/hf/hub-cache", "/hf/home")
	want := []string{DefaultRunPodHub, "/hf/hub-cache", "/hf/home/hub"}
	if !slices.Equal(got, want) {
		t.Errorf("Hubs = %v, want %v", got, want)
	}
	if got := Hubs(nil, "", ""); len(got) != 0 {
		t.Errorf("no hubs: %v", got)
	}
}
