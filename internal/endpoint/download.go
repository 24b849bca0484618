package endpoint

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Download writes the body of a GET of url (a presigned S3 URL: no
// Authorization header is sent) to the file path, through a temporary file
// renamed into place. progress, when set, is told the bytes done and the
// total (0 when unknown). A failed transfer is tried again from the start,
// as many times as the client's Attempts.
func (c *Client) Download(ctx context.Context, url, path string, progress func(done, total int64)) (int64, error) {
	var last error
	for attempt := 1; attempt <= c.o.Attempts; attempt++ {
		n, retry, err := c.downloadOnce(ctx, url, path, progress)
		if err == nil {
			return n, nil
		}
		last = err
		if !retry || ctx.Err() != nil {
			break
		}
		wait := c.backoff(attempt)
		if c.o.OnRetry != nil {
			c.o.OnRetry("download", attempt, wait, err)
		}
		select {
		case <-ctx.Done():
			return 0, last
		case <-time.After(wait):
		}
	}
	return 0, last
}

func (c *Client) downloadOnce(ctx context.Context, url, path string, progress func(done, total int64)) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, &Error{Op: "download", Message: err.Error(), Err: err}
	}
	req.Header.Set("User-Agent", c.o.UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, true, &Error{Op: "download", Message: err.Error(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return 0, retry, &Error{Op: "download", StatusCode: resp.StatusCode, Message: snippet(readSome(resp.Body))}
	}
	tmp := path + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, false, err
	}
	defer os.Remove(tmp)
	total := max(resp.ContentLength, 0)
	pw := &progressWriter{w: f, total: total, fn: progress}
	n, err := io.Copy(pw, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, true, &Error{Op: "download", Message: fmt.Sprintf("after %d bytes: %v", n, err), Err: err}
	}
	if total > 0 && n != total {
		return n, true, &Error{Op: "download", Message: fmt.Sprintf("got %d of %d bytes", n, total)}
	}
	if err := os.Rename(tmp, path); err != nil {
		return n, false, err
	}
	return n, false, nil
}

func readSome(r io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	return b
}

type progressWriter struct {
	w     io.Writer
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
	return n, err
}
