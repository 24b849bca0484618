package deploycheck

import (
	"slices"
	"strings"
	"testing"
)

func TestRepoComposeReservesGPU(t *testing.T) {
	src := readRepoFile(t, "docker-compose.yml")
	fs, err := CheckCompose("docker-compose.yml", src)
	noFindings(t, fs, err)

	c, err := ParseCompose("docker-compose.yml", src)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services["wan22-worker"]
	if s == nil {
		t.Fatalf("no wan22-worker service; services: %v", sortedKeys(c.Services))
	}
	if s.Build != "." {
		t.Errorf("build %v, want . (the repository's Dockerfile)", s.Build)
	}
	if got := s.CommandList(); !slices.Equal(got, []string{"serve", "--api"}) {
		t.Errorf("command %q, want [serve --api]", got)
	}
	env := s.Env()
	if env["API_ADDR"] != "0.0.0.0:8000" {
		t.Errorf("API_ADDR=%q, want 0.0.0.0:8000", env["API_ADDR"])
	}
	// A non-loopback address needs a token: it must come from the caller's environment, never from the file.
	if tok := env["API_TOKEN"]; !strings.HasPrefix(tok, "${API_TOKEN") {
		t.Errorf("API_TOKEN=%q, want it taken from the environment (${API_TOKEN...})", tok)
	}
	if _, insecure := env["API_ALLOW_INSECURE"]; insecure {
		t.Error("API_ALLOW_INSECURE is set; the compose file must not open the API without a token")
	}
	if !slices.ContainsFunc(s.Ports, func(p any) bool { return strings.HasSuffix(toString(p), "8000:8000") }) {
		t.Errorf("ports %v do not publish 8000", s.Ports)
	}
	if !slices.ContainsFunc(s.Volumes, func(v any) bool { return strings.HasSuffix(toString(v), ":/runpod-volume") }) {
		t.Errorf("volumes %v do not mount /runpod-volume", s.Volumes)
	}
	devs := s.Deploy.Resources.Reservations.Devices
	if len(devs) != 1 || devs[0].Driver != "nvidia" || devs[0].Count != 1 || !slices.Equal(devs[0].Capabilities, []string{"gpu"}) {
		t.Errorf("GPU reservation %+v, want driver nvidia, count 1, capabilities [gpu]", devs)
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

func TestComposeRules(t *testing.T) {
	gpu := "    deploy:\n      resources:\n        reservations:\n          devices:\n            - driver: nvidia\n              count: 1\n              capabilities: [gpu]\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"gpu", "services:\n  w:\n    build: .\n" + gpu, nil},
		{"gpus shorthand", "services:\n  w:\n    image: x:1\n    gpus: all\n", nil},
		{"no gpu", "services:\n  w:\n    build: .\n", []string{"compose-gpu"}},
		{"zero gpus", "services:\n  w:\n    build: .\n" + strings.Replace(gpu, "count: 1", "count: 0", 1), []string{"compose-gpu", "compose-gpu"}},
		{"count all", "services:\n  w:\n    build: .\n" + strings.Replace(gpu, "count: 1", "count: all", 1), nil},
		{"amd driver", "services:\n  w:\n    build: .\n" + strings.Replace(gpu, "nvidia", "amd", 1), []string{"compose-gpu", "compose-gpu"}},
		{"no image", "services:\n  w:\n    command: [serve]\n" + gpu, []string{"compose-service"}},
		{"typo key", "services:\n  w:\n    build: .\n    enviroment:\n      A: b\n" + gpu, []string{"compose-key"}},
		{"typo top key", "service:\n  w: {}\n", []string{"compose-key", "compose-service"}},
		{"extension keys", "x-common: &c\n  a: 1\nservices:\n  w:\n    build: .\n    x-note: hi\n" + gpu, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := CheckCompose("docker-compose.yml", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Rule)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("rules %v, want %v\nfindings: %v", got, tc.want, fs)
			}
		})
	}
}

func TestComposeParseErrors(t *testing.T) {
	for _, src := range []string{"services: [\n", "services:\n  w:\n    environment: 3\n", "services:\n  w:\n"} {
		if _, err := CheckCompose("docker-compose.yml", []byte(src)); err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}
