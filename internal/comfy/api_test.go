package comfy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/comfy"
	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/config"
)

func TestUploadSendsWhatComfyExpects(t *testing.T) {
	type part struct{ name, filename, ctype, body string }
	var parts []part
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/upload/image" {
			http.NotFound(w, r)
			return
		}
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil {
			t.Error(err)
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Error(err)
				break
			}
			b, _ := io.ReadAll(p)
			parts = append(parts, part{p.FormName(), p.FileName(), p.Header.Get("Content-Type"), string(b)})
		}
		w.Write([]byte(`{"name": "job-1.png", "subfolder": "", "type": "input"}`))
	}))
	defer srv.Close()
	c := client(t, srv.URL)
	name, err := c.Upload(t.Context(), "job-1.png", strings.NewReader("PNGDATA"))
	if err != nil || name != "job-1.png" {
		t.Fatalf("Upload = %q, %v", name, err)
	}
	want := []part{{"image", "job-1.png", "image/png", "PNGDATA"}, {"overwrite", "", "", "true"}, {"type", "", "", "input"}}
	if len(parts) != len(want) {
		t.Fatalf("parts %+v", parts)
	}
	for i := range want {
		if parts[i] != want[i] {
			t.Errorf("part %d = %+v, want %+v", i, parts[i], want[i])
		}
	}
}

func TestUploadToFake(t *testing.T) {
	s := fake(t, comfytest.Options{})
	c := client(t, s.URL)
	for i, data := range [][]byte{comfytest.GradientPNG(8, 8), comfytest.GradientPNG(16, 16)} {
		name, err := c.Upload(t.Context(), "job-7.png", bytes.NewReader(data))
		if err != nil || name != "job-7.png" {
			t.Fatalf("upload %d: %q, %v", i, name, err)
		}
		got, _ := os.ReadFile(filepath.Join(s.InputDir(), "job-7.png"))
		if !bytes.Equal(got, data) {
			t.Errorf("upload %d not overwritten", i)
		}
	}
	for _, bad := range []string{"", "a/b.png", `..`, `a\b.png`} {
		if _, err := c.Upload(t.Context(), bad, strings.NewReader("x")); apperr.CodeOf(err) != apperr.Internal {
			t.Errorf("Upload(%q) = %v", bad, err)
		}
	}
}

func TestModels(t *testing.T) {
	s := fake(t, comfytest.Options{})
	c := client(t, s.URL)
	cfg := config.Default()
	got, err := c.Models(t.Context(), "diffusion_models")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != cfg.UNetHigh || got[1] != cfg.UNetLow {
		t.Errorf("diffusion_models = %v", got)
	}
	// An older server without /models/{folder}: the loader's combo list.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/models") {
			http.NotFound(w, r)
			return
		}
		s.ServeHTTP(w, r)
	}))
	defer old.Close()
	oc := client(t, old.URL)
	for folder, want := range map[string][]string{
		"diffusion_models": {cfg.UNetHigh, cfg.UNetLow},
		"vae":              {"pixel_space", cfg.VAE},
		"loras":            {cfg.LoRAHigh},
		"text_encoders":    {cfg.TextEncoder},
	} {
		got, err := oc.Models(t.Context(), folder)
		if err != nil {
			t.Fatalf("%s: %v", folder, err)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s = %v, want %v", folder, got, want)
		}
	}
	if _, err := oc.Models(t.Context(), "nonsense"); apperr.CodeOf(err) != apperr.Internal {
		t.Errorf("unknown folder: %v", err)
	}
}

func TestCheckModels(t *testing.T) {
	s := fake(t, comfytest.Options{Models: map[string][]string{
		"diffusion_models": {"wan/high.safetensors", "wan/low.safetensors", "other_model.safetensors"},
		"vae":              {"wan_2.1_vae.safetensors"},
	}})
	c := client(t, s.URL)
	if err := c.CheckModels(t.Context(), []comfy.ModelRef{{"diffusion_models", "wan/high.safetensors"}, {"vae", "wan_2.1_vae.safetensors"}}); err != nil {
		t.Fatalf("present models: %v", err)
	}
	err := c.CheckModels(t.Context(), []comfy.ModelRef{
		{"diffusion_models", "high.safetensors"},
		{"vae", "wan_2.1_vae.safetensors"},
		{"loras", "x.safetensors"},
	})
	var list apperr.List
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("want two MODEL_MISSING, got %v", err)
	}
	if list[0].Code != apperr.ModelMissing || !strings.Contains(list[0].Message, "closest first: wan/high.safetensors, wan/low.safetensors, other_model.safetensors") {
		t.Errorf("first: %v", list[0])
	}
	if !strings.Contains(list[1].Message, "loras folder; that folder is empty") {
		t.Errorf("second: %v", list[1])
	}
}

func TestInfoRoutes(t *testing.T) {
	s := fake(t, comfytest.Options{MissingNodes: []string{"TorchCompileModel"}})
	c := client(t, s.URL)
	info, err := c.ObjectInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := info["WanImageToVideo"]; !ok {
		t.Error("object_info lacks WanImageToVideo")
	}
	for class, want := range map[string]bool{"VHS_VideoCombine": true, "TorchCompileModel": false, "NoSuchNode": false} {
		if got, err := c.HasNode(t.Context(), class); err != nil || got != want {
			t.Errorf("HasNode(%s) = %v, %v", class, got, err)
		}
	}
	st, err := c.SystemStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.System.ComfyUIVersion != "0.3.64" || len(st.Devices) != 1 || st.Devices[0].VRAMTotal == 0 {
		t.Errorf("system stats %+v", st)
	}
	if err := c.Free(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if f := s.FreeRequests(); len(f) != 1 || f[0] != `{"free_memory":true,"unload_models":true}` {
		t.Errorf("free requests %v", f)
	}
	q, err := c.Queue(t.Context())
	if err != nil || len(q.Running)+len(q.Pending) != 0 {
		t.Errorf("queue %+v %v", q, err)
	}
	if err := c.Ready(t.Context()); err != nil {
		t.Error(err)
	}
	c.CloseIdleConnections()
	if err := c.Ready(t.Context()); err != nil {
		t.Errorf("after CloseIdleConnections: %v", err)
	}
	// Cleanup of an unknown prompt is harmless.
	if err := c.Cleanup(t.Context(), "unknown"); err != nil {
		t.Error(err)
	}
}

func TestClientErrors(t *testing.T) {
	// Nothing listens: COMFY_UNAVAILABLE, quickly.
	ln := httptest.NewServer(http.NotFoundHandler())
	url := ln.URL
	ln.Close()
	c := client(t, url)
	requireCode(t, c.Ready(t.Context()), apperr.ComfyUnavailable)
	_, err := c.Run(t.Context(), comfy.RunRequest{PromptID: "x", Graph: map[string]any{}})
	requireCode(t, err, apperr.ComfyUnavailable)

	bad := comfy.New("not a url", nil, nil)
	requireCode(t, bad.Ready(t.Context()), apperr.Internal)

	// An unexpected status is INTERNAL with the body excerpt, never a panic.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "teapot", http.StatusTeapot)
	}))
	defer srv.Close()
	e := requireCode(t, client(t, srv.URL).Ready(t.Context()), apperr.Internal)
	if !strings.Contains(e.Message, "418") || !strings.Contains(e.Message, "teapot") {
		t.Errorf("message %q", e.Message)
	}
	if _, err := comfy.New(srv.URL, nil, nil).ObjectInfo(t.Context()); apperr.CodeOf(err) != apperr.Internal {
		t.Errorf("ObjectInfo: %v", err)
	}
}

func TestDefaultClientIgnoresProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	s := fake(t, comfytest.Options{})
	if err := comfy.New(s.URL, nil, nil).Ready(t.Context()); err != nil {
		t.Errorf("a proxy in the environment captured loopback traffic: %v", err)
	}
}

func TestOutputFileJSON(t *testing.T) {
	f := comfy.OutputFile{Node: "16", Key: "gifs", Filename: "a.mp4", Subfolder: "wan22", Type: "output"}
	b, _ := json.Marshal(f)
	if string(b) != `{"node":"16","key":"gifs","filename":"a.mp4","subfolder":"wan22","type":"output"}` {
		t.Errorf("%s", b)
	}
	if !f.IsVideo() || f.MimeType() != "video/mp4" {
		t.Error("mp4 is a video")
	}
}
