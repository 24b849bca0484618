package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// modelsFromPaths lists the model files that ComfyUI would see through an
// extra model paths file: for every section, each folder's directories
// (relative to base_path) are walked, and every .safetensors file whose
// header reads is listed under the folder, by its path relative to the
// directory. A file ComfyUI could not load is left out, so a job that needs
// it fails MODEL_MISSING as it would fail on ComfyUI.
func modelsFromPaths(config string) (map[string][]string, error) {
	b, err := os.ReadFile(config)
	if err != nil {
		return nil, err
	}
	var sections map[string]map[string]any
	if err := yaml.Unmarshal(b, &sections); err != nil {
		return nil, fmt.Errorf("%s: %w", config, err)
	}
	models := map[string][]string{}
	for _, sec := range sections {
		base, _ := sec["base_path"].(string)
		for folder, v := range sec {
			dirs, ok := v.(string)
			if !ok || folder == "base_path" {
				continue
			}
			for _, d := range strings.Fields(dirs) {
				if !filepath.IsAbs(d) {
					d = filepath.Join(base, d)
				}
				files, err := safetensorsUnder(d)
				if err != nil {
					return nil, err
				}
				models[folder] = append(models[folder], files...)
			}
		}
	}
	for k := range models {
		sort.Strings(models[k])
	}
	return models, nil
}

// safetensorsUnder returns the readable .safetensors files under dir,
// relative to it with '/' separators; none when dir does not exist.
func safetensorsUnder(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if path == dir && os.IsNotExist(err) {
				return filepath.SkipDir
			}
			return err
		}
		if e.IsDir() || !strings.HasSuffix(path, ".safetensors") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		_, herr := safetensors.ReadHeader(f)
		f.Close()
		if herr != nil {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out, err
}
