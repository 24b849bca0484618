package deliver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// toVolume moves the spool file (already in <OUTPUT_DIR>/<job id>/) to its
// final name: fsync, rename, fsync of the folder. Readers of the folder see
// either no file or the whole file. The last frame is written the same way,
// before the video, so that a present video implies a present frame.
func (d *Deliverer) toVolume(sp *spooled, filename string, frame []byte, out *Delivered) error {
	dir := filepath.Dir(sp.path)
	final := filepath.Join(dir, filename)
	volErr := func(err error) error {
		return apperr.Wrap(apperr.UploadFailed, err, "writing to OUTPUT_DIR failed: "+err.Error(),
			"check that OUTPUT_DIR ("+d.opts.OutputDir+") is on a mounted, writable volume with free space")
	}
	if frame != nil {
		p := filepath.Join(dir, lastFrameName(filename))
		if err := writeFileAtomic(p, frame); err != nil {
			return volErr(err)
		}
		out.LastFramePath = p
	}
	// Temp files are created 0600; a delivered file is an ordinary,
	// readable output file.
	if err := sp.file.Chmod(outputFileMode); err != nil {
		return volErr(err)
	}
	if err := sp.file.Sync(); err != nil {
		return volErr(err)
	}
	if err := sp.file.Close(); err != nil {
		return volErr(err)
	}
	if err := os.Rename(sp.path, final); err != nil {
		return volErr(err)
	}
	sp.removed = true // renamed: nothing left to clean up
	if err := syncDir(dir); err != nil {
		return volErr(err)
	}
	out.Path = final
	return nil
}

// outputFileMode is the mode of delivered files (before the umask-free
// chmod, as a shared volume is read by other pods and tools).
const outputFileMode = 0o644

// writeFileAtomic writes data to path through a temp file in the same folder.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(outputFileMode); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	done = true
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// safeJobID turns a job id into one path segment: [A-Za-z0-9._-] kept,
// anything else '_', no "." or "..", at most 128 bytes, "job" when empty.
func safeJobID(id string) string {
	s := sanitize(id, 128)
	if s == "" {
		return "job"
	}
	return s
}

// safeFilename keeps the base name of a file name, sanitized like a job id;
// "video.mp4" when nothing is left.
func safeFilename(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	s := sanitize(name, 160)
	if s == "" {
		return "video.mp4"
	}
	return s
}

func sanitize(s string, max int) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			b[i] = '_'
		}
	}
	if len(b) > max {
		b = b[len(b)-max:] // keep the end: it holds the extension
	}
	// No hidden names, and never "." or "..".
	for len(b) > 0 && b[0] == '.' {
		b[0] = '_'
	}
	return string(b)
}
