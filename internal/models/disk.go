package models

import (
	"os"
	"path/filepath"
)

// Space is what a filesystem has room for.
type Space struct {
	Dir    string // the existing directory that was asked
	Free   int64  // bytes available to an unprivileged user
	Total  int64  // size of the filesystem
	Device uint64 // identifies the filesystem (0 when unknown)
}

// SpaceFunc reports free space like FreeSpace; tests pass a fake.
type SpaceFunc func(path string) (Space, error)

// existingParent returns path, or its nearest parent that exists.
func existingParent(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p, nil
		}
		p = parent
	}
}
