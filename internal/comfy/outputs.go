package comfy

import (
	"encoding/json"
	"path"
	"sort"
	"strings"
)

// OutputFile is one file a node reported in the history's outputs.
type OutputFile struct {
	Node      string  `json:"node"`      // node id
	Key       string  `json:"key"`       // output key: gifs (VHS), images (SaveVideo with animated), videos, ...
	Filename  string  `json:"filename"`  // name inside Subfolder
	Subfolder string  `json:"subfolder"` // relative to the folder of Type
	Type      string  `json:"type"`      // output, temp or input
	Format    string  `json:"format,omitempty"`
	FrameRate float64 `json:"frame_rate,omitempty"`
	FullPath  string  `json:"fullpath,omitempty"` // VHS: the path on ComfyUI's machine
	Animated  bool    `json:"animated,omitempty"` // core savers flag videos/animations so
}

// IsVideo reports whether the file is a video, by extension or format.
func (f OutputFile) IsVideo() bool {
	switch strings.ToLower(path.Ext(f.Filename)) {
	case ".mp4", ".webm", ".mkv", ".mov", ".gif":
		return true
	}
	return strings.HasPrefix(f.Format, "video/") && !strings.HasSuffix(f.Format, "-png")
}

// MimeType is the file's media type by extension.
func (f OutputFile) MimeType() string {
	switch strings.ToLower(path.Ext(f.Filename)) {
	case ".mp4":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".mkv":
		return "video/x-matroska"
	case ".mov":
		return "video/quicktime"
	case ".gif":
		return "image/gif"
	case ".png":
		return "image/png"
	case ".webp":
		return "image/webp"
	}
	return "application/octet-stream"
}

// collectOutputs scans every key of every node's UI output for lists of
// {filename, subfolder, type}: ComfyUI nodes are free to use any key.
// Files come in node id order, keys sorted.
func collectOutputs(outputs map[string]map[string]json.RawMessage) []OutputFile {
	nodes := make([]string, 0, len(outputs))
	for id := range outputs {
		nodes = append(nodes, id)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodeLess(nodes[i], nodes[j]) })
	var files []OutputFile
	for _, id := range nodes {
		ui := outputs[id]
		var animated []bool
		if raw, ok := ui["animated"]; ok {
			json.Unmarshal(raw, &animated)
		}
		keys := make([]string, 0, len(ui))
		for k := range ui {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var items []json.RawMessage
			if json.Unmarshal(ui[k], &items) != nil {
				continue
			}
			for i, raw := range items {
				var it struct {
					Filename  string   `json:"filename"`
					Subfolder string   `json:"subfolder"`
					Type      string   `json:"type"`
					Format    string   `json:"format"`
					FrameRate *float64 `json:"frame_rate"`
					FullPath  string   `json:"fullpath"`
				}
				if json.Unmarshal(raw, &it) != nil || it.Filename == "" {
					continue
				}
				f := OutputFile{Node: id, Key: k, Filename: it.Filename, Subfolder: it.Subfolder, Type: it.Type,
					Format: it.Format, FullPath: it.FullPath}
				if it.FrameRate != nil {
					f.FrameRate = *it.FrameRate
				}
				if f.Type == "" {
					f.Type = "output"
				}
				if k == "images" && i < len(animated) {
					f.Animated = animated[i]
				} else if k == "images" && len(animated) == 1 {
					f.Animated = animated[0]
				}
				files = append(files, f)
			}
		}
	}
	return files
}

// pickVideo chooses the video: from the writer node if it made one, else
// any video; saved outputs before temporary previews.
func pickVideo(files []OutputFile, writer string) (OutputFile, bool) {
	best, found, bestScore := OutputFile{}, false, -1
	for _, f := range files {
		if !f.IsVideo() {
			continue
		}
		score := 0
		if f.Node == writer {
			score += 2
		}
		if f.Type == "output" {
			score++
		}
		if score > bestScore {
			best, found, bestScore = f, true, score
		}
	}
	return best, found
}
