package models

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

func targetsFor(t *testing.T, dir string, layout Layout, fxs ...fixture) []Target {
	t.Helper()
	var out []Target
	for _, fx := range fxs {
		f := fx.file
		it := Item{Want: Want{Folder: f.Folder, Name: f.Name}, File: &f}
		dest, err := Destination(dir, layout, it)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Target{Item: it, Dest: dest})
	}
	return out
}

func plenty(string) (Space, error) { return Space{Dir: "/fs", Free: 1 << 40, Device: 1}, nil }

func TestPullParallel(t *testing.T) {
	fxs := []fixture{
		newFixture("high.safetensors", FolderDiffusionModels, 200_000, 1),
		newFixture("low.safetensors", FolderDiffusionModels, 150_000, 2),
		newFixture("t5.safetensors", FolderTextEncoders, 50_000, 3),
		newFixture("wan/lora.safetensors", FolderLoRAs, 20_000, 4),
	}
	hub := newHub(t, fxs...)
	hub.setFaults(fxs[0].file, dropAfter(70_000)) // one file drops and resumes
	dir := t.TempDir()
	targets := targetsFor(t, dir, LayoutOriginal, fxs...)
	// One file is already in place.
	os.MkdirAll(filepath.Dir(targets[2].Dest), 0o755)
	os.WriteFile(targets[2].Dest, fxs[2].data, 0o644)

	var ev events
	res, err := testDownloader(hub.URL).Pull(t.Context(), targets, PullOptions{Parallel: 3, FreeSpace: plenty}, ev.add)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
		if r.Present != (i == 2) {
			t.Errorf("%s: Present = %v", r.Name, r.Present)
		}
		got, _ := os.ReadFile(r.Dest)
		if !bytes.Equal(got, fxs[i].data) {
			t.Errorf("%s: content differs", r.Name)
		}
	}
	if n := len(hub.requestsFor(fxs[2].file)); n != 0 {
		t.Errorf("present file was requested %d times", n)
	}
	for _, want := range []string{"unet/high.safetensors", "clip/t5.safetensors", "loras/wan/lora.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("original layout: %v", err)
		}
	}
	if ev.phases()[PhasePresent] != 1 || ev.phases()[PhaseDone] != 3 {
		t.Errorf("phases = %v", ev.phases())
	}
}

func TestPullOneFailureDoesNotStopOthers(t *testing.T) {
	good := newFixture("good.safetensors", FolderVAE, 30_000, 1)
	missing := newFixture("missing.safetensors", FolderVAE, 30_000, 2)
	hub := newHub(t, good) // missing is not served: 404
	targets := targetsFor(t, t.TempDir(), LayoutComfy, missing, good)
	res, err := testDownloader(hub.URL).Pull(t.Context(), targets, PullOptions{Parallel: 1, FreeSpace: plenty}, nil)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v, want the 404", err)
	}
	if res[0].Err == nil || res[1].Err != nil {
		t.Errorf("results: missing %v, good %v", res[0].Err, res[1].Err)
	}
	if _, err := os.Stat(targets[1].Dest); err != nil {
		t.Errorf("good file not downloaded: %v", err)
	}
}

func TestPullRefusesWithoutDiskSpace(t *testing.T) {
	a := newFixture("a.safetensors", FolderVAE, 40_000, 1)
	b := newFixture("b.safetensors", FolderLoRAs, 60_000, 2)
	hub := newHub(t, a, b)
	dir := t.TempDir()
	targets := targetsFor(t, dir, LayoutComfy, a, b)
	// 10000 bytes of a are already there (a partial from an earlier run).
	os.MkdirAll(filepath.Dir(targets[0].Dest), 0o755)
	os.WriteFile(targets[0].Dest+PartialSuffix, a.data[:10_000], 0o644)

	tests := []struct {
		name   string
		free   int64
		margin int64
		ok     bool
	}{
		{"exactly enough", 90_000 + 500, 500, true},
		{"one byte short", 90_000 + 499, 500, false},
		{"margin counts", 95_000, 10_000, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			free := func(string) (Space, error) { return Space{Dir: dir, Free: tc.free, Device: 7}, nil }
			_, needs, err := planNeeds(targets, PullOptions{Margin: tc.margin, FreeSpace: free})
			if err != nil {
				t.Fatal(err)
			}
			if len(needs) != 1 || needs[0].Need != 90_000 {
				t.Fatalf("needs = %+v, want one filesystem needing 90000", needs)
			}
			if needs[0].Enough() != tc.ok {
				t.Errorf("Enough = %v", needs[0].Enough())
			}
		})
	}

	free := func(string) (Space, error) { return Space{Dir: dir, Free: 1000, Device: 7}, nil }
	_, err := testDownloader(hub.URL).Pull(t.Context(), targets, PullOptions{FreeSpace: free}, nil)
	var ns *NoSpaceError
	if !errors.As(err, &ns) || ns.Need != 90_000 || ns.Free != 1000 {
		t.Fatalf("err = %v, want *NoSpaceError for 90000 bytes", err)
	}
	if e := apperr.As(err); e == nil || !strings.Contains(e.Hint, "--dir") {
		t.Errorf("no hint: %v", err)
	}
	if n := len(hub.requestsFor(a.file)) + len(hub.requestsFor(b.file)); n != 0 {
		t.Errorf("%d requests made after refusing", n)
	}
}

func planNeeds(targets []Target, opts PullOptions) ([]Target, []Need, error) {
	todo, _, needs, err := Plan(targets, opts)
	return todo, needs, err
}

func TestPullCancelled(t *testing.T) {
	a := newFixture("a.safetensors", FolderVAE, 40_000, 1)
	hub := newHub(t, a)
	hub.setFaults(a.file, stallAfter(1000))
	ctx, cancel := context.WithCancel(t.Context())
	targets := targetsFor(t, t.TempDir(), LayoutComfy, a)
	_, err := testDownloader(hub.URL).Pull(ctx, targets, PullOptions{FreeSpace: plenty}, func(e Event) {
		if e.Done > 0 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestFreeSpace(t *testing.T) {
	dir := t.TempDir()
	sp, err := FreeSpace(filepath.Join(dir, "not", "yet", "there"))
	if err != nil {
		t.Skipf("FreeSpace unsupported: %v", err)
	}
	if sp.Dir != dir || sp.Free <= 0 || sp.Total < sp.Free {
		t.Errorf("FreeSpace = %+v", sp)
	}
}
