package prefetch

import (
	"errors"
	"syscall"
)

// isNXIO reports lseek's "no more data" (ENXIO).
func isNXIO(err error) bool { return errors.Is(err, syscall.ENXIO) }
