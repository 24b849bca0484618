package comfy

import (
	"context"
	"github.com/wan22-worker/wan22-worker/internal/textdist"
	"path"
	"sort"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// ModelRef names a model file in one of ComfyUI's model folders.
type ModelRef struct {
	Folder string // diffusion_models, text_encoders, vae, loras, ...
	Name   string // relative path inside the folder, e.g. wan/x.safetensors
}

// CheckModels verifies that the server lists every file. Each missing file
// is a MODEL_MISSING error naming the file, the folder and what the server
// has there (closest names first); several are returned as an apperr.List.
func (c *Client) CheckModels(ctx context.Context, refs []ModelRef) error {
	lists := map[string][]string{}
	var errs apperr.List
	for _, ref := range refs {
		have, ok := lists[ref.Folder]
		if !ok {
			var err error
			have, err = c.Models(ctx, ref.Folder)
			if err != nil {
				return err
			}
			lists[ref.Folder] = have
		}
		found := false
		for _, h := range have {
			if h == ref.Name {
				found = true
				break
			}
		}
		if !found {
			errs = append(errs, errModelMissing(ref.Folder, ref.Name, have, "", ""))
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errs
}

// closest orders names by similarity to name (case-insensitive): the edit
// distance of the file names without folder and extension, then of the
// whole paths, then alphabetically.
func closest(name string, names []string) []string {
	type scored struct {
		s       string
		dBase   int
		dTarget int
	}
	stem := func(p string) string {
		b := path.Base(strings.ToLower(p))
		return strings.TrimSuffix(b, path.Ext(b))
	}
	target := strings.ToLower(name)
	out := make([]scored, len(names))
	for i, n := range names {
		out[i] = scored{s: n, dBase: editDistance(stem(name), stem(n)), dTarget: editDistance(target, strings.ToLower(n))}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].dBase != out[j].dBase {
			return out[i].dBase < out[j].dBase
		}
		if out[i].dTarget != out[j].dTarget {
			return out[i].dTarget < out[j].dTarget
		}
		return out[i].s < out[j].s
	})
	res := make([]string, len(out))
	for i, o := range out {
		res[i] = o.s
	}
	return res
}

// editDistance is the optimal string alignment distance (textdist); model
// names are cut at 256 bytes.
func editDistance(a, b string) int { return textdist.Distance(a, b, 256) }
