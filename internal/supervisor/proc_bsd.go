//go:build unix && !linux

package supervisor

import "syscall"

// sysProcAttr puts ComfyUI in its own process group, so that a stop reaches
// whatever it started. (No parent-death signal outside Linux.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
