package comfytest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // LoadImage opens what PIL opens
	_ "image/jpeg"
	_ "image/png"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	_ "golang.org/x/image/webp"
)

// queued is a queue item: [number, prompt_id, prompt, extra_data, outputs].
type queued struct {
	number   any
	order    float64
	id       string
	g        *graph
	extra    obj
	clientID string
	outputs  []string
}

func (q *queued) item() []any {
	return []any{q.number, q.id, q.g.raw, q.extra, toAnyList(q.outputs)}
}

// run is the state of one prompt's execution.
type run struct {
	q         *queued
	messages  []any
	executed  []string
	ui        obj // node → UI output, in execution order
	states    obj // progress_state nodes, in start order
	fast      bool
	pointsHit map[string]bool
}

// failure ends a run early.
type failure struct {
	kind      string // "error", "interrupted" or "stopped" (crash/close: no more messages)
	node      string
	class     string
	excType   string
	excMsg    string
	traceback []any
}

const oomTips = "This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number."

func (s *Server) worker() {
	for {
		q := s.next()
		if q == nil {
			return
		}
		s.execute(q)
	}
}

// next takes the pending prompt with the lowest number.
func (s *Server) next() *queued {
	for {
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			return nil
		}
		if len(s.pending) > 0 {
			best := 0
			for i, q := range s.pending {
				if q.order < s.pending[best].order {
					best = i
				}
			}
			q := s.pending[best]
			s.pending = append(s.pending[:best], s.pending[best+1:]...)
			s.running = q
			s.mu.Unlock()
			return q
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			return nil
		}
	}
}

// add is PromptExecutor.add_message: timestamped, kept for the history, and
// sent to the prompt's client (or everyone when broadcast and no client).
func (s *Server) add(r *run, event string, data obj, broadcast bool) {
	data = append(data, kv{"timestamp", time.Now().UnixMilli()})
	r.messages = append(r.messages, []any{event, data})
	if r.q.clientID != "" || broadcast {
		s.send(event, data, r.q.clientID)
	}
}

func (s *Server) execute(q *queued) {
	s.mu.Lock()
	s.interrupt = false
	select {
	case <-s.intr:
	default:
	}
	s.runningClient = q.clientID
	s.lastNode = ""
	s.mu.Unlock()
	s.broadcastStatus()

	r := &run{q: q, ui: obj{}, states: obj{}, pointsHit: map[string]bool{}}
	s.add(r, "execution_start", obj{{"prompt_id", q.id}}, false)

	sigs := s.signatures(q.g)
	s.mu.Lock()
	keep := map[string]any{}
	for _, sig := range sigs {
		if v, ok := s.cache[sig]; ok {
			keep[sig] = v
		}
	}
	s.cache = keep
	cached := map[string]bool{}
	cachedList := []any{}
	for _, id := range q.g.order {
		if _, ok := s.cache[sigs[id]]; ok {
			cached[id] = true
			cachedList = append(cachedList, id)
		}
	}
	s.mu.Unlock()
	s.add(r, "execution_cached", obj{{"nodes", cachedList}, {"prompt_id", q.id}}, false)

	var fail *failure
	for _, id := range s.executionOrder(q.g, q.outputs, cached) {
		n := q.g.nodes[id]
		if cached[id] {
			s.mu.Lock()
			ui := s.cache[sigs[id]]
			s.mu.Unlock()
			s.send("executed", obj{{"node", id}, {"display_node", id}, {"output", ui}, {"prompt_id", q.id}}, q.clientID)
			if ui != nil {
				r.ui = append(r.ui, kv{id, ui})
			}
			r.setState(id, 1, 1, "finished")
			s.sendProgressState(r)
			continue
		}
		if fail = s.checkPoint(r, id, n.classType, 0); fail != nil {
			break
		}
		if s.takeInterrupt() {
			fail = &failure{kind: "interrupted", node: id, class: n.classType}
			break
		}
		r.setState(id, pyFloat(0), pyFloat(1), "running")
		s.sendProgressState(r)
		s.mu.Lock()
		s.lastNode = id
		s.mu.Unlock()
		s.send("executing", obj{{"node", id}, {"display_node", id}, {"prompt_id", q.id}}, q.clientID)
		ui, f := s.runNode(r, id, n)
		if f != nil {
			fail = f
			break
		}
		r.executed = append(r.executed, id)
		s.mu.Lock()
		s.cache[sigs[id]] = ui
		s.mu.Unlock()
		if ui != nil {
			r.ui = append(r.ui, kv{id, ui})
			s.send("executed", obj{{"node", id}, {"display_node", id}, {"output", ui}, {"prompt_id", q.id}}, q.clientID)
		}
		r.finish(id)
		s.sendProgressState(r)
	}
	if fail != nil && fail.kind == "stopped" {
		return
	}
	status := "success"
	switch {
	case fail == nil:
		s.add(r, "execution_success", obj{{"prompt_id", q.id}}, false)
	case fail.kind == "interrupted":
		status = "error"
		s.add(r, "execution_interrupted", obj{{"prompt_id", q.id}, {"node_id", fail.node}, {"node_type", fail.class},
			{"executed", toAnyList(r.executed)}}, true)
	default:
		status = "error"
		if fail.excType == "torch.OutOfMemoryError" {
			s.log.Info("Got an OOM, unloading all loaded models.")
		}
		tips := ""
		if fail.excType == "torch.OutOfMemoryError" {
			tips = oomTips
		}
		s.add(r, "execution_error", obj{{"prompt_id", q.id}, {"node_id", fail.node}, {"node_type", fail.class},
			{"executed", toAnyList(r.executed)}, {"exception_message", fail.excMsg + "\n" + tips},
			{"exception_type", fail.excType}, {"traceback", fail.traceback},
			{"current_inputs", currentInputs(q.g.nodes[fail.node], s.catalog)}, {"current_outputs", toAnyList(q.g.order)}}, false)
	}
	meta := obj{}
	for _, e := range r.ui {
		meta = append(meta, kv{e.k, obj{{"node_id", e.k}, {"display_node", e.k}, {"parent_node", nil}, {"real_node_id", e.k}}})
	}
	entry := obj{
		{"prompt", []any{q.number, q.id, q.g.raw, scrubExtra(q.extra), toAnyList(q.outputs)}},
		{"outputs", r.ui},
		{"status", obj{{"status_str", status}, {"completed", status == "success"}, {"messages", r.messages}}},
		{"meta", meta},
	}
	s.mu.Lock()
	s.running = nil
	s.lastNode = ""
	if s.opts.HistoryDelay <= 0 {
		s.putHistoryLocked(q.id, entry)
	}
	s.mu.Unlock()
	s.broadcastStatus()
	if d := s.opts.HistoryDelay; d > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			select {
			case <-time.After(d):
			case <-s.ctx.Done():
				return
			}
			s.mu.Lock()
			s.putHistoryLocked(q.id, entry)
			s.mu.Unlock()
		}()
	}
	s.send("executing", obj{{"node", nil}, {"prompt_id", q.id}}, q.clientID)
}

func (s *Server) putHistoryLocked(id string, entry obj) {
	if _, ok := s.history[id]; !ok {
		s.historyOrder = append(s.historyOrder, id)
	}
	s.history[id] = entry
	for len(s.historyOrder) > 10000 {
		delete(s.history, s.historyOrder[0])
		s.historyOrder = s.historyOrder[1:]
	}
}

func scrubExtra(extra obj) obj {
	out := obj{}
	for _, e := range extra {
		if e.k != "api_key_comfy_org" && e.k != "auth_token_comfy_org" {
			out = append(out, e)
		}
	}
	return out
}

// setState records a node's progress for progress_state messages.
func (r *run) setState(id string, value, max any, state string) {
	st := obj{{"value", value}, {"max", max}, {"state", state}, {"node_id", id}, {"prompt_id", r.q.id},
		{"display_node_id", id}, {"parent_node_id", nil}, {"real_node_id", id}}
	for i := range r.states {
		if r.states[i].k == id {
			r.states[i].v = st
			return
		}
	}
	r.states = append(r.states, kv{id, st})
}

// finish marks a node finished, its value set to its max.
func (r *run) finish(id string) {
	for _, e := range r.states {
		if e.k == id {
			st := e.v.(obj)
			m, _ := st.get("max")
			r.setState(id, m, m, "finished")
			return
		}
	}
}

func (s *Server) sendProgressState(r *run) {
	nodes := make(obj, len(r.states))
	copy(nodes, r.states)
	s.send("progress_state", obj{{"prompt_id", r.q.id}, {"nodes", nodes}}, r.q.clientID)
}

// takeInterrupt reports (and clears) a pending interrupt, as
// throw_exception_if_processing_interrupted does.
func (s *Server) takeInterrupt() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interrupt {
		s.interrupt = false
		return true
	}
	return false
}

// checkPoint applies Options.PauseAt and Options.Fault at a point of the run.
func (s *Server) checkPoint(r *run, id, class string, step int) *failure {
	if p := s.opts.PauseAt; p != nil && p.matches(id, class, step) && !r.pointsHit["pause"] {
		r.pointsHit["pause"] = true
		s.pauseOnce.Do(func() { close(s.paused) })
		select {
		case <-s.intr:
		case <-s.resume:
		case <-s.ctx.Done():
			return &failure{kind: "stopped"}
		}
	}
	for i, f := range s.faults() {
		key := "fault" + strconv.Itoa(i)
		if f.Kind == FaultNone || !f.At.matches(id, class, step) || r.pointsHit[key] {
			continue
		}
		r.pointsHit[key] = true
		s.mu.Lock()
		fired := s.faultFired[i]
		s.faultFired[i] = true
		s.mu.Unlock()
		if f.Once && fired {
			continue
		}
		if fail := s.inject(r, f, id, class, step); fail != nil {
			return fail
		}
	}
	return nil
}

// faults is Options.Fault followed by Options.Faults.
func (s *Server) faults() []Fault {
	return append([]Fault{s.opts.Fault}, s.opts.Faults...)
}

// inject fires one fault.
func (s *Server) inject(r *run, f Fault, id, class string, step int) *failure {
	s.log.Info("injecting fault", "kind", f.Kind, "node", id, "class", class, "step", step)
	switch f.Kind {
	case FaultOOM:
		return &failure{kind: "error", node: id, class: class, excType: "torch.OutOfMemoryError",
			excMsg: "Allocation on device ", traceback: traceback(class, "raise e")}
	case FaultError:
		t, m := f.ExceptionType, f.ExceptionMessage
		if t == "" {
			t = "RuntimeError"
		}
		if m == "" {
			m = "fake failure"
		}
		return &failure{kind: "error", node: id, class: class, excType: t, excMsg: m, traceback: traceback(class, "raise "+t+"(msg)")}
	case FaultCrash:
		s.Crash()
		return &failure{kind: "stopped"}
	case FaultMuteWS:
		s.mu.Lock()
		s.muted[r.q.clientID] = true
		s.mu.Unlock()
	case FaultDropWS:
		return s.dropWS(r, f)
	case FaultDropWSFinish:
		s.mu.Lock()
		s.wsDownPrompt = r.q.id
		s.mu.Unlock()
		s.closeSockets(r.q.clientID)
		r.fast = true
	}
	return nil
}

// dropWS closes the client's sockets, refuses /ws for a while and waits
// until the client is connected again.
func (s *Server) dropWS(r *run, f Fault) *failure {
	down := f.WSDownFor
	if down <= 0 {
		down = 50 * time.Millisecond
	}
	s.mu.Lock()
	s.wsDownUntil = time.Now().Add(down)
	old := map[*wsConn]bool{}
	for wc := range s.conns {
		if wc.sid == r.q.clientID {
			old[wc] = true
		}
	}
	s.mu.Unlock()
	s.closeSockets(r.q.clientID)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		wc, ok := s.sockets[r.q.clientID]
		back := ok && !old[wc]
		s.mu.Unlock()
		if back {
			return nil
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-s.ctx.Done():
			return &failure{kind: "stopped"}
		}
	}
	return nil
}

func (s *Server) delay(r *run, d time.Duration) *failure {
	if r.fast || d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-s.ctx.Done():
		return &failure{kind: "stopped"}
	}
}

// runNode executes one node and returns its UI output (nil for none).
func (s *Server) runNode(r *run, id string, n *promptNode) (any, *failure) {
	switch n.classType {
	case "KSamplerAdvanced", "KSampler":
		steps := intInput(n, "steps", 20)
		total := steps
		if n.classType == "KSamplerAdvanced" {
			start := intInput(n, "start_at_step", 0)
			end := intInput(n, "end_at_step", 10000)
			total = min(end, steps) - start
		}
		for i := 1; i <= total; i++ {
			if f := s.checkPoint(r, id, n.classType, i); f != nil {
				return nil, f
			}
			if f := s.delay(r, s.opts.StepDelay); f != nil {
				return nil, f
			}
			if f := s.progress(r, id, n.classType, i, total); f != nil {
				return nil, f
			}
		}
		return nil, nil
	case "LoadImage":
		if f := s.delay(r, s.opts.NodeDelay); f != nil {
			return nil, f
		}
		name, _ := n.constant("image")
		p, err := s.inputPath(pyStr(name))
		if err == nil {
			err = decodable(p)
		}
		if err != nil {
			shown := p
			if shown == "" {
				shown = filepath.Join(s.inputDir, pyStr(name))
			}
			return nil, &failure{kind: "error", node: id, class: n.classType, excType: "PIL.UnidentifiedImageError",
				excMsg: fmt.Sprintf("cannot identify image file '%s'", shown), traceback: traceback(n.classType, "raise UnidentifiedImageError(msg)")}
		}
		return nil, nil
	case "VHS_VideoCombine", "SaveVideo":
		if f := s.delay(r, s.opts.NodeDelay); f != nil {
			return nil, f
		}
		return s.writeVideo(r, id, n)
	case "SaveImage", "PreviewImage":
		if f := s.delay(r, s.opts.NodeDelay); f != nil {
			return nil, f
		}
		return s.saveImages(r, id, n)
	}
	return nil, s.delay(r, s.opts.NodeDelay)
}

// progress is ComfyUI's progress hook: interrupt check, progress_state,
// progress.
func (s *Server) progress(r *run, id, class string, value, max int) *failure {
	if s.takeInterrupt() {
		return &failure{kind: "interrupted", node: id, class: class}
	}
	r.setState(id, value, max, "running")
	s.sendProgressState(r)
	s.send("progress", obj{{"value", value}, {"max", max}, {"prompt_id", r.q.id}, {"node", id}}, r.q.clientID)
	return nil
}

// imageSrc is what flows along IMAGE/LATENT links: size, frame count, and
// the uploaded image it came from.
type imageSrc struct {
	w, h, frames int
	file         string
}

// trace follows the links that feed an image input back to their source.
func (s *Server) trace(g *graph, id string, depth int) imageSrc {
	n, ok := g.nodes[id]
	if !ok || depth > 64 {
		return imageSrc{w: 64, h: 64, frames: 1}
	}
	from := func(input string) imageSrc {
		src, _, ok := n.link(input)
		if !ok {
			return imageSrc{w: 64, h: 64, frames: 1}
		}
		return s.trace(g, src, depth+1)
	}
	switch n.classType {
	case "LoadImage":
		name, _ := n.constant("image")
		p, err := s.inputPath(pyStr(name))
		src := imageSrc{w: 64, h: 64, frames: 1}
		if err == nil {
			src.file = p
			if f, err := os.Open(p); err == nil {
				if cfg, _, err := image.DecodeConfig(f); err == nil {
					src.w, src.h = cfg.Width, cfg.Height
				}
				f.Close()
			}
		}
		return src
	case "ImageBatch":
		a, b := from("image1"), from("image2")
		a.frames += b.frames
		return a
	case "ImageFromBatch":
		a := from("image")
		length := intInput(n, "length", 1)
		idx := intInput(n, "batch_index", 0)
		a.frames = max(1, min(length, a.frames-idx))
		return a
	case "VAEDecode":
		return from("samples")
	case "KSamplerAdvanced", "KSampler":
		return from("latent_image")
	case "CreateVideo":
		return from("images")
	case "WanImageToVideo", "WanFirstLastFrameToVideo":
		src := imageSrc{}
		if _, _, ok := n.link("start_image"); ok {
			src = from("start_image")
		}
		length := intInput(n, "length", 81)
		src.w = intInput(n, "width", 832) / 8 * 8
		src.h = intInput(n, "height", 480) / 8 * 8
		src.frames = (length-1)/4*4 + 1
		return src
	}
	for _, e := range n.inputs {
		if a, ok := e.v.([]any); ok && len(a) == 2 {
			return s.trace(g, pyStr(a[0]), depth+1)
		}
	}
	return imageSrc{w: 64, h: 64, frames: 1}
}

// writeVideo is VHS_VideoCombine or SaveVideo: a real video file, named as
// those nodes name it, and their UI output.
func (s *Server) writeVideo(r *run, id string, n *promptNode) (any, *failure) {
	g := r.q.g
	spec := VideoSpec{Codec: "h264", PixFmt: "yuv420p"}
	var src imageSrc
	prefix := stringInput(n, "filename_prefix", "video/ComfyUI")
	vhs := n.classType == "VHS_VideoCombine"
	format := ""
	saveOutput := true
	if vhs {
		prefix = stringInput(n, "filename_prefix", "AnimateDiff")
		if l, _, ok := n.link("images"); ok {
			src = s.trace(g, l, 0)
		}
		spec.FPS = floatInput(n, "frame_rate", 8)
		spec.CRF = intInput(n, "crf", 19)
		spec.PixFmt = stringInput(n, "pix_fmt", "yuv420p")
		format = stringInput(n, "format", "image/gif")
		switch format {
		case "video/h264-mp4", "video/nvenc_h264-mp4":
		case "video/webm", "video/av1-webm":
			spec.Codec = "vp9"
		case "image/gif", "video/ffmpeg-gif":
			spec.Codec = "gif"
		default:
			return nil, &failure{kind: "error", node: id, class: n.classType, excType: "Exception",
				excMsg: "the fake ComfyUI does not encode " + format, traceback: traceback(n.classType, "raise Exception(msg)")}
		}
		if v, ok := n.constant("save_output"); ok && v == false {
			saveOutput = false
		}
	} else {
		spec.CRF = 23 // PyAV's libx264 default: SaveVideo sets no CRF
		spec.FPS = 30
		if l, _, ok := n.link("video"); ok {
			if cv := g.nodes[l]; cv != nil && cv.classType == "CreateVideo" {
				spec.FPS = floatInput(cv, "fps", 30)
			}
			src = s.trace(g, l, 0)
		}
	}
	spec.Width, spec.Height, spec.Frames, spec.Source = src.w, src.h, src.frames, src.file
	if spec.Width%2 == 1 || spec.Height%2 == 1 {
		spec.Width, spec.Height = spec.Width/2*2, spec.Height/2*2
	}

	base := s.outputDir
	typ := "output"
	if !saveOutput {
		base, typ = s.tempDir, "temp"
	}
	subfolder, name := path.Split(prefix)
	subfolder = strings.TrimSuffix(subfolder, "/")
	folder, err := within(base, subfolder)
	if err != nil {
		return nil, &failure{kind: "error", node: id, class: n.classType, excType: "Exception",
			excMsg: "**** ERROR: Saving image outside the output folder is not allowed." + "\n full_output_folder: " + folder, traceback: traceback(n.classType, "raise Exception(err)")}
	}
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return nil, osFailure(id, n.classType, err)
	}
	counter := nextCounter(folder, name)
	var file string
	if vhs {
		file = fmt.Sprintf("%s_%05d.%s", name, counter, spec.Ext())
	} else {
		file = fmt.Sprintf("%s_%05d_.mp4", name, counter)
	}
	out := filepath.Join(folder, file)
	if s.opts.Video != nil {
		err = os.WriteFile(out, s.opts.Video, 0o644)
	} else {
		err = EncodeVideo(s.ctx, s.opts.FFmpeg, spec, out)
	}
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, &failure{kind: "stopped"}
		}
		t, msg := "RuntimeError", err.Error()
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			// What VideoHelperSuite raises without ffmpeg (PyAV bundles its own for SaveVideo).
			t, msg = "ProcessLookupError", "ffmpeg is required for video outputs and could not be found.\nIn order to use video outputs, you must either:\n- Install imageio-ffmpeg with pip,\n- Place a ffmpeg executable in the ComfyUI directory, or\n- Install ffmpeg and add it to the system path."
		}
		return nil, &failure{kind: "error", node: id, class: n.classType, excType: t, excMsg: msg,
			traceback: traceback(n.classType, "raise "+t+"(msg)")}
	}
	if !vhs {
		return obj{{"images", []any{obj{{"filename", file}, {"subfolder", subfolder}, {"type", "output"}}}}, {"animated", []any{true}}}, nil
	}
	// VHS reports progress per frame written to ffmpeg.
	for i := 1; i <= spec.Frames; i++ {
		if f := s.progress(r, id, n.classType, i, spec.Frames); f != nil {
			os.Remove(out)
			return nil, f
		}
	}
	png := fmt.Sprintf("%s_%05d.png", name, counter)
	if metadataImage(r.q.extra) && src.file != "" {
		if b, err := os.ReadFile(src.file); err == nil {
			os.WriteFile(filepath.Join(folder, png), b, 0o644)
		}
	}
	return obj{{"gifs", []any{obj{{"filename", file}, {"subfolder", subfolder}, {"type", typ}, {"format", format},
		{"frame_rate", pyFloat(spec.FPS)}, {"workflow", png}, {"fullpath", out}}}}}, nil
}

// saveImages is SaveImage / PreviewImage: one PNG per frame.
func (s *Server) saveImages(r *run, id string, n *promptNode) (any, *failure) {
	var src imageSrc
	if l, _, ok := n.link("images"); ok {
		src = s.trace(r.q.g, l, 0)
	}
	base, typ, prefix := s.outputDir, "output", stringInput(n, "filename_prefix", "ComfyUI")
	if n.classType == "PreviewImage" {
		base, typ, prefix = s.tempDir, "temp", "ComfyUI_temp_"+newID()[:5]
	}
	subfolder, name := path.Split(prefix)
	subfolder = strings.TrimSuffix(subfolder, "/")
	folder, err := within(base, subfolder)
	if err == nil {
		err = os.MkdirAll(folder, 0o755)
	}
	if err != nil {
		return nil, osFailure(id, n.classType, err)
	}
	var data []byte
	if src.file != "" {
		data, _ = os.ReadFile(src.file)
	}
	counter := nextCounter(folder, name)
	images := []any{}
	for i := 0; i < max(1, src.frames); i++ {
		file := fmt.Sprintf("%s_%05d_.png", name, counter+i)
		if err := os.WriteFile(filepath.Join(folder, file), data, 0o644); err != nil {
			return nil, osFailure(id, n.classType, err)
		}
		images = append(images, obj{{"filename", file}, {"subfolder", subfolder}, {"type", typ}})
	}
	return obj{{"images", images}}, nil
}

func osFailure(id, class string, err error) *failure {
	return &failure{kind: "error", node: id, class: class, excType: "OSError", excMsg: err.Error(), traceback: traceback(class, "raise OSError(msg)")}
}

// metadataImage reports whether VHS writes its first-frame PNG: unless
// extra_pnginfo.workflow.extra.VHS_MetadataImage is false.
func metadataImage(extra obj) bool {
	v, _ := extra.get("extra_pnginfo")
	pi, _ := v.(obj)
	v, _ = pi.get("workflow")
	wf, _ := v.(obj)
	v, _ = wf.get("extra")
	ex, _ := v.(obj)
	v, ok := ex.get("VHS_MetadataImage")
	return !ok || v != false
}

// nextCounter is 1 + the largest counter of files named <name>_<digits>...
func nextCounter(folder, name string) int {
	re := regexp.MustCompile("^" + regexp.QuoteMeta(name) + `_(\d+)`)
	entries, _ := os.ReadDir(folder)
	maxc := 0
	for _, e := range entries {
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			if c, err := strconv.Atoi(m[1]); err == nil && c > maxc {
				maxc = c
			}
		}
	}
	return maxc + 1
}

func decodable(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	// Decode every pixel, as LoadImage does (PIL's open and convert), so
	// that the fake's CPU per job reflects what the uploaded file costs.
	_, _, err = image.Decode(bufio.NewReader(f))
	return err
}

func traceback(class, last string) []any {
	fn := map[string]string{"KSamplerAdvanced": "sample", "LoadImage": "load_image", "VHS_VideoCombine": "combine_video",
		"SaveVideo": "execute", "VAEDecode": "decode", "WanImageToVideo": "execute",
		"WanFirstLastFrameToVideo": "execute"}[class]
	if fn == "" {
		fn = "execute"
	}
	return []any{
		"  File \"/comfyui/execution.py\", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n",
		"  File \"/comfyui/execution.py\", line 315, in get_output_data\n    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n",
		"  File \"/comfyui/execution.py\", line 277, in process_inputs\n    result = f(**inputs)\n",
		fmt.Sprintf("  File \"/comfyui/nodes.py\", line 1, in %s\n    %s\n", fn, last),
	}
}

// currentInputs formats a failing node's inputs as execution.py does:
// constants as they are, objects as their str().
func currentInputs(n *promptNode, cat *catalog) obj {
	out := obj{}
	if n == nil {
		return out
	}
	for _, e := range n.inputs {
		if a, ok := e.v.([]any); ok && len(a) == 2 {
			out = append(out, kv{e.k, []any{"<" + linkedRepr(cat, n, e.k) + " object at 0x7f3a2c1d5e10>"}})
			continue
		}
		out = append(out, kv{e.k, []any{e.v}})
	}
	return out
}

func linkedRepr(cat *catalog, n *promptNode, input string) string {
	if c, ok := cat.classes[n.classType]; ok {
		for _, d := range c.inputs {
			if d.name == input {
				switch d.typ {
				case "MODEL":
					return "comfy.model_patcher.ModelPatcher"
				case "VAE":
					return "comfy.sd.VAE"
				case "CLIP":
					return "comfy.sd.CLIP"
				}
				return strings.ToLower(d.typ)
			}
		}
	}
	return "object"
}

func intInput(n *promptNode, name string, def int) int {
	v, ok := n.constant(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(pyStr(v), 64)
	if err != nil {
		return def
	}
	return int(f)
}

func floatInput(n *promptNode, name string, def float64) float64 {
	v, ok := n.constant(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(pyStr(v), 64)
	if err != nil {
		return def
	}
	return f
}

func stringInput(n *promptNode, name, def string) string {
	v, ok := n.constant(name)
	if !ok {
		return def
	}
	return pyStr(v)
}

// signatures computes each node's cache key: class, constants, the file
// hash of LoadImage (its IS_CHANGED) and the keys of linked ancestors.
func (s *Server) signatures(g *graph) map[string]string {
	out := map[string]string{}
	var sig func(id string, depth int) string
	sig = func(id string, depth int) string {
		if v, ok := out[id]; ok {
			return v
		}
		n, ok := g.nodes[id]
		if !ok || depth > 256 {
			return "missing:" + id
		}
		var b strings.Builder
		b.WriteString(n.classType)
		for _, e := range n.inputs {
			b.WriteString("|" + e.k + "=")
			if a, ok := e.v.([]any); ok && len(a) == 2 {
				b.WriteString("<" + sig(pyStr(a[0]), depth+1) + ">" + pyStr(a[1]))
				continue
			}
			enc, _ := marshal(e.v)
			b.Write(enc)
		}
		if n.classType == "LoadImage" {
			name, _ := n.constant("image")
			if p, err := s.inputPath(pyStr(name)); err == nil {
				if data, err := os.ReadFile(p); err == nil {
					h := sha256.Sum256(data)
					b.WriteString("|sha256=" + hex.EncodeToString(h[:]))
				}
			}
		}
		h := sha256.Sum256([]byte(b.String()))
		out[id] = hex.EncodeToString(h[:])
		return out[id]
	}
	for _, id := range g.order {
		sig(id, 0)
	}
	return out
}

// executionOrder reproduces ComfyUI's ExecutionList: the outputs and their
// uncached ancestors, staged one at a time with its UX-friendly preferences
// (outputs first, then nodes that unblock an output).
func (s *Server) executionOrder(g *graph, outputs []string, cached map[string]bool) []string {
	var pendingOrder []string
	pending := map[string]bool{}
	deps := map[string]map[string]bool{}     // node → pending nodes it waits for
	blocking := map[string]map[string]bool{} // node → nodes waiting for it
	for _, o := range outputs {
		stack := []string{o}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if pending[id] {
				continue
			}
			n, ok := g.nodes[id]
			if !ok {
				continue
			}
			pending[id] = true
			pendingOrder = append(pendingOrder, id)
			if deps[id] == nil {
				deps[id] = map[string]bool{}
			}
			for _, e := range n.inputs {
				a, ok := e.v.([]any)
				if !ok || len(a) != 2 {
					continue
				}
				src := pyStr(a[0])
				if cached[src] {
					continue
				}
				stack = append(stack, src)
				deps[id][src] = true
				if blocking[src] == nil {
					blocking[src] = map[string]bool{}
				}
				blocking[src][id] = true
			}
		}
	}
	isOutput := func(id string) bool {
		c := s.catalog.classes[g.nodes[id].classType]
		return c != nil && c.outputNode
	}
	done := map[string]bool{}
	var order []string
	for len(order) < len(pendingOrder) {
		var ready []string
		for _, id := range pendingOrder {
			if done[id] {
				continue
			}
			ok := true
			for d := range deps[id] {
				if !done[d] {
					ok = false
					break
				}
			}
			if ok {
				ready = append(ready, id)
			}
		}
		if len(ready) == 0 {
			break // a cycle: ComfyUI raises DependencyCycleError; the fake stops
		}
		pick := pickNode(ready, blocking, isOutput)
		done[pick] = true
		order = append(order, pick)
	}
	return order
}

func pickNode(ready []string, blocking map[string]map[string]bool, isOutput func(string) bool) string {
	for _, id := range ready {
		if isOutput(id) {
			return id
		}
	}
	for _, id := range ready {
		for b := range blocking[id] {
			if isOutput(b) {
				return id
			}
		}
	}
	for _, id := range ready {
		for b := range blocking[id] {
			for b1 := range blocking[b] {
				if isOutput(b1) {
					return id
				}
			}
		}
	}
	return ready[0]
}
