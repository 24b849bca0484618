//go:build linux

package supervisor

import "syscall"

// sysProcAttr puts ComfyUI in its own process group, so that a stop reaches
// whatever it started, and asks the kernel to SIGKILL it if the worker dies
// first (a backstop: Stop is the normal path).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
