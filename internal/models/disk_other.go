//go:build !unix

package models

import "errors"

// FreeSpace is not implemented on this system; the disk-space check is
// skipped.
func FreeSpace(path string) (Space, error) {
	return Space{}, errors.New("free space: not supported on this system")
}
