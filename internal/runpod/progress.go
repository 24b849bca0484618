package runpod

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// progressSender forwards a job's progress to RunPod: best effort, never
// blocking the job, coalesced to the latest update, at most one post per
// ProgressInterval, and never after close returns — the final result is
// posted only after close, so no progress update can follow it.
type progressSender struct {
	w     *loop
	url   string
	id    string
	log   *slog.Logger
	mu    sync.Mutex
	last  *progress.Progress
	shut  bool
	start time.Time
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

// newProgressSender starts the job's sender; close must be called.
func newProgressSender(w *loop, jobID string, log *slog.Logger) *progressSender {
	s := &progressSender{
		w:     w,
		url:   AppendQuery(JobURL(w.o.PostOutputURL, w.workerID, jobID), "isStream=false"),
		id:    jobID,
		log:   log,
		start: time.Now(),
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.run()
	return s
}

// update records p as the latest progress; it never blocks on the network.
func (s *progressSender) update(p progress.Progress) {
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		return
	}
	s.last = &p
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *progressSender) run() {
	defer close(s.done)
	var posted *progress.Progress // the latest progress posted
	keepAlive := time.NewTimer(s.w.o.ProgressKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-s.wake:
		case <-keepAlive.C:
			// Nothing new for a while: post the latest again, with the
			// elapsed time, so that the job shows life.
			s.mu.Lock()
			if s.last == nil && posted != nil {
				s.last = posted
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		p := s.last
		s.last = nil
		shut := s.shut
		s.mu.Unlock()
		if shut {
			return
		}
		if p != nil {
			s.post(*p)
			posted = p
		}
		keepAlive.Reset(s.w.o.ProgressKeepAlive)
		t := time.NewTimer(s.w.o.ProgressInterval)
		select {
		case <-s.quit:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *progressSender) post(p progress.Progress) {
	type output struct {
		progress.Progress
		ElapsedS float64 `json:"elapsed_s"` // seconds since the job started
	}
	elapsed := float64(time.Since(s.start).Milliseconds()) / 1000
	body, err := json.Marshal(struct {
		Status string `json:"status"`
		Output output `json:"output"`
	}{"IN_PROGRESS", output{p, elapsed}})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.w.o.ProgressTimeout)
	defer cancel()
	status, _, err := s.w.c.postJob(ctx, s.url, s.id, body)
	if err != nil || status < 200 || status > 299 {
		s.log.Debug("progress post failed (best effort)", "status", status, "err", errText(err))
	}
}

// close stops the sender and waits for a post in flight to return.
func (s *progressSender) close() {
	s.mu.Lock()
	s.shut = true
	s.mu.Unlock()
	close(s.quit)
	<-s.done
}
