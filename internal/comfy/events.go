package comfy

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// event is one websocket JSON message, or the error that ended the socket.
type event struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	err  error
}

// stream is an open /ws connection: a reader goroutine delivers events, a
// pinger keeps the connection alive through ComfyUI's long silent phases
// (model loading, VAE decode) and closes it when pongs stop.
type stream struct {
	conn   *websocket.Conn
	events chan event
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// dial opens /ws?clientId= and waits for the server's first status message:
// only then is the socket registered, and events sent before that are lost.
func (c *Client) dial(ctx context.Context, clientID string) (*stream, error) {
	const op = "GET /ws"
	if err := c.badBase(); err != nil {
		return nil, err
	}
	u := c.base + "/ws?clientId=" + url.QueryEscape(clientID)
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	dctx, cancel := context.WithTimeout(ctx, c.Tuning.DialTimeout)
	defer cancel()
	// No Origin header: ComfyUI refuses a loopback request whose Origin
	// differs from its Host.
	conn, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: c.hc})
	if err != nil {
		return nil, errTransport(ctx, c.base, op, err)
	}
	conn.SetReadLimit(64 << 20)
	for {
		typ, b, err := conn.Read(dctx)
		if err != nil {
			conn.CloseNow()
			return nil, errTransport(ctx, c.base, op+" (waiting for the status message)", err)
		}
		if typ != websocket.MessageText {
			continue
		}
		var ev event
		if json.Unmarshal(b, &ev) == nil && ev.Type == "status" {
			break
		}
	}
	sctx, scancel := context.WithCancel(context.Background())
	s := &stream{conn: conn, events: make(chan event, 256), cancel: scancel}
	s.wg.Add(2)
	go s.read(sctx)
	go s.ping(sctx, c.Tuning.PingInterval, c.Tuning.PingTimeout)
	return s, nil
}

func (s *stream) read(ctx context.Context) {
	defer s.wg.Done()
	for {
		typ, b, err := s.conn.Read(ctx)
		if err != nil {
			select {
			case s.events <- event{err: err}:
			case <-ctx.Done():
			}
			return
		}
		if typ != websocket.MessageText {
			continue // previews; the worker does not ask for them
		}
		var ev event
		if json.Unmarshal(b, &ev) != nil {
			continue
		}
		select {
		case s.events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

func (s *stream) ping(ctx context.Context, every, timeout time.Duration) {
	defer s.wg.Done()
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, timeout)
			err := s.conn.Ping(pctx)
			cancel()
			if err != nil {
				// A dead peer: closing makes the reader report the drop.
				s.conn.CloseNow()
				return
			}
		}
	}
}

// close ends the connection and waits for its goroutines.
func (s *stream) close() {
	if s == nil {
		return
	}
	s.cancel()
	s.conn.CloseNow()
	s.wg.Wait()
}
