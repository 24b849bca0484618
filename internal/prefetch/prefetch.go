// Package prefetch reads model files into the operating system's page cache ahead of ComfyUI, so that the
// warm-up's loaders read memory instead of the (network) disk. Files are read sequentially, several at
// once, in large blocks; the holes of a sparse file are skipped (SEEK_DATA/SEEK_HOLE), so a sparse test
// fixture costs nothing. The data is discarded: only the page cache keeps it.
package prefetch

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// blockSize is the size of each read.
const blockSize = 8 << 20

// Linux's lseek whence values for sparse files.
const (
	seekData = 3
	seekHole = 4
)

// Stats is what a Warm read.
type Stats struct {
	Files int           `json:"files"`
	Bytes int64         `json:"bytes"`
	Took  time.Duration `json:"took"`
	Err   error         `json:"-"` // the first error; the other files are still read
}

// Budget keeps the files, in order, whose sizes fit in maxBytes together (0: no limit), skipping the rest:
// reading more than the page cache can hold would evict the first files before ComfyUI reads them.
func Budget(files []string, maxBytes int64) []string {
	if maxBytes <= 0 {
		return files
	}
	var out []string
	var sum int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || sum+fi.Size() > maxBytes {
			continue
		}
		sum += fi.Size()
		out = append(out, f)
	}
	return out
}

// MemAvailable is the kernel's estimate of the memory available without swapping (/proc/meminfo), or 0
// when unknown.
func MemAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// Warm reads every file once, parallel files at a time (at least 1), and returns when all are read or ctx
// ends.
func Warm(ctx context.Context, files []string, parallel int) Stats {
	t0 := time.Now()
	parallel = max(parallel, 1)
	var (
		mu    sync.Mutex
		st    Stats
		wg    sync.WaitGroup
		slots = make(chan struct{}, parallel)
	)
	for _, f := range files {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			n, err := readFile(ctx, f)
			mu.Lock()
			defer mu.Unlock()
			st.Bytes += n
			if err == nil {
				st.Files++
			} else if st.Err == nil {
				st.Err = err
			}
		}()
	}
	wg.Wait()
	if st.Err == nil && ctx.Err() != nil {
		st.Err = ctx.Err()
	}
	st.Took = time.Since(t0)
	return st
}

// readFile reads the data regions of one file and returns the bytes read.
func readFile(ctx context.Context, name string) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	buf := make([]byte, blockSize)
	var total int64
	for off := int64(0); off < size; {
		start, err := f.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, io.EOF) || isNXIO(err) { // no data after off
				return total, nil
			}
			start = off // no SEEK_DATA on this filesystem: read everything
		}
		end, err := f.Seek(start, seekHole)
		if err != nil {
			end = size
		}
		for pos := start; pos < end; {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			n, err := f.ReadAt(buf[:min(int64(len(buf)), end-pos)], pos)
			total += int64(n)
			pos += int64(n)
			if err != nil {
				if errors.Is(err, io.EOF) {
					return total, nil
				}
				return total, err
			}
		}
		off = end
	}
	return total, nil
}
