package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/endpoint"
)

// Batch line states besides the endpoint's final job states.
const (
	lineSubmitted = "SUBMITTED" // sent; its id is known; not finished yet
	lineInvalid   = "INVALID"   // refused by the local checks; never sent
)

// batchState is the state file of a batch: what happened to each line, so
// that a re-run skips finished lines, re-attaches to submitted ones and
// submits only the rest. It is rewritten (atomically) after every change.
type batchState struct {
	JobsFile string                `json:"jobs_file"`
	Lines    map[string]*lineState `json:"lines"` // by line number
}

type lineState struct {
	Hash        string `json:"hash"` // of the line's text: an edited line is a new job
	ID          string `json:"id,omitempty"`
	Status      string `json:"status"`
	Code        string `json:"code,omitempty"`
	ExecutionMS int64  `json:"execution_ms,omitempty"`
}

func (l *lineState) finished() bool {
	return l.Status == lineInvalid || endpoint.Final(l.Status)
}

// batchLine is one job of the batch file.
type batchLine struct {
	n    int // line number, from 1
	text string
	hash string
}

func (b batchLine) name() string { return fmt.Sprintf("job-%04d", b.n) }

// batchRun is one run of a batch.
type batchRun struct {
	s     *submitter
	cfg   *config.Config
	dir   string // of the jobs file (relative image paths)
	out   string
	state string

	mu sync.Mutex
	st batchState
}

func (s *submitter) runBatch(ctx context.Context, cfg *config.Config, sf submitFlags) int {
	if sf.outDir == "" {
		fmt.Fprintln(s.env.Stderr, "submit: --batch needs --out-dir")
		return exitInvalid
	}
	if sf.concurrency < 1 {
		fmt.Fprintln(s.env.Stderr, "submit: --concurrency must be 1 or more")
		return exitInvalid
	}
	lines, err := readBatch(sf.batch)
	if err != nil {
		fmt.Fprintf(s.env.Stderr, "submit: %v\n", err)
		return exitInvalid
	}
	if err := os.MkdirAll(sf.outDir, 0o755); err != nil {
		fmt.Fprintf(s.env.Stderr, "submit: %v\n", err)
		return exitFailed
	}
	b := &batchRun{s: s, cfg: cfg, dir: filepath.Dir(sf.batch), out: sf.outDir, state: sf.state}
	if b.state == "" {
		b.state = filepath.Join(sf.outDir, "batch-state.json")
	}
	if err := b.load(sf.batch); err != nil {
		fmt.Fprintf(s.env.Stderr, "submit: %v\n", err)
		return exitFailed
	}
	s.r = newRenderer(s.env)
	s.quiet, s.detach = true, true
	todo := make(chan batchLine)
	var wg sync.WaitGroup
	for range sf.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range todo {
				b.line(ctx, l)
			}
		}()
	}
	skipped := 0
feed:
	for _, l := range lines {
		if ls := b.get(l); ls != nil && ls.finished() {
			skipped++
			continue
		}
		select {
		case todo <- l:
		case <-ctx.Done():
			break feed
		}
	}
	close(todo)
	wg.Wait()
	s.r.Stop()
	if skipped > 0 {
		fmt.Fprintf(s.env.Stderr, "submit: %d lines were finished by an earlier run (state file %s)\n", skipped, b.state)
	}
	return b.summary(lines, ctx.Err() != nil)
}

// readBatch reads the JSON Lines file: blank lines and # comments are skipped.
func readBatch(path string) ([]batchLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []batchLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		h := sha256.Sum256([]byte(t))
		out = append(out, batchLine{n: n, text: t, hash: hex.EncodeToString(h[:8])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no job", path)
	}
	return out, nil
}

func (b *batchRun) load(jobs string) error {
	b.st = batchState{JobsFile: jobs, Lines: map[string]*lineState{}}
	data, err := os.ReadFile(b.state)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &b.st); err != nil {
		return fmt.Errorf("state file %s: %w (delete it to start the batch over)", b.state, err)
	}
	if b.st.Lines == nil {
		b.st.Lines = map[string]*lineState{}
	}
	return nil
}

// get returns the line's state, or nil when the line is new or was edited.
func (b *batchRun) get(l batchLine) *lineState {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := b.st.Lines[fmt.Sprint(l.n)]
	if ls == nil || ls.Hash != l.hash {
		return nil
	}
	c := *ls
	return &c
}

// set records the line's state and writes the state file.
func (b *batchRun) set(l batchLine, ls lineState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls.Hash = l.hash
	b.st.Lines[fmt.Sprint(l.n)] = &ls
	data, err := json.MarshalIndent(b.st, "", "  ")
	if err == nil {
		err = writeFileAtomic(b.state, data)
	}
	if err != nil {
		b.s.r.Println(fmt.Sprintf("submit: writing the state file %s: %v", b.state, err))
	}
}

// line runs one line to its end (or until the batch is interrupted).
func (b *batchRun) line(ctx context.Context, l batchLine) {
	say := func(format string, a ...any) { b.s.r.Println(l.name() + ": " + fmt.Sprintf(format, a...)) }
	mp4 := filepath.Join(b.out, l.name()+".mp4")
	resultPath := filepath.Join(b.out, l.name()+".json")
	id := ""
	wantLast := false
	if ls := b.get(l); ls != nil && ls.Status == lineSubmitted {
		id = ls.ID
		say("re-attaching to job %s", id)
	}
	input, err := jobFileInput([]byte(l.text), b.dir)
	if err == nil {
		wantLast, _ = optionsOf(input)["last_frame"].(bool)
	}
	if id == "" {
		if err == nil {
			err = checkLocally(ctx, b.cfg, input)
		}
		if err != nil {
			e := apperr.From(err)
			b.set(l, lineState{Status: lineInvalid, Code: string(e.Code)})
			_ = writeResult(resultPath, map[string]any{"error": e.Error(), "output": map[string]any{"error": e}})
			say("not sent: %s", e.Error())
			return
		}
		body, _ := json.Marshal(map[string]any{"input": input})
		st, err := b.s.c.Run(context.WithoutCancel(ctx), body)
		if err != nil {
			say("not sent: %v", err)
			return
		}
		id = st.ID
		b.set(l, lineState{ID: id, Status: lineSubmitted})
		say("submitted as job %s", id)
	}
	st, err := b.s.wait(ctx, id)
	if err != nil {
		var ie *interruptedError
		if errors.As(err, &ie) {
			return // still running on the endpoint; a re-run re-attaches
		}
		if endpoint.NotFound(err) {
			// The endpoint forgot the job (expired or restarted): the line
			// is sent again on the next run.
			b.set(l, lineState{Status: "LOST", ID: id})
			say("job %s is unknown to the endpoint; it will be sent again on the next run", id)
			return
		}
		say("%v", err)
		return
	}
	ls := lineState{ID: id, Status: st.Status, ExecutionMS: st.ExecutionTime}
	if st.Status == endpoint.Completed {
		res, _, err := b.s.save(ctx, st, mp4, wantLast)
		if err != nil {
			e := apperr.From(err)
			ls.Status, ls.Code = endpoint.Failed, string(e.Code)
			say("saving the result: %v", err)
		} else {
			_ = writeResult(resultPath, res)
			say("COMPLETED in %s: %s", ms(st.ExecutionTime), mp4)
		}
	} else {
		e := apperr.From(jobError(st))
		ls.Code = string(e.Code)
		_ = writeResult(resultPath, map[string]any{"id": id, "status": st.Status, "error": e.Error(), "output": map[string]any{"error": e}})
		say("%s: %s", st.Status, e.Error())
	}
	b.set(l, ls)
}

func writeResult(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// summary prints the table of outcomes and returns the exit code: 0 when
// every line completed, 130 when interrupted, 1 otherwise.
func (b *batchRun) summary(lines []batchLine, interrupted bool) int {
	var ok, cancelled, running, notSent int
	var gpu time.Duration
	failed := map[string]int{}
	for _, l := range lines {
		ls := b.get(l)
		if ls != nil {
			gpu += time.Duration(ls.ExecutionMS) * time.Millisecond
		}
		switch {
		case ls == nil || ls.Status == "LOST":
			notSent++
		case ls.Status == endpoint.Completed:
			ok++
		case ls.Status == endpoint.Cancelled:
			cancelled++
		case ls.Status == lineSubmitted:
			running++
		default:
			failed[ls.Code]++
		}
	}
	rows := [][2]string{{"ok", fmt.Sprint(ok)}}
	codes := make([]string, 0, len(failed))
	for c := range failed {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		rows = append(rows, [2]string{"failed " + c, fmt.Sprint(failed[c])})
	}
	rows = append(rows, [2]string{"cancelled", fmt.Sprint(cancelled)})
	if running > 0 {
		rows = append(rows, [2]string{"still running", fmt.Sprint(running)})
	}
	if notSent > 0 {
		rows = append(rows, [2]string{"not sent", fmt.Sprint(notSent)})
	}
	rows = append(rows, [2]string{"total", fmt.Sprint(len(lines))},
		[2]string{"GPU time (executionTime)", gpu.Round(100 * time.Millisecond).String()})
	w := tabwriter.NewWriter(b.s.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RESULT\tJOBS")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\n", r[0], r[1])
	}
	_ = w.Flush()
	switch {
	case interrupted:
		fmt.Fprintf(b.s.env.Stderr, "submit: interrupted: %d jobs still running on the endpoint, %d not sent; run the same command again to re-attach and finish\n", running, notSent)
		return exitInterrupted
	case ok == len(lines):
		return exitOK
	}
	return exitFailed
}
