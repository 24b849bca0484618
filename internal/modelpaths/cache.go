package modelpaths

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/hfcache"
)

// File names a model file: its ComfyUI folder and its name there (relative, "/"-separated).
type File struct {
	Folder string `json:"folder"`
	Name   string `json:"name"`
}

// CacheFile is a model file found in a Hugging Face hub cache (RunPod's cached models).
type CacheFile struct {
	File
	hfcache.Match
}

// Where a file was found, for `models list` and `doctor`.
const (
	SourceVolume = "volume" // a MODELS_DIRS folder on the network volume (/runpod-volume)
	SourceCache  = "cache"  // a Hugging Face cache snapshot (MODELS_HF_CACHE, HF_HUB_CACHE, HF_HOME)
	SourceLocal  = "local"  // another MODELS_DIRS folder: the image's own /comfyui/models, a local disk
)

// FindCache looks for each file in the cached repos of the hubs (see package hfcache) and returns those
// found, in the order of files.
func FindCache(hubs []string, files []File) []CacheFile {
	if len(hubs) == 0 || len(files) == 0 {
		return nil
	}
	repos := hfcache.Scan(hubs)
	var out []CacheFile
	for _, f := range files {
		dirs, ok := folderDirs(f.Folder)
		if !ok {
			dirs = []string{f.Folder}
		}
		if m, ok := hfcache.Find(repos, dirs, f.Name); ok {
			out = append(out, CacheFile{File: File{Folder: Canonical(f.Folder), Name: f.Name}, Match: m})
		}
	}
	return out
}

// SetCache adds files found in a Hugging Face cache to the search. ComfyUI reads them through linkDir, which
// LinkCache fills with one symlink per file at <linkDir>/<folder>/<name> (so a file keeps its configured
// name, e.g. loras/wan/x.safetensors, whatever its path in the repo); they come before the MODELS_DIRS
// folders when prefer is set, else after them.
func (p *Paths) SetCache(files []CacheFile, linkDir string, prefer bool) {
	p.cache, p.cacheDir, p.preferCache = files, linkDir, prefer
}

// Cached returns the cache's copy of a file (legacy folder names accepted).
func (p *Paths) Cached(folder, name string) (CacheFile, bool) {
	folder = Canonical(folder)
	for _, c := range p.cache {
		if c.Folder == folder && c.Name == name {
			return c, true
		}
	}
	return CacheFile{}, false
}

// Source says where a path returned by Locate is: the cache, the network volume or another folder.
func (p *Paths) Source(path string) string {
	for _, c := range p.cache {
		if c.Path == path {
			return SourceCache
		}
	}
	if strings.Contains(filepath.ToSlash(path), "/runpod-volume/") {
		return SourceVolume
	}
	return SourceLocal
}

// LinkCache recreates the link folder of SetCache: the old one is removed, then one symlink per cached file
// is made to its snapshot path. Nothing happens without cached files or a link folder.
func (p *Paths) LinkCache() error {
	if p.cacheDir == "" {
		return nil
	}
	if err := os.RemoveAll(p.cacheDir); err != nil {
		return fmt.Errorf("clear %s: %w", p.cacheDir, err)
	}
	for _, c := range p.cache {
		rel, err := cleanRel(c.Name)
		if err != nil {
			continue
		}
		link := filepath.Join(p.cacheDir, c.Folder, rel)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(c.Path, link); err != nil {
			return fmt.Errorf("link the cached %s/%s: %w", c.Folder, c.Name, err)
		}
	}
	return nil
}

// cacheFolders lists the ComfyUI folders that have cached files, in Folders order.
func (p *Paths) cacheFolders() []string {
	var out []string
	for _, f := range Folders() {
		for _, c := range p.cache {
			if c.Folder == f.Name {
				out = append(out, f.Name)
				break
			}
		}
	}
	return out
}

// cacheSummary is one line per cached file.
func (p *Paths) cacheSummary() []string {
	var out []string
	for _, c := range p.cache {
		rev := c.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		order := "after MODELS_DIRS"
		if p.preferCache {
			order = "before MODELS_DIRS (MODELS_PREFER_CACHE)"
		}
		out = append(out, fmt.Sprintf("Hugging Face cache %s@%s: %s/%s at %s (%s)", c.Repo, rev, c.Folder, c.Name, c.Path, order))
	}
	return out
}
