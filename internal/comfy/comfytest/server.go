// Package comfytest is a fake ComfyUI server for tests, benchmarks and local
// development. It reproduces what the worker relies on from ComfyUI 0.3.64
// (with VideoHelperSuite 1.7.9), taken from real recorded responses
// (testdata/recorded): the same routes (also under /api/), the same JSON
// shapes, prompt validation against the recorded /object_info with the
// server's own rules, the websocket event sequence of a run, history, and a
// real H.264 MP4 made with ffmpeg from the uploaded image at the graph's size,
// length and frame rate.
//
// Fault modes (Options) reproduce what goes wrong in production: a slow start,
// validation errors, a GPU out-of-memory error, a websocket dropped mid-run
// (with or without the prompt finishing in the gap), a silently dead socket,
// the history race, a process crash, and a slow /view.
package comfytest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
)

// Options configures a fake server. The zero value is a fast, healthy server
// with the default model profile installed.
type Options struct {
	// Addr is the listen address; default 127.0.0.1:0 (a free port).
	Addr string
	// Dir holds input/, output/ and temp/; default a temporary directory
	// removed by Close.
	Dir string
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger

	// Models maps a model folder (diffusion_models, text_encoders, vae,
	// loras, ...) to its files. Nil installs DefaultModels().
	Models map[string][]string
	// MissingNodes are node classes the server does not have (e.g.
	// VHS_VideoCombine to simulate VideoHelperSuite not installed).
	MissingNodes []string
	// ObjectInfo replaces the recorded GET /object_info (JSON).
	ObjectInfo []byte

	// StepDelay is the time per sampler step, NodeDelay the time of every
	// other node. Zero for both is the zero-latency mode.
	StepDelay time.Duration
	NodeDelay time.Duration

	// FFmpeg is the ffmpeg binary; default "ffmpeg" on PATH.
	FFmpeg string
	// Video, when set, is served as every video output instead of encoding
	// one with ffmpeg (benchmarks: see MakeMP4 and PadMP4).
	Video []byte

	// ReadyAfter delays readiness: until then every request gets 503, or,
	// with RefuseUntilReady, connections are refused.
	ReadyAfter       time.Duration
	RefuseUntilReady bool

	// HistoryDelay writes a finished prompt's history entry this long after
	// `executing` with node null (the history race).
	HistoryDelay time.Duration
	// ViewDelay delays every /view response; ViewBytesPerSecond throttles
	// its body (0: unlimited).
	ViewDelay          time.Duration
	ViewBytesPerSecond int64

	// Fault is the fault injected into runs; Faults adds more (each fires
	// at its own point).
	Fault  Fault
	Faults []Fault
	// PauseAt, when set, holds every run that reaches that point until it
	// is interrupted or Resume is called; Paused is closed when the first
	// run gets there.
	PauseAt *Point
}

// Point is a place in a run: the first node of class Class (or the node
// with id Node) in execution order, before sampler step Step (1-based; 0 is
// when the node starts).
type Point struct {
	Class string
	Node  string
	Step  int
}

func (p Point) matches(id, class string, step int) bool {
	if p.Node != "" {
		return p.Node == id && p.Step == step
	}
	c := p.Class
	if c == "" {
		c = "KSamplerAdvanced"
	}
	return c == class && p.Step == step
}

// FaultKind names a fault mode.
type FaultKind string

// The fault modes.
const (
	// FaultNone runs every prompt normally.
	FaultNone FaultKind = ""
	// FaultOOM raises torch.OutOfMemoryError at the point, shaped as the
	// real server sends it.
	FaultOOM FaultKind = "oom"
	// FaultError raises ExceptionType(ExceptionMessage) at the point.
	FaultError FaultKind = "error"
	// FaultDropWS closes every websocket at the point and refuses /ws for
	// WSDownFor; the run waits until the client is connected again, then
	// goes on.
	FaultDropWS FaultKind = "ws-drop"
	// FaultDropWSFinish closes every websocket at the point, finishes the
	// run at once and refuses /ws until it has finished (so the client
	// misses the end and must find it in /history).
	FaultDropWSFinish FaultKind = "ws-drop-finish"
	// FaultMuteWS stops sending events to the client without closing its
	// socket (what ComfyUI's socket table does when a reconnect races the
	// old connection's cleanup).
	FaultMuteWS FaultKind = "ws-mute"
	// FaultCrash kills the server at the point: every connection closes and
	// new ones are refused.
	FaultCrash FaultKind = "crash"
)

// Fault is one injected fault.
type Fault struct {
	Kind FaultKind
	At   Point
	// Once fires the fault in the first run that reaches the point only.
	Once bool
	// ExceptionType and ExceptionMessage shape a FaultError (defaults
	// RuntimeError, "fake failure").
	ExceptionType    string
	ExceptionMessage string
	// WSDownFor is how long /ws refuses after FaultDropWS (default 50ms).
	WSDownFor time.Duration
}

// DefaultModels returns the model files of the worker's default profile
// (internal/config defaults) in their folders.
func DefaultModels() map[string][]string {
	c := config.Default()
	m := map[string][]string{
		"diffusion_models": {c.UNetHigh, c.UNetLow},
		"text_encoders":    {c.TextEncoder},
		"vae":              {c.VAE},
		"loras":            {},
	}
	for _, l := range []string{c.LoRAHigh, c.LoRALow} {
		if l != "" && !contains(m["loras"], l) {
			m["loras"] = append(m["loras"], l)
		}
	}
	return m
}

// Request is one request the server received (for assertions).
type Request struct {
	Method string
	Path   string // without the /api prefix
	Query  string
	Body   string // JSON bodies only
}

// Server is a running fake ComfyUI. It is an http.Handler; New also serves
// it on a loopback listener at URL.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string

	opts      Options
	log       *slog.Logger
	catalog   *catalog
	dir       string
	ownDir    bool
	inputDir  string
	outputDir string
	tempDir   string
	mux       *http.ServeMux
	hs        *http.Server
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	started   time.Time
	paused    chan struct{}
	pauseOnce sync.Once
	resume    chan struct{}
	wake      chan struct{}
	intr      chan struct{}

	mu            sync.Mutex
	ln            net.Listener
	closed        bool
	crashed       bool
	models        map[string][]string
	number        int
	pending       []*queued
	running       *queued
	history       map[string]obj
	historyOrder  []string
	sockets       map[string]*wsConn
	conns         map[*wsConn]struct{}
	interrupt     bool
	lastNode      string
	runningClient string
	cache         map[string]any // input signature → UI output (nil for nodes without one)
	wsDownUntil   time.Time
	wsDownPrompt  string // /ws refuses until this prompt is in history
	muted         map[string]bool
	faultFired    map[int]bool
	requests      []Request
	frees         []string
}

// New starts a fake server and panics if it cannot listen (as
// httptest.NewServer does). Tests call Close when done.
func New(opts Options) *Server {
	s, err := Start(opts)
	if err != nil {
		panic("comfytest: " + err.Error())
	}
	return s
}

// Start starts a fake server.
func Start(opts Options) (*Server, error) {
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		started:    time.Now(),
		paused:     make(chan struct{}),
		resume:     make(chan struct{}, 1),
		wake:       make(chan struct{}, 1),
		intr:       make(chan struct{}, 1),
		history:    map[string]obj{},
		sockets:    map[string]*wsConn{},
		conns:      map[*wsConn]struct{}{},
		cache:      map[string]any{},
		muted:      map[string]bool{},
		models:     map[string][]string{},
		faultFired: map[int]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.FFmpeg == "" {
		s.opts.FFmpeg = "ffmpeg"
	}
	models := opts.Models
	if models == nil {
		models = DefaultModels()
	}
	for k, v := range models {
		s.models[k] = append([]string(nil), v...)
	}
	cat, err := loadCatalog(opts.ObjectInfo, opts.MissingNodes)
	if err != nil {
		return nil, err
	}
	s.catalog = cat
	if err := s.setupDirs(); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.routes()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}

	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.cleanupDirs()
		return nil, err
	}
	s.URL = "http://" + ln.Addr().String()
	if opts.RefuseUntilReady && opts.ReadyAfter > 0 {
		// Give the port back and take it again once "ready": connections
		// are refused meanwhile, as while ComfyUI imports torch.
		bound := ln.Addr().String()
		ln.Close()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			select {
			case <-time.After(opts.ReadyAfter):
			case <-s.ctx.Done():
				return
			}
			ln, err := net.Listen("tcp", bound)
			if err != nil {
				s.log.Error("fake ComfyUI could not listen again", "addr", bound, "err", err)
				return
			}
			s.serve(ln)
		}()
	} else {
		s.serve(ln)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.worker()
	}()
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	s.mu.Lock()
	if s.closed || s.crashed {
		s.mu.Unlock()
		ln.Close()
		return
	}
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Debug("fake ComfyUI stopped serving", "err", err)
		}
	}()
}

func (s *Server) setupDirs() error {
	s.dir = s.opts.Dir
	if s.dir == "" {
		d, err := os.MkdirTemp("", "fakecomfy-")
		if err != nil {
			return err
		}
		s.dir, s.ownDir = d, true
	}
	s.inputDir = filepath.Join(s.dir, "input")
	s.outputDir = filepath.Join(s.dir, "output")
	s.tempDir = filepath.Join(s.dir, "temp")
	for _, d := range []string{s.inputDir, s.outputDir, s.tempDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			s.cleanupDirs()
			return err
		}
	}
	return nil
}

func (s *Server) cleanupDirs() {
	if s.ownDir {
		os.RemoveAll(s.dir)
	}
}

// Close stops the server, closes every connection and removes its
// temporary directory.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.hs.Close()
	s.closeSockets("")
	s.wg.Wait()
	s.cleanupDirs()
}

// Crash makes the server behave like a killed process: every connection is
// closed and new ones are refused. Runs stop where they are.
func (s *Server) Crash() {
	s.mu.Lock()
	if s.crashed || s.closed {
		s.mu.Unlock()
		return
	}
	s.crashed = true
	s.mu.Unlock()
	s.log.Info("fake ComfyUI crashed (simulated)")
	s.cancel()
	s.hs.Close()
	s.closeSockets("")
}

// InputDir is ComfyUI's input directory (uploads land here).
func (s *Server) InputDir() string { return s.inputDir }

// OutputDir is ComfyUI's output directory.
func (s *Server) OutputDir() string { return s.outputDir }

// SetModels replaces the files of one model folder.
func (s *Server) SetModels(folder string, files []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models[folder] = append([]string(nil), files...)
}

// Requests returns every request received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Paused is closed when a run reaches Options.PauseAt.
func (s *Server) Paused() <-chan struct{} { return s.paused }

// Resume lets a run held at Options.PauseAt go on (or the next run that
// gets there, if none is held yet).
func (s *Server) Resume() {
	select {
	case s.resume <- struct{}{}:
	default:
	}
}

// HasHistory reports whether prompt id has a history entry.
func (s *Server) HasHistory(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.history[id]
	return ok
}

// QueueLen returns the number of running plus pending prompts.
func (s *Server) QueueLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queueRemainingLocked()
}

// ServeHTTP serves the ComfyUI API (also under /api/).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/api/") {
		path = strings.TrimPrefix(path, "/api")
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = path
		u.RawPath = ""
		r2.URL = &u
		r = r2
	}
	s.record(r)
	if !s.opts.RefuseUntilReady && time.Since(s.started) < s.opts.ReadyAfter {
		http.Error(w, "503 Service Unavailable: ComfyUI is starting", http.StatusServiceUnavailable)
		return
	}
	// ComfyUI's origin-only middleware: a loopback host with a different
	// Origin is refused (a browser page must not drive the server).
	if origin := r.Header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err == nil && u.Host != r.Host && isLoopbackHost(r.Host) {
			http.Error(w, "403: Forbidden", http.StatusForbidden)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

func isLoopbackHost(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = hostport
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) record(r *http.Request) {
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
}

// recordBody attaches a JSON body to the last request with this path.
func (s *Server) recordBody(path string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.requests) - 1; i >= 0; i-- {
		if s.requests[i].Path == path {
			if len(body) > 4096 {
				body = body[:4096]
			}
			s.requests[i].Body = string(body)
			return
		}
	}
}

// inputPath resolves a LoadImage-style name ("sub/x.png", "x.png [input]")
// to an existing file.
func (s *Server) inputPath(name string) (string, error) {
	base := s.inputDir
	for _, a := range []struct{ suffix, dir string }{{" [input]", s.inputDir}, {" [output]", s.outputDir}, {" [temp]", s.tempDir}} {
		if strings.HasSuffix(name, a.suffix) {
			name, base = strings.TrimSuffix(name, a.suffix), a.dir
		}
	}
	p, err := within(base, name)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return "", fmt.Errorf("%s is a directory", name)
	}
	return p, nil
}

// within joins name to base and refuses anything that escapes base.
func within(base, name string) (string, error) {
	p := filepath.Join(base, filepath.FromSlash(name))
	rel, err := filepath.Rel(base, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(name) {
		return "", fmt.Errorf("path %q escapes %s", name, base)
	}
	return p, nil
}

// inputFiles lists the top-level files of the input directory, sorted, as
// LoadImage's combo does.
func (s *Server) inputFiles() []string {
	entries, err := os.ReadDir(s.inputDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}
