package comfytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// wsConn is one websocket client. Messages go through a queue drained by one
// writer goroutine, so they arrive in the order sent (ComfyUI's publish_loop).
type wsConn struct {
	sid  string
	c    *websocket.Conn
	out  chan []byte
	done chan struct{}
}

// handleWS serves /ws?clientId=: registers the socket under its id (replacing
// any socket with the same id), sends the status message with the sid, and
// the current node when this client owns the running prompt.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := time.Now().Before(s.wsDownUntil) || (s.wsDownPrompt != "" && s.history[s.wsDownPrompt] == nil)
	s.mu.Unlock()
	if down {
		http.Error(w, "websocket unavailable", http.StatusServiceUnavailable)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // origin checked in ServeHTTP
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	sid := r.URL.Query().Get("clientId")
	if sid == "" {
		sid = newID()
	}
	wc := &wsConn{sid: sid, c: c, out: make(chan []byte, 4096), done: make(chan struct{})}

	s.mu.Lock()
	if s.closed || s.crashed {
		s.mu.Unlock()
		c.CloseNow()
		return
	}
	s.sockets[sid] = wc
	s.conns[wc] = struct{}{}
	delete(s.muted, sid)
	status := obj{{"status", obj{{"exec_info", obj{{"queue_remaining", s.queueRemainingLocked()}}}}}, {"sid", sid}}
	wc.enqueue(message("status", status))
	if s.runningClient == sid && s.lastNode != "" {
		wc.enqueue(message("executing", obj{{"node", s.lastNode}}))
	}
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go wc.writer(ctx)
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			break
		}
		if typ != websocket.MessageText {
			continue
		}
		var m struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &m) == nil && m.Type == "feature_flags" {
			wc.enqueue(message("feature_flags", obj{{"supports_preview_metadata", true}, {"max_upload_size", 104857600}}))
		}
	}
	cancel()
	c.CloseNow()
	<-wc.done
	s.mu.Lock()
	// ComfyUI pops the id unconditionally when a handler exits, even if a
	// newer socket registered the same id meanwhile.
	delete(s.sockets, sid)
	delete(s.conns, wc)
	s.mu.Unlock()
}

func (wc *wsConn) enqueue(b []byte) {
	select {
	case wc.out <- b:
	default:
		// A client this far behind is gone; drop it.
		wc.c.CloseNow()
	}
}

func (wc *wsConn) writer(ctx context.Context) {
	defer close(wc.done)
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-wc.out:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := wc.c.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				wc.c.CloseNow()
				return
			}
		}
	}
}

// message encodes a websocket JSON message.
func message(typ string, data any) []byte {
	b, err := marshal(obj{{"type", typ}, {"data", data}})
	if err != nil {
		panic("comfytest: cannot encode " + typ + ": " + err.Error())
	}
	return b
}

// send delivers an event to the socket of sid, or to every socket when sid
// is "" (ComfyUI's send_sync with sid None).
func (s *Server) send(typ string, data any, sid string) {
	b := message(typ, data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sid == "" {
		for id, wc := range s.sockets {
			if !s.muted[id] {
				wc.enqueue(b)
			}
		}
		return
	}
	if wc, ok := s.sockets[sid]; ok && !s.muted[sid] {
		wc.enqueue(b)
	}
}

// closeSockets closes the sockets of sid, or every socket when sid is "".
func (s *Server) closeSockets(sid string) {
	s.mu.Lock()
	var cs []*wsConn
	for wc := range s.conns {
		if sid == "" || wc.sid == sid {
			cs = append(cs, wc)
		}
	}
	s.mu.Unlock()
	for _, wc := range cs {
		wc.c.CloseNow()
	}
}

// connected reports whether a socket is registered for sid.
func (s *Server) connected(sid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sockets[sid]
	return ok
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
