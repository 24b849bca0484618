package job

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// inputKeys are the keys of a job's input, in documentation order.
func inputKeys() []string {
	return []string{"prompt", "image", "negative_prompt", "options", "end_image"}
}

// optionKeys are the keys of input.options, in documentation order.
func optionKeys() []string {
	return []string{"width", "height", "fit", "length", "steps", "split_step", "cfg", "shift", "sampler",
		"scheduler", "frame_rate", "seed", "loras", "crf", "last_frame", "output",
		"resolution", "aspect_ratio", "preset", "cfg_high", "cfg_low", "distill_lora", "video_quality", "interpolate"}
}

// loraKeys are the keys of one entry of options.loras.
func loraKeys() []string { return []string{"name", "url", "sha256", "strength", "expert"} }

// Parse validates a job's input (the value of "input" in a RunPod job),
// fills every default, reads the image (decoding base64 or a data URI, or
// downloading a URL with fetch), and prepares it: EXIF-oriented, alpha
// flattened onto white, brought to exactly the video size by options.fit and
// PNG-encoded into Job.Prepared (or, when the input already is exactly that,
// kept as it came; Job.PreparedFormat says which).
//
// id is the job id; it names the uploaded image. fetch may be nil, in which
// case image URLs are refused.
//
// The error is an *apperr.Error, or an apperr.List when several fields are
// wrong: every field error is reported at once, and the image of a job with
// bad fields is still checked (from its header) when it is inline.
func Parse(ctx context.Context, id string, input []byte, lim Limits, fetch *Fetcher) (*Job, error) {
	return parse(ctx, id, input, lim, fetch, rand.Reader)
}

// spec is a checked input whose image has not been read yet.
type spec struct {
	job         Job
	widthGiven  bool
	heightGiven bool
	image       imageSource
	endImage    *imageSource // nil without end_image
}

func parse(ctx context.Context, id string, input []byte, lim Limits, fetch *Fetcher, rnd io.Reader) (*Job, error) {
	s, errs := parseSpec(input, lim, rnd)
	if len(errs) > 0 {
		if s != nil && s.image.data != nil {
			if _, err := inspect(s.image.data, lim); err != nil {
				errs = append(errs, apperr.From(err))
			}
		}
		if s != nil && s.endImage != nil && s.endImage.data != nil {
			if _, err := inspect(s.endImage.data, lim); err != nil {
				errs = append(errs, apperr.As(endImageError(apperr.From(err))))
			}
		}
		return nil, asError(errs)
	}
	j := s.job
	j.ID = id

	img, info, err := readImage(ctx, s.image, lim, fetch)
	if err != nil {
		return nil, err
	}
	j.Image = info
	var end *decoded
	if s.endImage != nil {
		var endInfo ImageInfo
		if end, endInfo, err = readImage(ctx, *s.endImage, lim, fetch); err != nil {
			return nil, endImageError(err)
		}
		j.EndImage = &endInfo
	}
	o := &j.Options
	if side := o.Resolution.ShortSide(); side > 0 {
		rw, rh := o.AspectRatio.Ratio()
		if rw == 0 {
			rw, rh = info.Width, info.Height
		}
		o.Width, o.Height = resolutionSize(side, rw, rh, lim.MaxPixels)
	} else {
		aw, ah := o.AspectRatio.Ratio()
		if aw == 0 {
			aw, ah = info.Width, info.Height
		}
		o.Width, o.Height = chooseSize(o.Width, o.Height, aw, ah, lim.MaxPixels)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if img.hdr.format == FormatPNG && img.hdr.orientation <= 1 &&
		img.hdr.width == o.Width && img.hdr.height == o.Height && checkPNG(img.data) == nil {
		// The file is the prepared image and is known to decode: it is
		// uploaded as it came, without decoding its pixels.
		j.Prepared, j.PreparedFormat = img.data, FormatPNG
	} else {
		if err := img.decodePixels(); err != nil {
			return nil, err
		}
		if j.Prepared, j.PreparedFormat, err = prepare(img, o.Fit, o.Width, o.Height); err != nil {
			return nil, err
		}
	}
	if end != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := end.decodePixels(); err != nil {
			return nil, endImageError(err)
		}
		if j.EndPNG, err = encodeRendered(end, o.Fit, o.Width, o.Height); err != nil {
			return nil, endImageError(err)
		}
	}
	return &j, nil
}

// readImage fetches (for a URL) and inspects an image: its header is read
// and checked, its pixels are not decoded yet (decoded.decodePixels). Its
// errors name the field "image"; endImageError renames them for end_image.
func readImage(ctx context.Context, src imageSource, lim Limits, fetch *Fetcher) (*decoded, ImageInfo, error) {
	data := src.data
	if src.kind == SourceURL {
		if fetch == nil {
			return nil, ImageInfo{}, apperr.Field(apperr.ImageFetchFailed, "image", "image URLs are not fetched here",
				"send the image as base64 or a data: URI")
		}
		var err error
		if data, err = fetch.Fetch(ctx, src.url); err != nil {
			return nil, ImageInfo{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, ImageInfo{}, err
	}
	hdr, err := inspect(data, lim)
	if err != nil {
		return nil, ImageInfo{}, err
	}
	img := &decoded{hdr: hdr, data: data}
	w, h := img.orientedSize()
	return img, ImageInfo{Source: src.kind, Format: img.hdr.format, Width: w, Height: h, Bytes: len(data),
		Orientation: img.hdr.orientation}, nil
}

// endImageError turns an error about "image" into the same error about
// "end_image": the end frame goes through the image's checks, whose errors
// name the image field.
func endImageError(err error) error {
	e := apperr.As(err)
	if e == nil || e.Field != "image" {
		return err
	}
	c := *e
	c.Field = "end_image"
	switch {
	case strings.HasPrefix(c.Message, "image "):
		c.Message = "end_image " + strings.TrimPrefix(c.Message, "image ")
	case strings.Contains(c.Message, "the image"):
		c.Message = strings.Replace(c.Message, "the image", "the end image", 1)
	default:
		c.Message = "end_image: " + c.Message
	}
	return &c
}

// asError turns a list into the error Parse returns: nil, its only element,
// or the list.
func asError(errs apperr.List) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errs
}

// parseSpec checks every field except the image's content. The spec is nil
// only when the input is not a JSON object at all.
func parseSpec(input []byte, lim Limits, rnd io.Reader) (*spec, apperr.List) {
	c := &checker{}
	if !json.Valid(input) {
		var v any
		err := json.Unmarshal(input, &v)
		c.add(syntaxError(input, err))
		return nil, c.errs
	}
	in, ok := c.object("input", input, inputKeys(), `{"prompt": "...", "image": "..."}`)
	if !ok {
		c.errs[len(c.errs)-1].Field = "input"
		return nil, c.errs
	}
	s := &spec{}
	j := &s.job

	// prompt
	if raw, given := in["prompt"]; !given || isNull(raw) {
		c.fail("prompt", `describe the video, e.g. "prompt": "a cat turning its head slowly"`, "prompt is required")
	} else if p, ok := c.str("prompt", raw, `"prompt": "a cat turning its head slowly"`); ok {
		p = strings.TrimSpace(p)
		switch n := utf8.RuneCountInString(p); {
		case n == 0:
			c.fail("prompt", "describe the video you want in a few words", "prompt is empty")
		case n > MaxPromptChars:
			c.fail("prompt", "shorten it: the text encoder reads only about 512 tokens",
				"prompt is %d characters long; at most %d are allowed", n, MaxPromptChars)
		}
		j.Prompt = p
	}

	// image
	if raw, given := in["image"]; !given || isNull(raw) {
		c.fail("image", "send the image as base64, a data:image/...;base64, URI or an http(s) URL", "image is required")
	} else if v, ok := c.str("image", raw, `"image": "<base64>" or "image": "https://…"`); ok {
		src, err := classifyImage(v, lim)
		if err != nil {
			c.add(err)
		}
		s.image = src
	}

	// end_image
	if raw, given := in["end_image"]; given && !isNull(raw) {
		if v, ok := c.str("end_image", raw, `"end_image": "<base64>" or "end_image": "https://…"`); ok {
			src, err := classifyImage(v, lim)
			if err != nil {
				c.add(apperr.As(endImageError(err)))
			}
			s.endImage = &src
		}
	}

	// negative_prompt
	j.NegativePrompt = DefaultNegativePrompt
	if raw, given := in["negative_prompt"]; given && !isNull(raw) {
		if p, ok := c.str("negative_prompt", raw, `"negative_prompt": "blurry, static"`); ok {
			p = strings.TrimSpace(p)
			if n := utf8.RuneCountInString(p); n > MaxPromptChars {
				c.fail("negative_prompt", "shorten it: the text encoder reads only about 512 tokens",
					"negative_prompt is %d characters long; at most %d are allowed", n, MaxPromptChars)
			}
			j.NegativePrompt = p
		}
	}

	// options
	opts := map[string]json.RawMessage{}
	if raw, given := in["options"]; given && !isNull(raw) {
		if m, ok := c.object("options", raw, optionKeys(), `"options": {"length": 81}`); ok {
			opts = m
		}
	}
	s.widthGiven, s.heightGiven = parseOptions(c, opts, lim, rnd, j)
	if len(c.errs) > 0 {
		return s, c.errs
	}
	return s, nil
}

// given returns the raw value of an option, or nil when it is absent or null.
func given(opts map[string]json.RawMessage, key string) json.RawMessage {
	raw, ok := opts[key]
	if !ok || isNull(raw) {
		return nil
	}
	return raw
}

func parseOptions(c *checker, opts map[string]json.RawMessage, lim Limits, rnd io.Reader, j *Job) (widthGiven, heightGiven bool) {
	o := &j.Options
	o.Fit, o.Length, o.Steps = DefaultFit, DefaultLength, DefaultSteps
	o.CFG, o.Shift, o.Sampler, o.Scheduler = DefaultCFG, DefaultShift, DefaultSampler, DefaultScheduler
	o.FrameRate, o.CRF, o.Output, o.LoRAs = DefaultFrameRate, DefaultCRF, DefaultOutput, []LoRA{}
	o.AspectRatio, o.Preset = AspectAuto, PresetFast

	// preset: read first, it sets the defaults of the sampling options.
	if raw := given(opts, "preset"); raw != nil {
		if v, ok := enum(c, "options.preset", raw, Presets()); ok {
			o.Preset = Preset(v)
		}
	}
	pv := o.Preset.Values()
	o.Steps, o.Shift, o.DistillLoRA = pv.Steps, pv.Shift, pv.DistillLoRA

	// width, height
	wOK, hOK := true, true
	if raw := given(opts, "width"); raw != nil {
		o.Width, wOK = dimension(c, "options.width", raw, lim)
		widthGiven = true
	}
	if raw := given(opts, "height"); raw != nil {
		o.Height, hOK = dimension(c, "options.height", raw, lim)
		heightGiven = true
	}
	if widthGiven && heightGiven && wOK && hOK {
		if area := o.Width * o.Height; area > lim.MaxPixels {
			sw, sh := fitArea(o.Width, o.Height, lim.MaxPixels)
			c.fail("options.width", fmt.Sprintf(
				"lower the size to at most %d pixels, e.g. %d×%d (same aspect ratio), or raise MAX_PIXELS on the server",
				lim.MaxPixels, sw, sh),
				"options.width×options.height is %d×%d = %d pixels; this server allows at most %d (MAX_PIXELS)",
				o.Width, o.Height, area, lim.MaxPixels)
		}
	} else if widthGiven != heightGiven {
		field, v := "options.width", o.Width
		if heightGiven {
			field, v = "options.height", o.Height
		}
		if (field == "options.width" && wOK || field == "options.height" && hOK) && v*SizeStep > lim.MaxPixels {
			c.fail(field, fmt.Sprintf("use at most %d, or raise MAX_PIXELS on the server", lim.MaxPixels/SizeStep/SizeStep*SizeStep),
				"%s is %d, which leaves no room for the other side within %d pixels (MAX_PIXELS)", field, v, lim.MaxPixels)
		}
	}

	// fit
	if raw := given(opts, "fit"); raw != nil {
		if v, ok := enum(c, "options.fit", raw, []string{string(FitCrop), string(FitPad), string(FitStretch)}); ok {
			o.Fit = Fit(v)
		}
	}

	parseSize(c, opts, lim, o, widthGiven, heightGiven)

	// length
	if raw := given(opts, "length"); raw != nil {
		if n, ok := c.integer("options.length", raw, `"length": 81`); ok {
			switch {
			case n < 5 || n > int64(lim.MaxFrames):
				c.fail("options.length", fmt.Sprintf("use 4k+1 frames from 5 to %d (MAX_FRAMES on this server), e.g. 81", lim.MaxFrames),
					"options.length must be between 5 and %d, got %d", lim.MaxFrames, n)
			case (n-1)%4 != 0:
				lo := (n-1)/4*4 + 1
				c.fail("options.length", fmt.Sprintf("use %d or %d", lo, lo+4),
					"options.length must be 4k+1 (5, 9, …, 77, 81, …), got %d", n)
			default:
				o.Length = int(n)
			}
		}
	}

	// steps
	stepsOK := true
	if raw := given(opts, "steps"); raw != nil {
		n, ok := c.integer("options.steps", raw, `"steps": 6`)
		switch {
		case !ok:
			stepsOK = false
		case n < 2 || n > int64(lim.MaxSteps):
			stepsOK = false
			c.fail("options.steps", fmt.Sprintf("use 2 to %d (MAX_STEPS on this server); 6 suits the step-distill LoRAs", lim.MaxSteps),
				"options.steps must be between 2 and %d, got %d", lim.MaxSteps, n)
		default:
			o.Steps = int(n)
		}
	} else if o.Steps > lim.MaxSteps {
		stepsOK = false
		c.fail("options.preset", fmt.Sprintf("give options.steps of at most %d with this preset, or raise MAX_STEPS on the server", lim.MaxSteps),
			"preset %q runs %d steps; this server allows at most %d (MAX_STEPS)", o.Preset, o.Steps, lim.MaxSteps)
	}

	// split_step
	o.SplitStep = (o.Steps + 1) / 2
	if raw := given(opts, "split_step"); raw != nil {
		if n, ok := c.integer("options.split_step", raw, `"split_step": 3`); ok && stepsOK {
			if n < 1 || n > int64(o.Steps-1) {
				c.fail("options.split_step", fmt.Sprintf("use 1 to %d (steps−1); the default is %d", o.Steps-1, (o.Steps+1)/2),
					"options.split_step must be between 1 and %d for %d steps, got %d", o.Steps-1, o.Steps, n)
			} else {
				o.SplitStep = int(n)
			}
		}
	}

	// cfg, cfg_high, cfg_low: an explicit cfg replaces the preset's for both
	// experts; cfg_high and cfg_low win over both.
	const cfgWhy = "1.0 suits the step-distill LoRAs; without them 3 to 5 is usual"
	o.CFG = numberIn(c, "options.cfg", given(opts, "cfg"), 1, 20, pv.CFGHigh, `"cfg": 1.0`, cfgWhy)
	o.CFGHigh, o.CFGLow = pv.CFGHigh, pv.CFGLow
	if given(opts, "cfg") != nil {
		o.CFGHigh, o.CFGLow = o.CFG, o.CFG
	}
	o.CFGHigh = numberIn(c, "options.cfg_high", given(opts, "cfg_high"), 1, 20, o.CFGHigh, `"cfg_high": 3.5`, cfgWhy)
	o.CFGLow = numberIn(c, "options.cfg_low", given(opts, "cfg_low"), 1, 20, o.CFGLow, `"cfg_low": 1.0`, cfgWhy)
	if raw := given(opts, "distill_lora"); raw != nil {
		if v, ok := enum(c, "options.distill_lora", raw, DistillLoRAs()); ok {
			o.DistillLoRA = DistillLoRA(v)
		}
	}
	o.Shift = numberIn(c, "options.shift", given(opts, "shift"), 0.5, 20, pv.Shift, `"shift": 8.0`,
		"8.0 is WAN 2.2's default")

	// interpolate, frame_rate: with interpolation frame_rate is the output's
	// rate, factor × 16 unless given.
	if raw := given(opts, "interpolate"); raw != nil {
		o.Interpolate = parseInterpolate(c, raw)
	}
	if in := o.Interpolate; in != nil {
		def := DefaultFrameRate * float64(in.Factor)
		o.FrameRate = numberIn(c, "options.frame_rate", given(opts, "frame_rate"), 1, MaxInterpolatedFrameRate, def, `"frame_rate": 32`,
			fmt.Sprintf("with options.interpolate it is the delivered video's rate; the default is %g (factor × 16)", def))
	} else {
		o.FrameRate = numberIn(c, "options.frame_rate", given(opts, "frame_rate"), 1, 60, DefaultFrameRate, `"frame_rate": 16`,
			"the model is trained at 16 fps")
	}

	if raw := given(opts, "sampler"); raw != nil {
		if v, ok := enum(c, "options.sampler", raw, Samplers()); ok {
			o.Sampler = v
		}
	}
	if raw := given(opts, "scheduler"); raw != nil {
		if v, ok := enum(c, "options.scheduler", raw, Schedulers()); ok {
			o.Scheduler = v
		}
	}

	// seed
	if raw := given(opts, "seed"); raw != nil {
		if v, ok := c.unsigned("options.seed", raw, `"seed": 123456`); ok {
			o.Seed = v
		}
	} else {
		o.Seed = randomSeed(rnd)
		j.SeedRandom = true
	}

	if raw := given(opts, "loras"); raw != nil {
		o.LoRAs = parseLoRAs(c, raw)
	}

	if raw := given(opts, "crf"); raw != nil {
		if n, ok := c.integer("options.crf", raw, `"crf": 19`); ok {
			if n < 0 || n > 51 {
				c.fail("options.crf", "use 0 (lossless) to 51 (worst); 17 to 23 is the usual range",
					"options.crf must be between 0 and 51, got %d", n)
			} else {
				o.CRF = int(n)
			}
		}
	}
	if raw := given(opts, "video_quality"); raw != nil {
		if v, ok := enum(c, "options.video_quality", raw, VideoQualities()); ok {
			o.VideoQuality = VideoQuality(v)
			if given(opts, "crf") == nil {
				o.CRF = o.VideoQuality.CRF()
			}
		}
	}
	if raw := given(opts, "last_frame"); raw != nil {
		if v, ok := c.boolean("options.last_frame", raw, `"last_frame": true`); ok {
			o.LastFrame = v
		}
	}
	if raw := given(opts, "output"); raw != nil {
		if v, ok := enum(c, "options.output", raw,
			[]string{string(OutputAuto), string(OutputBase64), string(OutputS3), string(OutputVolume)}); ok {
			o.Output = Output(v)
		}
	}
	return widthGiven, heightGiven
}

// parseSize reads options.resolution and options.aspect_ratio, and checks
// that they do not contradict width and height.
func parseSize(c *checker, opts map[string]json.RawMessage, lim Limits, o *Options, widthGiven, heightGiven bool) {
	if raw := given(opts, "resolution"); raw != nil {
		if v, ok := enum(c, "options.resolution", raw, Resolutions()); ok {
			o.Resolution = Resolution(v)
		}
	}
	if raw := given(opts, "aspect_ratio"); raw != nil {
		if v, ok := enum(c, "options.aspect_ratio", raw, AspectRatios()); ok {
			o.AspectRatio = AspectRatio(v)
		}
	}
	resGiven := given(opts, "resolution") != nil
	switch {
	case resGiven && widthGiven && heightGiven:
		c.fail("options.resolution", "drop options.resolution to use width×height, or drop options.width and options.height to use the resolution",
			"options.resolution and options.width/options.height both set the size")
	case resGiven && (widthGiven || heightGiven):
		side := "options.width"
		if heightGiven {
			side = "options.height"
		}
		c.fail("options.resolution", fmt.Sprintf("drop %s (the resolution sets both sides), or drop options.resolution", side),
			"options.resolution and %s both set the size", side)
	case widthGiven && heightGiven && given(opts, "aspect_ratio") != nil && o.AspectRatio != AspectAuto:
		c.fail("options.aspect_ratio", "drop options.aspect_ratio (width×height fixes the shape), or give only one of width and height",
			"options.aspect_ratio %q and options.width×options.height both set the shape", o.AspectRatio)
	}
	if side := o.Resolution.ShortSide(); side > 0 && side*side > lim.MaxPixels {
		c.fail("options.resolution", "choose a lower resolution, or raise MAX_PIXELS on the server",
			"options.resolution %s needs at least %d×%d pixels; this server allows at most %d (MAX_PIXELS)",
			o.Resolution, side, side, lim.MaxPixels)
	}
}

// dimension checks options.width or options.height.
func dimension(c *checker, field string, raw json.RawMessage, lim Limits) (int, bool) {
	n, ok := c.integer(field, raw, `"`+strings.TrimPrefix(field, "options.")+`": 832`)
	if !ok {
		return 0, false
	}
	switch {
	case n < SizeStep:
		c.fail(field, "use a multiple of 16 of at least 16; 832 is the usual size", "%s must be at least 16, got %d", field, n)
	case n > MaxSide:
		c.fail(field, fmt.Sprintf("use a multiple of 16 up to %d (ComfyUI's limit)", MaxSide), "%s must be at most %d, got %d", field, MaxSide, n)
	case n%SizeStep != 0:
		near := (n + SizeStep/2) / SizeStep * SizeStep
		c.fail(field, fmt.Sprintf("use %d, the nearest multiple of 16", near), "%s must be a multiple of 16, got %d", field, n)
	case n > int64(lim.MaxPixels):
		c.fail(field, "lower it, or raise MAX_PIXELS on the server", "%s is %d, more than the %d pixels this server allows (MAX_PIXELS)", field, n, lim.MaxPixels)
	default:
		return int(n), true
	}
	return 0, false
}

// fitArea scales w×h down to at most max pixels, keeping the aspect ratio,
// snapped down to multiples of 16.
func fitArea(w, h, max int) (int, int) {
	f := math.Sqrt(float64(max) / float64(w*h))
	sw := int(float64(w)*f) / SizeStep * SizeStep
	sh := int(float64(h)*f) / SizeStep * SizeStep
	sw, sh = maxInt(sw, SizeStep), maxInt(sh, SizeStep)
	for sw*sh > max && (sw > SizeStep || sh > SizeStep) {
		if sw >= sh {
			sw -= SizeStep
		} else {
			sh -= SizeStep
		}
	}
	return sw, sh
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// numberIn checks a number option against [lo, hi]; absent means def.
func numberIn(c *checker, field string, raw json.RawMessage, lo, hi, def float64, example, why string) float64 {
	if raw == nil {
		return def
	}
	v, ok := c.number(field, raw, example)
	if !ok {
		return def
	}
	if v < lo || v > hi {
		c.fail(field, fmt.Sprintf("use %g to %g; %s", lo, hi, why), "%s must be between %g and %g, got %g", field, lo, hi, v)
		return def
	}
	return v
}

// enum checks a string option against its allowed values.
func enum(c *checker, field string, raw json.RawMessage, allowed []string) (string, bool) {
	key := strings.TrimPrefix(field, "options.")
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		key = key[i+1:]
	}
	v, ok := c.str(field, raw, fmt.Sprintf(`"%s": %q`, key, allowed[0]))
	if !ok {
		return "", false
	}
	if contains(allowed, v) {
		return v, true
	}
	hint := "one of: " + strings.Join(allowed, ", ")
	if s := closest(v, allowed); s != "" {
		hint = fmt.Sprintf("did you mean %q? Use %s", s, hint)
	} else {
		hint = "use " + hint
	}
	c.fail(field, hint, "%s %q is not supported", field, v)
	return "", false
}

// randomSeed draws a seed below 2^53, so that it survives JSON clients that
// read numbers as float64 and can be sent back to reproduce the video.
func randomSeed(rnd io.Reader) uint64 {
	var b [8]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		panic("job: no randomness for the seed: " + err.Error()) // crypto/rand does not fail
	}
	return binary.LittleEndian.Uint64(b[:]) & (maxExactFloat - 1)
}

func parseLoRAs(c *checker, raw json.RawMessage) []LoRA {
	elems, ok := readArray(raw)
	if !ok {
		c.typeErr("options.loras", raw, "an array", `"loras": [{"name": "my_lora.safetensors", "strength": 1.0}]`)
		return []LoRA{}
	}
	if len(elems) > MaxLoRAs {
		c.fail("options.loras", fmt.Sprintf("use at most %d; merge or drop the rest", MaxLoRAs),
			"options.loras has %d entries; at most %d are allowed", len(elems), MaxLoRAs)
		elems = elems[:MaxLoRAs]
	}
	out := []LoRA{}
	for i, e := range elems {
		path := fmt.Sprintf("options.loras[%d]", i)
		m, ok := c.object(path, e, loraKeys(), `{"name": "my_lora.safetensors", "strength": 1.0, "expert": "both"}`)
		if !ok {
			continue
		}
		l := LoRA{Strength: DefaultLoRAPower, Expert: DefaultExpert}
		good := parseLoRASource(c, path, m, &l)
		if raw := given(m, "name"); raw != nil {
			if name, ok := c.str(path+".name", raw, `"name": "wan/my_lora.safetensors"`); !ok {
				good = false
			} else if msg, hint := checkLoRAName(name); msg != "" {
				c.fail(path+".name", hint, "%s.name %s", path, msg)
				good = false
			} else {
				l.Name = name
			}
		}
		if raw := given(m, "strength"); raw != nil {
			v, ok := c.number(path+".strength", raw, `"strength": 1.0`)
			switch {
			case !ok:
				good = false
			case v < -4 || v > 4:
				c.fail(path+".strength", "use −4 to 4; 1.0 is the LoRA's full effect", "%s.strength must be between -4 and 4, got %g", path, v)
				good = false
			default:
				l.Strength = v
			}
		}
		if raw := given(m, "expert"); raw != nil {
			if v, ok := enum(c, path+".expert", raw, []string{string(ExpertBoth), string(ExpertHigh), string(ExpertLow)}); ok {
				l.Expert = Expert(v)
			} else {
				good = false
			}
		}
		if good {
			out = append(out, l)
		}
	}
	return out
}

// parseLoRASource checks that a LoRA entry gives exactly one of name and
// url, and reads url and sha256 into l (name is read by the caller).
func parseLoRASource(c *checker, path string, m map[string]json.RawMessage, l *LoRA) bool {
	name, u, sum := given(m, "name"), given(m, "url"), given(m, "sha256")
	good := true
	switch {
	case name == nil && u == nil:
		c.fail(path+".name", `name the file inside the loras folder, e.g. "name": "wan/my_lora.safetensors", or give its "url"`,
			"%s.name is required, or %s.url", path, path)
		return false
	case name != nil && u != nil:
		c.fail(path, `keep "name" for a file the server has, or "url" to download one`,
			"%s gives both name and url; give one", path)
		good = false
	}
	if u != nil {
		if v, ok := c.str(path+".url", u, `"url": "https://huggingface.co/<user>/<repo>/resolve/main/my_lora.safetensors"`); !ok {
			good = false
		} else if msg, hint := checkLoRAURL(v); msg != "" {
			c.fail(path+".url", hint, "%s.url %s", path, msg)
			good = false
		} else {
			l.URL = v
		}
	}
	if sum != nil {
		if v, ok := c.str(path+".sha256", sum, `"sha256": "<64 hex digits>"`); !ok {
			good = false
		} else if u == nil {
			c.fail(path+".sha256", `drop "sha256", or give the file by "url"`, "%s.sha256 is only checked for a LoRA given by url", path)
			good = false
		} else if v, msg := checkSHA256(v); msg != "" {
			c.fail(path+".sha256", "give the file's SHA-256 as 64 hex digits (sha256sum prints it), or leave it out", "%s.sha256 %s", path, msg)
			good = false
		} else {
			l.SHA256 = v
		}
	}
	return good
}

// checkLoRAName checks that a LoRA name is a plain relative path inside the
// loras folder with a model file extension. Whether the file exists is for
// the server to say. It returns what is wrong and a hint, or "".
func checkLoRAName(name string) (msg, hint string) {
	const example = "e.g. wan/my_lora.safetensors"
	switch {
	case name == "":
		return "is empty", "name the file inside the loras folder, " + example
	case len(name) > 512:
		return "is too long", "use the file's path inside the loras folder, " + example
	case strings.TrimSpace(name) != name:
		return "has leading or trailing spaces", "remove them"
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }):
		return "contains control characters", "use the file's plain name, " + example
	case strings.Contains(name, `\`):
		return "contains a backslash", "use forward slashes between folders, " + example
	case strings.HasPrefix(name, "/") || len(name) >= 2 && name[1] == ':':
		return "is an absolute path", "give the path relative to the loras folder, " + example
	}
	for _, part := range strings.Split(name, "/") {
		switch part {
		case "..":
			return `must not contain ".."`, "give a path inside the loras folder, " + example
		case "", ".":
			return "has an empty or '.' folder", "write the path without '//', './' or a trailing '/', " + example
		}
	}
	lower := strings.ToLower(name)
	for _, ext := range LoRAExtensions() {
		if strings.HasSuffix(lower, ext) && len(lower) > len(ext) {
			return "", ""
		}
	}
	return "does not end in a model file extension", "use the file name with its extension (" +
		strings.Join(LoRAExtensions(), ", ") + "), " + example
}
