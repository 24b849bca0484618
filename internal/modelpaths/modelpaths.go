// Package modelpaths finds the model folders on disk and writes ComfyUI's
// extra model paths file for them.
//
// The worker accepts two layouts of a models folder, side by side: ComfyUI's
// current folder names (diffusion_models, text_encoders, …) and the original
// spec's (unet, clip, with the LoRA under loras/wan/). Each configured
// directory (MODELS_DIRS) may be a models folder itself, a volume or ComfyUI
// root holding one (<dir>/models), or a volume holding a whole ComfyUI tree
// (<dir>/comfyui/models). Resolve decides which, YAML renders the file passed
// to ComfyUI with --extra-model-paths-config, and Locate says where a file was
// looked for, for `doctor` and MODEL_MISSING hints.
package modelpaths

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Folder is one of ComfyUI's model folder names and the directory names that
// feed it inside a models folder, in ComfyUI's own search order.
type Folder struct {
	Name string   // ComfyUI's folder name, e.g. diffusion_models
	Dirs []string // directory names under a models folder, e.g. unet, diffusion_models
}

// Folders returns the model folders the worker wires, in a fixed order. The
// directory lists follow ComfyUI 0.3.64's folder_paths defaults, so that
// diffusion_models also reads unet/ and text_encoders also reads clip/.
func Folders() []Folder {
	return []Folder{
		{Name: "diffusion_models", Dirs: []string{"unet", "diffusion_models"}},
		{Name: "text_encoders", Dirs: []string{"text_encoders", "clip"}},
		{Name: "vae", Dirs: []string{"vae"}},
		{Name: "loras", Dirs: []string{"loras"}},
		{Name: "clip_vision", Dirs: []string{"clip_vision"}},
		{Name: "audio_encoders", Dirs: []string{"audio_encoders"}},
		{Name: "model_patches", Dirs: []string{"model_patches"}},
		{Name: "upscale_models", Dirs: []string{"upscale_models"}},
		{Name: "checkpoints", Dirs: []string{"checkpoints"}},
		{Name: "embeddings", Dirs: []string{"embeddings"}},
		{Name: "controlnet", Dirs: []string{"controlnet", "t2i_adapter"}},
		{Name: "vae_approx", Dirs: []string{"vae_approx"}},
	}
}

// Canonical maps a folder name to ComfyUI's current one: the legacy names
// unet and clip become diffusion_models and text_encoders, as ComfyUI's
// map_legacy does. Other names are returned unchanged.
func Canonical(folder string) string {
	switch folder {
	case "unet":
		return "diffusion_models"
	case "clip":
		return "text_encoders"
	}
	return folder
}

func folderDirs(folder string) ([]string, bool) {
	folder = Canonical(folder)
	for _, f := range Folders() {
		if f.Name == folder {
			return f.Dirs, true
		}
	}
	return nil, false
}

// StatFunc reports on a path like os.Stat. Tests pass a fake to keep results
// independent of the machine.
type StatFunc func(name string) (fs.FileInfo, error)

// Root is one models folder in use.
type Root struct {
	// Configured is the MODELS_DIRS entry it came from.
	Configured string
	// Dir is the models folder: Configured itself, or a folder found inside it
	// (see Resolve).
	Dir string
	// Found lists, per folder name in Folders order, the directories that
	// exist under Dir. Folders with none are absent.
	Found []Folder
}

// Paths is the result of Resolve: the models folders in search order.
type Paths struct {
	// Roots are the models folders that exist, first match wins.
	Roots []Root
	// Missing lists MODELS_DIRS entries for which no folder exists.
	Missing []string
	// configured keeps every entry, for Locate's list of places tried.
	configured []string
	stat       StatFunc
	// The files found in a Hugging Face cache (SetCache), the folder ComfyUI reads them through, and whether
	// they come before the roots.
	cache       []CacheFile
	cacheDir    string
	preferCache bool
}

// Resolve finds the models folder of each configured directory, in order. For
// an entry D the candidates are, in order: D; D/models (D is a volume or a
// ComfyUI root); D/comfyui/models and D/ComfyUI/models (a volume holding a
// ComfyUI tree); and when D itself ends in "models", its siblings
// ../comfyui/models and ../ComfyUI/models (so the default
// /runpod-volume/models also finds /runpod-volume/comfyui/models). The first
// candidate that holds at least one known model directory wins; if none does,
// D is kept when it exists (an empty models folder), else D is reported
// missing. A folder reached twice is listed once. stat nil means os.Stat.
func Resolve(dirs []string, stat StatFunc) *Paths {
	if stat == nil {
		stat = os.Stat
	}
	p := &Paths{stat: stat}
	seen := map[string]bool{}
	for _, d := range dirs {
		d = filepath.Clean(d)
		p.configured = append(p.configured, d)
		dir, ok := p.pick(d)
		if !ok {
			p.Missing = append(p.Missing, d)
			continue
		}
		if seen[dir] {
			continue
		}
		seen[dir] = true
		p.Roots = append(p.Roots, Root{Configured: d, Dir: dir, Found: p.found(dir)})
	}
	return p
}

func candidates(d string) []string {
	c := []string{d, filepath.Join(d, "models"), filepath.Join(d, "comfyui", "models"), filepath.Join(d, "ComfyUI", "models")}
	if filepath.Base(d) == "models" {
		parent := filepath.Dir(d)
		c = append(c, filepath.Join(parent, "comfyui", "models"), filepath.Join(parent, "ComfyUI", "models"))
	}
	return c
}

func (p *Paths) pick(d string) (string, bool) {
	for _, c := range candidates(d) {
		if len(p.found(c)) > 0 {
			return c, true
		}
	}
	if p.isDir(d) {
		return d, true
	}
	return "", false
}

func (p *Paths) isDir(name string) bool {
	fi, err := p.stat(name)
	return err == nil && fi.IsDir()
}

func (p *Paths) found(dir string) []Folder {
	var out []Folder
	for _, f := range Folders() {
		var have []string
		for _, sub := range f.Dirs {
			if p.isDir(filepath.Join(dir, sub)) {
				have = append(have, sub)
			}
		}
		if len(have) > 0 {
			out = append(out, Folder{Name: f.Name, Dirs: have})
		}
	}
	return out
}

// Dirs returns the existing directories that feed a folder (legacy names
// accepted), in search order.
func (p *Paths) Dirs(folder string) []string {
	folder = Canonical(folder)
	var out []string
	for _, r := range p.Roots {
		for _, f := range r.Found {
			if f.Name == folder {
				for _, sub := range f.Dirs {
					out = append(out, filepath.Join(r.Dir, sub))
				}
			}
		}
	}
	return out
}

// Locate looks for a model file, e.g. Locate("loras", "wan/x.safetensors"),
// the way ComfyUI will: in every models folder in order, in each of the
// folder's directories, and in the Hugging Face cache (SetCache) before or
// after them. It returns the path found ("" if none) and every path
// it tried, in order, for error hints. A name that is absolute or leaves its
// folder is never found. Unknown folder names are searched as a directory of
// that name.
func (p *Paths) Locate(folder, name string) (found string, tried []string) {
	subs, ok := folderDirs(folder)
	if !ok {
		subs = []string{folder}
	}
	rel, err := cleanRel(name)
	if err != nil {
		return "", nil
	}
	cached, inCache := p.Cached(folder, name)
	if inCache && p.preferCache {
		found = cached.Path
		tried = append(tried, cached.Path)
	}
	var bases []string
	for _, r := range p.Roots {
		bases = append(bases, r.Dir)
	}
	if len(bases) == 0 {
		bases = p.configured
	}
	for _, b := range bases {
		for _, sub := range subs {
			full := filepath.Join(b, sub, rel)
			tried = append(tried, full)
			if found == "" {
				if fi, err := p.stat(full); err == nil && fi.Mode().IsRegular() {
					found = full
				}
			}
		}
	}
	if inCache && !p.preferCache {
		tried = append(tried, cached.Path)
		if found == "" {
			found = cached.Path
		}
	}
	return found, tried
}

// cleanRel checks that name is a relative path that stays inside its folder
// and returns it in the platform's form.
func cleanRel(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", errors.New("empty or invalid name")
	}
	slash := filepath.ToSlash(name)
	if path.IsAbs(slash) || filepath.IsAbs(name) {
		return "", fmt.Errorf("%q is absolute", name)
	}
	c := path.Clean(slash)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q leaves its folder", name)
	}
	return filepath.FromSlash(c), nil
}

// Summary describes what was found, one line per configured directory, for
// the start log and `doctor`.
func (p *Paths) Summary() []string {
	var out []string
	for _, r := range p.Roots {
		var parts []string
		for _, f := range r.Found {
			parts = append(parts, f.Name+"="+strings.Join(f.Dirs, "+"))
		}
		what := "no model folders yet"
		if len(parts) > 0 {
			what = strings.Join(parts, " ")
		}
		from := ""
		if r.Dir != r.Configured {
			from = " (found under " + r.Configured + ")"
		}
		out = append(out, r.Dir+from+": "+what)
	}
	for _, m := range p.Missing {
		out = append(out, m+": does not exist")
	}
	return append(out, p.cacheSummary()...)
}
