package models

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/resumable"
)

// ErrStalled is the cause of an attempt that received no bytes for the
// stall timeout. Stalled attempts are retried.
var ErrStalled = resumable.ErrStalled

// HTTPError is an answer the downloader cannot use.
type HTTPError = resumable.StatusError

// ChecksumError is a file whose content does not match the manifest.
type ChecksumError struct {
	Path string // the file checked (for a download: the partial file, now removed)
	Want string
	Got  string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: SHA256 %s, want %s", e.Path, e.Got, e.Want)
}

// SizeError is a file, or a server's copy of it, whose size does not match
// the manifest.
type SizeError struct {
	Path string // a file, or a URL for the server's size
	Want int64
	Got  int64
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("%s: %d bytes, want %d", e.Path, e.Got, e.Want)
}

// NoSpaceError is a filesystem without room for the download.
type NoSpaceError struct {
	Dir    string
	Need   int64 // bytes still to download onto this filesystem
	Margin int64 // bytes kept free on top
	Free   int64 // bytes available (-1 when the disk filled up during the download)
	Err    error // the write error, when the disk filled up
}

func (e *NoSpaceError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("no space left on the disk of %s: %v", e.Dir, e.Err)
	}
	return fmt.Sprintf("not enough disk space in %s: %d bytes to download + %d margin, %d free", e.Dir, e.Need, e.Margin, e.Free)
}

func (e *NoSpaceError) Unwrap() error { return e.Err }

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// userError turns a download failure of one file into the error users see:
// an *apperr.Error (MODEL_MISSING: the model cannot be made available) whose
// hint says what to do, keeping err as its cause for errors.As.
func userError(name string, err error) error {
	if err == nil || apperr.As(err) != nil {
		return err
	}
	var (
		he *HTTPError
		ce *ChecksumError
		se *SizeError
		ns *NoSpaceError
	)
	switch {
	case errors.As(err, &he):
		hint := "check the network and run `models pull` again; it resumes where it stopped"
		switch {
		case he.StatusCode == http.StatusNotFound:
			hint = "the file is not at that URL: check --hf-endpoint/HF_ENDPOINT (a mirror must serve <repo>/resolve/main/<path>) or whether the repository moved the file (docs/models.md lists the sources)"
		case he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden:
			hint = "the repository needs a login: set HF_TOKEN to a Hugging Face token (and accept the model's terms on its page)"
		}
		return apperr.Wrap(apperr.ModelMissing, err, fmt.Sprintf("download of %s failed: %v", name, err), hint)
	case errors.As(err, &ce):
		return apperr.Wrap(apperr.ModelMissing, err,
			fmt.Sprintf("%s: checksum mismatch (got %s, want %s); the bad download was deleted, nothing was put in place", name, short(ce.Got), short(ce.Want)),
			"run `models pull` again to download it afresh; if it fails again the server's file differs from the manifest (check --hf-endpoint)")
	case errors.As(err, &se):
		return apperr.Wrap(apperr.ModelMissing, err, fmt.Sprintf("%s: size mismatch: %v", name, se),
			"the server's file is not the one in the manifest: check --hf-endpoint, or the repository changed the file (docs/models.md)")
	case errors.As(err, &ns):
		return apperr.Wrap(apperr.ModelMissing, err, fmt.Sprintf("%s: %v", name, ns),
			"free disk space, pull onto a larger volume with --dir, or pull one file at a time with --only; partial downloads are kept and resume")
	case errors.Is(err, ErrStalled):
		return apperr.Wrap(apperr.ModelMissing, err, fmt.Sprintf("download of %s kept stalling: %v", name, err),
			"the connection is too slow or keeps dropping; run `models pull` again later, it resumes where it stopped")
	}
	return apperr.Wrap(apperr.ModelMissing, err, fmt.Sprintf("download of %s failed: %v", name, err),
		"check the network and the target folder, then run `models pull` again; it resumes where it stopped")
}

// noSpaceError is the refusal to start a pull that would not fit.
func noSpaceError(ns *NoSpaceError) error {
	return apperr.Wrap(apperr.ModelMissing, ns,
		fmt.Sprintf("not enough disk space in %s: %s to download + %s margin, only %s free", ns.Dir,
			progress.Bytes(ns.Need), progress.Bytes(ns.Margin), progress.Bytes(ns.Free)),
		"free disk space, pull onto a larger volume with --dir, or pull one file at a time with --only; nothing was downloaded")
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}
