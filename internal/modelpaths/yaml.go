package modelpaths

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// YAML renders ComfyUI's extra model paths file for the resolved folders.
//
// Each models folder becomes one section with base_path and is_default: true,
// and every found directory is listed under its ComfyUI folder name (so
// diffusion_models lists both unet and diffusion_models when both exist).
// ComfyUI inserts every path of an is_default section in front of the paths
// it already has, so sections, and the directories inside each folder, are
// written last-first: the effective search order is then MODELS_DIRS order
// (first match wins), and ComfyUI's own models folder comes after them. With
// no folder found the file is an empty mapping, which ComfyUI accepts. The
// output depends only on p, so it is golden-testable.
func (p *Paths) YAML() []byte {
	var b bytes.Buffer
	b.WriteString("# ComfyUI extra model paths, written by wan22-worker from MODELS_DIRS at every start (edits are lost).\n")
	b.WriteString("# Search order: the order of MODELS_DIRS, first match wins, then ComfyUI's own models folder.\n")
	b.WriteString("# ComfyUI puts each path of an is_default section in front of those it has, so sections and\n")
	b.WriteString("# the directories of each folder are written last-first.\n")
	if len(p.Roots) == 0 && len(p.cacheFolders()) == 0 {
		b.WriteString("{}\n")
		return b.Bytes()
	}
	if !p.preferCache {
		p.cacheYAML(&b)
	}
	for i := len(p.Roots) - 1; i >= 0; i-- {
		r := p.Roots[i]
		fmt.Fprintf(&b, "wan22_models_%d:\n", i+1)
		if r.Dir != r.Configured {
			fmt.Fprintf(&b, "  # found under %s\n", yamlComment(r.Configured))
		}
		fmt.Fprintf(&b, "  base_path: %s\n", yamlString(r.Dir))
		b.WriteString("  is_default: true\n")
		for _, f := range r.Found {
			fmt.Fprintf(&b, "  %s: |\n", f.Name)
			for j := len(f.Dirs) - 1; j >= 0; j-- {
				fmt.Fprintf(&b, "    %s\n", f.Dirs[j])
			}
		}
	}
	if p.preferCache {
		p.cacheYAML(&b)
	}
	return b.Bytes()
}

// cacheYAML writes the section of the Hugging Face cache's link folder (see SetCache).
func (p *Paths) cacheYAML(b *bytes.Buffer) {
	folders := p.cacheFolders()
	if p.cacheDir == "" || len(folders) == 0 {
		return
	}
	b.WriteString("wan22_hf_cache:\n")
	b.WriteString("  # model files found in a Hugging Face cache, linked by their configured names\n")
	fmt.Fprintf(b, "  base_path: %s\n", yamlString(p.cacheDir))
	b.WriteString("  is_default: true\n")
	for _, f := range folders {
		fmt.Fprintf(b, "  %s: |\n    %s\n", f, f)
	}
}

// WriteFile writes YAML to name atomically (a temporary file renamed over it).
func (p *Paths) WriteFile(name string) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, ".extra_model_paths-*.yaml")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(p.YAML())
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, name)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, werr)
	}
	return nil
}

// yamlString quotes s as a YAML double-quoted scalar. JSON string syntax is
// a subset of it.
func yamlString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}

// yamlComment keeps s on one comment line.
func yamlComment(s string) string {
	q := yamlString(s)
	return q[1 : len(q)-1]
}
