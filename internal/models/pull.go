package models

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"
)

// DefaultMargin is the free space Pull leaves on a filesystem on top of the
// bytes it downloads.
const DefaultMargin = 1_000_000_000

// Target is one file to download and where it goes.
type Target struct {
	Item
	Dest string `json:"dest"`
}

// PullOptions tunes Pull.
type PullOptions struct {
	// Parallel is how many files download at once; 0 means 2.
	Parallel int
	// Margin is the free space to keep on each filesystem; 0 means
	// DefaultMargin, negative means none.
	Margin int64
	// FreeSpace reports free space; nil means FreeSpace.
	FreeSpace SpaceFunc
}

// Result is the outcome of one target.
type Result struct {
	Target
	// Present: the file was already in place with the right size; nothing
	// was downloaded.
	Present bool
	// Err is nil on success; an *apperr.Error otherwise.
	Err error
}

// Need is the disk space a pull needs on one filesystem.
type Need struct {
	Space
	Need   int64 // bytes still to download there
	Margin int64
}

// Enough reports whether the filesystem has room.
func (n Need) Enough() bool { return n.Free >= n.Need+n.Margin }

// Plan checks the targets before a pull: which are already in place (right
// size at Dest, or any size when the manifest has no exact size), and how
// much each filesystem must take, counting the bytes of partial files
// already there as done. Files of unknown size count their approximate size.
func Plan(targets []Target, opts PullOptions) (todo []Target, present []Target, needs []Need, err error) {
	freeSpace := opts.FreeSpace
	if freeSpace == nil {
		freeSpace = FreeSpace
	}
	margin := opts.Margin
	switch {
	case margin == 0:
		margin = DefaultMargin
	case margin < 0:
		margin = 0
	}
	byFS := map[string]*Need{}
	var order []string
	for _, t := range targets {
		if t.File == nil {
			return nil, nil, nil, fmt.Errorf("%s: %s", t.Name, UnknownNote)
		}
		if fi, err := os.Stat(t.Dest); err == nil && fi.Mode().IsRegular() && (t.File.Size == 0 || fi.Size() == t.File.Size) {
			present = append(present, t)
			continue
		}
		todo = append(todo, t)
		remaining := t.File.EstimatedSize()
		if fi, err := os.Stat(t.Dest + PartialSuffix); err == nil && fi.Size() <= remaining {
			remaining -= fi.Size()
		}
		sp, err := freeSpace(filepath.Dir(t.Dest))
		if err != nil {
			continue // no answer: no check for this file
		}
		key := sp.Dir
		if sp.Device != 0 {
			key = fmt.Sprint("dev:", sp.Device)
		}
		n, ok := byFS[key]
		if !ok {
			n = &Need{Space: sp, Margin: margin}
			byFS[key] = n
			order = append(order, key)
		}
		n.Need += remaining
	}
	for _, k := range order {
		needs = append(needs, *byFS[k])
	}
	return todo, present, needs, nil
}

// CheckSpace runs Plan and returns an error wrapping *NoSpaceError when a
// filesystem lacks room for what is left to download, so that a caller can
// refuse before drawing anything; Pull checks the same.
func CheckSpace(targets []Target, opts PullOptions) error {
	_, _, needs, err := Plan(targets, opts)
	if err != nil {
		return err
	}
	return enoughSpace(needs)
}

func enoughSpace(needs []Need) error {
	for _, n := range needs {
		if !n.Enough() {
			return noSpaceError(&NoSpaceError{Dir: n.Dir, Need: n.Need, Margin: n.Margin, Free: n.Free})
		}
	}
	return nil
}

// Pull downloads the targets, Parallel at a time, after checking that every
// filesystem has room (Plan); it refuses to start when one does not, with
// an error that wraps *NoSpaceError. Files already in place are skipped
// (PhasePresent). One file failing does not stop the others, except for a
// full disk, which stops all. It returns one result per target, in order,
// and an error joining the failures.
func (d *Downloader) Pull(ctx context.Context, targets []Target, opts PullOptions, onEvent func(Event)) ([]Result, error) {
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	todo, present, needs, err := Plan(targets, opts)
	if err != nil {
		return nil, err
	}
	if err := enoughSpace(needs); err != nil {
		return nil, err
	}
	results := map[string]*Result{}
	for _, t := range present {
		results[t.Dest] = &Result{Target: t, Present: true}
		onEvent(Event{Name: t.Name, Phase: PhasePresent, Done: t.File.Size, Total: t.File.Size})
	}

	parent := ctx
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 2
	}
	var g errgroup.Group
	g.SetLimit(parallel)
	var mu sync.Mutex
	for _, t := range todo {
		g.Go(func() error {
			if ctx.Err() != nil {
				mu.Lock()
				results[t.Dest] = &Result{Target: t, Err: fmt.Errorf("not started: %w", context.Cause(ctx))}
				mu.Unlock()
				return nil
			}
			err := d.Download(ctx, *t.File, t.Name, t.Dest, onEvent)
			var ns *NoSpaceError
			if errors.As(err, &ns) {
				cancel(err) // a full disk stops every download
			}
			mu.Lock()
			results[t.Dest] = &Result{Target: t, Err: err}
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()

	out := make([]Result, 0, len(targets))
	var errs []error
	for _, t := range targets {
		r := results[t.Dest]
		if r == nil {
			continue
		}
		out = append(out, *r)
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if err := parent.Err(); err != nil {
		return out, err // the caller's ctx ended: say so once
	}
	return out, errors.Join(errs...)
}
