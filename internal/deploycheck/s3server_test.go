package deploycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeVersitygw stands in for the pinned S3 server: it listens on the
// --port address it is given until killed.
const fakeVersitygw = `#!/usr/bin/env python3
import socket, sys, time
addr = sys.argv[sys.argv.index("--port") + 1]
host, port = addr.rsplit(":", 1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, int(port)))
s.listen(8)
while True:
    c, _ = s.accept()
    c.close()
`

// TestS3TestServerStatePerRun: two runs of scripts/s3-test-server.sh on one
// machine, neither naming a state folder, get a folder each (and so a port
// and pid file each); each stops only its own.
func TestS3TestServerStatePerRun(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	script := filepath.Join(repoRoot(t), "scripts", "s3-test-server.sh")
	cache := t.TempDir()
	bin := filepath.Join(cache, "versitygw-v1.8.0", "versitygw")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte(fakeVersitygw), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + tmp, "WAN22_CACHE_DIR=" + cache}
	run := func(env []string, cmd string) map[string]string {
		t.Helper()
		c := exec.Command("bash", script, cmd)
		c.Env = env
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%s: %v (%s)", cmd, err, out)
		}
		vars := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
				vars[k] = v
			}
		}
		return vars
	}
	a := run(base, "start")
	b := run(base, "start")
	stateA, stateB := a["WAN22_S3_STATE_DIR"], b["WAN22_S3_STATE_DIR"]
	t.Cleanup(func() {
		for _, st := range []string{stateA, stateB} {
			if st != "" {
				c := exec.Command("bash", script, "stop")
				c.Env = append(base, "WAN22_S3_STATE_DIR="+st)
				_ = c.Run()
			}
		}
	})
	if stateA == "" || stateA == stateB || !strings.HasPrefix(stateA, tmp) {
		t.Fatalf("state folders %q and %q: want two different folders under TMPDIR", stateA, stateB)
	}
	if a["WAN22_TEST_S3_ENDPOINT"] == b["WAN22_TEST_S3_ENDPOINT"] {
		t.Fatalf("both runs serve %s", a["WAN22_TEST_S3_ENDPOINT"])
	}
	// env and stop find each run's server through its own folder.
	withA := append(append([]string{}, base...), "WAN22_S3_STATE_DIR="+stateA)
	if got := run(withA, "env"); got["WAN22_TEST_S3_ENDPOINT"] != a["WAN22_TEST_S3_ENDPOINT"] {
		t.Errorf("env of run A = %v", got)
	}
	run(withA, "stop")
	if _, err := os.Stat(stateA); !os.IsNotExist(err) {
		t.Errorf("stop left %s behind (%v)", stateA, err)
	}
	withB := append(append([]string{}, base...), "WAN22_S3_STATE_DIR="+stateB)
	if got := run(withB, "env"); got["WAN22_TEST_S3_ENDPOINT"] != b["WAN22_TEST_S3_ENDPOINT"] {
		t.Errorf("run B after A stopped: env = %v", got)
	}
}
