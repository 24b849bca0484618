// Package comfy is the worker's ComfyUI client: it uploads the input image,
// queues the graph, follows the run over the websocket (with a /history and
// /queue fallback when the socket drops), turns its events into progress,
// finds the video in the history and streams it from /view, interrupts on
// cancellation, and maps everything ComfyUI reports to the contract's typed
// errors (errors.go). See docs/comfyui.md.
package comfy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// Tuning holds the client's timings. New sets the defaults; tests shorten
// them. Change them before the client is used.
type Tuning struct {
	// RequestTimeout bounds each short request (everything but the
	// websocket and /view bodies).
	RequestTimeout time.Duration
	// DialTimeout bounds opening the websocket, up to the server's first
	// status message.
	DialTimeout time.Duration
	// PingInterval and PingTimeout are the websocket keepalive: ComfyUI
	// sends nothing for minutes while it loads models or decodes.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// SilenceCheck: after this long without an event, /history and /queue
	// are checked (a socket can be silently dead).
	SilenceCheck time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between websocket
	// reconnects.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// UnreachableFor is how long ComfyUI may stay unreachable during a job
	// before it fails COMFY_UNAVAILABLE.
	UnreachableFor time.Duration
	// HistoryWait is how long a finished prompt's history entry is waited
	// for (it is written just after the run ends).
	HistoryWait time.Duration
	// ErrorGrace is how long, after an execution error, the end of the
	// prompt is waited for (so its history can be cleaned up).
	ErrorGrace time.Duration
	// CancelTimeout bounds the interrupt and queue delete sent after the
	// job's context ended; InterruptWait is how long ComfyUI is then given
	// to stop the prompt.
	CancelTimeout time.Duration
	InterruptWait time.Duration
}

// DefaultTuning returns the production timings.
func DefaultTuning() Tuning {
	return Tuning{
		RequestTimeout: 60 * time.Second,
		DialTimeout:    10 * time.Second,
		PingInterval:   10 * time.Second,
		PingTimeout:    30 * time.Second,
		SilenceCheck:   15 * time.Second,
		ReconnectMin:   100 * time.Millisecond,
		ReconnectMax:   2 * time.Second,
		UnreachableFor: 15 * time.Second,
		HistoryWait:    5 * time.Second,
		ErrorGrace:     2 * time.Second,
		CancelTimeout:  5 * time.Second,
		InterruptWait:  5 * time.Second,
	}
}

// Client talks to one ComfyUI server. It is safe for concurrent use; each
// Run uses its own websocket client id.
type Client struct {
	// Tuning holds the timings (DefaultTuning unless changed).
	Tuning Tuning

	base     string
	baseErr  error
	hc       *http.Client
	log      *slog.Logger
	clientID string
	seq      atomic.Uint64
}

// New returns a client for the ComfyUI at baseURL (e.g.
// http://127.0.0.1:8188). A nil hc gets DefaultHTTPClient; hc must have no
// overall Timeout (the websocket and /view streams are long): per-request
// contexts bound each call instead.
func New(baseURL string, hc *http.Client, log *slog.Logger) *Client {
	if hc == nil {
		hc = DefaultHTTPClient()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{Tuning: DefaultTuning(), hc: hc, log: log}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	switch {
	case err != nil:
		c.baseErr = err
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		c.baseErr = fmt.Errorf("%q is not an http(s) URL", baseURL)
	}
	if u != nil {
		c.base = u.String()
	}
	var b [12]byte
	rand.Read(b[:])
	c.clientID = "wan22-" + hex.EncodeToString(b[:])
	return c
}

// DefaultHTTPClient is an HTTP client for a ComfyUI on loopback: no proxy
// (HTTP_PROXY must never capture local traffic), short connect timeout, no
// overall timeout.
func DefaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		ExpectContinueTimeout: time.Second,
	}}
}

// CloseIdleConnections drops pooled connections; call it after ComfyUI
// restarted so that no request goes out on a connection to the old process.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// BaseURL returns the server's URL.
func (c *Client) BaseURL() string { return c.base }

// runClientID returns a fresh websocket client id for one run. One id per
// run means two runs never share a socket, and a new run's socket can never
// be unregistered by the cleanup of the previous run's (ComfyUI pops a
// socket id when the old connection's handler exits).
func (c *Client) runClientID() string {
	return fmt.Sprintf("%s-%d", c.clientID, c.seq.Add(1))
}

func (c *Client) url(p string, q url.Values) string {
	s := c.base + p
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// badBase reports an unusable base URL.
func (c *Client) badBase() error {
	if c.baseErr == nil {
		return nil
	}
	return apperr.Wrap(apperr.Internal, c.baseErr, "invalid ComfyUI URL: "+c.baseErr.Error(), "set COMFY_URL to e.g. http://127.0.0.1:8188")
}

// call does one short request: in (if not nil) is sent as JSON, a 200 body
// is decoded into out (if not nil). A non-200 status is a *statusError.
func (c *Client) call(ctx context.Context, method, p string, q url.Values, in, out any) error {
	op := method + " " + p
	if err := c.badBase(); err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return apperr.Wrap(apperr.Internal, err, "cannot encode "+op+": "+err.Error(), "this is a bug in the worker")
		}
		body = bytes.NewReader(b)
	}
	rctx, cancel := context.WithTimeout(ctx, c.Tuning.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, c.url(p, q), body)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "cannot build "+op+": "+err.Error(), "this is a bug in the worker")
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return errTransport(ctx, c.base, op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return errTransport(ctx, c.base, op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{op: op, status: resp.StatusCode, body: b}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return apperr.Wrap(apperr.Internal, err, fmt.Sprintf("ComfyUI answered %s with unexpected JSON: %v", op, err), hintVersion)
		}
	}
	return nil
}

// do is call with every non-200 status mapped.
func (c *Client) do(ctx context.Context, method, p string, q url.Values, in, out any) error {
	err := c.call(ctx, method, p, q, in, out)
	if se, ok := err.(*statusError); ok {
		return mapStatus(se)
	}
	return err
}

// Ready reports whether ComfyUI answers (GET /prompt, its cheapest route).
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/prompt", nil, nil, nil)
}

// WaitReady polls Ready every interval until ComfyUI answers or ctx ends.
func (c *Client) WaitReady(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := c.Ready(ctx)
		if err == nil {
			return nil
		}
		if e := errContext(ctx); e != nil {
			return apperr.Wrap(apperr.ComfyUnavailable, err, "ComfyUI did not become ready: "+err.Error(), hintUnavailable)
		}
		select {
		case <-ctx.Done():
			return apperr.Wrap(apperr.ComfyUnavailable, err, "ComfyUI did not become ready: "+err.Error(), hintUnavailable)
		case <-t.C:
		}
	}
}

// Upload puts an input image into ComfyUI's input folder under name
// (overwriting: the name is derived from the job id, so a retried job
// replaces its own file) and returns the name to use in LoadImage. r is
// streamed, not buffered.
//
// ComfyUI has no route that deletes inputs: the process that owns ComfyUI's
// input directory (the supervisor) cleans it.
func (c *Client) Upload(ctx context.Context, name string, r io.Reader) (string, error) {
	const op = "POST /upload/image"
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", apperr.Errorf(apperr.Internal, "this is a bug in the worker", "invalid upload name %q", name)
	}
	if err := c.badBase(); err != nil {
		return "", err
	}
	ct := mime.TypeByExtension(strings.ToLower(path.Ext(name)))
	if ct == "" {
		ct = "application/octet-stream"
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			h := make(textproto.MIMEHeader)
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="image"; filename="%s"`, strings.ReplaceAll(name, `"`, "%22")))
			h.Set("Content-Type", ct)
			part, err := mw.CreatePart(h)
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, r); err != nil {
				return err
			}
			if err := mw.WriteField("overwrite", "true"); err != nil {
				return err
			}
			if err := mw.WriteField("type", "input"); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	rctx, cancel := context.WithTimeout(ctx, c.Tuning.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.url("/upload/image", nil), pr)
	if err != nil {
		pr.CloseWithError(err)
		return "", apperr.Wrap(apperr.Internal, err, "cannot build "+op, "this is a bug in the worker")
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.hc.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		return "", errTransport(ctx, c.base, op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", errTransport(ctx, c.base, op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", mapStatus(&statusError{op: op, status: resp.StatusCode, body: b})
	}
	var out struct {
		Name      string `json:"name"`
		Subfolder string `json:"subfolder"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Name == "" {
		return "", apperr.Errorf(apperr.Internal, hintVersion, "ComfyUI answered %s with %s", op, excerpt(b))
	}
	if out.Subfolder != "" {
		return out.Subfolder + "/" + out.Name, nil
	}
	return out.Name, nil
}

// ObjectInfo returns GET /object_info: every node class's definition.
func (c *Client) ObjectInfo(ctx context.Context) (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/object_info", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// HasNode reports whether the server has a node class (GET
// /object_info/{class}, which answers {} for an unknown class).
func (c *Client) HasNode(ctx context.Context, class string) (bool, error) {
	var out map[string]json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/object_info/"+url.PathEscape(class), nil, nil, &out); err != nil {
		return false, err
	}
	_, ok := out[class]
	return ok, nil
}

// Models returns the files of a model folder (diffusion_models,
// text_encoders, vae, loras, ...), sorted. Servers without GET
// /models/{folder} (or without that folder) fall back to the loader's list
// in /object_info.
func (c *Client) Models(ctx context.Context, folder string) ([]string, error) {
	var out []string
	err := c.call(ctx, http.MethodGet, "/models/"+url.PathEscape(folder), nil, nil, &out)
	if se, ok := err.(*statusError); ok && se.status == http.StatusNotFound {
		return c.modelsFromObjectInfo(ctx, folder)
	}
	if se, ok := err.(*statusError); ok {
		return nil, mapStatus(se)
	}
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	sort.Strings(out)
	return out, nil
}

func (c *Client) modelsFromObjectInfo(ctx context.Context, folder string) ([]string, error) {
	class, input := loaderFor(folder)
	if class == "" {
		return nil, apperr.Errorf(apperr.Internal, hintVersion, "ComfyUI has no model folder %q", folder)
	}
	var info map[string]json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/object_info/"+class, nil, nil, &info); err != nil {
		return nil, err
	}
	var def struct {
		Input map[string]map[string]json.RawMessage `json:"input"`
	}
	if raw, ok := info[class]; !ok || json.Unmarshal(raw, &def) != nil {
		return nil, apperr.Errorf(apperr.Internal, hintVersion, "ComfyUI has neither /models/%s nor the %s node", folder, class)
	}
	for _, section := range []string{"required", "optional"} {
		if raw, ok := def.Input[section][input]; ok {
			list := comboList(raw)
			if list == nil {
				break
			}
			sort.Strings(list)
			return list, nil
		}
	}
	return nil, apperr.Errorf(apperr.Internal, hintVersion, "ComfyUI's %s has no %s list", class, input)
}

// loaderFor names the loader input that lists a folder.
func loaderFor(folder string) (class, input string) {
	switch folder {
	case "diffusion_models":
		return "UNETLoader", "unet_name"
	case "text_encoders":
		return "CLIPLoader", "clip_name"
	case "vae":
		return "VAELoader", "vae_name"
	case "loras":
		return "LoraLoaderModelOnly", "lora_name"
	case "checkpoints":
		return "CheckpointLoaderSimple", "ckpt_name"
	case "clip_vision":
		return "CLIPVisionLoader", "clip_name"
	}
	return "", ""
}

// comboList reads a combo input definition in either encoding: classic
// [[values...], {...}] or new-style ["COMBO", {"options": [...]}].
func comboList(raw json.RawMessage) []string {
	var def []json.RawMessage
	if json.Unmarshal(raw, &def) != nil || len(def) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(def[0], &list) == nil {
		if list == nil {
			list = []string{}
		}
		return list
	}
	var typ string
	if json.Unmarshal(def[0], &typ) == nil && typ == "COMBO" && len(def) > 1 {
		var opts struct {
			Options []string `json:"options"`
		}
		if json.Unmarshal(def[1], &opts) == nil && opts.Options != nil {
			return opts.Options
		}
	}
	return nil
}

// SystemStats is GET /system_stats.
type SystemStats struct {
	System struct {
		OS             string   `json:"os"`
		RAMTotal       int64    `json:"ram_total"`
		RAMFree        int64    `json:"ram_free"`
		ComfyUIVersion string   `json:"comfyui_version"`
		PythonVersion  string   `json:"python_version"`
		PyTorchVersion string   `json:"pytorch_version"`
		EmbeddedPython bool     `json:"embedded_python"`
		Argv           []string `json:"argv"`
	} `json:"system"`
	Devices []Device `json:"devices"`
}

// Device is one compute device of SystemStats (byte counts).
type Device struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	Index          *int   `json:"index"`
	VRAMTotal      int64  `json:"vram_total"`
	VRAMFree       int64  `json:"vram_free"`
	TorchVRAMTotal int64  `json:"torch_vram_total"`
	TorchVRAMFree  int64  `json:"torch_vram_free"`
}

// SystemStats returns GET /system_stats.
func (c *Client) SystemStats(ctx context.Context) (*SystemStats, error) {
	var out SystemStats
	if err := c.do(ctx, http.MethodGet, "/system_stats", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Interrupt stops a prompt: POST /interrupt {"prompt_id"} (which only acts
// if it is the running prompt) and POST /queue {"delete": [id]} (if it is
// still pending). Both are sent; the first error is returned.
func (c *Client) Interrupt(ctx context.Context, promptID string) error {
	err1 := c.do(ctx, http.MethodPost, "/interrupt", nil, map[string]string{"prompt_id": promptID}, nil)
	err2 := c.do(ctx, http.MethodPost, "/queue", nil, map[string][]string{"delete": {promptID}}, nil)
	if err1 != nil {
		return err1
	}
	return err2
}

// Cleanup removes a finished prompt's history entry (POST /history
// {"delete"}), which ComfyUI would otherwise keep in memory (up to 10000).
// Output and input files are not touched: ComfyUI has no route to delete
// them; the supervisor owns those folders.
func (c *Client) Cleanup(ctx context.Context, promptID string) error {
	return c.do(ctx, http.MethodPost, "/history", nil, map[string][]string{"delete": {promptID}}, nil)
}

// Free asks ComfyUI to drop its execution caches and free memory once idle
// (POST /free); with unload it also unloads every model from VRAM at once.
func (c *Client) Free(ctx context.Context, unload bool) error {
	return c.do(ctx, http.MethodPost, "/free", nil, map[string]bool{"unload_models": unload, "free_memory": true}, nil)
}

// QueueState is GET /queue reduced to prompt ids.
type QueueState struct {
	Running []string
	Pending []string
}

// Queue returns the running and pending prompt ids.
func (c *Client) Queue(ctx context.Context) (*QueueState, error) {
	var raw struct {
		Running [][]json.RawMessage `json:"queue_running"`
		Pending [][]json.RawMessage `json:"queue_pending"`
	}
	if err := c.do(ctx, http.MethodGet, "/queue", nil, nil, &raw); err != nil {
		return nil, err
	}
	ids := func(items [][]json.RawMessage) []string {
		var out []string
		for _, it := range items {
			var id string
			if len(it) > 1 && json.Unmarshal(it[1], &id) == nil {
				out = append(out, id)
			}
		}
		return out
	}
	return &QueueState{Running: ids(raw.Running), Pending: ids(raw.Pending)}, nil
}

// historyEntry is one GET /history/{id} entry.
type historyEntry struct {
	// Prompt is [number, prompt_id, graph, extra_data, outputs].
	Prompt  []json.RawMessage                     `json:"prompt"`
	Outputs map[string]map[string]json.RawMessage `json:"outputs"`
	Status  historyStatus                         `json:"status"`
}

type historyStatus struct {
	StatusStr string            `json:"status_str"`
	Completed bool              `json:"completed"`
	Messages  []json.RawMessage `json:"messages"`
}

// history returns a prompt's history entry, or nil when there is none (not
// finished, or unknown).
func (c *Client) history(ctx context.Context, promptID string) (*historyEntry, error) {
	var out map[string]historyEntry
	if err := c.do(ctx, http.MethodGet, "/history/"+url.PathEscape(promptID), nil, nil, &out); err != nil {
		return nil, err
	}
	e, ok := out[promptID]
	if !ok {
		return nil, nil
	}
	return &e, nil
}

// Open streams an output file from GET /view and returns its size
// (Content-Length; -1 when unknown). Read errors are typed too. The caller
// closes the body.
func (c *Client) Open(ctx context.Context, f OutputFile) (io.ReadCloser, int64, error) {
	const op = "GET /view"
	if err := c.badBase(); err != nil {
		return nil, 0, err
	}
	if f.Type == "" {
		f.Type = "output"
	}
	q := url.Values{"filename": {f.Filename}, "subfolder": {f.Subfolder}, "type": {f.Type}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/view", q), nil)
	if err != nil {
		return nil, 0, apperr.Wrap(apperr.Internal, err, "cannot build "+op, "this is a bug in the worker")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, errTransport(ctx, c.base, op, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		se := &statusError{op: op, status: resp.StatusCode, body: b}
		if se.status == http.StatusNotFound {
			return nil, 0, errViewMissing(f, se)
		}
		return nil, 0, mapStatus(se)
	}
	return &viewBody{rc: resp.Body, ctx: ctx, base: c.base}, resp.ContentLength, nil
}

// viewBody types the errors of a /view download.
type viewBody struct {
	rc   io.ReadCloser
	ctx  context.Context
	base string
}

func (v *viewBody) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	if err != nil && err != io.EOF {
		err = errTransport(v.ctx, v.base, "reading GET /view", err)
	}
	return n, err
}

func (v *viewBody) Close() error { return v.rc.Close() }
