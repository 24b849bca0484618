//go:build unix

package models

import (
	"os"
	"syscall"
)

// FreeSpace reports the space available to an unprivileged user on the
// filesystem that holds path, or that would hold it: when path does not
// exist yet, its nearest existing parent is asked.
func FreeSpace(path string) (Space, error) {
	dir, err := existingParent(path)
	if err != nil {
		return Space{}, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Space{}, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	var dev uint64
	if fi, err := os.Stat(dir); err == nil {
		if s, ok := fi.Sys().(*syscall.Stat_t); ok {
			dev = uint64(s.Dev) // int32 on some systems
		}
	}
	return Space{Dir: dir, Free: int64(st.Bavail) * int64(st.Bsize), Total: int64(st.Blocks) * int64(st.Bsize), Device: dev}, nil
}
