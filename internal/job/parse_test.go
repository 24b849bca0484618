package job

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// testPNG is the image of the parse tests: 64×48 (4:3).
func testPNG(t testing.TB) []byte { return encodePNG(t, gradient(64, 48)) }

// job builds an input document: IMG in it becomes the base64 test PNG.
func job(t testing.TB, doc string) []byte {
	return []byte(strings.ReplaceAll(doc, "IMG", `"`+b64(testPNG(t))+`"`))
}

// opts builds an input with the given options object body.
func opts(t testing.TB, body string) []byte {
	return job(t, `{"prompt": "a cat", "image": IMG, "options": {`+body+`}}`)
}

// errorsOf flattens Parse's error into its elements.
func errorsOf(err error) []*apperr.Error {
	var l apperr.List
	if errors.As(err, &l) {
		return l
	}
	if e := apperr.As(err); e != nil {
		return []*apperr.Error{e}
	}
	return nil
}

func parseTest(t testing.TB, input []byte, lim Limits) (*Job, error) {
	return parse(context.Background(), "test-job", input, lim, nil, &seededRand{})
}

type wantErr struct {
	code  apperr.Code
	field string
	in    string // part of message or hint
}

func TestParseErrors(t *testing.T) {
	lim := testLimits()
	smallImage := lim
	smallImage.MaxImageBytes = 100
	smallPixels := lim
	smallPixels.MaxPixels = 65536
	fewSteps := lim
	fewSteps.MaxSteps = 12
	tests := []struct {
		name  string
		input []byte
		lim   Limits
		want  []wantErr
	}{
		// The document.
		{"not JSON", []byte(`{"prompt": `), lim, []wantErr{{apperr.InvalidInput, "", "not valid JSON"}}},
		{"syntax error position", []byte("{\n  \"prompt\": x\n}"), lim, []wantErr{{apperr.InvalidInput, "", "line 2"}}},
		{"empty", []byte(``), lim, []wantErr{{apperr.InvalidInput, "", "not valid JSON"}}},
		{"array", []byte(`[]`), lim, []wantErr{{apperr.InvalidInput, "input", "must be an object"}}},
		{"string", []byte(`"cat"`), lim, []wantErr{{apperr.InvalidInput, "input", "must be an object"}}},
		{"null", []byte(`null`), lim, []wantErr{{apperr.InvalidInput, "input", "must be an object"}}},

		// Unknown keys.
		{"unknown top-level key", job(t, `{"prompt": "a", "image": IMG, "promt": "b"}`), lim,
			[]wantErr{{apperr.InvalidInput, "promt", `did you mean "prompt"`}}},
		{"unknown key lists the valid ones", job(t, `{"prompt": "a", "image": IMG, "zzz": 1}`), lim,
			[]wantErr{{apperr.InvalidInput, "zzz", "prompt, image, negative_prompt, options"}}},
		{"option at the top level", job(t, `{"prompt": "a", "image": IMG, "width": 832}`), lim,
			[]wantErr{{apperr.InvalidInput, "width", "inside options"}}},
		{"alias at the top level", job(t, `{"prompt": "a", "image": IMG, "fps": 16}`), lim,
			[]wantErr{{apperr.InvalidInput, "fps", `"frame_rate" inside options`}}},
		{"misspelt option", opts(t, `"lenght": 81`), lim,
			[]wantErr{{apperr.InvalidInput, "options.lenght", `did you mean "length"`}}},
		{"option in other case", opts(t, `"Width": 832`), lim,
			[]wantErr{{apperr.InvalidInput, "options.Width", `did you mean "width"`}}},
		{"alias option", opts(t, `"num_inference_steps": 6`), lim,
			[]wantErr{{apperr.InvalidInput, "options.num_inference_steps", `did you mean "steps"`}}},
		{"input key inside options", opts(t, `"prompt": "x"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.prompt", "top level"}}},
		{"unknown option lists the valid ones", opts(t, `"zzz": 1`), lim,
			[]wantErr{{apperr.InvalidInput, "options.zzz", "width, height, fit, length"}}},
		{"repeated option", opts(t, `"steps": 6, "steps": 8`), lim,
			[]wantErr{{apperr.InvalidInput, "options.steps", "more than once"}}},
		{"unknown lora key", opts(t, `"loras": [{"name": "a.safetensors", "strenght": 1}]`), lim,
			[]wantErr{{apperr.InvalidInput, "options.loras[0].strenght", `did you mean "strength"`}}},

		// prompt
		{"prompt missing", job(t, `{"image": IMG}`), lim, []wantErr{{apperr.InvalidInput, "prompt", "required"}}},
		{"prompt null", job(t, `{"prompt": null, "image": IMG}`), lim, []wantErr{{apperr.InvalidInput, "prompt", "required"}}},
		{"prompt number", job(t, `{"prompt": 5, "image": IMG}`), lim, []wantErr{{apperr.InvalidInput, "prompt", "must be a string, got a number (5)"}}},
		{"prompt blank", job(t, `{"prompt": " \n\t ", "image": IMG}`), lim, []wantErr{{apperr.InvalidInput, "prompt", "empty"}}},
		{"prompt too long", job(t, `{"prompt": "`+strings.Repeat("é", 4001)+`", "image": IMG}`), lim,
			[]wantErr{{apperr.InvalidInput, "prompt", "4001 characters"}}},
		{"prompt invalid UTF-8", job(t, "{\"prompt\": \"a\xffb\", \"image\": IMG}"), lim,
			[]wantErr{{apperr.InvalidInput, "prompt", "UTF-8"}}},
		{"prompt lone surrogate", job(t, `{"prompt": "a\ud800b", "image": IMG}`), lim,
			[]wantErr{{apperr.InvalidInput, "prompt", "UTF-8"}}},

		// negative_prompt
		{"negative_prompt too long", job(t, `{"prompt": "a", "image": IMG, "negative_prompt": "`+strings.Repeat("x", 4001)+`"}`), lim,
			[]wantErr{{apperr.InvalidInput, "negative_prompt", "4001 characters"}}},
		{"negative_prompt array", job(t, `{"prompt": "a", "image": IMG, "negative_prompt": ["x"]}`), lim,
			[]wantErr{{apperr.InvalidInput, "negative_prompt", "must be a string, got an array"}}},

		// image
		{"image missing", []byte(`{"prompt": "a"}`), lim, []wantErr{{apperr.InvalidInput, "image", "required"}}},
		{"image number", []byte(`{"prompt": "a", "image": 1}`), lim, []wantErr{{apperr.InvalidInput, "image", "must be a string"}}},
		{"image empty", []byte(`{"prompt": "a", "image": "  "}`), lim, []wantErr{{apperr.InvalidInput, "image", "empty"}}},
		{"image ftp URL", []byte(`{"prompt": "a", "image": "ftp://example.com/a.png"}`), lim,
			[]wantErr{{apperr.InvalidInput, "image", `scheme "ftp"`}}},
		{"image s3 URL", []byte(`{"prompt": "a", "image": "s3://bucket/a.png"}`), lim,
			[]wantErr{{apperr.InvalidInput, "image", "presigned"}}},
		{"image URL without host", []byte(`{"prompt": "a", "image": "https://"}`), lim,
			[]wantErr{{apperr.InvalidInput, "image", "not a valid URL"}}},
		{"image not base64", []byte(`{"prompt": "a", "image": "!!!!"}`), lim,
			[]wantErr{{apperr.ImageInvalid, "image", "not valid base64"}}},
		{"image file name", []byte(`{"prompt": "a", "image": "photos/cat.png"}`), lim,
			[]wantErr{{apperr.ImageInvalid, "image", "not a file name"}}},
		{"image mixed alphabets", []byte(`{"prompt": "a", "image": "ab+_"}`), lim,
			[]wantErr{{apperr.ImageInvalid, "image", "mixes"}}},
		{"image truncated base64", []byte(`{"prompt": "a", "image": "abcde"}`), lim,
			[]wantErr{{apperr.ImageInvalid, "image", "length"}}},
		{"image too much padding", []byte(`{"prompt": "a", "image": "ab==="}`), lim,
			[]wantErr{{apperr.ImageInvalid, "image", "padding"}}},
		{"image over MAX_IMAGE_BYTES", job(t, `{"prompt": "a", "image": IMG}`), smallImage,
			[]wantErr{{apperr.ImageTooLarge, "image", "MAX_IMAGE_BYTES"}}},
		{"data URI not an image", []byte(`{"prompt": "a", "image": "data:text/plain;base64,aGVsbG8="}`), lim,
			[]wantErr{{apperr.ImageInvalid, "image", "text/plain"}}},
		{"data URI without comma", []byte(`{"prompt": "a", "image": "data:image/png;base64"}`), lim,
			[]wantErr{{apperr.ImageInvalid, "image", "','"}}},
		{"data URI bad escape", []byte(`{"prompt": "a", "image": "data:image/png,%zz"}`), lim,
			[]wantErr{{apperr.ImageInvalid, "image", "escapes"}}},
		{"image is a GIF", []byte(`{"prompt": "a", "image": "` + b64([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")) + `"}`), lim,
			[]wantErr{{apperr.ImageInvalid, "image", "GIF"}}},
		{"image huge by header", []byte(`{"prompt": "a", "image": "` + b64(pngHeaderOnly(100000, 100000)) + `"}`), lim,
			[]wantErr{{apperr.ImageTooLarge, "image", "MAX_IMAGE_PIXELS"}}},
		{"image URL without fetcher", []byte(`{"prompt": "a", "image": "https://example.com/cat.png"}`), lim,
			[]wantErr{{apperr.ImageFetchFailed, "image", "base64"}}},

		// options
		{"options not an object", job(t, `{"prompt": "a", "image": IMG, "options": [1]}`), lim,
			[]wantErr{{apperr.InvalidInput, "options", "must be an object, got an array"}}},
		{"width not a multiple of 16", opts(t, `"width": 830`), lim, []wantErr{{apperr.InvalidInput, "options.width", "use 832"}}},
		{"height not a multiple of 16", opts(t, `"height": 470`), lim, []wantErr{{apperr.InvalidInput, "options.height", "use 464"}}},
		{"width below 16", opts(t, `"width": 0`), lim, []wantErr{{apperr.InvalidInput, "options.width", "at least 16"}}},
		{"width negative", opts(t, `"width": -832`), lim, []wantErr{{apperr.InvalidInput, "options.width", "at least 16"}}},
		{"width above ComfyUI's limit", opts(t, `"width": 16400`), lim, []wantErr{{apperr.InvalidInput, "options.width", "at most 16384"}}},
		{"width a string", opts(t, `"width": "832"`), lim, []wantErr{{apperr.InvalidInput, "options.width", `must be a whole number, got a string ("832")`}}},
		{"width a fraction", opts(t, `"width": 832.5`), lim, []wantErr{{apperr.InvalidInput, "options.width", "whole number"}}},
		{"width overflows", opts(t, `"width": 99999999999999999999`), lim, []wantErr{{apperr.InvalidInput, "options.width", "out of range"}}},
		{"size above MAX_PIXELS", opts(t, `"width": 1920, "height": 1088`), lim,
			[]wantErr{{apperr.InvalidInput, "options.width", "e.g. 1264×720"}}},
		{"width alone above MAX_PIXELS", opts(t, `"width": 8192`), smallPixels,
			[]wantErr{{apperr.InvalidInput, "options.width", "no room"}}},
		{"height alone above MAX_PIXELS", opts(t, `"height": 8192`), smallPixels,
			[]wantErr{{apperr.InvalidInput, "options.height", "no room"}}},
		{"fit unknown", opts(t, `"fit": "cover"`), lim, []wantErr{{apperr.InvalidInput, "options.fit", "crop, pad, stretch"}}},
		{"length not 4k+1", opts(t, `"length": 80`), lim, []wantErr{{apperr.InvalidInput, "options.length", "use 77 or 81"}}},
		{"length too short", opts(t, `"length": 1`), lim, []wantErr{{apperr.InvalidInput, "options.length", "between 5 and 121"}}},
		{"length above MAX_FRAMES", opts(t, `"length": 125`), lim, []wantErr{{apperr.InvalidInput, "options.length", "MAX_FRAMES"}}},
		{"length a boolean", opts(t, `"length": true`), lim, []wantErr{{apperr.InvalidInput, "options.length", "got a boolean"}}},
		{"steps too few", opts(t, `"steps": 1`), lim, []wantErr{{apperr.InvalidInput, "options.steps", "between 2 and 40"}}},
		{"steps above MAX_STEPS", opts(t, `"steps": 41`), lim, []wantErr{{apperr.InvalidInput, "options.steps", "MAX_STEPS"}}},
		{"steps a fraction", opts(t, `"steps": 6.5`), lim, []wantErr{{apperr.InvalidInput, "options.steps", "whole number"}}},
		{"split_step zero", opts(t, `"split_step": 0`), lim, []wantErr{{apperr.InvalidInput, "options.split_step", "between 1 and 5"}}},
		{"split_step = steps", opts(t, `"steps": 8, "split_step": 8`), lim, []wantErr{{apperr.InvalidInput, "options.split_step", "between 1 and 7 for 8 steps"}}},
		{"split_step with bad steps", opts(t, `"steps": 100, "split_step": 50`), lim, []wantErr{{apperr.InvalidInput, "options.steps", ""}}},
		{"cfg below 1", opts(t, `"cfg": 0.5`), lim, []wantErr{{apperr.InvalidInput, "options.cfg", "between 1 and 20"}}},
		{"cfg above 20", opts(t, `"cfg": 21`), lim, []wantErr{{apperr.InvalidInput, "options.cfg", "between 1 and 20"}}},
		{"cfg a string", opts(t, `"cfg": "1.0"`), lim, []wantErr{{apperr.InvalidInput, "options.cfg", "must be a number"}}},
		{"cfg overflows", opts(t, `"cfg": 1e999`), lim, []wantErr{{apperr.InvalidInput, "options.cfg", "not a usable number"}}},
		{"shift below 0.5", opts(t, `"shift": 0.4`), lim, []wantErr{{apperr.InvalidInput, "options.shift", "between 0.5 and 20"}}},
		{"shift above 20", opts(t, `"shift": 25`), lim, []wantErr{{apperr.InvalidInput, "options.shift", "between 0.5 and 20"}}},
		{"sampler misspelt", opts(t, `"sampler": "eulr"`), lim, []wantErr{{apperr.InvalidInput, "options.sampler", `did you mean "euler"`}}},
		{"sampler unknown", opts(t, `"sampler": "zzzzzzzzzzzz"`), lim, []wantErr{{apperr.InvalidInput, "options.sampler", "uni_pc_bh2"}}},
		{"scheduler in other case", opts(t, `"scheduler": "Simple"`), lim, []wantErr{{apperr.InvalidInput, "options.scheduler", `did you mean "simple"`}}},
		{"frame_rate zero", opts(t, `"frame_rate": 0`), lim, []wantErr{{apperr.InvalidInput, "options.frame_rate", "between 1 and 60"}}},
		{"frame_rate above 60", opts(t, `"frame_rate": 61`), lim, []wantErr{{apperr.InvalidInput, "options.frame_rate", "16 fps"}}},
		{"seed negative", opts(t, `"seed": -1`), lim, []wantErr{{apperr.InvalidInput, "options.seed", "negative"}}},
		{"seed a fraction", opts(t, `"seed": 1.5`), lim, []wantErr{{apperr.InvalidInput, "options.seed", "whole number"}}},
		{"seed above 2^64-1", opts(t, `"seed": 18446744073709551616`), lim, []wantErr{{apperr.InvalidInput, "options.seed", "larger than"}}},
		{"seed inexact float", opts(t, `"seed": 1e19`), lim, []wantErr{{apperr.InvalidInput, "options.seed", "exponent"}}},
		{"seed a string", opts(t, `"seed": "42"`), lim, []wantErr{{apperr.InvalidInput, "options.seed", "got a string"}}},
		{"crf above 51", opts(t, `"crf": 52`), lim, []wantErr{{apperr.InvalidInput, "options.crf", "between 0 and 51"}}},
		{"crf negative", opts(t, `"crf": -1`), lim, []wantErr{{apperr.InvalidInput, "options.crf", "between 0 and 51"}}},
		{"last_frame a string", opts(t, `"last_frame": "yes"`), lim, []wantErr{{apperr.InvalidInput, "options.last_frame", "true or false"}}},
		{"output unknown", opts(t, `"output": "inline"`), lim, []wantErr{{apperr.InvalidInput, "options.output", "auto, base64, s3, volume"}}},

		// loras
		{"loras an object", opts(t, `"loras": {"name": "a.safetensors"}`), lim, []wantErr{{apperr.InvalidInput, "options.loras", "must be an array"}}},
		{"too many loras", opts(t, `"loras": [{"name":"a.pt"},{"name":"b.pt"},{"name":"c.pt"},{"name":"d.pt"},{"name":"e.pt"}]`), lim,
			[]wantErr{{apperr.InvalidInput, "options.loras", "at most 4"}}},
		{"lora a string", opts(t, `"loras": ["a.safetensors"]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0]", "must be an object"}}},
		{"lora without name", opts(t, `"loras": [{"strength": 1}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "required"}}},
		{"lora name with ..", opts(t, `"loras": [{"name": "../secret.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", `".."`}}},
		{"lora name with inner ..", opts(t, `"loras": [{"name": "wan/../../x.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", `".."`}}},
		{"lora name absolute", opts(t, `"loras": [{"name": "/etc/x.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "absolute"}}},
		{"lora name with drive", opts(t, `"loras": [{"name": "C:x.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "absolute"}}},
		{"lora name with backslash", opts(t, `"loras": [{"name": "wan\\x.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "backslash"}}},
		{"lora name with //", opts(t, `"loras": [{"name": "wan//x.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "empty"}}},
		{"lora name with ./", opts(t, `"loras": [{"name": "./x.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "'.'"}}},
		{"lora name with spaces", opts(t, `"loras": [{"name": " x.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "spaces"}}},
		{"lora name with a control character", opts(t, `"loras": [{"name": "x\u0000.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "control"}}},
		{"lora name without extension", opts(t, `"loras": [{"name": "wan/x.txt"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", ".safetensors"}}},
		{"lora name only an extension", opts(t, `"loras": [{"name": ".safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "extension"}}},
		{"lora name empty", opts(t, `"loras": [{"name": ""}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].name", "empty"}}},
		{"lora with name and url", opts(t, `"loras": [{"name": "a.safetensors", "url": "https://huggingface.co/u/r/resolve/main/a.safetensors"}]`), lim,
			[]wantErr{{apperr.InvalidInput, "options.loras[0]", "both name and url"}}},
		{"lora url not http", opts(t, `"loras": [{"url": "ftp://example.com/a.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].url", "http or https"}}},
		{"lora url relative", opts(t, `"loras": [{"url": "a.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].url", "http or https"}}},
		{"lora url without host", opts(t, `"loras": [{"url": "https:///a.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].url", "no host"}}},
		{"lora url with a password", opts(t, `"loras": [{"url": "https://u:p@example.com/a.safetensors"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].url", "password"}}},
		{"lora url a number", opts(t, `"loras": [{"url": 5}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].url", "must be a string"}}},
		{"lora sha256 short", opts(t, `"loras": [{"url": "https://example.com/a.safetensors", "sha256": "abc"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].sha256", "64 hexadecimal"}}},
		{"lora sha256 not hex", opts(t, `"loras": [{"url": "https://example.com/a.safetensors", "sha256": "`+strings.Repeat("g", 64)+`"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].sha256", "64 hexadecimal"}}},
		{"lora sha256 with a name", opts(t, `"loras": [{"name": "a.safetensors", "sha256": "`+strings.Repeat("a", 64)+`"}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].sha256", "only checked for a LoRA given by url"}}},
		{"every bad lora field at once", opts(t, `"loras": [{"url": "file:///x", "sha256": "1", "strength": 9, "expert": "hgh"}]`), lim,
			[]wantErr{{apperr.InvalidInput, "options.loras[0].url", "http or https"}, {apperr.InvalidInput, "options.loras[0].sha256", "64 hexadecimal"},
				{apperr.InvalidInput, "options.loras[0].strength", "between -4 and 4"}, {apperr.InvalidInput, "options.loras[0].expert", `did you mean "high"`}}},
		{"unknown lora key near url", opts(t, `"loras": [{"ulr": "https://example.com/a.safetensors"}]`), lim,
			[]wantErr{{apperr.InvalidInput, "options.loras[0].ulr", `did you mean "url"`}, {apperr.InvalidInput, "options.loras[0].name", "or options.loras[0].url"}}},
		{"lora strength out of range", opts(t, `"loras": [{"name": "a.safetensors", "strength": 4.5}]`), lim, []wantErr{{apperr.InvalidInput, "options.loras[0].strength", "between -4 and 4"}}},
		{"lora expert unknown", opts(t, `"loras": [{"name": "a.safetensors"}, {"name": "b.safetensors", "expert": "middle"}]`), lim,
			[]wantErr{{apperr.InvalidInput, "options.loras[1].expert", "both, high, low"}}},

		// end_image: the image's forms and checks, reported on end_image.
		{"end_image number", job(t, `{"prompt": "a", "image": IMG, "end_image": 1}`), lim,
			[]wantErr{{apperr.InvalidInput, "end_image", "must be a string"}}},
		{"end_image empty", job(t, `{"prompt": "a", "image": IMG, "end_image": " "}`), lim,
			[]wantErr{{apperr.InvalidInput, "end_image", "end_image is empty"}}},
		{"end_image not base64", job(t, `{"prompt": "a", "image": IMG, "end_image": "!!!!"}`), lim,
			[]wantErr{{apperr.ImageInvalid, "end_image", "end_image is not valid base64"}}},
		{"end_image ftp URL", job(t, `{"prompt": "a", "image": IMG, "end_image": "ftp://example.com/a.png"}`), lim,
			[]wantErr{{apperr.InvalidInput, "end_image", `scheme "ftp"`}}},
		{"end_image is a GIF", job(t, `{"prompt": "a", "image": IMG, "end_image": "`+b64([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))+`"}`), lim,
			[]wantErr{{apperr.ImageInvalid, "end_image", "GIF"}}},
		{"end_image huge by header", job(t, `{"prompt": "a", "image": IMG, "end_image": "`+b64(pngHeaderOnly(100000, 100000))+`"}`), lim,
			[]wantErr{{apperr.ImageTooLarge, "end_image", "MAX_IMAGE_PIXELS"}}},
		{"end_image over MAX_IMAGE_BYTES", job(t, `{"prompt": "a", "image": "data:image/png;base64,iVBORw0KGgo=", "end_image": IMG}`), smallImage,
			[]wantErr{{apperr.ImageTooLarge, "end_image", "MAX_IMAGE_BYTES"}, {apperr.ImageInvalid, "image", "header"}}},
		{"end_image URL without fetcher", job(t, `{"prompt": "a", "image": IMG, "end_image": "https://example.com/end.png"}`), lim,
			[]wantErr{{apperr.ImageFetchFailed, "end_image", "base64"}}},
		{"end frame misspelt", job(t, `{"prompt": "a", "image": IMG, "end_imag": IMG}`), lim,
			[]wantErr{{apperr.InvalidInput, "end_imag", `did you mean "end_image"`}}},
		{"last_image alias", job(t, `{"prompt": "a", "image": IMG, "last_image": IMG}`), lim,
			[]wantErr{{apperr.InvalidInput, "last_image", `did you mean "end_image"`}}},
		{"end_image inside options", opts(t, `"end_image": "x"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.end_image", "top level"}}},

		// resolution, aspect_ratio
		{"resolution unknown", opts(t, `"resolution": "1080p"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.resolution", "480p, 580p, 720p"}}},
		{"resolution misspelt", opts(t, `"resolution": "720"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.resolution", `did you mean "720p"`}}},
		{"resolution a number", opts(t, `"resolution": 720`), lim,
			[]wantErr{{apperr.InvalidInput, "options.resolution", "must be a string"}}},
		{"resolution with width and height", opts(t, `"resolution": "480p", "width": 832, "height": 480`), lim,
			[]wantErr{{apperr.InvalidInput, "options.resolution", "drop options.resolution to use width×height, or drop options.width and options.height"}}},
		{"resolution with width", opts(t, `"resolution": "480p", "width": 832`), lim,
			[]wantErr{{apperr.InvalidInput, "options.resolution", "drop options.width"}}},
		{"resolution with height", opts(t, `"height": 480, "resolution": "720p"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.resolution", "drop options.height"}}},
		{"resolution above MAX_PIXELS", opts(t, `"resolution": "720p"`), smallPixels,
			[]wantErr{{apperr.InvalidInput, "options.resolution", "MAX_PIXELS"}}},
		{"aspect_ratio unknown", opts(t, `"aspect_ratio": "21:9"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.aspect_ratio", "auto, 16:9, 9:16, 1:1, 4:3, 3:4"}}},
		{"aspect_ratio misspelt", opts(t, `"aspect_ratio": "16x9"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.aspect_ratio", `did you mean "16:9"`}}},
		{"aspect_ratio with width and height", opts(t, `"aspect_ratio": "1:1", "width": 832, "height": 480`), lim,
			[]wantErr{{apperr.InvalidInput, "options.aspect_ratio", "drop options.aspect_ratio"}}},

		// preset, cfg_high, cfg_low, distill_lora, video_quality
		{"preset unknown", opts(t, `"preset": "slow"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.preset", "fast, balanced, quality"}}},
		{"preset misspelt", opts(t, `"preset": "qualty"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.preset", `did you mean "quality"`}}},
		{"preset above MAX_STEPS", opts(t, `"preset": "quality"`), fewSteps,
			[]wantErr{{apperr.InvalidInput, "options.preset", "MAX_STEPS"}}},
		{"cfg_high below 1", opts(t, `"cfg_high": 0.5`), lim,
			[]wantErr{{apperr.InvalidInput, "options.cfg_high", "between 1 and 20"}}},
		{"cfg_low a string", opts(t, `"cfg_low": "1"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.cfg_low", "must be a number"}}},
		{"cfg_low above 20", opts(t, `"cfg_low": 30`), lim,
			[]wantErr{{apperr.InvalidInput, "options.cfg_low", "between 1 and 20"}}},
		{"guidance_scale_2 alias", opts(t, `"guidance_scale_2": 1`), lim,
			[]wantErr{{apperr.InvalidInput, "options.guidance_scale_2", `did you mean "cfg_low"`}}},
		{"distill_lora unknown", opts(t, `"distill_lora": "high"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.distill_lora", "both, low, none"}}},
		{"distill_lora a boolean", opts(t, `"distill_lora": false`), lim,
			[]wantErr{{apperr.InvalidInput, "options.distill_lora", "must be a string"}}},
		{"video_quality unknown", opts(t, `"video_quality": "best"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.video_quality", "low, medium, high, maximum"}}},
		{"video_quality misspelt", opts(t, `"video_quality": "medum"`), lim,
			[]wantErr{{apperr.InvalidInput, "options.video_quality", `did you mean "medium"`}}},

		// interpolate
		{"interpolate a boolean", opts(t, `"interpolate": true`), lim,
			[]wantErr{{apperr.InvalidInput, "options.interpolate", "must be an object"}}},
		{"interpolate factor 1", opts(t, `"interpolate": {"factor": 1}`), lim,
			[]wantErr{{apperr.InvalidInput, "options.interpolate.factor", "between 2 and 4"}}},
		{"interpolate factor 5", opts(t, `"interpolate": {"factor": 5}`), lim,
			[]wantErr{{apperr.InvalidInput, "options.interpolate.factor", "between 2 and 4"}}},
		{"interpolate factor a fraction", opts(t, `"interpolate": {"factor": 2.5}`), lim,
			[]wantErr{{apperr.InvalidInput, "options.interpolate.factor", "whole number"}}},
		{"interpolate method unknown", opts(t, `"interpolate": {"method": "film"}`), lim,
			[]wantErr{{apperr.InvalidInput, "options.interpolate.method", "ffmpeg"}}},
		{"interpolate method misspelt", opts(t, `"interpolate": {"method": "ffmpg"}`), lim,
			[]wantErr{{apperr.InvalidInput, "options.interpolate.method", `did you mean "ffmpeg"`}}},
		{"interpolate unknown key", opts(t, `"interpolate": {"factr": 2}`), lim,
			[]wantErr{{apperr.InvalidInput, "options.interpolate.factr", `did you mean "factor"`}}},
		{"interpolate frame_rate above 120", opts(t, `"interpolate": {"factor": 4}, "frame_rate": 121`), lim,
			[]wantErr{{apperr.InvalidInput, "options.frame_rate", "between 1 and 120"}}},
		{"interpolate_output alias", opts(t, `"interpolate_output": true`), lim,
			[]wantErr{{apperr.InvalidInput, "options.interpolate_output", `did you mean "interpolate"`}}},

		// Every new field wrong at once.
		{"all new fields at once", job(t, `{"prompt": "a", "image": IMG, "end_image": "!!!!", "options": {"resolution": "4k",
			"aspect_ratio": "2:1", "preset": "max", "cfg_high": 0, "cfg_low": 99, "distill_lora": "x", "video_quality": "ultra",
			"interpolate": {"factor": 9, "method": "rife"}}}`), lim,
			[]wantErr{
				{apperr.ImageInvalid, "end_image", "base64"},
				{apperr.InvalidInput, "options.preset", "fast"},
				{apperr.InvalidInput, "options.resolution", "480p"},
				{apperr.InvalidInput, "options.aspect_ratio", "16:9"},
				{apperr.InvalidInput, "options.cfg_high", "between"},
				{apperr.InvalidInput, "options.cfg_low", "between"},
				{apperr.InvalidInput, "options.distill_lora", "both"},
				{apperr.InvalidInput, "options.interpolate.factor", "between"},
				{apperr.InvalidInput, "options.interpolate.method", "ffmpeg"},
				{apperr.InvalidInput, "options.video_quality", "maximum"},
			}},

		// Everything at once, in documentation order; the image's own errors last.
		{"all errors at once", []byte(`{"image": "` + b64([]byte("GIF89a\x01\x00")) + `", "options": {"lenght": 81, "length": 80, "cfg": 0}}`), lim,
			[]wantErr{
				{apperr.InvalidInput, "prompt", "required"},
				{apperr.InvalidInput, "options.lenght", "length"},
				{apperr.InvalidInput, "options.length", "4k+1"},
				{apperr.InvalidInput, "options.cfg", "between"},
				{apperr.ImageInvalid, "image", "GIF"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := parseTest(t, tt.input, tt.lim)
			if err == nil {
				t.Fatalf("no error; job %+v", j.Options)
			}
			got := errorsOf(err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d: %v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Code != w.code || g.Field != w.field || g.Message == "" || g.Hint == "" ||
					!strings.Contains(g.Message+" | "+g.Hint, w.in) {
					t.Errorf("error %d = {%s %q %q hint %q}, want code %s, field %q, %q in message or hint",
						i, g.Code, g.Field, g.Message, g.Hint, w.code, w.field, w.in)
				}
			}
			if apperr.CodeOf(err) != tt.want[0].code {
				t.Errorf("CodeOf = %s, want %s", apperr.CodeOf(err), tt.want[0].code)
			}
		})
	}
}

// TestParseDefaults checks each default and the rules that accept values.
func TestParseDefaults(t *testing.T) {
	j, err := parseTest(t, job(t, `{"prompt": "  a cat  ", "image": IMG}`), testLimits())
	if err != nil {
		t.Fatal(err)
	}
	o := j.Options
	if j.Prompt != "a cat" || j.NegativePrompt != DefaultNegativePrompt || j.ID != "test-job" {
		t.Errorf("prompt %q, negative %q, id %q", j.Prompt, j.NegativePrompt, j.ID)
	}
	if o.Width != 960 || o.Height != 720 || o.Fit != FitCrop || o.Length != 81 || o.Steps != 6 || o.SplitStep != 3 ||
		o.CFG != 1 || o.Shift != 8 || o.Sampler != "euler" || o.Scheduler != "simple" || o.FrameRate != 16 ||
		o.CRF != 19 || o.LastFrame || o.Output != OutputAuto || o.LoRAs == nil || len(o.LoRAs) != 0 {
		t.Errorf("defaults: %+v", o)
	}
	if !j.SeedRandom || o.Seed >= 1<<53 {
		t.Errorf("random seed %d (random %v), want one below 2^53", o.Seed, j.SeedRandom)
	}
	if j.Image != (ImageInfo{Source: SourceBase64, Format: FormatPNG, Width: 64, Height: 48, Bytes: len(testPNG(t)), Orientation: 1}) {
		t.Errorf("image info %+v", j.Image)
	}
	img := decodePNG(t, j.Prepared)
	if b := img.Bounds(); b.Dx() != 960 || b.Dy() != 720 {
		t.Errorf("prepared image is %v, want 960×720", b)
	}
}

func TestParseAccepts(t *testing.T) {
	pngB64 := b64(testPNG(t))
	tests := []struct {
		name  string
		input []byte
		check func(*Job) bool
	}{
		{"split_step default rounds up", opts(t, `"steps": 7`), func(j *Job) bool { return j.Options.SplitStep == 4 }},
		{"split_step for 2 steps", opts(t, `"steps": 2`), func(j *Job) bool { return j.Options.SplitStep == 1 }},
		{"split_step given", opts(t, `"steps": 10, "split_step": 9`), func(j *Job) bool { return j.Options.SplitStep == 9 }},
		{"whole float accepted as int", opts(t, `"width": 128.0, "height": 6.4e1`), func(j *Job) bool { return j.Options.Width == 128 && j.Options.Height == 64 }},
		{"seed 2^64-1 exactly", opts(t, `"seed": 18446744073709551615`), func(j *Job) bool { return j.Options.Seed == 18446744073709551615 && !j.SeedRandom }},
		{"seed above 2^53 exactly", opts(t, `"seed": 9007199254740993`), func(j *Job) bool { return j.Options.Seed == 9007199254740993 }},
		{"seed 0", opts(t, `"seed": 0`), func(j *Job) bool { return j.Options.Seed == 0 && !j.SeedRandom }},
		{"nulls mean defaults", opts(t, `"width": null, "length": null, "seed": null, "loras": null, "fit": null`),
			func(j *Job) bool { return j.Options.Length == 81 && j.SeedRandom && j.Options.Width == 144 }},
		{"options null", job(t, `{"prompt": "a", "image": IMG, "options": null}`), func(j *Job) bool { return j.Options.Steps == 6 }},
		{"empty negative prompt kept", job(t, `{"prompt": "a", "image": IMG, "negative_prompt": ""}`), func(j *Job) bool { return j.NegativePrompt == "" }},
		{"negative prompt null is the default", job(t, `{"prompt": "a", "image": IMG, "negative_prompt": null}`), func(j *Job) bool { return j.NegativePrompt == DefaultNegativePrompt }},
		{"prompt of 4000 characters", job(t, `{"prompt": "`+strings.Repeat("猫", 4000)+`", "image": IMG}`), func(j *Job) bool { return len([]rune(j.Prompt)) == 4000 }},
		{"prompt with a real U+FFFD", job(t, `{"prompt": "a\ufffdb �", "image": IMG}`), func(j *Job) bool { return j.Prompt == "a\ufffdb \ufffd" }},
		{"exactly MAX_PIXELS", opts(t, `"width": 256, "height": 64`), func(j *Job) bool { return j.Options.Width == 256 }},
		{"length at MAX_FRAMES", opts(t, `"length": 121`), func(j *Job) bool { return j.Options.Length == 121 }},
		{"frame_rate fraction", opts(t, `"frame_rate": 23.976`), func(j *Job) bool { return j.Options.FrameRate == 23.976 }},
		{"all samplers known", opts(t, `"sampler": "uni_pc_bh2", "scheduler": "kl_optimal"`), func(j *Job) bool { return j.Options.Sampler == "uni_pc_bh2" }},
		{"lora defaults", opts(t, `"loras": [{"name": "wan/Style.SafeTensors"}]`),
			func(j *Job) bool {
				l := j.Options.LoRAs
				return len(l) == 1 && l[0].Strength == 1 && l[0].Expert == ExpertBoth
			}},
		{"four loras", opts(t, `"loras": [{"name":"a.pt","expert":"high","strength":-4},{"name":"b.ckpt","expert":"low","strength":4},{"name":"c.sft"},{"name":"d e/f.safetensors"}]`),
			func(j *Job) bool { return len(j.Options.LoRAs) == 4 && j.Options.LoRAs[0].Strength == -4 }},
		{"lora by url", opts(t, `"loras": [{"url": "https://civitai.com/api/download/models/1?type=Model", "expert": "low"}]`),
			func(j *Job) bool {
				l := j.Options.LoRAs
				return len(l) == 1 && l[0].URL == "https://civitai.com/api/download/models/1?type=Model" && l[0].Name == "" &&
					l[0].SHA256 == "" && l[0].File() == "" && l[0].Expert == ExpertLow && l[0].Strength == 1
			}},
		{"lora by url with sha256", opts(t, `"loras": [{"url": "http://example.com/a", "sha256": " `+strings.Repeat("AB", 32)+`"}]`),
			func(j *Job) bool {
				l := j.Options.LoRAs[0]
				return l.SHA256 == strings.Repeat("ab", 32) && l.File() == "url-cache/"+strings.Repeat("ab", 32)+".safetensors"
			}},
		{"url-safe base64 with line breaks, no padding", job(t, `{"prompt": "a", "image": "`+wrapB64(urlSafe(pngB64))+`"}`), func(j *Job) bool { return j.Image.Width == 64 }},
		{"data URI", job(t, `{"prompt": "a", "image": "data:image/png;base64,`+pngB64+`"}`), func(j *Job) bool { return j.Image.Source == SourceDataURI }},
		{"data URI without media type", job(t, `{"prompt": "a", "image": "data:;base64,`+pngB64+`"}`), func(j *Job) bool { return j.Image.Source == SourceDataURI }},
		{"data URI media type ignored", job(t, `{"prompt": "a", "image": "data:image/jpeg;base64,`+pngB64+`"}`), func(j *Job) bool { return j.Image.Format == FormatPNG }},
		{"fit pad", opts(t, `"fit": "pad", "width": 128, "height": 128`), func(j *Job) bool { return j.Options.Fit == FitPad }},
	}
	// A small MAX_PIXELS keeps the prepared images small (the race detector
	// makes resampling slow); TestParseDefaults covers the real defaults.
	lim := testLimits()
	lim.MaxPixels = 128 * 128
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := parseTest(t, tt.input, lim)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(j) {
				t.Errorf("unexpected job: %+v %+v", j.Options, j.Image)
			}
		})
	}
}

func urlSafe(s string) string {
	s = strings.TrimRight(s, "=")
	return strings.NewReplacer("+", "-", "/", "_").Replace(s)
}

func wrapB64(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 76 {
		b.WriteString(s[i:min(i+76, len(s))])
		b.WriteString(`\r\n`)
	}
	return b.String()
}

func TestDecodeBase64Variants(t *testing.T) {
	raw := []byte{0xfb, 0xff, 0xfe, 0x00, 0x01}
	variants := []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		" +//+\n AAE=\t",
	}
	for _, v := range variants {
		got, err := decodeBase64(v, testLimits())
		if err != nil || string(got) != string(raw) {
			t.Errorf("decodeBase64(%q) = %x, %v; want %x", v, got, err, raw)
		}
	}
}

func TestParseCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := parse(ctx, "x", job(t, `{"prompt": "a", "image": IMG}`), testLimits(), nil, &seededRand{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestUploadName(t *testing.T) {
	tests := map[string]string{
		"":                       "wan22_job.png",
		"abc-123_x.y":            "wan22_abc-123_x.y.png",
		"a/b\\c d":               "wan22_a_b_c_d.png",
		strings.Repeat("z", 200): "wan22_" + strings.Repeat("z", 96) + ".png",
	}
	for id, want := range tests {
		if got := (&Job{ID: id}).UploadName(); got != want {
			t.Errorf("UploadName(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestPresetsAndOverrides checks the values each preset sets and that
// explicit options win over them.
func TestPresetsAndOverrides(t *testing.T) {
	lim := testLimits()
	lim.MaxPixels = 128 * 128
	type want struct {
		preset         Preset
		steps, split   int
		cfg, high, low float64
		shift          float64
		distill        DistillLoRA
		crf            int
		quality        VideoQuality
	}
	tests := []struct {
		name string
		body string
		want want
	}{
		{"default is fast", ``, want{PresetFast, 6, 3, 1, 1, 1, 8, DistillBoth, 19, ""}},
		{"fast", `"preset": "fast"`, want{PresetFast, 6, 3, 1, 1, 1, 8, DistillBoth, 19, ""}},
		{"balanced", `"preset": "balanced"`, want{PresetBalanced, 10, 5, 3.5, 3.5, 1, 8, DistillLow, 19, ""}},
		{"quality", `"preset": "quality"`, want{PresetQuality, 20, 10, 3.5, 3.5, 3.5, 8, DistillNone, 19, ""}},
		{"quality with explicit steps", `"preset": "quality", "steps": 8`, want{PresetQuality, 8, 4, 3.5, 3.5, 3.5, 8, DistillNone, 19, ""}},
		{"quality with explicit split", `"preset": "quality", "split_step": 12`, want{PresetQuality, 20, 12, 3.5, 3.5, 3.5, 8, DistillNone, 19, ""}},
		{"cfg replaces the preset's on both", `"preset": "balanced", "cfg": 2`, want{PresetBalanced, 10, 5, 2, 2, 2, 8, DistillLow, 19, ""}},
		{"cfg_high wins over cfg", `"cfg": 2, "cfg_high": 3.5`, want{PresetFast, 6, 3, 2, 3.5, 2, 8, DistillBoth, 19, ""}},
		{"the common recipe", `"cfg_high": 3.5, "cfg_low": 1, "distill_lora": "low"`, want{PresetFast, 6, 3, 1, 3.5, 1, 8, DistillLow, 19, ""}},
		{"quality with distill both and shift", `"preset": "quality", "distill_lora": "both", "shift": 5`, want{PresetQuality, 20, 10, 3.5, 3.5, 3.5, 5, DistillBoth, 19, ""}},
		{"video_quality low", `"video_quality": "low"`, want{PresetFast, 6, 3, 1, 1, 1, 8, DistillBoth, 28, QualityLow}},
		{"video_quality medium", `"video_quality": "medium"`, want{PresetFast, 6, 3, 1, 1, 1, 8, DistillBoth, 23, QualityMedium}},
		{"video_quality high", `"video_quality": "high"`, want{PresetFast, 6, 3, 1, 1, 1, 8, DistillBoth, 19, QualityHigh}},
		{"video_quality maximum", `"video_quality": "maximum"`, want{PresetFast, 6, 3, 1, 1, 1, 8, DistillBoth, 12, QualityMaximum}},
		{"crf wins over video_quality", `"crf": 30, "video_quality": "maximum"`, want{PresetFast, 6, 3, 1, 1, 1, 8, DistillBoth, 30, QualityMaximum}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := parseTest(t, opts(t, tt.body), lim)
			if err != nil {
				t.Fatal(err)
			}
			o := j.Options
			got := want{o.Preset, o.Steps, o.SplitStep, o.CFG, o.CFGHigh, o.CFGLow, o.Shift, o.DistillLoRA, o.CRF, o.VideoQuality}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestSizeOptions checks the size chosen from resolution and aspect_ratio,
// with the 64×48 (4:3) test image and a 48×64 portrait.
func TestSizeOptions(t *testing.T) {
	portrait := b64(encodePNG(t, gradient(48, 64)))
	wide := b64(encodePNG(t, gradient(210, 64))) // wider than 3:1
	tests := []struct {
		name  string
		input []byte
		lim   int // MaxPixels; 0 for the default
		w, h  int
	}{
		{"480p auto (4:3)", opts(t, `"resolution": "480p"`), 0, 640, 480},
		{"480p 16:9", opts(t, `"resolution": "480p", "aspect_ratio": "16:9"`), 0, 848, 480},
		{"480p 9:16", opts(t, `"resolution": "480p", "aspect_ratio": "9:16"`), 0, 480, 848},
		{"580p 16:9", opts(t, `"resolution": "580p", "aspect_ratio": "16:9"`), 0, 1024, 576},
		{"720p 16:9", opts(t, `"resolution": "720p", "aspect_ratio": "16:9"`), 0, 1280, 720},
		{"720p 1:1", opts(t, `"resolution": "720p", "aspect_ratio": "1:1"`), 0, 720, 720},
		{"720p 3:4", opts(t, `"resolution": "720p", "aspect_ratio": "3:4"`), 0, 720, 960},
		{"720p 4:3", opts(t, `"resolution": "720p", "aspect_ratio": "4:3"`), 0, 960, 720},
		{"480p auto portrait", job(t, `{"prompt": "a", "image": "`+portrait+`", "options": {"resolution": "480p"}}`), 0, 480, 640},
		{"720p auto, very wide: long side within MAX_PIXELS", job(t, `{"prompt": "a", "image": "`+wide+`", "options": {"resolution": "720p"}}`), 0, 1280, 720},
		{"720p 16:9 within a small MAX_PIXELS", opts(t, `"resolution": "720p", "aspect_ratio": "16:9"`), 720 * 1000, 992, 720},
		{"aspect_ratio alone aims at 832×832", opts(t, `"aspect_ratio": "1:1"`), 0, 832, 832},
		{"aspect_ratio 16:9 alone", opts(t, `"aspect_ratio": "16:9"`), 0, 1104, 624},
		{"aspect_ratio with width", opts(t, `"aspect_ratio": "16:9", "width": 1280`), 0, 1280, 720},
		{"aspect_ratio auto with width and height", opts(t, `"aspect_ratio": "auto", "width": 320, "height": 320`), 0, 320, 320},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := testLimits()
			if tt.lim > 0 {
				lim.MaxPixels = tt.lim
			}
			j, err := parseTest(t, tt.input, lim)
			if err != nil {
				t.Fatal(err)
			}
			if j.Options.Width != tt.w || j.Options.Height != tt.h {
				t.Errorf("size %d×%d, want %d×%d", j.Options.Width, j.Options.Height, tt.w, tt.h)
			}
			if b := decodePNG(t, j.Prepared).Bounds(); b.Dx() != tt.w || b.Dy() != tt.h {
				t.Errorf("prepared image %v", b)
			}
		})
	}
}

// TestInterpolateOptions checks the defaults of options.interpolate and
// what frame_rate means with it.
func TestInterpolateOptions(t *testing.T) {
	lim := testLimits()
	lim.MaxPixels = 128 * 128
	tests := []struct {
		body         string
		factor       int
		rate, source float64
	}{
		{``, 0, 16, 16},
		{`"interpolate": null`, 0, 16, 16},
		{`"interpolate": {}`, 2, 32, 16},
		{`"interpolate": {"factor": 3}`, 3, 48, 16},
		{`"interpolate": {"factor": 4, "method": "ffmpeg"}`, 4, 64, 16},
		{`"interpolate": {"factor": 2}, "frame_rate": 30`, 2, 30, 15},
		{`"interpolate": {"factor": 4}, "frame_rate": 120`, 4, 120, 30},
	}
	for _, tt := range tests {
		j, err := parseTest(t, opts(t, tt.body), lim)
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		o := j.Options
		factor := 0
		if o.Interpolate != nil {
			factor = o.Interpolate.Factor
			if o.Interpolate.Method != InterpolateFFmpeg {
				t.Errorf("%s: method %q", tt.body, o.Interpolate.Method)
			}
		}
		if factor != tt.factor || o.FrameRate != tt.rate || o.ModelFrameRate() != tt.source {
			t.Errorf("%s: factor %d, frame_rate %g, model rate %g; want %d, %g, %g",
				tt.body, factor, o.FrameRate, o.ModelFrameRate(), tt.factor, tt.rate, tt.source)
		}
	}
}

// TestEndImagePrepared checks that the end frame is prepared to the start
// image's size with the same fit, whatever its own shape.
func TestEndImagePrepared(t *testing.T) {
	end := b64(encodePNG(t, gradient(30, 90)))
	lim := testLimits()
	lim.MaxPixels = 128 * 128
	j, err := parseTest(t, job(t, `{"prompt": "a", "image": IMG, "end_image": "data:image/png;base64,`+end+`",
		"options": {"fit": "pad"}}`), lim)
	if err != nil {
		t.Fatal(err)
	}
	if j.EndImage == nil || j.EndImage.Width != 30 || j.EndImage.Height != 90 || j.EndImage.Source != SourceDataURI {
		t.Fatalf("end image info %+v", j.EndImage)
	}
	start, endImg := decodePNG(t, j.Prepared), decodePNG(t, j.EndPNG)
	if start.Bounds() != endImg.Bounds() || start.Bounds().Dx() != j.Options.Width {
		t.Errorf("start %v, end %v, options %d×%d", start.Bounds(), endImg.Bounds(), j.Options.Width, j.Options.Height)
	}
	// pad letterboxes the tall end frame: the left column is black.
	if r, g, b, _ := endImg.At(0, endImg.Bounds().Dy()/2).RGBA(); r|g|b != 0 {
		t.Errorf("pad did not letterbox the end frame: %v %v %v", r, g, b)
	}
	if j.EndUploadName() != "wan22_test-job_end.png" || j.EndUploadName() == j.UploadName() {
		t.Errorf("end upload name %q", j.EndUploadName())
	}
}
