package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/concat"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// chainFlags are the flags of a chain of clips (several prompts).
type chainFlags struct {
	keepClips bool
	fromClip  int
	join      string
}

func (c *chainFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.keepClips, "keep-clips", false, "chain: keep each clip's MP4 (<out>.clipN.mp4) next to the joined one")
	fs.IntVar(&c.fromClip, "from-clip", 0, "chain: resume at clip N, reusing the clips before it that a failed run kept")
	fs.StringVar(&c.join, "join", string(concat.Drop), "chain: how clips are joined: drop (drop each duplicated boundary frame; encodes once) or copy (no re-encoding; keeps them)")
}

// clipRunner runs one clip of a chain (k counts from 0): it writes the video
// to out and returns the result (no base64 in it) and, when the job asked
// for it, the last frame as PNG.
type clipRunner func(ctx context.Context, k int, input map[string]any, out string) (result map[string]any, lastFrame []byte, err error)

// chainSpec is a chain to run: the first clip's input (its image and
// options) and one prompt a clip.
type chainSpec struct {
	cmd     string // the command's name, for messages
	args    []string
	prompts []string
	input   map[string]any
	out     string
	flags   chainFlags
	// report prints a clip's error and returns the command's exit code.
	report func(error) int
}

// clipPath is the MP4 of clip k of the chain written to out; its last
// frame is clipPath without ".mp4" + ".last.png".
func clipPath(out string, k int) string {
	return fmt.Sprintf("%s.clip%d.mp4", strings.TrimSuffix(out, filepath.Ext(out)), k+1)
}

func lastFramePath(video string) string {
	return strings.TrimSuffix(video, filepath.Ext(video)) + ".last.png"
}

// runChain runs the clips one after the other, clip k+1 from clip k's last
// frame, then joins them into s.out. It stops at the first failed clip,
// keeps the clips made so far and says how to resume.
func runChain(ctx context.Context, env *Env, r *progress.Renderer, s chainSpec, run clipRunner) int {
	n := len(s.prompts)
	mode, err := concat.ParseMode(s.flags.join)
	if err != nil {
		r.Stop()
		fmt.Fprintf(env.Stderr, "%s: --join: %v\n", s.cmd, err)
		return exitInvalid
	}
	opts, _ := s.input["options"].(map[string]any)
	var seed uint64
	seedGiven := false
	if v, ok := opts["seed"]; ok {
		if seed, err = strconv.ParseUint(fmt.Sprint(v), 10, 64); err == nil {
			seedGiven = true
		}
	}
	userLast, _ := opts["last_frame"].(bool)
	image := s.input["image"]
	results := make([]map[string]any, n)
	from := max(s.flags.fromClip, 1)
	if from > n {
		r.Stop()
		fmt.Fprintf(env.Stderr, "%s: --from-clip %d: the chain has %d clips\n", s.cmd, from, n)
		return exitInvalid
	}
	for k := 0; k < from-1; k++ {
		p := clipPath(s.out, k)
		if _, err := os.Stat(p); err != nil {
			r.Stop()
			fmt.Fprintf(env.Stderr, "%s: --from-clip %d needs clip %d: %v\n", s.cmd, from, k+1, err)
			return exitInvalid
		}
		results[k] = map[string]any{"video_path": p, "reused": true}
	}
	if from > 1 {
		png, err := os.ReadFile(lastFramePath(clipPath(s.out, from-2)))
		if err != nil {
			r.Stop()
			fmt.Fprintf(env.Stderr, "%s: --from-clip %d needs the last frame of clip %d: %v\n", s.cmd, from, from-1, err)
			return exitInvalid
		}
		image = base64.StdEncoding.EncodeToString(png)
	}
	for k := from - 1; k < n; k++ {
		in := maps.Clone(s.input)
		o := maps.Clone(opts)
		if o == nil {
			o = map[string]any{}
		}
		in["options"] = o
		in["prompt"] = s.prompts[k]
		in["image"] = image
		o["last_frame"] = k < n-1 || userLast
		if k < n-1 {
			delete(in, "end_image") // the chain ends on the end image: the last clip's
		}
		if seedGiven {
			o["seed"] = json.Number(strconv.FormatUint(seed+uint64(k), 10))
		}
		r.Println(fmt.Sprintf("clip %d/%d: %s", k+1, n, s.prompts[k]))
		res, lf, err := run(ctx, k, in, clipPath(s.out, k))
		if err != nil {
			r.Stop()
			code := s.report(err)
			fmt.Fprintf(env.Stderr, "%s: clip %d of %d failed; the chain stopped.\n", s.cmd, k+1, n)
			if k > 0 {
				fmt.Fprintf(env.Stderr, "kept: %s … %s (and their last frames)\n", clipPath(s.out, 0), clipPath(s.out, k-1))
			}
			fmt.Fprintf(env.Stderr, "resume from it with: wan22-worker %s %s --from-clip %d\n", s.cmd, shellJoin(withoutFlag(s.args, "from-clip")), k+1)
			return code
		}
		if k < n-1 {
			if lf == nil {
				r.Stop()
				fmt.Fprintf(env.Stderr, "%s: clip %d came back without its last frame; cannot chain\n", s.cmd, k+1)
				return exitFailed
			}
			image = base64.StdEncoding.EncodeToString(lf)
		}
		results[k] = res
	}
	r.Stop()
	clips := make([]string, n)
	for k := range clips {
		clips[k] = clipPath(s.out, k)
	}
	crf := 0
	if v, ok := opts["crf"]; ok {
		crf, _ = strconv.Atoi(fmt.Sprint(v))
	}
	joined, err := concat.Join(ctx, clips, s.out, concat.Options{Mode: mode, CRF: crf})
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: joining the clips: %v\nthe clips are kept: %s\n", s.cmd, err, strings.Join(clips, " "))
		return exitFailed
	}
	if userLast {
		_ = os.Rename(lastFramePath(clips[n-1]), lastFramePath(s.out))
	}
	if !s.flags.keepClips {
		for k, c := range clips {
			_ = os.Remove(c)
			_ = os.Remove(lastFramePath(c))
			delete(results[k], "video_path")
			delete(results[k], "last_frame_path")
		}
	}
	summary := map[string]any{"video_path": s.out, "frames": joined.Frames, "frame_rate": joined.FrameRate,
		"duration_s": joined.Duration, "join": string(mode), "clips": results}
	if userLast {
		summary["last_frame_path"] = lastFramePath(s.out)
	}
	fmt.Fprintf(env.Stderr, "%s: joined %d clips into %s: %d frames, %.2f s\n", s.cmd, n, s.out, joined.Frames, joined.Duration)
	if err := writeJSON(env.Stdout, summary); err != nil {
		return exitFailed
	}
	return exitOK
}

// printJobError prints a job's typed error: the result JSON on stdout, and
// code, message, field and hint on stderr.
// jobFailed prints the error of a job run here (printJobError) and returns
// the exit code: 130 when the command was interrupted (Ctrl-C ended ctx),
// 2 when the job's input must change (inputCode), 1 otherwise — as submit.
func jobFailed(ctx context.Context, env *Env, cmd string, err error) int {
	e := apperr.From(err)
	printJobError(env, cmd, e)
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case inputCode(e.Code):
		return exitInvalid
	}
	return exitFailed
}

// inputCode reports whether a job error means "change the job" (exit 2).
func inputCode(c apperr.Code) bool {
	switch c {
	case apperr.InvalidInput, apperr.ImageInvalid, apperr.ImageTooLarge, apperr.ImageFetchFailed:
		return true
	}
	return false
}

func printJobError(env *Env, cmd string, e *apperr.Error) {
	_ = writeJSON(env.Stdout, map[string]any{"error": e.Error(), "output": map[string]any{"error": e}})
	fmt.Fprintf(env.Stderr, "%s: %s\n", cmd, e.Error())
	if e.Field != "" {
		fmt.Fprintf(env.Stderr, "field: %s\n", e.Field)
	}
	if e.Hint != "" {
		fmt.Fprintf(env.Stderr, "hint: %s\n", e.Hint)
	}
}

// withoutFlag drops -name/--name and its value from args.
func withoutFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == name && i+1 < len(args) {
			i++
			continue
		}
		if strings.HasPrefix(a, name+"=") {
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// shellJoin quotes args for a POSIX shell.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
