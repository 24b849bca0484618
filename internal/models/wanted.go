package models

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/hfcache"
	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
)

// Want is one model file the configuration names.
type Want struct {
	Folder string `json:"folder"` // ComfyUI folder
	Name   string `json:"name"`   // as configured: relative, "/"-separated
	// Settings are the configuration settings that name the file, e.g.
	// MODEL_UNET_HIGH (both LoRA settings when they name the same file).
	Settings []string `json:"settings"`
}

// Wanted lists the files of the configured model profile (the MODEL_*
// settings), each once, in a fixed order: experts, text encoder, VAE, LoRAs.
func Wanted(c *config.Config) []Want {
	all := []Want{
		{Folder: FolderDiffusionModels, Name: c.UNetHigh, Settings: []string{"MODEL_UNET_HIGH"}},
		{Folder: FolderDiffusionModels, Name: c.UNetLow, Settings: []string{"MODEL_UNET_LOW"}},
		{Folder: FolderTextEncoders, Name: c.TextEncoder, Settings: []string{"MODEL_TEXT_ENCODER"}},
		{Folder: FolderVAE, Name: c.VAE, Settings: []string{"MODEL_VAE"}},
		{Folder: FolderLoRAs, Name: c.LoRAHigh, Settings: []string{"MODEL_LORA_HIGH"}},
		{Folder: FolderLoRAs, Name: c.LoRALow, Settings: []string{"MODEL_LORA_LOW"}},
	}
	var out []Want
	index := map[[2]string]int{}
	for _, w := range all {
		if w.Name == "" {
			continue
		}
		key := [2]string{w.Folder, w.Name}
		if i, ok := index[key]; ok {
			out[i].Settings = append(out[i].Settings, w.Settings...)
			continue
		}
		index[key] = len(out)
		out = append(out, w)
	}
	return out
}

// Files lists the files of the configured model profile as modelpaths.Files, in Wanted's order.
func Files(c *config.Config) []modelpaths.File {
	var out []modelpaths.File
	for _, w := range Wanted(c) {
		out = append(out, modelpaths.File{Folder: w.Folder, Name: w.Name})
	}
	return out
}

// ResolvePaths resolves the models folders (dirs, MODELS_DIRS by default) and adds the files of the
// configured profile found in the Hugging Face caches of the configuration (MODELS_HF_CACHE, HF_HUB_CACHE,
// HF_HOME), before or after the folders (MODELS_PREFER_CACHE), as the supervisor wires them into ComfyUI.
// linkDir is where the cache's files are linked for ComfyUI ("" when nothing is written). mapPath maps each
// configured path before use (doctor's tests run under a fake root); nil leaves them.
func ResolvePaths(c *config.Config, dirs []string, linkDir string, mapPath func(string) string) *modelpaths.Paths {
	if mapPath == nil {
		mapPath = func(p string) string { return p }
	}
	if dirs == nil {
		dirs = c.ModelsDirs
	}
	mapped := make([]string, len(dirs))
	for i, d := range dirs {
		mapped[i] = mapPath(d)
	}
	var hubs []string
	for _, h := range hfcache.Hubs(c.ModelsHFCache, c.HFHubCache, c.HFHome) {
		hubs = append(hubs, mapPath(h))
	}
	p := modelpaths.Resolve(mapped, nil)
	p.SetCache(modelpaths.FindCache(hubs, Files(c)), linkDir, c.ModelsPreferCache)
	return p
}

// Item is a wanted file with its manifest entry, when the manifest has one.
type Item struct {
	Want
	// File is the manifest entry; nil when the file is unknown to the
	// manifest (it cannot be downloaded, and its checksum cannot be checked).
	File *File `json:"manifest,omitempty"`
}

// Known reports whether the manifest has the file.
func (it Item) Known() bool { return it.File != nil }

// UnknownNote is what users are told about a file the manifest lacks.
const UnknownNote = "unknown to the manifest (cannot download/verify checksum)"

// Items matches wanted files with the manifest.
func (m Manifest) Items(wants []Want) []Item {
	out := make([]Item, len(wants))
	for i, w := range wants {
		out[i] = Item{Want: w}
		if f, ok := m.Lookup(w.Folder, w.Name); ok {
			out[i].File = &f
		}
	}
	return out
}

// Select keeps the items that only names: an item matches by its configured
// name or its base name. A name that matches no item but is in the manifest
// is added (with the manifest's own name), so any manifest file can be
// pulled. Names matching nothing are returned as unknown.
func (m Manifest) Select(items []Item, only []string) (selected []Item, unknown []string) {
	if len(only) == 0 {
		return items, nil
	}
	for _, name := range only {
		found := false
		for _, it := range items {
			if it.Name == name || path.Base(it.Name) == name {
				selected = appendItem(selected, it)
				found = true
			}
		}
		if found {
			continue
		}
		for _, f := range m {
			if f.Name == name || path.Base(f.Name) == name {
				selected = appendItem(selected, Item{Want: Want{Folder: f.Folder, Name: f.Name}, File: &f})
				found = true
			}
		}
		if !found {
			unknown = append(unknown, name)
		}
	}
	return selected, unknown
}

func appendItem(items []Item, it Item) []Item {
	for _, have := range items {
		if have.Folder == it.Folder && have.Name == it.Name {
			return items
		}
	}
	return append(items, it)
}

// State is what Inspect found for a file.
type State string

// The states of a file.
const (
	StatePresent      State = "present"
	StateMissing      State = "missing"
	StateSizeMismatch State = "size_mismatch"
)

// Status is one file as found on disk.
type Status struct {
	Item
	State State `json:"state"`
	// Path is where the file was found (the first match, which ComfyUI
	// uses); "" when missing.
	Path string `json:"path,omitempty"`
	// Size is the size on disk of Path.
	Size int64 `json:"size,omitempty"`
	// Source says where Path is: volume, cache or local (modelpaths.Source*).
	Source string `json:"source,omitempty"`
	// AlsoCached is the Hugging Face cache's copy of a file read from elsewhere (MODELS_PREFER_CACHE off),
	// and its repo.
	AlsoCached     string `json:"also_cached,omitempty"`
	AlsoCachedRepo string `json:"also_cached_repo,omitempty"`
	// LookedIn lists every path tried, in order.
	LookedIn []string `json:"looked_in"`
	// Partial is an unfinished download found for a missing file, and its
	// size.
	Partial     string `json:"partial,omitempty"`
	PartialSize int64  `json:"partial_size,omitempty"`
	// Note explains a file unknown to the manifest.
	Note string `json:"note,omitempty"`
}

// Inspect looks for each item the way ComfyUI will (see
// modelpaths.Paths.Locate: every models folder in order, both layouts) and
// compares the size of what it finds with the manifest.
func Inspect(paths *modelpaths.Paths, items []Item, stat modelpaths.StatFunc) []Status {
	if stat == nil {
		stat = os.Stat
	}
	out := make([]Status, len(items))
	for i, it := range items {
		st := Status{Item: it, State: StateMissing}
		found, tried := paths.Locate(it.Folder, it.Name)
		st.LookedIn = tried
		if st.LookedIn == nil {
			st.LookedIn = []string{}
		}
		if !it.Known() {
			st.Note = UnknownNote
		}
		if found != "" {
			st.Path = found
			st.Source = paths.Source(found)
			if c, ok := paths.Cached(it.Folder, it.Name); ok && c.Path != found {
				st.AlsoCached, st.AlsoCachedRepo = c.Path, c.Repo
			}
			st.State = StatePresent
			if fi, err := stat(found); err == nil {
				st.Size = fi.Size()
			}
			if it.Known() && it.File.Size > 0 && st.Size != it.File.Size {
				st.State = StateSizeMismatch
			}
		} else {
			for _, p := range tried {
				if fi, err := stat(p + PartialSuffix); err == nil && fi.Mode().IsRegular() {
					st.Partial, st.PartialSize = p+PartialSuffix, fi.Size()
					break
				}
			}
		}
		out[i] = st
	}
	return out
}

// VolumeWhileCached reports a file read from the network volume although the Hugging Face cache has it too.
func (st Status) VolumeWhileCached() bool {
	return st.Source == modelpaths.SourceVolume && st.AlsoCached != ""
}

// CachedHint is the advice for VolumeWhileCached.
const CachedHint = "the cache is local to the host and faster than the network volume: set MODELS_PREFER_CACHE=1, or remove the volume's copy"

// Destination returns where an item goes in a models folder: dir, the
// layout's directory for its folder, then its configured name. The name must
// be relative and stay inside its folder.
func Destination(dir string, layout Layout, it Item) (string, error) {
	rel, err := cleanName(it.Name)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, layout.Dir(it.Folder), rel), nil
}

func cleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", errors.New("empty or invalid model name")
	}
	slash := strings.ReplaceAll(name, "\\", "/")
	if path.IsAbs(slash) || filepath.IsAbs(name) {
		return "", fmt.Errorf("model name %q is absolute; names are relative to their folder", name)
	}
	c := path.Clean(slash)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("model name %q leaves its folder", name)
	}
	return filepath.FromSlash(c), nil
}

// DetectLayout picks the layout of an existing models folder: original when
// it has unet/ or clip/ and neither diffusion_models/ nor text_encoders/,
// else comfy.
func DetectLayout(dir string, stat modelpaths.StatFunc) Layout {
	if stat == nil {
		stat = os.Stat
	}
	isDir := func(name string) bool {
		fi, err := stat(filepath.Join(dir, name))
		return err == nil && fi.IsDir()
	}
	if (isDir("unet") || isDir("clip")) && !isDir(FolderDiffusionModels) && !isDir(FolderTextEncoders) {
		return LayoutOriginal
	}
	return LayoutComfy
}
