//go:build !unix

package supervisor

import (
	"os"
	"syscall"
)

// Outside Unix there are no process groups: only the process itself is
// stopped, and any stop is a kill. The worker's images run on Linux.

func sysProcAttr() *syscall.SysProcAttr { return nil }

const (
	sigTerm = syscall.Signal(15)
	sigKill = syscall.Signal(9)
)

func signalGroup(pid int, _ syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	_ = p.Kill()
	return nil
}
