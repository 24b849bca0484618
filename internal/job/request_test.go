package job

import (
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

func TestDecodeRequest(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"id": "job-7", "input": {"prompt": "x"}, "webhook": "https://h/x",
		"policy": {"executionTimeout": 60000}, "s3Config": {"bucketName": "b"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "job-7" || string(r.Input) != `{"prompt": "x"}` || string(r.Webhook) != `"https://h/x"` ||
		!strings.Contains(string(r.Policy), "executionTimeout") || !strings.Contains(string(r.S3Config), "bucketName") {
		t.Errorf("request = %+v", r)
	}
	if r, err := DecodeRequest([]byte(`{"input": {}, "id": null}`)); err != nil || r.ID != "" {
		t.Errorf("null id: %+v, %v", r, err)
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		want      wantErr
	}{
		{"not JSON", `{"input": `, wantErr{apperr.InvalidInput, "", "not valid JSON"}},
		{"not an object", `[1]`, wantErr{apperr.InvalidInput, "", "must be a JSON object, got an array"}},
		{"no input", `{"id": "x"}`, wantErr{apperr.InvalidInput, "input", "required"}},
		{"null input", `{"input": null}`, wantErr{apperr.InvalidInput, "input", "required"}},
		{"bare input", `{"prompt": "x", "image": "y"}`, wantErr{apperr.InvalidInput, "input", `{"input": {`}},
		{"fields on both levels", `{"input": {}, "options": {}}`, wantErr{apperr.InvalidInput, "input", "both inside and outside"}},
		{"unknown top-level key", `{"input": {}, "imput": 1}`, wantErr{apperr.InvalidInput, "imput", `did you mean "input"`}},
		{"unknown key lists the valid ones", `{"input": {}, "zzz": 1}`, wantErr{apperr.InvalidInput, "zzz", "input, id, webhook, policy, s3Config"}},
		{"id a number", `{"input": {}, "id": 5}`, wantErr{apperr.InvalidInput, "id", "must be a string"}},
		{"input twice", `{"input": {}, "input": {}}`, wantErr{apperr.InvalidInput, "input", "more than once"}},
		{"long unknown key is cut", `{"input": {}, "` + strings.Repeat("z", 200) + `": 1}`, wantErr{apperr.InvalidInput, strings.Repeat("z", 64) + "…", "unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.doc))
			errs := errorsOf(err)
			if len(errs) != 1 {
				t.Fatalf("errors = %v, want one", err)
			}
			g := errs[0]
			if g.Code != tt.want.code || g.Field != tt.want.field || g.Hint == "" || !strings.Contains(g.Message+" | "+g.Hint, tt.want.in) {
				t.Errorf("error = {%s %q %q hint %q}, want %s %q with %q", g.Code, g.Field, g.Message, g.Hint,
					tt.want.code, tt.want.field, tt.want.in)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		key, parent string
		valid       []string
		want        string
	}{
		{"lenght", "options", optionKeys(), `"length"`},
		{"widht", "options", optionKeys(), `"width"`},
		{"FRAME-RATE", "options", optionKeys(), `"frame_rate"`},
		{"guidance_scale", "options", optionKeys(), `"cfg"`},
		{"seeds", "options", optionKeys(), `"seed"`},
		{"negative", "", inputKeys(), `"negative_prompt"`},
		{"steps", "", inputKeys(), `"options" (put "steps" inside options)`},
		{"image", "options", optionKeys(), `"image" at the top level of the input, not inside options`},
		{"xyzzy", "options", optionKeys(), ""},
		{"cf", "options", optionKeys(), `"cfg"`},
		{"", "options", optionKeys(), ""},
		{strings.Repeat("a", 10000), "options", optionKeys(), ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.key, tt.valid, tt.parent); got != tt.want {
			t.Errorf("suggest(%.20q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"lenght", "length", 1}, {"kitten", "sitting", 3}, {"steps", "steps", 0}, {"ab", "ba", 1}}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

func TestNames(t *testing.T) {
	s := Samplers()
	if len(s) != 42 || s[0] != "euler" || !contains(s, DefaultSampler) {
		t.Errorf("samplers: %d, first %q", len(s), s[0])
	}
	s[0] = "changed"
	if Samplers()[0] != "euler" {
		t.Error("Samplers returns shared state")
	}
	if !contains(Schedulers(), DefaultScheduler) || len(Schedulers()) != 9 {
		t.Errorf("schedulers: %v", Schedulers())
	}
	if !strings.HasPrefix(DefaultNegativePrompt, "色调艳丽") || !strings.HasSuffix(DefaultNegativePrompt, "倒着走") {
		t.Error("DefaultNegativePrompt is not WAN's")
	}
}
