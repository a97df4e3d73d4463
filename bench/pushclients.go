package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// pushFleet is the driver's end of many WebSocket connections: one
// gorilla/websocket client and one reader goroutine per connection. The
// readers answer pings (counting them), count the data messages that
// arrive (for broadcasts), and hand the messages of one chosen
// connection, the probe, to probeC with their arrival time.
type pushFleet struct {
	conns []*websocket.Conn
	wg    sync.WaitGroup // readers

	got  atomic.Int64 // data messages counted since reset
	want atomic.Int64 // the count at which full receives the time
	full chan time.Time

	pings   atomic.Int64
	probe   atomic.Int64 // index+1 of the probe connection; 0 for none
	probeC  chan arrival
	closing atomic.Bool

	mu      sync.Mutex
	dropped int   // connections that failed before close
	dropErr error // the first such failure
}

// arrival is a message and when its reader had it.
type arrival struct {
	msg []byte
	at  time.Time
}

// fleetConfig says how to open a fleet's connections.
type fleetConfig struct {
	n           int
	url         func(i int) string // connection i's WebSocket URL
	hello       func(i int) []byte // optional: a first text message whose reply must succeed (mortar's connect)
	sources     []string           // local IP addresses, used in turn
	concurrency int                // dials in flight
	bufSize     int                // gorilla client read and write buffer sizes
}

// Connection and handshake timeouts of the driver's clients.
const (
	fleetDialTimeout = 15 * time.Second
	fleetWriteWait   = 10 * time.Second
)

// dialFleet opens cfg.n connections, cfg.concurrency at a time, and
// starts their readers. On error every connection opened is closed.
func dialFleet(ctx context.Context, cfg fleetConfig) (*pushFleet, error) {
	f := &pushFleet{
		conns:  make([]*websocket.Conn, cfg.n),
		full:   make(chan time.Time, 1),
		probeC: make(chan arrival, 16),
	}
	dialers := make([]*websocket.Dialer, max(len(cfg.sources), 1))
	for i := range dialers {
		nd := &net.Dialer{Timeout: fleetDialTimeout}
		if len(cfg.sources) > 0 {
			nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(cfg.sources[i])}
		}
		dialers[i] = &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: fleetDialTimeout,
			ReadBufferSize:   cfg.bufSize,
			WriteBufferSize:  cfg.bufSize,
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var dialing sync.WaitGroup
	for range min(cfg.concurrency, cfg.n) {
		dialing.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.n {
					return
				}
				c, err := dialOne(ctx, dialers[i%len(dialers)], cfg, i)
				if err != nil {
					from := "default source address"
					if len(cfg.sources) > 0 {
						from = cfg.sources[i%len(cfg.sources)]
					}
					cancel(fmt.Errorf("connection %d of %d (from %s): %w", i, cfg.n, from, err))
					return
				}
				f.conns[i] = c
				f.start(i, c)
			}
		})
	}
	dialing.Wait()
	if err := context.Cause(ctx); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

func dialOne(ctx context.Context, d *websocket.Dialer, cfg fleetConfig, i int) (*websocket.Conn, error) {
	c, resp, err := d.DialContext(ctx, cfg.url(i), nil)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, err
	}
	if cfg.hello == nil {
		return c, nil
	}
	fail := func(err error) (*websocket.Conn, error) {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(fleetWriteWait))
	if err := c.WriteMessage(websocket.TextMessage, cfg.hello(i)); err != nil {
		return fail(fmt.Errorf("send connect: %w", err))
	}
	c.SetReadDeadline(time.Now().Add(fleetDialTimeout))
	_, msg, err := c.ReadMessage()
	if err != nil {
		return fail(fmt.Errorf("read connect reply: %w", err))
	}
	var rep struct {
		Op    string `json:"op"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg, &rep); err != nil || rep.Op != "reply" || rep.Error != nil {
		return fail(fmt.Errorf("connect reply %s", msg))
	}
	c.SetReadDeadline(time.Time{})
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// start answers c's pings and reads its messages until it fails.
func (f *pushFleet) start(i int, c *websocket.Conn) {
	c.SetPingHandler(func(data string) error {
		f.pings.Add(1)
		err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(fleetWriteWait))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
			return nil // as gorilla's default ping handler
		}
		return err
	})
	f.wg.Go(func() {
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				if !f.closing.Load() {
					f.mu.Lock()
					f.dropped++
					if f.dropErr == nil {
						f.dropErr = fmt.Errorf("connection %d: %w", i, err)
					}
					f.mu.Unlock()
				}
				return
			}
			if f.probe.Load() == int64(i)+1 {
				select {
				case f.probeC <- arrival{msg, time.Now()}:
				default:
				}
				continue
			}
			if f.got.Add(1) == f.want.Load() {
				select {
				case f.full <- time.Now():
				default:
				}
			}
		}
	})
}

// drops reports the connections that failed so far, with the first
// failure.
func (f *pushFleet) drops() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped, f.dropErr
}

// close closes every connection and waits for the readers.
func (f *pushFleet) close() {
	f.closing.Store(true)
	for _, c := range f.conns {
		if c != nil {
			c.Close()
		}
	}
	f.wg.Wait()
}

// broadcast counts arrivals from now on until want have arrived, calls
// send, and returns the time from just before send until the last
// arrival.
func (f *pushFleet) broadcast(ctx context.Context, want int, timeout time.Duration, send func(ctx context.Context) error) (time.Duration, error) {
	select {
	case <-f.full: // a stale signal
	default:
	}
	f.want.Store(int64(want))
	f.got.Store(0)
	start := time.Now()
	if err := send(ctx); err != nil {
		return 0, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case end := <-f.full:
		return end.Sub(start), nil
	case <-t.C:
		return 0, fmt.Errorf("%d of %d connections had the broadcast after %v", f.got.Load(), want, timeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// pushLatencies measures n pushes to connection probe, one at a time:
// from just before send(seq) until the push with {"seq":seq} arrives.
// Before them it pushes until one arrives (the route may take a moment
// to be known) and then warm more, untimed.
func (f *pushFleet) pushLatencies(ctx context.Context, probe, warm, n int, send func(ctx context.Context, seq int) error) ([]time.Duration, error) {
	f.probe.Store(int64(probe) + 1)
	defer f.probe.Store(0)
	seq := 0
	one := func(wait time.Duration) (time.Duration, error) {
		seq++
		needle := []byte(`{"seq":` + strconv.Itoa(seq) + `}`)
		start := time.Now()
		if err := send(ctx, seq); err != nil {
			return 0, err
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case a := <-f.probeC:
				if bytes.Contains(a.msg, needle) {
					return a.at.Sub(start), nil
				}
			case <-t.C:
				return 0, errNoArrival
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := one(time.Second)
		if err == nil {
			break
		}
		if !errors.Is(err, errNoArrival) || time.Now().After(deadline) {
			return nil, fmt.Errorf("first push: %w", err)
		}
	}
	lats := make([]time.Duration, 0, n)
	for i := range warm + n {
		d, err := one(10 * time.Second)
		if err != nil {
			return nil, fmt.Errorf("push %d: %w", i, err)
		}
		if i >= warm {
			lats = append(lats, d)
		}
	}
	return lats, nil
}

var errNoArrival = errors.New("the push did not arrive")
