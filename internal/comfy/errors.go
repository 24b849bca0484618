package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
	"sort"
	"strconv"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// This file is the one place where what ComfyUI says (HTTP statuses, the
// /prompt error body, websocket execution errors, transport failures) turns
// into the contract's typed errors (DESIGN.md §4), each with a hint.

// ErrPromptLost is the cause of the error returned when ComfyUI no longer
// knows a prompt: neither queued, running, nor in its history (it restarted,
// or someone cleared the queue).
var ErrPromptLost = errors.New("prompt unknown to ComfyUI")

const (
	hintUnavailable = "ComfyUI is not answering: check that it is running (the worker's log shows its output) and " +
		"that COMFY_URL points at it; a crashed ComfyUI is restarted by the worker"
	hintVersion = "check ComfyUI's log; the worker is built for ComfyUI 0.3.64, another version may answer differently"
	hintOOM     = "the GPU ran out of memory: lower options.width/options.height or options.length (frames), " +
		"or run on a GPU with more memory"
	hintTimeout = "the job ran past its deadline: raise JOB_TIMEOUT (or the endpoint's execution timeout), " +
		"or ask for fewer steps, frames or pixels"
)

// errContext maps the end of the job's context: TIMEOUT for a deadline,
// CANCELLED otherwise. It returns nil while ctx is live.
func errContext(ctx context.Context) *apperr.Error {
	switch err := ctx.Err(); {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return apperr.Wrap(apperr.Timeout, err, "the job did not finish before its deadline", hintTimeout)
	default:
		cause := context.Cause(ctx)
		if c := apperr.As(cause); c != nil {
			// Whoever cancelled said why, with its own code and hint (the
			// worker shutting down: "submit the job again"): keep it whole
			// rather than wrapping its text in a second "CANCELLED: ...".
			return c
		}
		msg := "the job was cancelled"
		if cause != nil && !errors.Is(cause, context.Canceled) {
			msg += ": " + cause.Error()
		}
		return apperr.Wrap(apperr.Cancelled, err, msg, "")
	}
}

// errTransport maps a failed request (refused, reset, closed, timed out):
// the job's own context ending wins; anything else is COMFY_UNAVAILABLE.
func errTransport(ctx context.Context, base, op string, err error) error {
	if e := errContext(ctx); e != nil {
		return e
	}
	if apperr.As(err) != nil {
		return err
	}
	return apperr.Wrap(apperr.ComfyUnavailable, err,
		fmt.Sprintf("cannot reach ComfyUI at %s (%s): %s", base, op, rootCause(err)), hintUnavailable)
}

// rootCause shortens net/url error chains to their last, useful part.
func rootCause(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}

// statusError is a non-2xx answer; mapStatus turns it into a typed error.
type statusError struct {
	op     string
	status int
	body   []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.op, e.status, excerpt(e.body))
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// mapStatus maps an unexpected HTTP status of any route.
func mapStatus(e *statusError) error {
	switch {
	case e.status == 502 || e.status == 503 || e.status == 504:
		return apperr.Wrap(apperr.ComfyUnavailable, e,
			fmt.Sprintf("ComfyUI is not ready (%s answered %d)", e.op, e.status), hintUnavailable)
	case e.status == 413 && e.op == "POST /upload/image":
		return apperr.Wrap(apperr.ImageTooLarge, e, fmt.Sprintf("ComfyUI refused the upload as too large (%s)", e.op),
			"raise ComfyUI's --max-upload-size, or send a smaller image")
	}
	return apperr.Wrap(apperr.Internal, e, fmt.Sprintf("ComfyUI answered %d to %s: %s", e.status, e.op, excerpt(e.body)), hintVersion)
}

// errViewMissing is a /view 404: the output file is gone.
func errViewMissing(f OutputFile, e *statusError) *apperr.Error {
	name := f.Filename
	if f.Subfolder != "" {
		name = f.Subfolder + "/" + name
	}
	return apperr.Wrap(apperr.OutputMissing, e, fmt.Sprintf("ComfyUI has no %s file %s", f.Type, name),
		"the file was removed from ComfyUI's output folder before it was read; check free disk space and anything that cleans that folder")
}

// promptErrorBody is the body of a failed POST /prompt (and the node_errors
// of a 200).
type promptErrorBody struct {
	Error      json.RawMessage      `json:"error"`
	NodeErrors map[string]nodeError `json:"node_errors"`
}

type topError struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Details   string `json:"details"`
	ExtraInfo struct {
		NodeID    string `json:"node_id"`
		ClassType string `json:"class_type"`
	} `json:"extra_info"`
}

type nodeError struct {
	ClassType        string       `json:"class_type"`
	DependentOutputs []any        `json:"dependent_outputs"`
	Errors           []inputError `json:"errors"`
}

type inputError struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Details   string `json:"details"`
	ExtraInfo struct {
		InputName     string          `json:"input_name"`
		InputConfig   json.RawMessage `json:"input_config"`
		ReceivedValue json.RawMessage `json:"received_value"`
	} `json:"extra_info"`
}

// nodePack names the custom node pack that provides a class, or "" for a
// class of ComfyUI itself.
func nodePack(class string) string {
	switch {
	case strings.HasPrefix(class, "VHS_"):
		return "ComfyUI-VideoHelperSuite (github.com/Kosinkadink/ComfyUI-VideoHelperSuite)"
	case strings.HasSuffix(class, "+"):
		return "ComfyUI_essentials (github.com/cubiq/ComfyUI_essentials)"
	case strings.HasPrefix(class, "WanVideo"):
		return "ComfyUI-WanVideoWrapper (github.com/kijai/ComfyUI-WanVideoWrapper)"
	case strings.HasSuffix(class, "|pysssss"):
		return "ComfyUI-Custom-Scripts (github.com/pysssss/ComfyUI-Custom-Scripts)"
	}
	return ""
}

// coreNode reports whether a class the worker may use ships with ComfyUI.
func coreNode(class string) bool {
	switch class {
	case "UNETLoader", "CLIPLoader", "VAELoader", "LoraLoaderModelOnly", "LoadImage", "CLIPTextEncode",
		"WanImageToVideo", "WanFirstLastFrameToVideo", "KSamplerAdvanced", "VAEDecode", "CreateVideo", "SaveVideo", "ModelSamplingSD3",
		"TorchCompileModel", "ImageFromBatch", "SaveImage", "CLIPVisionLoader", "CLIPVisionEncode":
		return true
	}
	return false
}

// errNodeMissing is NODE_MISSING for a class the server does not have.
func errNodeMissing(class, nodeID string) *apperr.Error {
	pack := nodePack(class)
	var msg, hint string
	if pack != "" {
		msg = fmt.Sprintf("ComfyUI has no node %s: the custom node pack %s is not installed or failed to load", class, pack)
		hint = "install " + pack + " into ComfyUI's custom_nodes (the worker's image ships it) and check ComfyUI's " +
			"start-up log for import errors"
		if strings.HasPrefix(class, "VHS_") {
			hint += "; without it the worker can write the video with ComfyUI's own SaveVideo instead"
		}
	} else if coreNode(class) {
		msg = fmt.Sprintf("ComfyUI has no node %s, a core node of ComfyUI 0.3.64: the server is older or its extras failed to load", class)
		hint = "update ComfyUI to 0.3.64 and check its start-up log for import errors (comfy_extras)"
	} else {
		msg = fmt.Sprintf("ComfyUI has no node %s", class)
		hint = "install the custom node pack that provides " + class + " and check ComfyUI's start-up log for import errors"
	}
	return &apperr.Error{Code: apperr.NodeMissing, Message: msg, Hint: hint, NodeID: nodeID, NodeType: class}
}

// errModelMissing is MODEL_MISSING for a file a loader cannot find. have is
// what the folder holds (nil when unknown).
func errModelMissing(folder, name string, have []string, nodeID, class string) *apperr.Error {
	var b strings.Builder
	fmt.Fprintf(&b, "model file %q is not in ComfyUI's %s folder", name, folder)
	switch {
	case have == nil:
	case len(have) == 0:
		fmt.Fprintf(&b, "; that folder is empty")
	default:
		near := closest(name, have)
		shown := near
		if len(shown) > 8 {
			shown = shown[:8]
		}
		fmt.Fprintf(&b, "; it has %d file(s), closest first: %s", len(have), strings.Join(shown, ", "))
		if len(near) > len(shown) {
			fmt.Fprintf(&b, ", … (%d more)", len(near)-len(shown))
		}
	}
	where := folder + " folder"
	if legacy := legacyFolder(folder); legacy != "models/"+folder {
		where = fmt.Sprintf("%s folder (or %s)", folder, legacy)
	}
	hint := fmt.Sprintf("put %s into the %s of a models directory (MODELS_DIRS), "+
		"or name a file the server has; `wan22-worker models pull` downloads the default files; "+
		"names must match exactly, including subfolders such as wan/x.safetensors",
		name, where)
	return &apperr.Error{Code: apperr.ModelMissing, Message: b.String(), Hint: hint, NodeID: nodeID, NodeType: class}
}

func legacyFolder(folder string) string {
	switch folder {
	case "diffusion_models":
		return "models/unet"
	case "text_encoders":
		return "models/clip"
	}
	return "models/" + folder
}

// errPrompt maps a rejected POST /prompt: the 400 body, or the node_errors
// of a 200. available looks up a model folder's files when the error body
// does not list them (lists longer than 20 are not included); it may be nil.
func errPrompt(status int, body []byte, available func(folder string) []string) error {
	var pe promptErrorBody
	if err := json.Unmarshal(body, &pe); err != nil {
		return apperr.Wrap(apperr.Internal, err, fmt.Sprintf("ComfyUI rejected the prompt with HTTP %d: %s", status, excerpt(body)), hintVersion)
	}
	var top topError
	if len(pe.Error) > 0 && json.Unmarshal(pe.Error, &top) != nil {
		var s string
		if json.Unmarshal(pe.Error, &s) == nil {
			top.Message = s
		}
	}
	switch top.Type {
	case "missing_node_type":
		// Newer ComfyUI: "Node 'X' not found. The custom node may not be
		// installed.", with the class and node in extra_info.
		class, id := top.ExtraInfo.ClassType, top.ExtraInfo.NodeID
		if class == "" {
			if _, rest, ok := strings.Cut(top.Message, "'"); ok {
				class, _, _ = strings.Cut(rest, "'")
			}
		}
		if id == "" {
			id = strings.TrimSuffix(strings.TrimPrefix(top.Details, "Node ID '#"), "'")
		}
		return errNodeMissing(class, id)
	case "invalid_prompt":
		// "Cannot execute because node X does not exist." / details "Node ID '#16'"
		const pre, post = "Cannot execute because node ", " does not exist."
		if strings.HasPrefix(top.Message, pre) && strings.HasSuffix(top.Message, post) {
			class := strings.TrimSuffix(strings.TrimPrefix(top.Message, pre), post)
			id := strings.TrimSuffix(strings.TrimPrefix(top.Details, "Node ID '#"), "'")
			return errNodeMissing(class, id)
		}
		return apperr.Errorf(apperr.Internal, "the worker built a graph ComfyUI cannot read; this is a bug in the worker",
			"ComfyUI rejected the graph: %s %s", top.Message, top.Details)
	case "prompt_no_outputs", "no_prompt":
		return apperr.Errorf(apperr.Internal, "this is a bug in the worker; report it with the worker's log",
			"ComfyUI rejected the graph: %s", top.Message)
	}
	var errs apperr.List
	ids := make([]string, 0, len(pe.NodeErrors))
	for id := range pe.NodeErrors {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return nodeLess(ids[i], ids[j]) })
	for _, id := range ids {
		ne := pe.NodeErrors[id]
		for _, ie := range ne.Errors {
			errs = append(errs, errInput(id, ne.ClassType, ie, available))
		}
	}
	if len(errs) == 0 {
		msg := top.Message
		if msg == "" {
			msg = excerpt(body)
		}
		return apperr.Errorf(apperr.Internal, hintVersion, "ComfyUI rejected the prompt (HTTP %d): %s %s", status, msg, top.Details)
	}
	// The most actionable error first: it decides the code.
	sort.SliceStable(errs, func(i, j int) bool { return codeRank(errs[i].Code) < codeRank(errs[j].Code) })
	if len(errs) == 1 {
		return errs[0]
	}
	return errs
}

func codeRank(c apperr.Code) int {
	switch c {
	case apperr.ModelMissing:
		return 0
	case apperr.NodeMissing:
		return 1
	case apperr.InvalidInput:
		return 2
	}
	return 3
}

// nodeLess orders node ids numerically when they are numbers.
func nodeLess(a, b string) bool {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}

// errInput maps one validation error of one node.
func errInput(nodeID, class string, ie inputError, available func(string) []string) *apperr.Error {
	input := ie.ExtraInfo.InputName
	var received string
	if len(ie.ExtraInfo.ReceivedValue) > 0 && json.Unmarshal(ie.ExtraInfo.ReceivedValue, &received) != nil {
		received = strings.Trim(string(ie.ExtraInfo.ReceivedValue), `"`)
	}
	where := fmt.Sprintf("node %s (%s)", nodeID, class)
	switch {
	case ie.Type == "value_not_in_list":
		if folder, ok := workflow.ModelFolder(class, input); ok {
			have := listFromConfig(ie.ExtraInfo.InputConfig)
			if have == nil && available != nil {
				have = available(folder)
			}
			return errModelMissing(folder, received, have, nodeID, class)
		}
		allowed := listFromConfig(ie.ExtraInfo.InputConfig)
		msg := fmt.Sprintf("%s: %s %q is not one of ComfyUI's values", where, input, received)
		if len(allowed) > 0 {
			msg += ": " + strings.Join(allowed, ", ")
		}
		return &apperr.Error{Code: apperr.InvalidInput, Field: optionField(input), Message: msg, NodeID: nodeID, NodeType: class,
			Hint: "use one of the values ComfyUI lists"}
	case class == "LoadImage" && (ie.Type == "custom_validation_failed" || input == "image"):
		return &apperr.Error{Code: apperr.ExecutionFailed, NodeID: nodeID, NodeType: class,
			Message: fmt.Sprintf("ComfyUI cannot find the uploaded input image: %s", ie.Details),
			Hint:    "the upload to ComfyUI's input folder did not stick; check free disk space and that nothing cleans that folder while jobs run"}
	case ie.Type == "value_smaller_than_min" || ie.Type == "value_bigger_than_max":
		return &apperr.Error{Code: apperr.InvalidInput, Field: optionField(input), NodeID: nodeID, NodeType: class,
			Message: fmt.Sprintf("%s: %s: %s", where, ie.Message, input),
			Hint:    "use a value inside ComfyUI's range for " + input}
	}
	return &apperr.Error{Code: apperr.Internal, NodeID: nodeID, NodeType: class,
		Message: fmt.Sprintf("ComfyUI rejected %s: %s: %s", where, ie.Message, ie.Details),
		Hint:    "the worker built a graph ComfyUI does not accept; this is a bug in the worker or a ComfyUI version mismatch (the worker targets 0.3.64)"}
}

// optionField names the job option behind a graph input, where there is one.
func optionField(input string) string {
	switch input {
	case "sampler_name":
		return "options.sampler"
	case "scheduler":
		return "options.scheduler"
	case "width", "height", "length", "steps", "cfg", "shift", "crf":
		return "options." + input
	case "frame_rate", "fps":
		return "options.frame_rate"
	case "noise_seed":
		return "options.seed"
	}
	return ""
}

// listFromConfig reads the list of a combo's input_config: [[values...], {...}]
// (nil when absent or null, as for lists longer than 20).
func listFromConfig(raw json.RawMessage) []string {
	var cfg []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &cfg) != nil || len(cfg) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(cfg[0], &list) != nil {
		return nil
	}
	if list == nil {
		list = []string{}
	}
	return list
}

// execError is the execution_error payload.
type execError struct {
	PromptID         string   `json:"prompt_id"`
	NodeID           string   `json:"node_id"`
	NodeType         string   `json:"node_type"`
	Executed         []string `json:"executed"`
	ExceptionMessage string   `json:"exception_message"`
	ExceptionType    string   `json:"exception_type"`
	Traceback        []string `json:"traceback"`
}

// interrupted is the execution_interrupted payload.
type interrupted struct {
	PromptID string   `json:"prompt_id"`
	NodeID   string   `json:"node_id"`
	NodeType string   `json:"node_type"`
	Executed []string `json:"executed"`
}

// errExecution maps execution_error: OUT_OF_MEMORY for a GPU OOM, else
// EXECUTION_FAILED naming the node and the exception.
func errExecution(e execError) *apperr.Error {
	msg := strings.TrimSpace(e.ExceptionMessage)
	first := msg
	if i := strings.IndexByte(first, '\n'); i >= 0 {
		first = strings.TrimSpace(first[:i])
	}
	lower := strings.ToLower(msg)
	if strings.Contains(e.ExceptionType, "OutOfMemoryError") || strings.Contains(msg, "Allocation on device") ||
		strings.Contains(lower, "out of memory") {
		return &apperr.Error{Code: apperr.OutOfMemory, NodeID: e.NodeID, NodeType: e.NodeType,
			Message: fmt.Sprintf("the GPU ran out of memory in node %s (%s)", e.NodeID, e.NodeType), Hint: hintOOM}
	}
	hint := "see ComfyUI's log for the traceback"
	switch {
	case e.ExceptionType == "ProcessLookupError" && strings.HasPrefix(e.NodeType, "VHS_"):
		hint = "VideoHelperSuite found no ffmpeg: install ffmpeg in the image or set VHS_FORCE_FFMPEG_PATH"
	case strings.Contains(e.ExceptionType, "UnidentifiedImageError"):
		hint = "ComfyUI could not read the uploaded input image; this is a bug in the worker's image preparation"
	case strings.Contains(lower, "cuda error") || strings.Contains(lower, "device-side assert"):
		hint = "a CUDA error can leave the GPU unusable for this ComfyUI process: retry once; if it repeats, replace the worker (on RunPod, terminate it) — the GPU or driver may be faulty"
	}
	typ := e.ExceptionType
	if typ == "" {
		typ = "error"
	}
	return &apperr.Error{Code: apperr.ExecutionFailed, NodeID: e.NodeID, NodeType: e.NodeType,
		Message: fmt.Sprintf("node %s (%s) failed: %s: %s", e.NodeID, e.NodeType, typ, first), Hint: hint}
}

// errInterrupted maps execution_interrupted that the worker did not ask for.
func errInterrupted(e interrupted) *apperr.Error {
	return &apperr.Error{Code: apperr.Cancelled, NodeID: e.NodeID, NodeType: e.NodeType,
		Message: fmt.Sprintf("ComfyUI interrupted the prompt at node %s (%s)", e.NodeID, e.NodeType),
		Hint:    "something else interrupted ComfyUI (its web UI, another client); run the job again"}
}

// errFromHistory maps a failed history entry by its last status message.
func errFromHistory(promptID string, st historyStatus) error {
	for i := len(st.Messages) - 1; i >= 0; i-- {
		var m []json.RawMessage
		if json.Unmarshal(st.Messages[i], &m) != nil || len(m) != 2 {
			continue
		}
		var event string
		json.Unmarshal(m[0], &event)
		switch event {
		case "execution_error":
			var e execError
			if json.Unmarshal(m[1], &e) == nil {
				return errExecution(e)
			}
		case "execution_interrupted":
			var e interrupted
			if json.Unmarshal(m[1], &e) == nil {
				return errInterrupted(e)
			}
		}
	}
	return apperr.Errorf(apperr.ExecutionFailed, "see ComfyUI's log", "ComfyUI reports prompt %s as %q without an error message", promptID, st.StatusStr)
}

// errPromptLost is the error for a prompt ComfyUI no longer knows.
func errPromptLost(promptID string) *apperr.Error {
	return apperr.Wrap(apperr.ComfyCrashed, ErrPromptLost,
		fmt.Sprintf("ComfyUI no longer knows prompt %s: it is neither queued, running, nor in the history", promptID),
		"ComfyUI probably restarted during the job (check its log for a crash or an out-of-memory kill); run the job again")
}

// errNoHistory is the error for a prompt that finished without a history entry.
func errNoHistory(promptID string) *apperr.Error {
	return apperr.Errorf(apperr.OutputMissing, hintVersion,
		"ComfyUI finished prompt %s but wrote no history entry for it", promptID)
}

// errNoVideo is the error for a history without a video file.
func errNoVideo(promptID string, files []OutputFile) *apperr.Error {
	var names []string
	for _, f := range files {
		names = append(names, f.Filename)
	}
	msg := fmt.Sprintf("prompt %s finished without a video output", promptID)
	if len(names) > 0 {
		msg += "; its outputs are " + strings.Join(names, ", ")
	}
	return apperr.New(apperr.OutputMissing, msg,
		"the video writer node produced no file: check ComfyUI's log (ffmpeg or PyAV errors) and free disk space in its output folder")
}

// errLostConnection is the error for a connection that did not come back.
func errLostConnection(base string, err error) *apperr.Error {
	return apperr.Wrap(apperr.ComfyUnavailable, err,
		fmt.Sprintf("lost the connection to ComfyUI at %s during the job and it did not come back", base),
		"ComfyUI stopped answering (a crash or an out-of-memory kill is likely; check its log); the worker restarts it")
}
