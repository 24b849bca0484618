package main

import (
	"reflect"
	"testing"
)

func TestParseModels(t *testing.T) {
	got, err := parseModels("diffusion_models=b.safetensors, a.safetensors;vae=v.safetensors;loras=")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"diffusion_models": {"a.safetensors", "b.safetensors"}, "vae": {"v.safetensors"}, "loras": nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	if _, err := parseModels("nonsense"); err == nil {
		t.Error("want an error for a part without '='")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-fault", "meteor"}, {"-no-such-flag"}, {"-models", "x"}} {
		if code := run(args); code != 2 {
			t.Errorf("run(%v) = %d, want 2", args, code)
		}
	}
}
