//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
)

// comfyClient is the few calls of ComfyUI's API the direct test needs, kept
// independent of the worker's own client so that it checks the server, not
// the worker.
type comfyClient struct {
	base string
	hc   *http.Client
}

func newComfyClient(base string) *comfyClient {
	return &comfyClient{base: base, hc: &http.Client{Transport: &http.Transport{Proxy: nil}}}
}

func (c *comfyClient) do(ctx context.Context, method, path, contentType string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (c *comfyClient) getJSON(ctx context.Context, path string, v any) error {
	status, body, err := c.do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, status, truncate(string(body), 300))
	}
	return json.Unmarshal(body, v)
}

// upload puts an image into ComfyUI's input folder under name.
func (c *comfyClient) upload(ctx context.Context, name string, data []byte) error {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, err := w.CreateFormFile("image", name)
	if err != nil {
		return err
	}
	fw.Write(data)
	w.WriteField("overwrite", "true")
	w.WriteField("type", "input")
	w.Close()
	status, body, err := c.do(ctx, http.MethodPost, "/upload/image", w.FormDataContentType(), &b)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("upload: %d %s", status, body)
	}
	return nil
}

// event is one websocket message with its arrival time.
type event struct {
	at   time.Time
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// run is one submitted prompt followed to its end over the websocket.
type run struct {
	status int             // POST /prompt status
	body   json.RawMessage // POST /prompt body
	events []event         // this prompt's events, in order
	start  time.Time       // when the prompt was posted
	end    time.Time       // executing/null or execution_error
	err    json.RawMessage // execution_error data, if any
}

// runPrompt opens the websocket, posts the graph under promptID and waits
// for the prompt to finish (executing with node null, or an error).
func (c *comfyClient) runPrompt(ctx context.Context, graph any, promptID string, extra map[string]any) (*run, error) {
	clientID := "e2e-" + promptID
	wsURL := strings.Replace(c.base, "http", "ws", 1) + "/ws?clientId=" + url.QueryEscape(clientID)
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c.hc})
	if err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(64 << 20)

	body := map[string]any{"prompt": graph, "client_id": clientID, "prompt_id": promptID}
	if extra != nil {
		body["extra_data"] = map[string]any{"extra_pnginfo": extra}
	}
	raw, _ := json.Marshal(body)
	r := &run{start: time.Now()}
	status, resp, err := c.do(ctx, http.MethodPost, "/prompt", "application/json", bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	r.status, r.body = status, resp
	if status != http.StatusOK {
		return r, nil
	}
	for {
		typ, msg, err := conn.Read(ctx)
		if err != nil {
			return r, fmt.Errorf("websocket read: %w", err)
		}
		if typ != websocket.MessageText {
			continue // previews
		}
		ev := event{at: time.Now()}
		if err := json.Unmarshal(msg, &ev); err != nil {
			continue
		}
		var d struct {
			PromptID string  `json:"prompt_id"`
			Node     *string `json:"node"`
		}
		json.Unmarshal(ev.Data, &d)
		if d.PromptID != promptID {
			continue
		}
		r.events = append(r.events, ev)
		switch {
		case ev.Type == "execution_error" || ev.Type == "execution_interrupted":
			r.end, r.err = ev.at, ev.Data
			return r, nil
		case ev.Type == "executing" && d.Node == nil:
			r.end = ev.at
			return r, nil
		}
	}
}

// nodeTimes returns how long each executed node ran: from its "executing"
// event to the next one (or the end).
func (r *run) nodeTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	var cur string
	var since time.Time
	for _, ev := range r.events {
		if ev.Type != "executing" {
			continue
		}
		var d struct {
			Node *string `json:"node"`
		}
		json.Unmarshal(ev.Data, &d)
		if cur != "" {
			out[cur] += ev.at.Sub(since)
		}
		cur, since = "", ev.at
		if d.Node != nil {
			cur = *d.Node
		}
	}
	return out
}

// cached returns the node ids ComfyUI reported as cached.
func (r *run) cached() []string {
	for _, ev := range r.events {
		if ev.Type == "execution_cached" {
			var d struct {
				Nodes []string `json:"nodes"`
			}
			json.Unmarshal(ev.Data, &d)
			return d.Nodes
		}
	}
	return nil
}

// outputFile is one file of a history output.
type outputFile struct {
	Filename  string `json:"filename"`
	Subfolder string `json:"subfolder"`
	Type      string `json:"type"`
}

// video reads the prompt's history and downloads the file the output node
// wrote (VHS lists it under "gifs", SaveVideo under "images").
func (c *comfyClient) video(ctx context.Context, promptID, node string) (outputFile, []byte, error) {
	var h map[string]struct {
		Outputs map[string]map[string]json.RawMessage `json:"outputs"`
	}
	if err := c.getJSON(ctx, "/history/"+url.PathEscape(promptID), &h); err != nil {
		return outputFile{}, nil, err
	}
	out := h[promptID].Outputs[node]
	for _, key := range []string{"gifs", "images", "videos"} {
		var files []outputFile
		if json.Unmarshal(out[key], &files) == nil && len(files) > 0 {
			f := files[0]
			q := url.Values{"filename": {f.Filename}, "subfolder": {f.Subfolder}, "type": {f.Type}}
			status, body, err := c.do(ctx, http.MethodGet, "/view?"+q.Encode(), "", nil)
			if err != nil {
				return f, nil, err
			}
			if status != http.StatusOK {
				return f, nil, fmt.Errorf("/view: %d", status)
			}
			return f, body, nil
		}
	}
	return outputFile{}, nil, fmt.Errorf("history of %s has no file for node %s: %v", promptID, node, out)
}

// ensureTimeout bounds a step of a test.
func ensureTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// runBuilt uploads a built job's image (and its end frame, when the graph
// has one), runs the graph on srv and returns the run and its video; any
// failure ends the test, with the end of ComfyUI's log.
func (c *comfyClient) runBuilt(ctx context.Context, t *testing.T, srv *server, b *workflow.Built, j *job.Job) (*run, outputFile, []byte) {
	t.Helper()
	if err := c.upload(ctx, b.ImageName, j.Prepared); err != nil {
		t.Fatal(err)
	}
	if b.EndImageName != "" {
		if err := c.upload(ctx, b.EndImageName, j.EndPNG); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.runPrompt(ctx, b.Graph, j.ID, b.ExtraPNGInfo)
	if err != nil {
		t.Fatalf("running the graph: %v\nComfyUI log:\n%s", err, tail(srv.log, 30))
	}
	if r.status != 200 {
		t.Fatalf("POST /prompt: %d %s", r.status, r.body)
	}
	if r.err != nil {
		t.Fatalf("execution failed: %s\nComfyUI log:\n%s", r.err, tail(srv.log, 30))
	}
	f, data, err := c.video(ctx, j.ID, b.OutputNode)
	if err != nil {
		t.Fatal(err)
	}
	return r, f, data
}
