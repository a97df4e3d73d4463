package pushserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/netpoll"
	"github.com/mortarhq/mortar/internal/pushwire"
)

// handler is the event loop's view of the server.
type handler struct{ s *Server }

func (h handler) OnData(pc *netpoll.Conn, b []byte) {
	c := pc.Data().(*conn)
	c.nc.Store(pc)
	if c.closed.Load() {
		return
	}
	c.lastRead.Store(c.s.now.Load())
	var err error
	switch c.tr {
	case transportWS:
		err = c.ws.Feed(b, c.onWS)
	case transportTCP:
		err = c.frames.Feed(b, c.onMessage)
	default:
		return // SSE clients only listen
	}
	if err == nil {
		return
	}
	var we *pushwire.WSError
	var d disconnect
	switch {
	case errors.As(err, &we):
		d = disconnect{we.Code, we.Reason, false, "protocol"}
		if we.Code == pushwire.CloseTooBig {
			d = disconnectTooBig
		}
	case errors.Is(err, pushwire.ErrFrameTooLarge):
		d = disconnectTooBig
	case errors.As(err, &d):
	default:
		d = badRequest(err.Error())
	}
	c.close(d)
}

func (h handler) OnClose(pc *netpoll.Conn, err error) {
	c := pc.Data().(*conn)
	c.closed.Store(true)
	h.s.wheel.Cancel(&c.timer)
	if h.s.hub.remove(c) {
		h.s.metrics.conns.WithLabelValues(c.tr.String()).Dec()
	}
}

// Error makes a disconnect an error, so a reader callback can stop Feed
// with one.
func (d disconnect) Error() string { return d.Reason }

// onWS handles one WebSocket message or control frame.
func (c *conn) onWS(op pushwire.Opcode, payload []byte) error {
	switch op {
	case pushwire.OpcodeText, pushwire.OpcodeBinary:
		want := pushwire.JSON
		if op == pushwire.OpcodeBinary {
			want = pushwire.Msgpack
		}
		switch enc := c.encoding(); enc {
		case want:
		case 0:
			c.setEncoding(want) // only the first message sets it
		default:
			return badRequest(fmt.Sprintf("a %s frame on a %s connection", map[bool]string{true: "binary", false: "text"}[op == pushwire.OpcodeBinary], enc))
		}
		return c.onMessage(payload)
	case pushwire.OpcodePing:
		c.write(pushwire.AppendFrame(nil, pushwire.OpcodePong, payload, true, nil))
	case pushwire.OpcodeClose:
		code, _, err := pushwire.ParseClose(payload)
		if err != nil {
			return err
		}
		if code == pushwire.CloseNoStatus {
			code = pushwire.CloseNormal
		}
		c.close(disconnect{code, "", false, "client"})
	}
	return nil // pongs only refresh lastRead
}

// onMessage handles one message from the client.
func (c *conn) onMessage(payload []byte) error {
	if c.encoding() == 0 {
		c.setEncoding(pushwire.DetectEncoding(payload))
		if c.encoding() == 0 {
			return badRequest("first message is neither a JSON object nor a msgpack map")
		}
	}
	m, err := pushwire.Decode(c.encoding(), payload)
	if err != nil {
		return badRequest(err.Error())
	}
	if !c.allow(m.ID) {
		return nil
	}
	if !c.authed.Load() && m.Op != pushwire.OpConnect {
		return badRequest("connect first")
	}
	switch m.Op {
	case pushwire.OpConnect:
		return c.s.connect(c, m)
	case pushwire.OpSubscribe:
		c.s.subscribeCmd(c, m)
	case pushwire.OpUnsubscribe:
		c.s.unsubscribeCmd(c, m)
	case pushwire.OpPublish:
		c.s.publishCmd(c, m)
	case pushwire.OpPing:
		c.send(&pushwire.Message{Op: pushwire.OpPong})
	case pushwire.OpPong:
	case pushwire.OpAck:
		c.s.acks.ack(c.s.nc, m.Ack, c.id())
	default:
		c.replyErr(m.ID, mortar.Errorf(mortar.CodeInvalidArgument, "unknown op %q", m.Op))
	}
	if m.Op != pushwire.OpPing && m.Op != pushwire.OpPong {
		c.lastData.Store(c.s.now.Load())
	}
	return nil
}

// allow spends one token of the connection's rate bucket. A client out of
// tokens is refused; one that keeps sending past twice the burst is
// closed.
func (c *conn) allow(id uint64) bool {
	s := c.s
	now := s.now.Load()
	if el := now - c.tokAt; el > 0 {
		c.tokens = min(float64(s.cfg.Burst), c.tokens+time.Duration(el).Seconds()*s.cfg.Rate)
		c.tokAt = now
	}
	if c.tokens >= 1 {
		c.tokens--
		c.debt = 0
		return true
	}
	c.debt++
	s.metrics.limited.Inc()
	if c.debt > s.cfg.Burst {
		c.close(disconnectFlood)
	} else if c.authed.Load() {
		c.replyErr(id, mortar.Errorf(mortar.CodeResourceExhausted, "rate limit: %g messages per second", s.cfg.Rate))
	}
	return false
}

// reply answers command id with result (nothing when id is 0).
func (c *conn) reply(id uint64, result any) {
	if id == 0 {
		return
	}
	m := &pushwire.Message{Op: pushwire.OpReply, ID: id}
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			c.s.log.Error("push reply encode", "err", err)
			return
		}
		m.Result = b
	}
	c.send(m)
}

// replyErr answers command id with err's code and public message
// (nothing when id is 0: docs/push.md promises no reply without an id).
func (c *conn) replyErr(id uint64, err error) {
	if id == 0 {
		return
	}
	c.send(&pushwire.Message{Op: pushwire.OpReply, ID: id, Error: &pushwire.Error{
		Code:    string(mortar.ErrorCode(err)),
		Message: mortar.ErrorMessage(err),
	}})
}
