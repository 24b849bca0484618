// Package hfcachetest builds fake Hugging Face hub caches for tests, laid out as huggingface_hub writes them.
package hfcachetest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// File is one file of a fake cached repo: its path in a snapshot and its content. An empty content makes a
// symlink whose blob is missing, as after an unfinished download.
type File struct{ Rel, Content string }

// RepoDir is the cache folder of repo id (org/name) in hub.
func RepoDir(hub, id string) string {
	return filepath.Join(hub, "models--"+strings.ReplaceAll(id, "/", "--"))
}

// WriteRepo builds <hub>/models--org--name: contents in blobs/, each snapshot's files as relative symlinks
// into blobs/, and refs/main naming main (none when main is ""). It returns the repo's folder.
func WriteRepo(t testing.TB, hub, id, main string, revs map[string][]File) string {
	t.Helper()
	dir := RepoDir(hub, id)
	names := make([]string, 0, len(revs))
	for rev := range revs {
		names = append(names, rev)
	}
	sort.Strings(names)
	for _, rev := range names {
		for i, f := range revs[rev] {
			blob := filepath.Join(dir, "blobs", rev+"-"+string(rune('a'+i)))
			mkdir(t, filepath.Dir(blob))
			if f.Content != "" {
				if err := os.WriteFile(blob, []byte(f.Content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			link := filepath.Join(dir, "snapshots", rev, filepath.FromSlash(f.Rel))
			mkdir(t, filepath.Dir(link))
			rel, err := filepath.Rel(filepath.Dir(link), blob)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(rel, link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if main != "" {
		mkdir(t, filepath.Join(dir, "refs"))
		if err := os.WriteFile(filepath.Join(dir, "refs", "main"), []byte(main), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
