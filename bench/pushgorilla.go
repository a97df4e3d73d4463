package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The push benchmark's peer: a WebSocket hub written the common Go way,
// after gorilla/websocket's chat example (examples/chat): a goroutine
// per connection reading (readPump) and one writing (writePump), a
// buffered send channel per client, and one hub goroutine that owns the
// client set and fans broadcasts out with non-blocking channel sends (a
// client whose channel is full is dropped). Differences from the
// example: heartbeats as mortar's defaults (ping every 25 s, a read
// deadline of 25 + 8 s renewed by each pong), each message in its own
// frame (the example joins queued chat lines with newlines), clients
// indexed by ID (?client=ID) for /push, and the Upgrader left at its
// zero value: gorilla then keeps net/http's 4 KiB read and write buffers
// of the hijacked connection as its own.
const (
	gorillaWriteWait  = 10 * time.Second
	gorillaPingPeriod = 25 * time.Second
	gorillaPongWait   = 33 * time.Second
	gorillaMaxMessage = 512
	gorillaSendQueue  = 256
)

type gorillaHub struct {
	log        *slog.Logger
	upgrader   websocket.Upgrader
	register   chan *gorillaClient
	unregister chan *gorillaClient
	broadcast  chan []byte
	direct     chan gorillaDirect
	done       chan struct{} // closed by stop
	ran        chan struct{} // closed when run returns
	pumps      sync.WaitGroup

	// Owned by run.
	clients map[*gorillaClient]bool
	byID    map[string]*gorillaClient
}

type gorillaDirect struct {
	client string
	msg    []byte
}

type gorillaClient struct {
	hub  *gorillaHub
	id   string
	conn *websocket.Conn
	send chan []byte
}

// startGorillaHub serves the hub on a loopback listener: /ws?client=ID,
// POST /broadcast (the body to everyone) and POST /push?client=ID (the
// body to one client).
func startGorillaHub(log *slog.Logger) (*pushChild, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &gorillaHub{
		log:        log,
		register:   make(chan *gorillaClient),
		unregister: make(chan *gorillaClient),
		broadcast:  make(chan []byte),
		direct:     make(chan gorillaDirect),
		done:       make(chan struct{}),
		ran:        make(chan struct{}),
		clients:    map[*gorillaClient]bool{},
		byID:       map[string]*gorillaClient{},
	}
	go h.run()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", h.serveWS)
	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		select {
		case h.broadcast <- body:
			w.WriteHeader(http.StatusNoContent)
		case <-h.done:
			http.Error(w, "stopping", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /push", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		select {
		case h.direct <- gorillaDirect{r.URL.Query().Get("client"), body}:
			w.WriteHeader(http.StatusNoContent)
		case <-h.done:
			http.Error(w, "stopping", http.StatusServiceUnavailable)
		}
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); hs.Serve(ln) }()
	addr := ln.Addr().String()
	return &pushChild{
		ws:      "ws://" + addr + "/ws",
		control: "http://" + addr,
		stop: func() error {
			err := hs.Close() // hijacked connections are the hub's to close
			<-served
			close(h.done)
			<-h.ran
			h.pumps.Wait()
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			return err
		},
	}, nil
}

// run owns the client set. When the hub stops it closes every client's
// send channel, which makes its writePump send a close frame and close
// the connection.
func (h *gorillaHub) run() {
	defer close(h.ran)
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
			h.byID[c.id] = c
		case c := <-h.unregister:
			h.drop(c)
		case msg := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- msg:
				default:
					h.drop(c)
				}
			}
		case d := <-h.direct:
			if c := h.byID[d.client]; c != nil {
				select {
				case c.send <- d.msg:
				default:
					h.drop(c)
				}
			}
		case <-h.done:
			for c := range h.clients {
				h.drop(c)
			}
			return
		}
	}
}

func (h *gorillaHub) drop(c *gorillaClient) {
	if !h.clients[c] {
		return
	}
	delete(h.clients, c)
	if h.byID[c.id] == c {
		delete(h.byID, c.id)
	}
	close(c.send)
}

func (h *gorillaHub) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	c := &gorillaClient{hub: h, id: r.URL.Query().Get("client"), conn: conn, send: make(chan []byte, gorillaSendQueue)}
	select {
	case h.register <- c:
	case <-h.done:
		conn.Close()
		return
	}
	h.pumps.Go(c.writePump)
	h.pumps.Go(c.readPump)
}

// readPump reads until the connection fails; pongs renew the read
// deadline.
func (c *gorillaClient) readPump() {
	defer func() {
		select {
		case c.hub.unregister <- c:
		case <-c.hub.done:
		}
		c.conn.Close()
	}()
	c.conn.SetReadLimit(gorillaMaxMessage)
	c.conn.SetReadDeadline(time.Now().Add(gorillaPongWait))
	c.conn.SetPongHandler(func(string) error {
		c.conn.SetReadDeadline(time.Now().Add(gorillaPongWait))
		return nil
	})
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			if websocket.IsUnexpectedCloseError(err, websocket.CloseGoingAway, websocket.CloseAbnormalClosure) {
				c.hub.log.Debug("gorilla read", "client", c.id, "err", err)
			}
			return
		}
	}
}

// writePump writes queued messages and pings every gorillaPingPeriod.
func (c *gorillaClient) writePump() {
	ticker := time.NewTicker(gorillaPingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(gorillaWriteWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(gorillaWriteWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}
