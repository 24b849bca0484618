package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// RunRequest is one graph to run.
type RunRequest struct {
	// PromptID is the prompt's id in ComfyUI: the job id.
	PromptID string
	// Graph is the API-format graph (anything that marshals to it).
	Graph any
	// Stages maps node ids to the stage they belong to, for progress.
	Stages map[string]progress.Stage
	// OutputNode is the id of the node that writes the video.
	OutputNode string
	// Steps is the number of sampler steps over both experts, Split the
	// number on the high-noise expert (step n of the low-noise sampler is
	// reported as Split+n).
	Steps, Split int
	// OnProgress receives progress updates (percent never decreases). It
	// runs on the client's goroutine and must not block.
	OnProgress progress.Func
	// ExtraPNGInfo is sent as extra_data.extra_pnginfo; nil sends the
	// VideoHelperSuite flags that stop it writing a first-frame PNG and
	// keeping intermediates next to the video.
	ExtraPNGInfo map[string]any
}

// Outcome is a finished run.
type Outcome struct {
	PromptID string
	// Video is the video file: the output node's, else any video.
	Video OutputFile
	// Outputs are every file the history lists (VHS also writes a PNG).
	Outputs []OutputFile
	// Cached is true when the output node was served from ComfyUI's cache:
	// an identical earlier prompt, whose files these are.
	Cached bool
	// CachedNodes are the nodes ComfyUI did not run again.
	CachedNodes []string
	Timings     Timings
}

// Timings of a run.
type Timings struct {
	// Queued is from POST /prompt to execution_start (waiting behind other
	// prompts).
	Queued time.Duration
	// Execution is from execution_start to the end of the run.
	Execution time.Duration
	// Nodes is each executed node's wall time, from its `executing` event to the next one (or the run's end),
	// as the websocket saw it; cached nodes are absent. The warm-up reads the loaders' times from it.
	Nodes map[string]NodeTime
}

// NodeTime is when a node started executing and how long it ran.
type NodeTime struct {
	Start time.Time
	Took  time.Duration
}

// Run queues req.Graph and follows it to the end: the websocket is opened
// before queueing; completion is `executing` with node null for the prompt
// (execution_success comes before the history is written), then the history
// is read (retried briefly). A dropped websocket is reopened with backoff
// and reconciled with /history and /queue, so a prompt that finished in the
// gap is never waited on. When ctx ends the prompt is interrupted and
// removed from the queue, and Run returns CANCELLED or TIMEOUT. Every error
// is an *apperr.Error (or an apperr.List of them).
//
// Run does not remove the history entry: call Cleanup once the outputs are
// read.
func (c *Client) Run(ctx context.Context, req RunRequest) (*Outcome, error) {
	if req.PromptID == "" || req.Graph == nil {
		return nil, apperr.New(apperr.Internal, "comfy.Run needs a prompt id and a graph", "this is a bug in the worker")
	}
	if e := errContext(ctx); e != nil {
		return nil, e
	}
	r := &runner{
		c:        c,
		req:      req,
		clientID: c.runClientID(),
		log:      c.log.With("prompt_id", req.PromptID),
		track:    newTracker(req.Stages, req.Steps, req.Split, req.OnProgress),
		executed: map[string]map[string]json.RawMessage{},
	}
	st, err := c.dial(ctx, r.clientID)
	if err != nil {
		return nil, err
	}
	r.st = st
	defer func() { r.st.close() }()

	if err := r.queue(ctx); err != nil {
		if ctx.Err() != nil || r.maybeQueued {
			// The request may have reached ComfyUI: make sure it does not run.
			return nil, r.abort(ctx, err)
		}
		return nil, err
	}
	return r.follow(ctx)
}

// runner is the state of one Run.
type runner struct {
	c        *Client
	req      RunRequest
	clientID string
	log      *slog.Logger
	st       *stream
	track    *tracker

	maybeQueued bool
	number      *float64 // the queue number POST /prompt gave the prompt
	queuedAt    time.Time
	startedAt   time.Time
	cached      []string
	executed    map[string]map[string]json.RawMessage // node → UI output from `executed`
	success     bool
	failed      error // a terminal execution error; the run's end is awaited briefly

	nodeCur   string // the node executing now, since nodeAt
	nodeAt    time.Time
	nodeTimes map[string]NodeTime
}

// nodeLap records that node (""; the run's end) started executing now, closing the previous node's time.
func (r *runner) nodeLap(node string) {
	if node == r.nodeCur && node != "" {
		return // a resend of the running node (after a reconnect)
	}
	now := time.Now()
	if r.nodeCur != "" {
		if r.nodeTimes == nil {
			r.nodeTimes = map[string]NodeTime{}
		}
		nt, ok := r.nodeTimes[r.nodeCur]
		if !ok {
			nt.Start = r.nodeAt
		}
		nt.Took += now.Sub(r.nodeAt)
		r.nodeTimes[r.nodeCur] = nt
	}
	r.nodeCur, r.nodeAt = node, now
}

// queue posts the prompt.
func (r *runner) queue(ctx context.Context) error {
	pnginfo := r.req.ExtraPNGInfo
	if pnginfo == nil {
		// VideoHelperSuite writes a PNG of the first frame next to the video
		// and keeps intermediates unless the workflow's extra says not to.
		pnginfo = map[string]any{"workflow": map[string]any{
			"extra": map[string]any{"VHS_MetadataImage": false, "VHS_KeepIntermediate": false}}}
	}
	body := map[string]any{
		"prompt":     r.req.Graph,
		"client_id":  r.clientID,
		"prompt_id":  r.req.PromptID,
		"extra_data": map[string]any{"extra_pnginfo": pnginfo},
	}
	var resp struct {
		PromptID   string          `json:"prompt_id"`
		Number     *float64        `json:"number"`
		NodeErrors json.RawMessage `json:"node_errors"`
	}
	r.maybeQueued = true
	err := r.c.call(ctx, http.MethodPost, "/prompt", nil, body, &resp)
	var se *statusError
	if errors.As(err, &se) {
		r.maybeQueued = false
		if se.status == http.StatusBadRequest {
			return errPrompt(se.status, se.body, r.available(ctx))
		}
		return mapStatus(se)
	}
	if err != nil {
		return err
	}
	r.queuedAt = time.Now()
	r.number = resp.Number
	if len(resp.NodeErrors) > 0 && string(resp.NodeErrors) != "{}" && string(resp.NodeErrors) != "null" {
		// Queued, but some outputs failed validation and were dropped: fail
		// rather than deliver a partial result.
		b, _ := json.Marshal(map[string]json.RawMessage{"node_errors": resp.NodeErrors})
		return errPrompt(http.StatusOK, b, r.available(ctx))
	}
	r.maybeQueued = false
	r.log.Debug("prompt queued", "client_id", r.clientID)
	return nil
}

// available looks up a model folder's files for MODEL_MISSING errors.
func (r *runner) available(ctx context.Context) func(string) []string {
	return func(folder string) []string {
		list, err := r.c.Models(ctx, folder)
		if err != nil {
			return nil
		}
		return list
	}
}

// follow consumes events until the prompt ends.
func (r *runner) follow(ctx context.Context) (*Outcome, error) {
	silence := time.NewTimer(r.c.Tuning.SilenceCheck)
	defer silence.Stop()
	var grace <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil, r.abort(ctx, nil)
		case ev := <-r.st.events:
			if ev.err != nil {
				if out, err, done := r.recover(ctx, ev.err); done {
					return out, err
				}
				resetTimer(silence, r.c.Tuning.SilenceCheck)
				continue
			}
			resetTimer(silence, r.c.Tuning.SilenceCheck)
			if r.handle(ev) {
				return r.finish(ctx)
			}
			if r.failed != nil && grace == nil {
				grace = time.After(r.c.Tuning.ErrorGrace)
			}
		case <-grace:
			return nil, r.failed
		case <-silence.C:
			if out, err, done := r.reconcile(ctx); done {
				return out, err
			}
			silence.Reset(r.c.Tuning.SilenceCheck)
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(d)
}

// handle applies one event; it reports whether the prompt ended.
func (r *runner) handle(ev event) bool {
	var d struct {
		PromptID string                     `json:"prompt_id"`
		Node     *string                    `json:"node"`
		Nodes    json.RawMessage            `json:"nodes"`
		Value    float64                    `json:"value"`
		Max      float64                    `json:"max"`
		Output   map[string]json.RawMessage `json:"output"`
	}
	if len(ev.Data) > 0 && json.Unmarshal(ev.Data, &d) != nil {
		return false
	}
	ours := d.PromptID == r.req.PromptID
	switch ev.Type {
	case "execution_start":
		if ours {
			r.markStarted()
		}
	case "execution_cached":
		if ours {
			var nodes []string
			json.Unmarshal(d.Nodes, &nodes)
			r.cached = nodes
			r.track.cached(nodes)
		}
	case "executing":
		if d.Node == nil {
			if ours {
				r.nodeLap("")
			}
			return ours
		}
		// On reconnect ComfyUI resends the running node without prompt_id,
		// and only to the client that owns the running prompt.
		if ours || d.PromptID == "" {
			r.markStarted()
			r.nodeLap(*d.Node)
			r.track.executing(*d.Node)
		}
	case "progress":
		if ours && d.Node != nil {
			r.track.nodeProgress(*d.Node, d.Value, d.Max)
		}
	case "progress_state":
		if ours {
			var nodes map[string]struct {
				Value float64 `json:"value"`
				Max   float64 `json:"max"`
				State string  `json:"state"`
			}
			json.Unmarshal(d.Nodes, &nodes)
			for id, n := range nodes {
				switch n.State {
				case "finished":
					r.track.finished(id)
				case "running":
					if n.Value > 0 {
						r.track.nodeProgress(id, n.Value, n.Max)
					}
				}
			}
		}
	case "executed":
		if ours && d.Node != nil && d.Output != nil {
			r.executed[*d.Node] = d.Output
		}
	case "execution_success":
		if ours {
			r.success = true
		}
	case "execution_error":
		if ours {
			var e execError
			json.Unmarshal(ev.Data, &e)
			if e.ExceptionType == "ExecutionBlocked" {
				r.log.Warn("ComfyUI blocked a node; the prompt goes on", "node", e.NodeID, "message", e.ExceptionMessage)
				break
			}
			r.log.Error("ComfyUI execution error", "node", e.NodeID, "node_type", e.NodeType,
				"exception_type", e.ExceptionType, "exception_message", e.ExceptionMessage)
			r.failed = errExecution(e)
		}
	case "execution_interrupted":
		if ours {
			var e interrupted
			json.Unmarshal(ev.Data, &e)
			r.failed = errInterrupted(e)
		}
	}
	return false
}

func (r *runner) markStarted() {
	if r.startedAt.IsZero() {
		r.startedAt = time.Now()
		r.track.started()
	}
}

// finish reads the result of a prompt that ended.
func (r *runner) finish(ctx context.Context) (*Outcome, error) {
	if r.failed != nil {
		return nil, r.failed
	}
	entry, err := r.waitHistory(ctx)
	if err != nil {
		return nil, err
	}
	if entry == nil {
		if r.success && len(r.executed) > 0 {
			r.log.Warn("no history entry after the run; using the outputs the websocket reported")
			return r.outcome(r.executed)
		}
		return nil, errNoHistory(r.req.PromptID)
	}
	return r.fromHistory(entry)
}

// waitHistory reads the prompt's history entry, retrying while it is not
// written yet (it lands just after the run ends).
func (r *runner) waitHistory(ctx context.Context) (*historyEntry, error) {
	deadline := time.Now().Add(r.c.Tuning.HistoryWait)
	wait := 20 * time.Millisecond
	for {
		entry, err := r.history(ctx)
		if err != nil {
			if e := errContext(ctx); e != nil {
				return nil, r.abort(ctx, nil)
			}
			return nil, err
		}
		if entry != nil || time.Now().After(deadline) {
			return entry, nil
		}
		select {
		case <-ctx.Done():
			return nil, r.abort(ctx, nil)
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// history reads the prompt's history entry, ignoring a stale one: ComfyUI
// does not check prompt ids for uniqueness, so a retried job (same id) can
// find the entry of its earlier attempt until its own replaces it. Queue
// numbers are unique for the server's lifetime (and the history does not
// outlive the server).
func (r *runner) history(ctx context.Context) (*historyEntry, error) {
	entry, err := r.c.history(ctx, r.req.PromptID)
	if err != nil || entry == nil || r.number == nil || len(entry.Prompt) == 0 {
		return entry, err
	}
	var n float64
	if json.Unmarshal(entry.Prompt[0], &n) == nil && n != *r.number {
		r.log.Debug("ignoring the history entry of an earlier prompt with the same id", "number", n)
		return nil, nil
	}
	return entry, nil
}

// fromHistory turns a history entry into the outcome or the run's error.
func (r *runner) fromHistory(e *historyEntry) (*Outcome, error) {
	if e.Status.StatusStr == "error" || (e.Status.StatusStr != "" && !e.Status.Completed) {
		return nil, errFromHistory(r.req.PromptID, e.Status)
	}
	if r.cached == nil {
		r.cached = cachedFromHistory(e.Status)
	}
	return r.outcome(e.Outputs)
}

func cachedFromHistory(st historyStatus) []string {
	for _, raw := range st.Messages {
		var m []json.RawMessage
		if json.Unmarshal(raw, &m) != nil || len(m) != 2 {
			continue
		}
		var event string
		json.Unmarshal(m[0], &event)
		if event == "execution_cached" {
			var d struct {
				Nodes []string `json:"nodes"`
			}
			json.Unmarshal(m[1], &d)
			return d.Nodes
		}
	}
	return nil
}

func (r *runner) outcome(outputs map[string]map[string]json.RawMessage) (*Outcome, error) {
	files := collectOutputs(outputs)
	video, ok := pickVideo(files, r.req.OutputNode)
	if !ok {
		return nil, errNoVideo(r.req.PromptID, files)
	}
	if r.req.OutputNode != "" && video.Node != r.req.OutputNode {
		r.log.Warn("the output node made no video; using another node's", "output_node", r.req.OutputNode, "node", video.Node)
	}
	r.track.complete()
	now := time.Now()
	out := &Outcome{PromptID: r.req.PromptID, Video: video, Outputs: files, CachedNodes: r.cached}
	for _, n := range r.cached {
		if n == video.Node {
			out.Cached = true
		}
	}
	out.Timings.Nodes = r.nodeTimes
	if !r.startedAt.IsZero() {
		out.Timings.Queued = r.startedAt.Sub(r.queuedAt)
		out.Timings.Execution = now.Sub(r.startedAt)
	} else {
		out.Timings.Execution = now.Sub(r.queuedAt)
	}
	return out, nil
}

// promptState is where ComfyUI has a prompt.
type promptState int

const (
	stateUnknown promptState = iota
	statePending
	stateRunning
	stateDone
)

// lookup asks /history, then /queue, where the prompt is. The order matters:
// a prompt that ends between the two calls is in neither, which waitHistory
// then resolves.
func (r *runner) lookup(ctx context.Context) (promptState, *historyEntry, error) {
	entry, err := r.history(ctx)
	if err != nil {
		return stateUnknown, nil, err
	}
	if entry != nil {
		return stateDone, entry, nil
	}
	q, err := r.c.Queue(ctx)
	if err != nil {
		return stateUnknown, nil, err
	}
	for _, id := range q.Running {
		if id == r.req.PromptID {
			return stateRunning, nil, nil
		}
	}
	for _, id := range q.Pending {
		if id == r.req.PromptID {
			return statePending, nil, nil
		}
	}
	return stateUnknown, nil, nil
}

// reconcile checks over HTTP whether the prompt ended while events were not
// arriving. done reports that out/err are the run's result.
func (r *runner) reconcile(ctx context.Context) (out *Outcome, err error, done bool) {
	state, entry, lerr := r.lookup(ctx)
	if lerr != nil {
		if errContext(ctx) != nil {
			return nil, r.abort(ctx, nil), true
		}
		r.log.Warn("cannot check the prompt's state", "err", lerr)
		return nil, nil, false
	}
	switch state {
	case stateDone:
		r.log.Info("the prompt ended while its events were not arriving; result taken from the history")
		if r.failed != nil {
			return nil, r.failed, true
		}
		out, err := r.fromHistory(entry)
		return out, err, true
	case stateRunning, statePending:
		return nil, nil, false
	}
	// Neither queued nor in the history: it may be between the two (the
	// history is written just after the queue lets go of it).
	entry, err = r.waitHistory(ctx)
	if err != nil {
		return nil, err, true
	}
	if entry == nil {
		return nil, errPromptLost(r.req.PromptID), true
	}
	out, err = r.fromHistory(entry)
	return out, err, true
}

// recover reopens a dropped websocket (bounded backoff) and reconciles. While
// the socket cannot be reopened the prompt's state is polled over HTTP, so a
// prompt that ends meanwhile is still found; ComfyUI unreachable for
// UnreachableFor fails the job COMFY_UNAVAILABLE.
func (r *runner) recover(ctx context.Context, cause error) (out *Outcome, err error, done bool) {
	r.log.Warn("websocket to ComfyUI dropped; reconnecting", "err", cause)
	r.st.close()
	r.st = nil
	backoff := r.c.Tuning.ReconnectMin
	var unreachableSince time.Time
	for {
		select {
		case <-ctx.Done():
			return nil, r.abort(ctx, nil), true
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, r.c.Tuning.ReconnectMax)
		st, derr := r.c.dial(ctx, r.clientID)
		if derr == nil {
			r.st = st
			r.log.Info("websocket to ComfyUI reconnected")
			out, err, done := r.reconcile(ctx)
			return out, err, done
		}
		if errContext(ctx) != nil {
			return nil, r.abort(ctx, nil), true
		}
		state, entry, lerr := r.lookup(ctx)
		if lerr != nil {
			if errContext(ctx) != nil {
				return nil, r.abort(ctx, nil), true
			}
			if unreachableSince.IsZero() {
				unreachableSince = time.Now()
			}
			if time.Since(unreachableSince) >= r.c.Tuning.UnreachableFor {
				return nil, errLostConnection(r.c.base, lerr), true
			}
			continue
		}
		unreachableSince = time.Time{}
		switch state {
		case stateDone:
			if r.failed != nil {
				return nil, r.failed, true
			}
			out, err := r.fromHistory(entry)
			return out, err, true
		case stateUnknown:
			out, err, done := r.reconcile(ctx)
			if done {
				return out, err, true
			}
		}
		// Still queued or running: keep trying the websocket.
	}
}

// abort stops the prompt after the job's context ended (or a failure after
// the prompt may have been queued) and returns the error to report: the
// context's CANCELLED/TIMEOUT, else cause.
func (r *runner) abort(ctx context.Context, cause error) error {
	if e := errContext(ctx); e != nil {
		cause = e
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.c.Tuning.CancelTimeout)
	defer cancel()
	if err := r.c.Interrupt(cctx, r.req.PromptID); err != nil {
		r.log.Warn("cannot interrupt the prompt", "err", err)
		return cause
	}
	// Give ComfyUI a moment to stop it, so the next job does not queue
	// behind it. An interrupt acts at the next sampler step or node.
	q, err := r.c.Queue(cctx)
	if err != nil {
		return cause
	}
	running := false
	for _, id := range q.Running {
		running = running || id == r.req.PromptID
	}
	if !running {
		return cause
	}
	wait := time.NewTimer(r.c.Tuning.InterruptWait)
	defer wait.Stop()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	var events chan event
	if r.st != nil {
		events = r.st.events
	}
	for {
		select {
		case ev := <-events:
			if ev.err != nil {
				events = nil
				continue
			}
			r.handle(ev)
			var d struct {
				PromptID string  `json:"prompt_id"`
				Node     *string `json:"node"`
			}
			json.Unmarshal(ev.Data, &d)
			if d.PromptID == r.req.PromptID && (ev.Type == "execution_interrupted" || (ev.Type == "executing" && d.Node == nil)) {
				r.log.Info("ComfyUI stopped the prompt")
				return cause
			}
		case <-poll.C:
			if st, _, err := r.lookup(cctx); err == nil && st != stateRunning {
				return cause
			}
		case <-wait.C:
			r.log.Warn("ComfyUI did not stop the prompt in time; it may still be running")
			return cause
		}
	}
}
