//go:build unix

package supervisor

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary plays ComfyUI: the supervisor runs
//
//	<test binary> -test.run=^TestHelperProcess$ -- <ComfyUI flags>
//
// with WAN22_HELPER=<mode> in the environment, and TestHelperProcess acts
// out the mode. This is the only test that does anything in that process.

const (
	helperEnv      = "WAN22_HELPER"
	helperDelayEnv = "WAN22_HELPER_DELAY" // a duration, for slow, bind-late
	helperStateEnv = "WAN22_HELPER_STATE" // a directory shared between incarnations
	helperFloodEnv = "WAN22_HELPER_FLOOD" // bytes of output, for flood
)

// The helper's modes.
const (
	modeNormal       = "normal"        // serve /system_stats; /crash exits 3 with a traceback (a crash mid-job)
	modeSlow         = "slow"          // answer 503 for the delay, then 200
	modeBindLate     = "bind-late"     // listen only after the delay
	modeCrashEarly   = "crash-early"   // print a Python traceback and exit 1 before listening
	modeCrashLoop    = "crash-loop"    // exit 2 with a traceback right after answering the first probe
	modeIgnoreTerm   = "ignore-term"   // ignore SIGTERM
	modeFlood        = "flood"         // write megabytes of output, then serve
	modeGrandchild   = "grandchild"    // start a child that ignores SIGTERM, then serve
	modeSleeper      = "sleeper"       // (the grandchild) ignore SIGTERM and sleep
	modePortTaken    = "port-taken"    // first start: fail as ComfyUI does when the port is taken
	modeExitOnSignal = "exit-on-term1" // on SIGTERM, print a line and exit 1
)

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return // an ordinary test run
	}
	os.Exit(helperMain(mode, helperArgs()))
}

func helperArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func helperDelay() time.Duration {
	d, _ := time.ParseDuration(os.Getenv(helperDelayEnv))
	return d
}

const pythonTraceback = `Traceback (most recent call last):
  File "/comfyui/main.py", line 173, in <module>
    import execution
  File "/comfyui/execution.py", line 13, in <module>
    import nodes
ModuleNotFoundError: No module named 'torch'`

func helperMain(mode string, args []string) int {
	port := flagValue(args, "--port")
	fmt.Println("Checkpoint files will always be loaded safely.")
	fmt.Println("helper mode", mode, "args", strings.Join(args, " "))

	switch mode {
	case modeSleeper:
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Hour)
		return 0
	case modeCrashEarly:
		fmt.Println("Total VRAM 81559 MB, total RAM 1031800 MB")
		fmt.Fprintln(os.Stderr, pythonTraceback)
		return 1
	case modePortTaken:
		marker := filepath.Join(os.Getenv(helperStateEnv), "port-taken")
		if _, err := os.Stat(marker); err != nil {
			_ = os.WriteFile(marker, []byte(port), 0o644)
			fmt.Fprintf(os.Stderr, "Traceback (most recent call last):\n  File \"/comfyui/main.py\", line 344, in <module>\n    event_loop.run_until_complete(x)\n"+
				"OSError: [Errno 98] error while attempting to bind on address ('127.0.0.1', %s): address already in use\n", port)
			return 1
		}
	case modeIgnoreTerm:
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
	case modeFlood:
		flood(os.Stdout)
	case modeGrandchild:
		c := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "--")
		c.Env = append(os.Environ(), helperEnv+"="+modeSleeper)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			fmt.Println("cannot start grandchild:", err)
			return 1
		}
		fmt.Println("grandchild pid", c.Process.Pid)
	case modeBindLate:
		time.Sleep(helperDelay())
	}

	term := make(chan os.Signal, 1)
	if mode != modeIgnoreTerm {
		signal.Notify(term, syscall.SIGTERM)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "OSError:", err)
		return 1
	}
	readyAt := time.Now().Add(helperDelay())
	exit := make(chan int, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /system_stats", func(w http.ResponseWriter, r *http.Request) {
		if mode == modeSlow && time.Now().Before(readyAt) {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"system":{"comfyui_version":"0.3.64"},"devices":[]}`)
		if mode == modeCrashLoop {
			go func() {
				time.Sleep(20 * time.Millisecond)
				fmt.Fprintln(os.Stderr, strings.Replace(pythonTraceback, "ModuleNotFoundError: No module named 'torch'",
					"torch.AcceleratorError: CUDA error: an illegal memory access was encountered", 1))
				exit <- 2
			}()
		}
	})
	mux.HandleFunc("POST /crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "!!! Exception during processing !!! CUDA error")
		fmt.Fprintln(os.Stderr, pythonTraceback)
		exit <- 3
	})
	go func() { _ = http.Serve(l, mux) }()
	fmt.Println("To see the GUI go to: http://127.0.0.1:" + port)

	select {
	case code := <-exit:
		return code
	case <-term:
		fmt.Println("helper: got SIGTERM, stopping")
		if mode == modeExitOnSignal {
			return 1
		}
		return 0
	}
}

// flood writes the flood size in mixed shapes: ordinary lines, a progress
// bar redrawn with carriage returns, one very long line, and a last line
// without a newline.
func flood(w *os.File) {
	total, _ := strconv.Atoi(os.Getenv(helperFloodEnv))
	var b bytes.Buffer
	for i := 0; b.Len() < total/2; i++ {
		fmt.Fprintf(&b, "flood line %07d %s\n", i, strings.Repeat("x", 80))
	}
	for i := 0; i <= 100; i++ {
		fmt.Fprintf(&b, "\r%3d%%|%s| %d/100", i, strings.Repeat("█", i/10), i)
	}
	b.WriteString("\n")
	b.WriteString(strings.Repeat("L", total/2))
	b.WriteString("\nflood done")
	_, _ = w.Write(b.Bytes())
	_, _ = w.Write([]byte("\n"))
}
