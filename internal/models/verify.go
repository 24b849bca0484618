package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// hashFile feeds the first n bytes of f into h, reporting progress, and
// returns how many bytes it read (n unless f is shorter). It checks ctx
// between blocks.
func hashFile(ctx context.Context, f io.ReaderAt, n int64, h hash.Hash, onProgress func(done int64)) (int64, error) {
	buf := make([]byte, 1<<20)
	var done int64
	for done < n {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		want := min(int64(len(buf)), n-done)
		m, err := f.ReadAt(buf[:want], done)
		h.Write(buf[:m])
		done += int64(m)
		if onProgress != nil && m > 0 {
			onProgress(done)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// VerifyFile checks that the file at path has f's size and SHA256, reading
// it once. onProgress (may be nil) receives the bytes hashed so far. It
// returns *SizeError or *ChecksumError on a mismatch, ctx.Err() when
// cancelled.
func VerifyFile(ctx context.Context, path string, f File, onProgress func(done int64)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if f.Size > 0 && fi.Size() != f.Size {
		return &SizeError{Path: path, Want: f.Size, Got: fi.Size()}
	}
	h := sha256.New()
	if _, err := hashFile(ctx, file, fi.Size(), h, onProgress); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, f.SHA256) {
		return &ChecksumError{Path: path, Want: strings.ToLower(f.SHA256), Got: got}
	}
	return nil
}
