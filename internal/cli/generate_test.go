package cli

import (
	"flag"
	"reflect"
	"testing"
)

func TestLoRAFlags(t *testing.T) {
	var l loraFlags
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.Var(&l, "lora", "")
	fs.Var(loraURLFlag{&l}, "lora-url", "")
	err := fs.Parse([]string{"--lora", "wan/a.safetensors:0.5:low", "--lora-url", "https://civitai.com/api/download/models/1?type=Model&x=a:b",
		"--lora", "b.safetensors"})
	if err != nil {
		t.Fatal(err)
	}
	want := loraFlags{
		{"name": "wan/a.safetensors", "strength": 0.5, "expert": "low"},
		{"url": "https://civitai.com/api/download/models/1?type=Model&x=a:b"},
		{"name": "b.safetensors"},
	}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("loras %v, want %v", l, want)
	}
}
