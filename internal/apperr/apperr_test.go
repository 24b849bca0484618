package apperr

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{New(ComfyCrashed, "ComfyUI exited", "retry"), "COMFY_CRASHED: ComfyUI exited"},
		{Field(InvalidInput, "options.length", "must be 4k+1, got 80", "use 81"), "INVALID_INPUT: options.length: must be 4k+1, got 80"},
		{Field(InvalidInput, "prompt", "prompt is empty", "describe it"), "INVALID_INPUT: prompt is empty"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestFrom(t *testing.T) {
	typed := New(OutOfMemory, "OOM", "lower the resolution")
	if got := From(fmt.Errorf("wrapped: %w", typed)); got != typed {
		t.Errorf("From should find the typed error in the chain, got %v", got)
	}
	plain := From(errors.New("boom"))
	if plain.Code != Internal || plain.Hint == "" || !strings.Contains(plain.Message, "boom") {
		t.Errorf("From(plain) = %+v", plain)
	}
	if From(nil) != nil || CodeOf(nil) != "" || CodeOf(errors.New("x")) != Internal || CodeOf(typed) != OutOfMemory {
		t.Error("nil / CodeOf mapping is wrong")
	}
}

func TestListMerged(t *testing.T) {
	one := List{Field(InvalidInput, "prompt", "prompt is empty", "describe it")}
	if From(one) != one[0] {
		t.Error("a list of one is that error")
	}
	l := List{
		Field(InvalidInput, "prompt", "prompt is empty", "describe it"),
		Field(InvalidInput, "options.width", "must be a multiple of 16", "use 96"),
		Field(ImageInvalid, "image", "not an image", "describe it"),
	}
	m := From(fmt.Errorf("job: %w", l))
	if m.Code != InvalidInput || m.Field != "" {
		t.Errorf("merged code/field = %s %q", m.Code, m.Field)
	}
	for _, want := range []string{"3 problems", "prompt is empty", "options.width: must be a multiple of 16", "not an image"} {
		if !strings.Contains(m.Message, want) {
			t.Errorf("merged message %q lacks %q", m.Message, want)
		}
	}
	if m.Hint != "describe it; use 96" {
		t.Errorf("merged hint = %q (distinct hints, in order)", m.Hint)
	}
	if !errors.Is(m, l[2]) {
		t.Error("the merged error should keep the list as its cause")
	}
	same := List{New(ModelMissing, "a is missing", "pull it"), New(ModelMissing, "b is missing", "pull it")}
	if got := same.Merged(); got.Code != ModelMissing || got.Hint != "pull it" || !strings.Contains(got.Message, "b is missing") {
		t.Errorf("merged = %+v", got)
	}
}
