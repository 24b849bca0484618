package modelpaths

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
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
	root := &yaml.Node{Kind: yaml.MappingNode, HeadComment: yamlHeader}
	if !p.preferCache {
		p.cacheYAML(root)
	}
	for i := len(p.Roots) - 1; i >= 0; i-- {
		r := p.Roots[i]
		key := scalar("base_path", 0)
		if r.Dir != r.Configured {
			q := strconv.Quote(r.Configured) // one comment line, whatever the path holds
			key.HeadComment = "found under " + q[1:len(q)-1]
		}
		section := &yaml.Node{Kind: yaml.MappingNode}
		section.Content = append(section.Content, key, scalar(r.Dir, yaml.DoubleQuotedStyle), scalar("is_default", 0), yamlTrue())
		for _, f := range r.Found {
			var dirs strings.Builder
			for j := len(f.Dirs) - 1; j >= 0; j-- {
				dirs.WriteString(f.Dirs[j] + "\n")
			}
			section.Content = append(section.Content, scalar(f.Name, 0), scalar(dirs.String(), yaml.LiteralStyle))
		}
		root.Content = append(root.Content, scalar(fmt.Sprintf("wan22_models_%d", i+1), 0), section)
	}
	if p.preferCache {
		p.cacheYAML(root)
	}
	if len(root.Content) == 0 {
		root.Style = yaml.FlowStyle // {}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	_ = enc.Encode(root) // a tree of strings always encodes
	_ = enc.Close()
	return b.Bytes()
}

// cacheYAML adds the section of the Hugging Face cache's link folder (see SetCache).
func (p *Paths) cacheYAML(root *yaml.Node) {
	folders := p.cacheFolders()
	if p.cacheDir == "" || len(folders) == 0 {
		return
	}
	key := scalar("base_path", 0)
	key.HeadComment = "model files found in a Hugging Face cache, linked by their configured names"
	section := &yaml.Node{Kind: yaml.MappingNode}
	section.Content = append(section.Content, key, scalar(p.cacheDir, yaml.DoubleQuotedStyle), scalar("is_default", 0), yamlTrue())
	for _, f := range folders {
		section.Content = append(section.Content, scalar(f, 0), scalar(f+"\n", yaml.LiteralStyle))
	}
	root.Content = append(root.Content, scalar("wan22_hf_cache", 0), section)
}

// yamlHeader is the file's leading comment.
const yamlHeader = `ComfyUI extra model paths, written by wan22-worker from MODELS_DIRS at every start (edits are lost).
Search order: the order of MODELS_DIRS, first match wins, then ComfyUI's own models folder.
ComfyUI puts each path of an is_default section in front of those it has, so sections and
the directories of each folder are written last-first.`

func scalar(v string, style yaml.Style) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: style}
}

func yamlTrue() *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"} }

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
