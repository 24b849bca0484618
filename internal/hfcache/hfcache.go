// Package hfcache finds model files in a Hugging Face hub cache, the layout RunPod's cached models use
// (/runpod-volume/huggingface-cache/hub) and huggingface_hub writes (HF_HUB_CACHE, $HF_HOME/hub):
//
//	<hub>/models--<org>--<name>/refs/main             the revision "main" points at
//	<hub>/models--<org>--<name>/snapshots/<revision>/  the repo's files, as symlinks into ../../blobs/
//	<hub>/models--<org>--<name>/blobs/<hash>           the contents
//
// A file is looked for in every cached repo, the revision of refs/main first, then the other snapshots
// (newest first); in a snapshot at its own relative name, under split_files/<folder>/ (the layout of
// Comfy-Org's repackaged repos), under <folder>/, and then by its base name anywhere in the snapshot. A
// symlink whose blob is missing (an unfinished download) does not count.
package hfcache

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultRunPodHub is where RunPod mounts the cached models of a Serverless endpoint.
const DefaultRunPodHub = "/runpod-volume/huggingface-cache/hub"

// Hubs returns the hub folders to search: the configured ones, then hubCache (HF_HUB_CACHE), then
// <hfHome>/hub (HF_HOME), each once, in that order; empty values are skipped.
func Hubs(configured []string, hubCache, hfHome string) []string {
	var out []string
	add := func(d string) {
		if d == "" {
			return
		}
		d = filepath.Clean(d)
		for _, have := range out {
			if have == d {
				return
			}
		}
		out = append(out, d)
	}
	for _, d := range configured {
		add(d)
	}
	add(hubCache)
	if hfHome != "" {
		add(filepath.Join(hfHome, "hub"))
	}
	return out
}

// Repo is one cached model repository.
type Repo struct {
	ID        string   // org/name
	Dir       string   // <hub>/models--org--name
	Main      string   // the revision refs/main names; "" when there is no refs/main
	Snapshots []string // snapshot folders, refs/main's first, then the others newest first
}

// Scan lists the cached model repos of the hubs, in hub order and by ID within a hub. Hubs that do not
// exist are skipped.
func Scan(hubs []string) []Repo {
	var repos []Repo
	for _, hub := range hubs {
		entries, err := os.ReadDir(hub)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, "models--") {
				continue
			}
			dir := filepath.Join(hub, name)
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				continue
			}
			r := Repo{ID: strings.Replace(strings.TrimPrefix(name, "models--"), "--", "/", 1), Dir: dir}
			if b, err := os.ReadFile(filepath.Join(dir, "refs", "main")); err == nil {
				r.Main = strings.TrimSpace(string(b))
			}
			r.Snapshots = snapshots(dir, r.Main)
			if len(r.Snapshots) > 0 {
				repos = append(repos, r)
			}
		}
	}
	return repos
}

func snapshots(dir, main string) []string {
	entries, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil {
		return nil
	}
	type snap struct {
		path string
		mod  int64
	}
	var others []snap
	var out []string
	for _, e := range entries {
		p := filepath.Join(dir, "snapshots", e.Name())
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			continue
		}
		if e.Name() == main {
			out = append(out, p)
			continue
		}
		others = append(others, snap{p, fi.ModTime().UnixNano()})
	}
	sort.SliceStable(others, func(i, j int) bool {
		if others[i].mod != others[j].mod {
			return others[i].mod > others[j].mod
		}
		return others[i].path > others[j].path
	})
	for _, s := range others {
		out = append(out, s.path)
	}
	return out
}

// Match is a file found in the cache.
type Match struct {
	Path     string `json:"path"`     // in the snapshot (a symlink into blobs/)
	Target   string `json:"target"`   // the blob it resolves to
	Size     int64  `json:"size"`     // the blob's size
	Repo     string `json:"repo"`     // org/name
	Revision string `json:"revision"` // the snapshot's folder name
	Exact    bool   `json:"exact"`    // found at its relative name (else by its base name)
}

// Find looks for the file name (relative, "/"-separated, e.g. wan/x.safetensors) of a ComfyUI folder
// (diffusion_models, text_encoders, vae, loras; dirs are the folder's directory names, e.g. unet and
// diffusion_models) in the repos, and returns the first match.
func Find(repos []Repo, dirs []string, name string) (Match, bool) {
	name = path.Clean(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || path.IsAbs(name) || strings.HasPrefix(name, "../") || name == ".." {
		return Match{}, false
	}
	for _, r := range repos {
		for _, snap := range r.Snapshots {
			var rels []string
			rels = append(rels, name)
			for _, d := range dirs {
				rels = append(rels, path.Join("split_files", d, name), path.Join(d, name))
			}
			for _, rel := range rels {
				if m, ok := match(r, snap, filepath.Join(snap, filepath.FromSlash(rel))); ok {
					m.Exact = true
					return m, true
				}
			}
			if p := byBase(snap, path.Base(name)); p != "" {
				if m, ok := match(r, snap, p); ok {
					return m, true
				}
			}
		}
	}
	return Match{}, false
}

func match(r Repo, snap, p string) (Match, bool) {
	fi, err := os.Stat(p) // follows the symlink into blobs/
	if err != nil || !fi.Mode().IsRegular() {
		return Match{}, false
	}
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return Match{}, false
	}
	return Match{Path: p, Target: target, Size: fi.Size(), Repo: r.ID, Revision: filepath.Base(snap)}, true
}

// byBase returns the first file named base in the snapshot, in lexical walk order.
func byBase(snap, base string) string {
	found := ""
	_ = filepath.WalkDir(snap, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == base {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	return found
}
