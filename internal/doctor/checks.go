package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/docker"
	"github.com/wan22-worker/wan22-worker/internal/models"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/pylock"
	"github.com/wan22-worker/wan22-worker/internal/startup"
)

// The versions the worker is built and tested with (DESIGN.md §1a).
const (
	PinnedComfyUI = "0.3.64"
	MinCUDA       = "12.8"
)

// Disk-space thresholds for outputs and temporary files.
const (
	diskFail = 1 << 30  // below: fail
	diskWarn = 10 << 30 // below: warn
)

// Checks returns every check, in the order the report shows them.
func Checks() []Check {
	return []Check{
		{Name: "configuration", Run: checkConfig},
		{Name: "comfyui", Run: checkComfyUI},
		{Name: "python/torch", Run: checkPython},
		{Name: "python/packages", Run: checkPackages, Needs: []string{"python/torch"}},
		{Name: "gpu", Run: checkGPU},
		{Name: "models", Run: checkModels},
		{Name: "custom nodes", Run: checkNodes, Needs: []string{"comfyui"}},
		{Name: "ffmpeg", Run: checkFFmpeg},
		{Name: "disk", Run: checkDisk},
		{Name: "runpod", Run: checkRunPod},
		{Name: "s3", Run: checkS3},
		{Name: "local api", Run: checkAPI},
		{Name: "startup", Run: checkStartup},
	}
}

// --- configuration -----------------------------------------------------------

func checkConfig(_ context.Context, d *Deps) []Result {
	const name = "configuration"
	if d.ConfigErr != nil {
		return []Result{fail(name, errText(d.ConfigErr)+" (the other checks use the defaults)",
			"fix the named variables or flags; docs/configuration.md lists every setting and its values")}
	}
	set := 0
	for _, e := range d.Config.Redacted() {
		if e.Source != "default" {
			set++
		}
	}
	return []Result{pass(name, fmt.Sprintf("loaded: %d setting(s) from the environment or flags, the rest default (-v shows them)", set))}
}

// --- ComfyUI -----------------------------------------------------------------

// systemStats is the part of ComfyUI's GET /system_stats the checks read.
type systemStats struct {
	System struct {
		ComfyUIVersion string `json:"comfyui_version"`
		PythonVersion  string `json:"python_version"`
		PyTorchVersion string `json:"pytorch_version"`
	} `json:"system"`
	Devices []struct {
		Name      string `json:"name"`
		Type      string `json:"type"`
		VRAMTotal int64  `json:"vram_total"`
	} `json:"devices"`
}

func (d *Deps) getJSON(ctx context.Context, rawURL string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: not JSON: %w", rawURL, err)
	}
	return nil
}

func comfyBase(d *Deps) string { return strings.TrimRight(d.Config.ComfyURL, "/") }

var versionRE = regexp.MustCompile(`__version__\s*=\s*["']([^"']+)["']`)

func checkComfyUI(ctx context.Context, d *Deps) []Result {
	const name = "comfyui"
	if d.Config.ComfyURL != "" {
		var st systemStats
		if err := d.getJSON(ctx, comfyBase(d)+"/system_stats", &st); err != nil {
			return []Result{fail(name, fmt.Sprintf("COMFY_URL %s does not answer: %s", d.Config.ComfyURL, errText(err)),
				"start ComfyUI there, or fix COMFY_URL; unset COMFY_URL to let the worker start ComfyUI from COMFYUI_DIR")}
		}
		v := st.System.ComfyUIVersion
		var devs []string
		for _, dev := range st.Devices {
			devs = append(devs, dev.Name)
		}
		detail := fmt.Sprintf("COMFY_URL %s answers: ComfyUI %s, torch %s", d.Config.ComfyURL, orUnknown(v), orUnknown(st.System.PyTorchVersion))
		if len(devs) > 0 {
			detail += ", devices: " + strings.Join(devs, "; ")
		}
		if v != PinnedComfyUI {
			return []Result{warn(name, detail, fmt.Sprintf("the worker is tested with ComfyUI %s; other versions may name nodes or inputs differently", PinnedComfyUI))}
		}
		return []Result{pass(name, detail)}
	}
	dir := d.Config.ComfyDir
	if _, err := os.Stat(d.path(filepath.Join(dir, "main.py"))); err != nil {
		return []Result{fail(name, fmt.Sprintf("COMFYUI_DIR %s has no main.py", dir),
			fmt.Sprintf("install ComfyUI v%s there (the Docker image has it at /comfyui), point COMFYUI_DIR at your checkout, or set COMFY_URL to attach to a running server", PinnedComfyUI))}
	}
	b, err := os.ReadFile(d.path(filepath.Join(dir, "comfyui_version.py")))
	m := versionRE.FindSubmatch(b)
	if err != nil || m == nil {
		return []Result{warn(name, fmt.Sprintf("COMFYUI_DIR %s: main.py found, version unknown (no readable comfyui_version.py)", dir),
			fmt.Sprintf("the worker is tested with ComfyUI v%s: git -C %s checkout v%s", PinnedComfyUI, dir, PinnedComfyUI))}
	}
	v := string(m[1])
	detail := fmt.Sprintf("COMFYUI_DIR %s: ComfyUI %s", dir, v)
	if v != PinnedComfyUI {
		return []Result{warn(name, detail+", pinned "+PinnedComfyUI,
			fmt.Sprintf("the worker is tested with v%s: git -C %s checkout v%s (other versions may name nodes or inputs differently)", PinnedComfyUI, dir, PinnedComfyUI))}
	}
	return []Result{pass(name, detail)}
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// --- Python and torch ----------------------------------------------------------

const torchProbe = `import json, torch; print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}))`

type torchInfo struct {
	Torch         string  `json:"torch"`
	CUDA          *string `json:"cuda"`
	CUDAAvailable bool    `json:"cuda_available"`
}

// pythonProbe is one probe run with ComfyUI's Python (COMFY_PYTHON -c probe).
type pythonProbe struct {
	py             string
	stdout, stderr []byte
	err            error
	ctxErr         error // why the probe's context ended, if it did
	// skipped is the check's result when there is no Python of the worker's
	// to run: attached to COMFY_URL, ComfyUI runs in its own environment.
	skipped []Result
}

// runPython runs probe for the check name with ComfyUI's Python, allowing
// at least a minute (importing torch from a cold network volume is slow).
func runPython(ctx context.Context, d *Deps, name, probe string) pythonProbe {
	if d.Config.ComfyURL != "" {
		return pythonProbe{skipped: []Result{pass(name, "not checked here: attached to COMFY_URL, whose own Python runs ComfyUI")}}
	}
	py := d.Config.ComfyPython
	ctx, cancel := context.WithTimeout(ctx, max(d.Timeout, 60*time.Second))
	defer cancel()
	stdout, stderr, err := d.Run(ctx, py, "-c", probe)
	return pythonProbe{py: py, stdout: stdout, stderr: stderr, err: err, ctxErr: ctx.Err()}
}

func checkPython(ctx context.Context, d *Deps) []Result {
	const name = "python/torch"
	r := runPython(ctx, d, name, torchProbe)
	if r.skipped != nil {
		return r.skipped
	}
	py, stdout, stderr, err := r.py, r.stdout, r.stderr, r.err
	if err != nil {
		switch {
		case notFound(err):
			return []Result{fail(name, fmt.Sprintf("COMFY_PYTHON=%s not found", py),
				"install Python 3.12 or point COMFY_PYTHON at the interpreter of ComfyUI's environment (the Docker image uses /opt/venv/bin/python)")}
		case r.ctxErr != nil:
			return []Result{fail(name, fmt.Sprintf("%s -c 'import torch' did not finish: %v", py, r.ctxErr),
				"the environment is very slow to import torch (cold network volume?) or hangs; run the command by hand")}
		}
		return []Result{fail(name, fmt.Sprintf("%s cannot import torch: %s", py, lastLine(stderr, err)), installHint(py))}
	}
	var info torchInfo
	if err := json.Unmarshal(bytes.TrimSpace(lastLineBytes(stdout)), &info); err != nil {
		return []Result{fail(name, fmt.Sprintf("%s printed no torch report: %q", py, oneLine(string(stdout))), "run the probe by hand: "+py+" -c '"+torchProbe+"'")}
	}
	cuda := "none (CPU build)"
	if info.CUDA != nil {
		cuda = *info.CUDA
	}
	detail := fmt.Sprintf("%s: torch %s, CUDA %s, GPU available: %v", py, info.Torch, cuda, info.CUDAAvailable)
	switch {
	case !info.CUDAAvailable:
		hint := "torch sees no GPU: a CPU-only torch build, no NVIDIA driver, or a driver too old for CUDA " + MinCUDA + " (see the gpu check)"
		if d.Config.OnRunPod() {
			return []Result{fail(name, detail, hint)}
		}
		return []Result{warn(name, detail, hint+"; fine for CPU-only development")}
	case strings.SplitN(info.Torch, "+", 2)[0] != lockedVersion("torch"):
		return []Result{warn(name, detail, "the worker is tested with torch "+lockedVersion("torch")+" (the CUDA "+MinCUDA+" build of the image's lock); other versions may lack kernels for your GPU (\"no kernel image\"); "+installHint(py))}
	}
	return []Result{pass(name, detail)}
}

// lockPins is the image's Python lock (docker/requirements.lock, built into the binary).
func lockPins() []pylock.Pin {
	pins, _ := pylock.Parse(docker.RequirementsLock()) // checked line by line by internal/deploycheck's tests
	return pins
}

// lockedVersion is the lock's version of a package.
func lockedVersion(name string) string { return pylock.Version(lockPins(), name) }

// installHint is the one way to install ComfyUI's Python environment: from the image's lock.
func installHint(py string) string {
	return fmt.Sprintf("install ComfyUI's environment from the image's lock (torch %s, the CUDA %s build, from PyPI, and every other package at its locked version): uv pip sync --python %s --require-hashes docker/requirements.lock (docs/e2e.md)",
		lockedVersion("torch"), MinCUDA, py)
}

// packagesProbe prints every installed distribution's name and version as one JSON object.
const packagesProbe = `import json, importlib.metadata as m; print(json.dumps({d.metadata["Name"]: d.version for d in m.distributions() if d.metadata["Name"]}))`

// checkPackages compares the packages of ComfyUI's Python environment with the image's lock.
func checkPackages(ctx context.Context, d *Deps) []Result {
	const name = "python/packages"
	r := runPython(ctx, d, name, packagesProbe)
	if r.skipped != nil {
		return r.skipped
	}
	py, stdout, stderr, err := r.py, r.stdout, r.stderr, r.err
	if err != nil {
		return []Result{warn(name, fmt.Sprintf("%s could not list its packages: %s", py, lastLine(stderr, err)), "run the probe by hand: "+py+" -c '"+packagesProbe+"'")}
	}
	var installed map[string]string
	if err := json.Unmarshal(bytes.TrimSpace(lastLineBytes(stdout)), &installed); err != nil {
		return []Result{warn(name, fmt.Sprintf("%s printed no package list: %q", py, oneLine(string(stdout))), "run the probe by hand: "+py+" -c '"+packagesProbe+"'")}
	}
	pins := lockPins()
	diffs := pylock.Compare(pins, installed)
	if len(diffs) == 0 {
		return []Result{pass(name, fmt.Sprintf("%s: all %d packages as in the image's lock", py, len(pins)))}
	}
	const shown = 6
	var list []string
	for i, df := range diffs {
		if i == shown {
			list = append(list, fmt.Sprintf("and %d more", len(diffs)-shown))
			break
		}
		list = append(list, df.String())
	}
	return []Result{warn(name, fmt.Sprintf("%s: %d package(s) differ from the image's lock: %s", py, len(diffs), strings.Join(list, ", ")),
		"the tested environment is the lock's; "+installHint(py))}
}

// lastLine is the last non-empty line of a program's stderr, or the error.
func lastLine(stderr []byte, err error) string {
	if l := strings.TrimSpace(string(lastLineBytes(stderr))); l != "" {
		return l
	}
	return errText(err)
}

func lastLineBytes(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

// --- GPU -------------------------------------------------------------------------

var cudaVersionRE = regexp.MustCompile(`CUDA Version:\s*([0-9]+(?:\.[0-9]+)?)`)

func checkGPU(ctx context.Context, d *Deps) []Result {
	const name = "gpu"
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	noGPU := func(detail string) []Result {
		if d.Config.OnRunPod() {
			return []Result{fail(name, detail, "the worker needs an NVIDIA GPU with a driver for CUDA "+MinCUDA+"+: choose a GPU type with CUDA "+MinCUDA+" in the endpoint's settings")}
		}
		return []Result{warn(name, detail, "no NVIDIA GPU visible: fine for development with a fake or CPU ComfyUI; generation needs a GPU")}
	}
	stdout, stderr, err := d.Run(ctx, "nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader")
	if err != nil {
		if notFound(err) {
			return noGPU("nvidia-smi not found")
		}
		return noGPU("nvidia-smi failed: " + lastLine(stderr, err))
	}
	var gpus []string
	for _, line := range strings.Split(strings.TrimSpace(string(stdout)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		gpus = append(gpus, fmt.Sprintf("%s, %s, driver %s", strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])))
	}
	if len(gpus) == 0 {
		return noGPU("nvidia-smi lists no GPU")
	}
	detail := strings.Join(gpus, "; ")
	// The CUDA version the driver supports is only in the plain report.
	out, _, err := d.Run(ctx, "nvidia-smi")
	m := cudaVersionRE.FindSubmatch(out)
	if err != nil || m == nil {
		return []Result{warn(name, detail+"; CUDA version unknown", "run nvidia-smi by hand: the driver must support CUDA "+MinCUDA+" or newer")}
	}
	cuda := string(m[1])
	detail += ", CUDA " + cuda
	if versionLess(cuda, MinCUDA) {
		return []Result{fail(name, detail, "the driver supports CUDA "+cuda+", the image needs "+MinCUDA+" (torch cu128): expect \"no kernel image\" or \"driver too old\"; pick a GPU/host with a newer driver (RunPod: filter by CUDA "+MinCUDA+")")}
	}
	return []Result{pass(name, detail)}
}

// versionLess compares dotted numeric versions: "12.4" < "12.8" < "13.0".
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// --- models ----------------------------------------------------------------------

func checkModels(_ context.Context, d *Deps) []Result {
	dirs := make([]string, len(d.Config.ModelsDirs))
	for i, dir := range d.Config.ModelsDirs {
		dirs[i] = d.path(dir)
	}
	paths := models.ResolvePaths(d.Config, d.Config.ModelsDirs, "", d.path)
	var out []Result
	if len(paths.Roots) == 0 {
		out = append(out, fail("model folders", "none of MODELS_DIRS exists: "+strings.Join(dirs, ", "),
			"mount the network volume, or create a folder and run `wan22-worker models pull --dir <folder>`"))
	} else {
		out = append(out, pass("model folders", strings.Join(paths.Summary(), "; ")))
	}
	attached := d.Config.ComfyURL != ""
	for _, st := range models.Inspect(paths, d.Manifest.Items(models.Wanted(d.Config)), nil) {
		name := "model " + st.Folder + "/" + st.Name
		switch {
		case st.State == models.StatePresent && !st.Known():
			out = append(out, warn(name, fmt.Sprintf("present at %s (%s); %s", st.Path, progress.Bytes(st.Size), models.UnknownNote),
				"fine if you put it there on purpose; `models verify` cannot check it"))
		case st.State == models.StatePresent && st.VolumeWhileCached():
			out = append(out, warn(name, fmt.Sprintf("%s (%s, %s), although the Hugging Face cache has it too: %s (%s)", st.Path, st.Source, progress.Bytes(st.Size), st.AlsoCached, st.AlsoCachedRepo),
				models.CachedHint))
		case st.State == models.StatePresent:
			out = append(out, pass(name, fmt.Sprintf("%s (%s, %s)", st.Path, st.Source, progress.Bytes(st.Size))))
		case st.State == models.StateSizeMismatch:
			out = append(out, fail(name, fmt.Sprintf("%s is %d bytes, the manifest says %d (an interrupted copy?)", st.Path, st.Size, st.File.Size),
				"delete it and run `wan22-worker models pull`, or check it with `wan22-worker models verify`"))
		default:
			detail := "not found; looked in " + strings.Join(st.LookedIn, ", ")
			if st.Partial != "" {
				detail += fmt.Sprintf("; a partial download (%s) is at %s", progress.Bytes(st.PartialSize), st.Partial)
			}
			hint := "run `wan22-worker models pull` (it resumes partial downloads)"
			if !st.Known() {
				detail += "; " + models.UnknownNote
				hint = fmt.Sprintf("copy it into a %s folder yourself, or change %s to a file of the manifest (docs/models.md)", st.Folder, strings.Join(st.Settings, "/"))
			}
			if attached {
				out = append(out, warn(name, detail+" (the attached ComfyUI may have it elsewhere)", hint))
			} else {
				out = append(out, fail(name, detail, hint))
			}
		}
	}
	return out
}

// --- custom nodes ------------------------------------------------------------------

func checkNodes(ctx context.Context, d *Deps) []Result {
	const vhs, compile = "VideoHelperSuite", "TorchCompileModel"
	vhsHint := "install ComfyUI-VideoHelperSuite into custom_nodes (the Docker image has it); without it the worker writes the video with core CreateVideo + SaveVideo (fixed CRF 23)"
	if d.Config.ComfyURL != "" {
		var out []Result
		has := func(class string) (bool, error) {
			var info map[string]json.RawMessage
			if err := d.getJSON(ctx, comfyBase(d)+"/object_info/"+url.PathEscape(class), &info); err != nil {
				return false, err
			}
			_, ok := info[class]
			return ok, nil
		}
		ok, err := has("VHS_VideoCombine")
		switch {
		case err != nil:
			return []Result{warn("custom nodes", "COMFY_URL does not answer /object_info: "+errText(err), "see the comfyui check")}
		case ok:
			out = append(out, pass(vhs, "VHS_VideoCombine is available at COMFY_URL"))
		default:
			out = append(out, warn(vhs, "COMFY_URL has no VHS_VideoCombine node", vhsHint))
		}
		if d.Config.TorchCompile {
			ok, err := has(compile)
			switch {
			case err != nil:
				out = append(out, warn(compile, "not checked: "+errText(err), ""))
			case ok:
				out = append(out, pass(compile, "available at COMFY_URL (TORCH_COMPILE=1)"))
			default:
				out = append(out, fail(compile, "TORCH_COMPILE=1 but COMFY_URL has no TorchCompileModel node",
					"set TORCH_COMPILE=0, or update ComfyUI to v"+PinnedComfyUI))
			}
		}
		return out
	}

	var out []Result
	nodesDir := filepath.Join(d.Config.ComfyDir, "custom_nodes")
	entries, err := os.ReadDir(d.path(nodesDir))
	found := ""
	for _, e := range entries {
		if e.IsDir() && strings.Contains(strings.ToLower(e.Name()), "videohelpersuite") {
			found = e.Name()
			break
		}
	}
	switch {
	case found != "":
		out = append(out, pass(vhs, filepath.Join(nodesDir, found)))
	case err != nil && !os.IsNotExist(err):
		out = append(out, warn(vhs, "cannot read "+nodesDir+": "+errText(err), vhsHint))
	default:
		out = append(out, warn(vhs, "not in "+nodesDir, vhsHint))
	}
	if d.Config.TorchCompile {
		f := filepath.Join(d.Config.ComfyDir, "comfy_extras", "nodes_torch_compile.py")
		if _, err := os.Stat(d.path(f)); err != nil {
			out = append(out, warn(compile, "TORCH_COMPILE=1 but "+f+" is missing",
				"set TORCH_COMPILE=0, or use ComfyUI v"+PinnedComfyUI+" (TorchCompileModel is a core node there)"))
		} else {
			out = append(out, pass(compile, f+" (TORCH_COMPILE=1)"))
		}
	}
	return out
}

// --- start-up timeline ------------------------------------------------------------

// checkStartup summarises the timeline of the worker last started on this machine (doctor -o json has it
// whole, under "startup").
func checkStartup(_ context.Context, d *Deps) []Result {
	const name = "startup"
	file := d.path(d.StartupFile)
	r, err := startup.Read(file)
	if err != nil {
		return []Result{pass(name, "no worker start recorded on this machine ("+file+" is written by `serve` as it starts)")}
	}
	secs := func(step string) string {
		if s, ok := r.Find(step); ok {
			return fmt.Sprintf("%.1f s", float64(s.AtMS)/1000)
		}
		return "-"
	}
	var loaded int
	var bytes, ms int64
	for _, s := range r.Steps {
		if s.Name == startup.ModelLoaded {
			loaded++
			bytes += s.Bytes
			ms += s.TookMS
		}
	}
	detail := fmt.Sprintf("worker started %s: ComfyUI answering at %s, warm-up done at %s (%d model file(s), %s in %.1f s), first job at %s",
		r.ProcessStart.Format(time.RFC3339), secs(startup.ComfyReady), secs(startup.WarmupDone), loaded, progress.Bytes(bytes), float64(ms)/1000, secs(startup.FirstJobTaken))
	return []Result{pass(name, detail)}
}

// --- ffmpeg --------------------------------------------------------------------------

func checkFFmpeg(ctx context.Context, d *Deps) []Result {
	const name = "ffmpeg"
	p, err := d.LookPath("ffmpeg")
	if err != nil {
		return []Result{warn(name, "ffmpeg not on PATH",
			"VideoHelperSuite needs ffmpeg with libx264 to write MP4 (apt-get install ffmpeg); imageio-ffmpeg's bundled binary also works")}
	}
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	out, stderr, err := d.Run(ctx, p, "-hide_banner", "-encoders")
	if err != nil {
		return []Result{warn(name, p+" -encoders failed: "+lastLine(stderr, err), "reinstall ffmpeg")}
	}
	if !bytes.Contains(out, []byte("libx264")) {
		return []Result{warn(name, p+" has no libx264 encoder", "install an ffmpeg build with libx264 (Debian/Ubuntu's has it)")}
	}
	return []Result{pass(name, p+" (libx264)")}
}

// --- disk ------------------------------------------------------------------------------

func checkDisk(_ context.Context, d *Deps) []Result {
	check := func(name, what, dir string) Result {
		sp, err := d.FreeSpace(d.path(dir))
		if err != nil {
			return warn(name, fmt.Sprintf("%s %s: free space unknown: %s", what, dir, errText(err)), "check that the folder's disk (the network volume) is mounted")
		}
		detail := fmt.Sprintf("%s %s: %s free", what, dir, progress.Bytes(sp.Free))
		if sp.Dir != d.path(dir) {
			detail += fmt.Sprintf(" (on the disk of %s; the folder does not exist yet)", sp.Dir)
		}
		switch {
		case sp.Free < diskFail:
			return fail(name, detail, "free space there: a video and its frames need a few hundred MB, more for long clips")
		case sp.Free < diskWarn:
			return warn(name, detail, "less than 10 GB free: long runs will fill it; clean old outputs")
		}
		return pass(name, detail)
	}
	return []Result{
		check("disk: outputs", "OUTPUT_DIR", d.Config.OutputDir),
		check("disk: temp", "temporary folder", d.TempDir),
	}
}

// --- RunPod --------------------------------------------------------------------------

func checkRunPod(_ context.Context, d *Deps) []Result {
	const name = "runpod"
	c := d.Config
	if !c.OnRunPod() {
		return []Result{pass(name, "not on RunPod (RUNPOD_WEBHOOK_GET_JOB unset): serve runs the local API or a test input")}
	}
	var missing []string
	for _, v := range []struct{ name, val string }{
		{"RUNPOD_WEBHOOK_POST_OUTPUT", c.RunPodPostOutputURL},
		{"RUNPOD_WEBHOOK_POST_STREAM", c.RunPodPostStreamURL},
		{"RUNPOD_WEBHOOK_PING", c.RunPodPingURL},
		{"RUNPOD_AI_API_KEY", c.RunPodAPIKey},
		{"RUNPOD_POD_ID", c.RunPodPodID},
	} {
		if v.val == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		return []Result{fail(name, "RUNPOD_WEBHOOK_GET_JOB is set but "+strings.Join(missing, ", ")+" not",
			"RunPod sets all of these on a serverless worker; when running the image yourself, unset RUNPOD_WEBHOOK_GET_JOB (use `serve --api`) or set them all")}
	}
	return []Result{pass(name, fmt.Sprintf("on RunPod: worker %s, webhooks and API key set", c.RunPodPodID))}
}

// --- S3 ------------------------------------------------------------------------------

func checkS3(_ context.Context, d *Deps) []Result {
	const name = "s3"
	c := d.Config
	if c.BucketEndpoint == "" {
		if c.BucketAccessKey != "" || c.BucketSecretKey != "" || c.BucketName != "" {
			return []Result{warn(name, "BUCKET_* keys are set but BUCKET_ENDPOINT_URL is empty, so S3 delivery is off",
				"set BUCKET_ENDPOINT_URL (e.g. https://s3.us-east-1.amazonaws.com) or remove the keys")}
		}
		return []Result{pass(name, "not configured: videos are returned inline or written to the volume")}
	}
	u, err := url.Parse(c.BucketEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []Result{fail(name, fmt.Sprintf("BUCKET_ENDPOINT_URL %q is not an http(s) URL", c.BucketEndpoint),
			"use the endpoint's full URL, e.g. https://<account>.r2.cloudflarestorage.com")}
	}
	var missing []string
	if c.BucketAccessKey == "" {
		missing = append(missing, "BUCKET_ACCESS_KEY_ID")
	}
	if c.BucketSecretKey == "" {
		missing = append(missing, "BUCKET_SECRET_ACCESS_KEY")
	}
	if len(missing) > 0 {
		return []Result{fail(name, "BUCKET_ENDPOINT_URL is set but "+strings.Join(missing, " and ")+" not",
			"set both keys (uploads would be refused), or unset BUCKET_ENDPOINT_URL")}
	}
	bucket := c.BucketName
	if bucket == "" {
		bucket = "from the endpoint's host name"
	}
	return []Result{pass(name, fmt.Sprintf("endpoint %s, bucket %s, keys set", u.Host, bucket))}
}

// --- local API -------------------------------------------------------------------------

func checkAPI(_ context.Context, d *Deps) []Result {
	const name = "local api"
	c := d.Config
	host, _, err := net.SplitHostPort(c.APIAddr)
	if err != nil {
		return []Result{fail(name, fmt.Sprintf("API_ADDR %q: %s", c.APIAddr, errText(err)), "use host:port, e.g. 127.0.0.1:8000")}
	}
	if isLoopback(host) {
		return []Result{pass(name, "serve --api listens on "+c.APIAddr+" (this machine only)")}
	}
	switch {
	case c.APIToken != "":
		return []Result{pass(name, "serve --api listens on "+c.APIAddr+"; requests need API_TOKEN")}
	case c.APIAllowInsecure:
		return []Result{warn(name, "serve --api listens on "+c.APIAddr+" without API_TOKEN (API_ALLOW_INSECURE=1)",
			"anyone who reaches the address can run jobs on your GPU; set API_TOKEN")}
	}
	return []Result{fail(name, "API_ADDR "+c.APIAddr+" is reachable from other machines and API_TOKEN is empty",
		"set API_TOKEN, or listen on 127.0.0.1, or set API_ALLOW_INSECURE=1 if a trusted network guards it")}
}

// isLoopback reports whether a listen host only accepts local connections.
// The empty host and unspecified addresses listen everywhere.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
