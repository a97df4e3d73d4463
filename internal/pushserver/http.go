package pushserver

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/pushwire"
)

//go:embed static
var static embed.FS

// Subprotocols a WebSocket client may offer to fix its encoding.
const (
	ProtocolJSON    = "mortar.json"
	ProtocolMsgpack = "mortar.msgpack"
)

// Handler serves the gateway's HTTP endpoints, to be mounted at /push/:
// /push/ws (WebSocket), /push/sse (server-sent events),
// /push/mortar-push.js (the browser client) and /push/demo.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /push/ws", s.serveWS)
	mux.HandleFunc("GET /push/sse", s.serveSSE)
	files, _ := fs.Sub(static, "static")
	mux.HandleFunc("GET /push/mortar-push.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, "mortar-push.js")
	})
	mux.HandleFunc("GET /push/demo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, "demo.html")
	})
	return mux
}

// serveWS upgrades to WebSocket and hands the connection to the event
// loop.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	key, err := pushwire.CheckUpgrade(r)
	if err != nil {
		if errors.Is(err, pushwire.ErrBadVersion) {
			w.Header().Set("Sec-WebSocket-Version", "13")
			http.Error(w, err.Error(), http.StatusUpgradeRequired)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.running.Load() {
		http.Error(w, "push gateway not running", http.StatusServiceUnavailable)
		return
	}
	proto := pushwire.SelectProtocol(r, ProtocolJSON, ProtocolMsgpack)
	var enc pushwire.Encoding
	switch proto {
	case ProtocolJSON:
		enc = pushwire.JSON
	case ProtocolMsgpack:
		enc = pushwire.Msgpack
	}
	nc, buffered, err := hijack(w)
	if err != nil {
		s.log.Warn("push websocket hijack", "err", err)
		return
	}
	if _, err := nc.Write(pushwire.AppendUpgradeResponse(nil, key, proto)); err != nil {
		nc.Close()
		return
	}
	if err := s.adopt(nc, buffered, transportWS, enc); err != nil {
		s.log.Debug("push websocket adopt", "err", err)
	}
}

// hijack takes the connection from net/http, with any bytes it had
// already read.
func hijack(w http.ResponseWriter) (net.Conn, []byte, error) {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	nc.SetDeadline(time.Time{})
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ = brw.Reader.Peek(n)
		buffered = append([]byte(nil), buffered...)
	}
	return nc, buffered, nil
}

// serveSSE streams pushes as server-sent events. The client connects by
// query: client, token, channel (repeated) and since
// (CHANNEL:OFFSET:EPOCH, repeated) to recover.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	claims, sub, err := s.authenticate(q.Get("token"), q.Get("client"), r.RemoteAddr, transportSSE)
	if err != nil {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	reqs, err := sseChannels(q["channel"], q["since"], claims.Channels)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, r := range reqs {
		if slices.Contains(claims.Channels, r.channel) {
			continue // the token's issuer granted it
		}
		if err := sub.CheckPermission("push:subscribe:" + auth.EscapePart(r.channel)); err != nil {
			http.Error(w, mortar.ErrorMessage(err), http.StatusForbidden)
			return
		}
	}
	if !s.running.Load() {
		http.Error(w, "push gateway not running", http.StatusServiceUnavailable)
		return
	}
	nc, _, err := hijack(w)
	if err != nil {
		s.log.Warn("push sse hijack", "err", err)
		return
	}
	const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\n"
	if _, err := nc.Write([]byte(head)); err != nil {
		nc.Close()
		return
	}
	c := s.newConn(transportSSE, pushwire.JSON, nc.RemoteAddr())
	c.subject = sub
	pc, err := s.poll.Add(nc, nil, c)
	if err != nil {
		s.log.Debug("push sse adopt", "err", err)
		return
	}
	c.attach(pc)
	hold := make([]string, len(reqs))
	for i, r := range reqs {
		hold[i] = r.channel
	}
	res, ok := s.admit(c, claims, hold)
	if !ok {
		return
	}
	s.join(c, reqs, func(subs []pushwire.SubResult) {
		res.Subs = subs
		b, _ := json.Marshal(res)
		c.send(&pushwire.Message{Op: pushwire.OpReply, Result: b})
	})
}

// sseChannels builds the subscriptions of an SSE connection.
func sseChannels(channels, since, fromToken []string) ([]subRequest, error) {
	var reqs []subRequest
	seen := map[string]int{}
	addChannel := func(ch string) error {
		if err := pushwire.CheckChannel(ch); err != nil {
			return err
		}
		if _, ok := seen[ch]; !ok {
			seen[ch] = len(reqs)
			reqs = append(reqs, subRequest{channel: ch})
		}
		return nil
	}
	for _, ch := range append(append([]string(nil), fromToken...), channels...) {
		if err := addChannel(ch); err != nil {
			return nil, err
		}
	}
	for _, sp := range since {
		// The channel name may hold colons: offset and epoch are the last
		// two fields.
		i := strings.LastIndexByte(sp, ':')
		j := strings.LastIndexByte(sp[:max(i, 0)], ':')
		if i < 0 || j < 0 {
			return nil, errors.New("since must be CHANNEL:OFFSET:EPOCH")
		}
		off, err := strconv.ParseUint(sp[j+1:i], 10, 64)
		if err != nil {
			return nil, errors.New("since: bad offset")
		}
		ch := sp[:j]
		if err := addChannel(ch); err != nil {
			return nil, err
		}
		r := &reqs[seen[ch]]
		r.recover, r.offset, r.epoch = true, off, sp[i+1:]
	}
	return reqs, nil
}
