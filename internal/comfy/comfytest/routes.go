package comfytest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!DOCTYPE html><html><head><title>ComfyUI</title></head><body></body></html>\n")
	})
	m.HandleFunc("GET /ws", s.handleWS)
	m.HandleFunc("GET /system_stats", s.handleSystemStats)
	m.HandleFunc("GET /features", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{{"supports_preview_metadata", true}, {"max_upload_size", 104857600}})
	})
	m.HandleFunc("GET /embeddings", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, []string{}) })
	m.HandleFunc("GET /object_info", func(w http.ResponseWriter, r *http.Request) { s.handleObjectInfo(w, "") })
	m.HandleFunc("GET /object_info/{class}", func(w http.ResponseWriter, r *http.Request) {
		c := r.PathValue("class")
		if _, ok := s.catalog.classes[c]; !ok {
			writeJSON(w, 200, obj{})
			return
		}
		s.handleObjectInfo(w, c)
	})
	m.HandleFunc("GET /models", s.handleModels)
	m.HandleFunc("GET /models/{folder}", s.handleModelFolder)
	m.HandleFunc("POST /upload/image", s.handleUpload)
	m.HandleFunc("GET /prompt", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{{"exec_info", obj{{"queue_remaining", s.QueueLen()}}}})
	})
	m.HandleFunc("POST /prompt", s.handlePostPrompt)
	m.HandleFunc("GET /queue", s.handleGetQueue)
	m.HandleFunc("POST /queue", s.handlePostQueue)
	m.HandleFunc("GET /history", s.handleGetHistory)
	m.HandleFunc("GET /history/{id}", s.handleGetHistory)
	m.HandleFunc("POST /history", s.handlePostHistory)
	m.HandleFunc("GET /view", s.handleView)
	m.HandleFunc("POST /interrupt", s.handleInterrupt)
	m.HandleFunc("POST /free", s.handleFree)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// readJSON reads a JSON body; a malformed one is answered as aiohttp does
// (500, plain text) and nil is returned.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, allowEmpty bool) (obj, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 100<<20))
	if err != nil {
		http.Error(w, "413: Request Entity Too Large", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	s.recordBody(r.URL.Path, b)
	if allowEmpty && len(bytes.TrimSpace(b)) == 0 {
		return obj{}, true
	}
	v, err := decodeOrdered(b)
	if err != nil {
		if allowEmpty {
			return obj{}, true
		}
		http.Error(w, "500 Internal Server Error\n\nServer got itself in trouble", http.StatusInternalServerError)
		return nil, false
	}
	o, ok := v.(obj)
	if !ok {
		http.Error(w, "500 Internal Server Error\n\nServer got itself in trouble", http.StatusInternalServerError)
		return nil, false
	}
	return o, true
}

func (s *Server) handleSystemStats(w http.ResponseWriter, r *http.Request) {
	const vram = 150754820096
	writeJSON(w, 200, obj{
		{"system", obj{
			{"os", "posix"}, {"ram_total", 135089913856}, {"ram_free", 120000000000},
			{"comfyui_version", "0.3.64"}, {"required_frontend_version", "1.27.10"},
			{"installed_templates_version", "0.1.95"}, {"required_templates_version", "0.1.95"},
			{"python_version", "3.12.3 (main, Feb  4 2025, 14:48:35) [GCC 13.3.0]"},
			{"pytorch_version", "2.8.0+cu128"}, {"embedded_python", false},
			{"argv", []string{"main.py", "--listen", "127.0.0.1", "--port", "8188", "--disable-auto-launch", "--log-stdout"}},
		}},
		{"devices", []any{obj{
			{"name", "cuda:0 NVIDIA H200 : cudaMallocAsync"}, {"type", "cuda"}, {"index", 0},
			{"vram_total", vram}, {"vram_free", vram - 1<<30}, {"torch_vram_total", 0}, {"torch_vram_free", 0},
		}}},
	})
}

func (s *Server) handleObjectInfo(w http.ResponseWriter, class string) {
	b, err := s.renderObjectInfo(class)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(b)
}

func (s *Server) folders() []string {
	out := DefaultFolders()
	s.mu.Lock()
	var extra []string
	for k := range s.models {
		if !contains(out, k) {
			extra = append(extra, k)
		}
	}
	s.mu.Unlock()
	sort.Strings(extra)
	return append(out, extra...)
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, s.folders())
}

func (s *Server) handleModelFolder(w http.ResponseWriter, r *http.Request) {
	f := r.PathValue("folder")
	if !contains(s.folders(), f) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, 200, jsonList(s.modelList(f)))
}

// handleUpload reproduces POST /upload/image.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	defer r.MultipartForm.RemoveAll()
	f, hdr, err := r.FormFile("image")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	defer f.Close()
	filename := hdr.Filename
	if filename == "" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	typ := r.FormValue("type")
	dir := s.inputDir
	switch typ {
	case "temp":
		dir = s.tempDir
	case "output":
		dir = s.outputDir
	default:
		typ = "input"
	}
	subfolder := r.FormValue("subfolder")
	folder, err := within(dir, subfolder)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	path, err := within(folder, filename)
	if err != nil || filepath.Dir(path) != filepath.Clean(folder) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := os.MkdirAll(folder, 0o755); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	data, err := io.ReadAll(f)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	overwrite := r.FormValue("overwrite")
	duplicate := false
	if overwrite != "true" && overwrite != "1" {
		ext := filepath.Ext(filename)
		stem := strings.TrimSuffix(filename, ext)
		for i := 1; ; i++ {
			old, err := os.ReadFile(path)
			if err != nil {
				break
			}
			if sha256.Sum256(old) == sha256.Sum256(data) {
				duplicate = true
				break
			}
			filename = stem + " (" + strconv.Itoa(i) + ")" + ext
			path = filepath.Join(folder, filename)
		}
	}
	if !duplicate {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
	}
	writeJSON(w, 200, obj{{"name", filename}, {"subfolder", subfolder}, {"type", typ}})
}

func (s *Server) handlePostPrompt(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSON(w, r, false)
	if !ok {
		return
	}
	s.mu.Lock()
	var number any
	var order float64
	if n, ok := body.get("number"); ok {
		f, _ := strconv.ParseFloat(pyStr(n), 64)
		number, order = pyFloat(f), f
	} else {
		n := s.number
		if front, ok := body.get("front"); ok && front == true {
			n = -n
		}
		s.number++
		number, order = n, float64(n)
	}
	s.mu.Unlock()
	pv, ok := body.get("prompt")
	if !ok {
		writeJSON(w, 400, obj{{"error", errObj("no_prompt", "No prompt provided", "No prompt provided", nil)}, {"node_errors", obj{}}})
		return
	}
	id := newUUID()
	if v, ok := body.get("prompt_id"); ok {
		id = pyStr(v)
	}
	var partial []string
	if v, ok := body.get("partial_execution_targets"); ok {
		if l, ok := v.([]any); ok {
			for _, t := range l {
				partial = append(partial, pyStr(t))
			}
		}
	}
	g, err := parseGraph(pv)
	if err != nil {
		http.Error(w, "500 Internal Server Error\n\nServer got itself in trouble", http.StatusInternalServerError)
		return
	}
	v := s.validatePrompt(g, partial)
	extra := obj{}
	if e, ok := body.get("extra_data"); ok {
		if eo, ok := e.(obj); ok {
			extra = eo
		}
	}
	clientID := ""
	if c, ok := body.get("client_id"); ok {
		clientID = pyStr(c)
		replaced := false
		for i := range extra {
			if extra[i].k == "client_id" {
				extra[i].v = c
				replaced = true
			}
		}
		if !replaced {
			extra = append(extra, kv{"client_id", c})
		}
	}
	if !v.ok {
		s.log.Warn("invalid prompt", "error", v.err)
		writeJSON(w, 400, obj{{"error", v.err}, {"node_errors", v.nodeErrors}})
		return
	}
	q := &queued{number: number, order: order, id: id, g: g, extra: extra, clientID: clientID, outputs: v.outputs}
	s.mu.Lock()
	s.pending = append(s.pending, q)
	s.mu.Unlock()
	s.broadcastStatus()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	writeJSON(w, 200, obj{{"prompt_id", id}, {"number", number}, {"node_errors", v.nodeErrors}})
}

func (s *Server) handleGetQueue(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	running := []any{}
	if s.running != nil {
		running = append(running, s.running.item())
	}
	pending := []any{}
	for _, q := range s.pending {
		pending = append(pending, q.item())
	}
	s.mu.Unlock()
	writeJSON(w, 200, obj{{"queue_running", running}, {"queue_pending", pending}})
}

func (s *Server) handlePostQueue(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSON(w, r, false)
	if !ok {
		return
	}
	changed := false
	s.mu.Lock()
	if c, ok := body.get("clear"); ok && c == true {
		s.pending = nil
		changed = true
	}
	if d, ok := body.get("delete"); ok {
		if l, ok := d.([]any); ok {
			for _, id := range l {
				for i, q := range s.pending {
					if q.id == pyStr(id) {
						s.pending = append(s.pending[:i], s.pending[i+1:]...)
						changed = true
						break
					}
				}
			}
		}
	}
	s.mu.Unlock()
	if changed {
		s.broadcastStatus()
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleGetHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	out := obj{}
	if id != "" {
		if e, ok := s.history[id]; ok {
			out = append(out, kv{id, e})
		}
	} else {
		maxItems := -1
		if m := r.URL.Query().Get("max_items"); m != "" {
			maxItems, _ = strconv.Atoi(m)
		}
		offset := -1
		if o := r.URL.Query().Get("offset"); o != "" {
			offset, _ = strconv.Atoi(o)
		}
		if offset < 0 && maxItems >= 0 {
			offset = len(s.historyOrder) - maxItems
		}
		for i, k := range s.historyOrder {
			if i >= offset {
				out = append(out, kv{k, s.history[k]})
				if maxItems >= 0 && len(out) >= maxItems {
					break
				}
			}
		}
	}
	b, err := marshal(out)
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(b)
}

func (s *Server) handlePostHistory(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSON(w, r, false)
	if !ok {
		return
	}
	s.mu.Lock()
	if c, ok := body.get("clear"); ok && c == true {
		s.history = map[string]obj{}
		s.historyOrder = nil
	}
	if d, ok := body.get("delete"); ok {
		if l, ok := d.([]any); ok {
			for _, id := range l {
				s.deleteHistoryLocked(pyStr(id))
			}
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *Server) deleteHistoryLocked(id string) {
	if _, ok := s.history[id]; !ok {
		return
	}
	delete(s.history, id)
	for i, k := range s.historyOrder {
		if k == id {
			s.historyOrder = append(s.historyOrder[:i], s.historyOrder[i+1:]...)
			break
		}
	}
}

func (s *Server) handleInterrupt(w http.ResponseWriter, r *http.Request) {
	body, _ := s.readJSON(w, r, true)
	id := ""
	if v, ok := body.get("prompt_id"); ok && v != nil {
		id = pyStr(v)
	}
	s.mu.Lock()
	if id == "" || (s.running != nil && s.running.id == id) {
		s.interrupt = true
		s.log.Info("interrupting", "prompt_id", id)
		select {
		case s.intr <- struct{}{}:
		default:
		}
	} else {
		s.log.Info("Prompt " + id + " is not currently running, skipping interrupt")
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleFree(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSON(w, r, false)
	if !ok {
		return
	}
	b, _ := marshal(body)
	s.mu.Lock()
	s.frees = append(s.frees, string(b))
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// handleView reproduces GET /view for plain file downloads.
func (s *Server) handleView(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filename := q.Get("filename")
	typ := q.Get("type")
	for _, t := range []string{"input", "output", "temp"} {
		if strings.HasSuffix(filename, " ["+t+"]") {
			filename, typ = strings.TrimSuffix(filename, " ["+t+"]"), t
		}
	}
	if filename == "" || strings.HasPrefix(filename, "/") || strings.Contains(filename, "..") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	dir := s.outputDir
	switch typ {
	case "input":
		dir = s.inputDir
	case "temp":
		dir = s.tempDir
	}
	folder, err := within(dir, q.Get("subfolder"))
	if err != nil {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	path := filepath.Join(folder, filepath.Base(filename))
	f, err := os.Open(path)
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if d := s.opts.ViewDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	ct := mime.TypeByExtension(filepath.Ext(filename))
	switch strings.ToLower(filepath.Ext(filename)) {
	case ".mp4":
		ct = "video/mp4"
	case ".html", ".htm", ".js", ".css":
		ct = "application/octet-stream"
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", `filename="`+filepath.Base(filename)+`"`)
	if s.opts.ViewBytesPerSecond <= 0 {
		http.ServeContent(w, r, "", st.ModTime(), f)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	w.WriteHeader(http.StatusOK)
	chunk := s.opts.ViewBytesPerSecond / 20
	if chunk < 1 {
		chunk = 1
	}
	buf := make([]byte, chunk)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		}
	}
}

// FreeRequests returns the JSON bodies of every POST /free received.
func (s *Server) FreeRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.frees...)
}

func (s *Server) broadcastStatus() {
	s.mu.Lock()
	n := s.queueRemainingLocked()
	s.mu.Unlock()
	s.send("status", obj{{"status", obj{{"exec_info", obj{{"queue_remaining", n}}}}}}, "")
}

func (s *Server) queueRemainingLocked() int {
	n := len(s.pending)
	if s.running != nil {
		n++
	}
	return n
}

func newUUID() string {
	id := newID()
	return id[0:8] + "-" + id[8:12] + "-4" + id[13:16] + "-a" + id[17:20] + "-" + id[20:32]
}
