package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validateDoc returns a job document with a 64×32 PNG and the given options.
func validateDoc(t *testing.T, top, options string) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 32))
	for x := range 64 {
		for y := range 32 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 8), 100, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(buf.Bytes())
	return `{` + top + `"input": {"prompt": "a cat", "image": "` + b64 + `", "options": {` + options + `}}}`
}

func runValidate(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code := Main(t.Context(), e, append([]string{"validate"}, args...))
	return code, out.String(), errb.String()
}

type validateErrors struct {
	Errors []struct {
		Code    string `json:"code"`
		Field   string `json:"field"`
		Message string `json:"message"`
		Hint    string `json:"hint"`
	} `json:"errors"`
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "job.json")
	if err := os.WriteFile(file, []byte(validateDoc(t, `"id": "job-42", "webhook": "https://example.com/h", `, `"seed": 5, "length": 33`)), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("valid job from stdin", func(t *testing.T) {
		code, out, stderr := runValidate(t, validateDoc(t, "", ""), nil)
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s, stdout %s", code, stderr, out)
		}
		var j struct {
			ID             string         `json:"id"`
			Prompt         string         `json:"prompt"`
			NegativePrompt string         `json:"negative_prompt"`
			Options        map[string]any `json:"options"`
			Image          map[string]any `json:"image"`
			SeedRandom     bool           `json:"seed_random"`
		}
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			t.Fatalf("stdout is not the normalized job: %v\n%s", err, out)
		}
		if j.Prompt != "a cat" || j.NegativePrompt == "" || !j.SeedRandom {
			t.Errorf("job %+v", j)
		}
		for _, k := range []string{"width", "height", "fit", "length", "steps", "split_step", "cfg", "shift", "sampler",
			"scheduler", "frame_rate", "seed", "loras", "crf", "last_frame", "output"} {
			if _, ok := j.Options[k]; !ok {
				t.Errorf("options.%s missing from the normalized job", k)
			}
		}
		// 64×32 (2:1) at about 832×832 of area.
		if j.Options["width"] != 1184.0 || j.Options["height"] != 592.0 {
			t.Errorf("size %v×%v", j.Options["width"], j.Options["height"])
		}
		if j.Image["format"] != "png" || j.Image["width"] != 64.0 || j.Image["height"] != 32.0 || j.Image["source"] != "base64" {
			t.Errorf("image %v", j.Image)
		}
		if strings.Contains(out, "iVBOR") {
			t.Error("the output contains the image bytes")
		}
	})

	t.Run("valid job from a file, with id and RunPod keys", func(t *testing.T) {
		code, out, stderr := runValidate(t, "", nil, file)
		if code != exitOK || !strings.Contains(out, `"id": "job-42"`) || !strings.Contains(out, `"length": 33`) ||
			!strings.Contains(out, `"seed": 5`) {
			t.Fatalf("exit %d, stderr %s, stdout %s", code, stderr, out)
		}
	})

	t.Run("size by resolution and aspect ratio, preset echoed", func(t *testing.T) {
		code, out, stderr := runValidate(t, validateDoc(t, "", `"resolution": "480p", "aspect_ratio": "16:9", "preset": "balanced",
			"video_quality": "medium", "interpolate": {"factor": 3}`), nil)
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s, stdout %s", code, stderr, out)
		}
		var j struct {
			Options map[string]any `json:"options"`
		}
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatal(err)
		}
		o := j.Options
		if o["width"] != 848.0 || o["height"] != 480.0 || o["resolution"] != "480p" || o["aspect_ratio"] != "16:9" ||
			o["preset"] != "balanced" || o["steps"] != 10.0 || o["cfg_high"] != 3.5 || o["cfg_low"] != 1.0 ||
			o["distill_lora"] != "low" || o["crf"] != 23.0 || o["frame_rate"] != 48.0 {
			t.Errorf("options %v", o)
		}
	})

	errorCases := []struct {
		name   string
		stdin  string
		env    map[string]string
		args   []string
		fields []string // expected error fields, in order
		code   string   // code of the first error
	}{
		{name: "several bad fields", stdin: validateDoc(t, "", `"lenght": 81, "width": 830, "cfg": 0`),
			fields: []string{"options.lenght", "options.width", "options.cfg"}, code: "INVALID_INPUT"},
		{name: "not JSON", stdin: `{"input": `, fields: []string{""}, code: "INVALID_INPUT"},
		{name: "bare input", stdin: `{"prompt": "a", "image": "b"}`, fields: []string{"input"}, code: "INVALID_INPUT"},
		{name: "limit from a flag", stdin: validateDoc(t, "", `"length": 121`), args: []string{"--max-frames=81"},
			fields: []string{"options.length"}, code: "INVALID_INPUT"},
		{name: "limit from the environment", stdin: validateDoc(t, "", `"steps": 30`), env: map[string]string{"MAX_STEPS": "20"},
			fields: []string{"options.steps"}, code: "INVALID_INPUT"},
		{name: "loopback image URL refused", stdin: `{"input": {"prompt": "a", "image": "http://127.0.0.1:1/x.png"}}`,
			fields: []string{"image"}, code: "IMAGE_FETCH_FAILED"},
		{name: "new fields, every bad one", stdin: validateDoc(t, "", `"resolution": "480p", "width": 832, "height": 480,
			"preset": "qualty", "cfg_low": 0, "distill_lora": "high", "video_quality": "best", "interpolate": {"factor": 8}`),
			fields: []string{"options.preset", "options.resolution", "options.cfg_low", "options.distill_lora",
				"options.interpolate.factor", "options.video_quality"}, code: "INVALID_INPUT"},
		{name: "loopback end_image URL refused", stdin: strings.Replace(validateDoc(t, "", ""), `"options"`, `"end_image": "http://127.0.0.1:1/x.png", "options"`, 1),
			fields: []string{"end_image"}, code: "IMAGE_FETCH_FAILED"},
		{name: "broken image", stdin: `{"input": {"prompt": "a", "image": "` + base64.StdEncoding.EncodeToString([]byte("GIF89a....")) + `"}}`,
			fields: []string{"image"}, code: "IMAGE_INVALID"},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runValidate(t, tt.stdin, tt.env, append(tt.args, "-")...)
			if code != exitInvalid {
				t.Fatalf("exit %d, want %d; stderr %s, stdout %s", code, exitInvalid, stderr, out)
			}
			var got validateErrors
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("stdout is not {\"errors\": [...]}: %v\n%s", err, out)
			}
			if len(got.Errors) != len(tt.fields) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got.Errors), len(tt.fields), out)
			}
			for i, e := range got.Errors {
				if e.Field != tt.fields[i] || e.Code == "" || e.Message == "" || e.Hint == "" {
					t.Errorf("error %d = %+v, want field %q with code, message and hint", i, e, tt.fields[i])
				}
			}
			if got.Errors[0].Code != tt.code {
				t.Errorf("code %s, want %s", got.Errors[0].Code, tt.code)
			}
		})
	}

	usage := []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"help", nil, []string{"-h"}, exitOK},
		{"missing file", nil, []string{filepath.Join(dir, "nope.json")}, exitInvalid},
		{"two files", nil, []string{file, file}, exitInvalid},
		{"bad configuration", map[string]string{"MAX_FRAMES": "many"}, []string{file}, exitInvalid},
		{"unknown flag", nil, []string{"--nope", file}, exitInvalid},
	}
	for _, tt := range usage {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := runValidate(t, "", tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
}
