package pushwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/mortarhq/mortar/internal/msgpack"
)

// Encoding is how a connection's messages are encoded. It is chosen per
// connection: by WebSocket subprotocol, or by the first message (a JSON
// object starts with '{', a msgpack map with 0x80–0x8f, 0xde or 0xdf).
type Encoding uint8

// The encodings.
const (
	JSON Encoding = iota + 1
	Msgpack
)

func (e Encoding) String() string {
	switch e {
	case JSON:
		return "json"
	case Msgpack:
		return "msgpack"
	}
	return "unknown"
}

// DetectEncoding picks the encoding of a connection from its first
// message, or returns 0 when the bytes are neither.
func DetectEncoding(b []byte) Encoding {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	switch c := b[0]; {
	case c == '{':
		return JSON
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		return Msgpack
	}
	return 0
}

// Ops: what a message is. A client sends connect, subscribe, unsubscribe,
// publish, ping, pong and ack; the node sends reply, push, ping, pong,
// sub, unsub and disconnect.
const (
	OpConnect     = "connect"
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
	OpPublish     = "publish"
	OpPing        = "ping"
	OpPong        = "pong"
	OpAck         = "ack"
	OpReply       = "reply"
	OpPush        = "push"
	OpSub         = "sub"
	OpUnsub       = "unsub"
	OpDisconnect  = "disconnect"
)

// Message is every message of the protocol, in both directions: the
// fields an op uses are set, the rest are zero (and omitted on the wire).
// Data and Result are JSON whatever the connection's encoding: a msgpack
// connection's values are converted on the way in and out, so the node
// and its publishers handle one canonical form.
type Message struct {
	Op        string          `json:"op"`
	ID        uint64          `json:"id,omitempty"`        // a command's ID; its reply carries it back
	Client    string          `json:"client,omitempty"`    // connect: the client ID
	Token     string          `json:"token,omitempty"`     // connect: the credential
	Channel   string          `json:"channel,omitempty"`   // subscribe, unsubscribe, publish, push, sub, unsub
	Offset    uint64          `json:"offset,omitempty"`    // subscribe (last seen), push and sub (position in the channel's history)
	Epoch     string          `json:"epoch,omitempty"`     // subscribe and sub: the history's identity; offsets compare only within one epoch
	Recover   bool            `json:"recover,omitempty"`   // subscribe: send what was missed since Offset
	Ack       string          `json:"ack,omitempty"`       // push: acknowledge with this ID; ack: the ID acknowledged
	Data      json.RawMessage `json:"data,omitempty"`      // publish and push: the payload
	Result    json.RawMessage `json:"result,omitempty"`    // reply: the command's result
	Error     *Error          `json:"error,omitempty"`     // reply: why the command failed
	Code      int             `json:"code,omitempty"`      // disconnect: the close code
	Reason    string          `json:"reason,omitempty"`    // disconnect: why
	Reconnect bool            `json:"reconnect,omitempty"` // disconnect: whether the client should reconnect
}

// Error is a failed command's reason: a mortar error code and a message.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ConnectResult is the reply to connect.
type ConnectResult struct {
	Client string      `json:"client"`
	User   string      `json:"user,omitempty"`
	Conn   string      `json:"conn"`           // this connection's ID, unique in the cluster
	Node   string      `json:"node"`           // the node serving it
	Ping   int         `json:"ping"`           // seconds: the node pings after this much write silence, and the client should too
	Pong   int         `json:"pong"`           // seconds: the node closes when nothing arrives for Ping+Pong
	Subs   []SubResult `json:"subs,omitempty"` // server-side subscriptions made at connect
}

// SubResult is the reply to subscribe and the content of a sub notice.
type SubResult struct {
	Channel   string        `json:"channel"`
	Offset    uint64        `json:"offset,omitempty"`    // the channel's position: the offset of its newest message
	Epoch     string        `json:"epoch,omitempty"`     // empty when the channel keeps no history
	Recovered bool          `json:"recovered,omitempty"` // recover was asked and nothing since the client's offset is missing
	Pubs      []Publication `json:"pubs,omitempty"`      // recover: the messages after the client's offset, oldest first
}

// Last is the newest offset the result reports: its position, or its last
// recovered message.
func (r SubResult) Last() uint64 {
	if n := len(r.Pubs); n > 0 {
		return max(r.Offset, r.Pubs[n-1].Offset)
	}
	return r.Offset
}

// CheckChannel is CheckName for a channel.
func CheckChannel(ch string) error { return CheckName("channel", ch, MaxChannelLen) }

// Publication is one message of a channel's history.
type Publication struct {
	Offset uint64          `json:"offset"`
	Data   json.RawMessage `json:"data"`
}

// PublishResult is the reply to publish.
type PublishResult struct {
	Offset uint64 `json:"offset,omitempty"` // the message's offset when the channel keeps history
}

// Limits of names on the wire.
const (
	MaxClientLen  = 128
	MaxChannelLen = 255
)

// Errors of Decode and the name checks.
var (
	ErrMalformed = errors.New("pushwire: malformed message")
	ErrBadName   = errors.New("pushwire: bad name")
)

// CheckName reports whether s may be a client ID, user or channel: 1 to
// max bytes of UTF-8 without control characters or spaces.
func CheckName(kind, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%w: %s must be 1 to %d bytes", ErrBadName, kind, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrBadName, kind)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%w: %s %q holds a space or control character", ErrBadName, kind, s)
		}
	}
	return nil
}

// Decode reads one message in enc.
func Decode(enc Encoding, b []byte) (*Message, error) {
	var m Message
	switch enc {
	case JSON:
		if DetectEncoding(b) != JSON {
			return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	case Msgpack:
		if err := decodeMsgpack(b, &m); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: unknown encoding", ErrMalformed)
	}
	if m.Op == "" {
		return nil, fmt.Errorf("%w: no op", ErrMalformed)
	}
	return &m, nil
}

// Append encodes m in enc to the end of dst.
func Append(dst []byte, enc Encoding, m *Message) ([]byte, error) {
	switch enc {
	case JSON:
		return appendJSON(dst, m), nil
	case Msgpack:
		return appendMsgpack(dst, m)
	}
	return dst, fmt.Errorf("pushwire: unknown encoding %d", enc)
}

// appendJSON writes m as a JSON object by hand: pushes are encoded once
// per broadcast, and encoding/json's reflection would dominate.
func appendJSON(b []byte, m *Message) []byte {
	b = append(b, `{"op":`...)
	b = appendQuoteJSON(b, m.Op)
	if m.ID != 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendUint(b, m.ID, 10)
	}
	b = appendJSONString(b, "client", m.Client)
	b = appendJSONString(b, "token", m.Token)
	b = appendJSONString(b, "channel", m.Channel)
	if m.Offset != 0 {
		b = append(b, `,"offset":`...)
		b = strconv.AppendUint(b, m.Offset, 10)
	}
	b = appendJSONString(b, "epoch", m.Epoch)
	if m.Recover {
		b = append(b, `,"recover":true`...)
	}
	b = appendJSONString(b, "ack", m.Ack)
	if len(m.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, m.Data...)
	}
	if len(m.Result) > 0 {
		b = append(b, `,"result":`...)
		b = append(b, m.Result...)
	}
	if m.Error != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendQuoteJSON(b, m.Error.Code)
		b = append(b, `,"message":`...)
		b = appendQuoteJSON(b, m.Error.Message)
		b = append(b, '}')
	}
	if m.Code != 0 {
		b = append(b, `,"code":`...)
		b = strconv.AppendInt(b, int64(m.Code), 10)
	}
	b = appendJSONString(b, "reason", m.Reason)
	if m.Reconnect {
		b = append(b, `,"reconnect":true`...)
	}
	return append(b, '}')
}

func appendJSONString(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendQuoteJSON(b, v)
}

// appendQuoteJSON quotes s as a JSON string. strconv.Quote's escapes
// (\x, \U) are not JSON, so this is its own small loop; invalid UTF-8
// becomes U+FFFD as encoding/json does.
func appendQuoteJSON(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendMsgpack writes m as a msgpack map of its non-zero fields.
func appendMsgpack(b []byte, m *Message) ([]byte, error) {
	var data, result []byte
	var err error
	if len(m.Data) > 0 {
		if data, err = JSONToMsgpack(nil, m.Data); err != nil {
			return b, fmt.Errorf("pushwire: data: %w", err)
		}
	}
	if len(m.Result) > 0 {
		if result, err = JSONToMsgpack(nil, m.Result); err != nil {
			return b, fmt.Errorf("pushwire: result: %w", err)
		}
	}
	n := 1
	count := func(ok bool) {
		if ok {
			n++
		}
	}
	count(m.ID != 0)
	count(m.Client != "")
	count(m.Token != "")
	count(m.Channel != "")
	count(m.Offset != 0)
	count(m.Epoch != "")
	count(m.Recover)
	count(m.Ack != "")
	count(data != nil)
	count(result != nil)
	count(m.Error != nil)
	count(m.Code != 0)
	count(m.Reason != "")
	count(m.Reconnect)
	b = msgpack.AppendMapHeader(b, n)
	b = msgpack.AppendString(msgpack.AppendString(b, "op"), m.Op)
	if m.ID != 0 {
		b = msgpack.AppendUint(msgpack.AppendString(b, "id"), m.ID)
	}
	b = appendMsgpackString(b, "client", m.Client)
	b = appendMsgpackString(b, "token", m.Token)
	b = appendMsgpackString(b, "channel", m.Channel)
	if m.Offset != 0 {
		b = msgpack.AppendUint(msgpack.AppendString(b, "offset"), m.Offset)
	}
	b = appendMsgpackString(b, "epoch", m.Epoch)
	if m.Recover {
		b = msgpack.AppendBool(msgpack.AppendString(b, "recover"), true)
	}
	b = appendMsgpackString(b, "ack", m.Ack)
	if data != nil {
		b = append(msgpack.AppendString(b, "data"), data...)
	}
	if result != nil {
		b = append(msgpack.AppendString(b, "result"), result...)
	}
	if m.Error != nil {
		b = msgpack.AppendMapHeader(msgpack.AppendString(b, "error"), 2)
		b = msgpack.AppendString(msgpack.AppendString(b, "code"), m.Error.Code)
		b = msgpack.AppendString(msgpack.AppendString(b, "message"), m.Error.Message)
	}
	if m.Code != 0 {
		b = msgpack.AppendInt(msgpack.AppendString(b, "code"), int64(m.Code))
	}
	b = appendMsgpackString(b, "reason", m.Reason)
	if m.Reconnect {
		b = msgpack.AppendBool(msgpack.AppendString(b, "reconnect"), true)
	}
	return b, nil
}

func appendMsgpackString(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return msgpack.AppendString(msgpack.AppendString(b, key), v)
}

// decodeMsgpack reads a msgpack map into m. Unknown keys are skipped, so
// newer peers may add fields.
func decodeMsgpack(b []byte, m *Message) error {
	n, rest, err := msgpack.ReadMapHeader(b)
	if err != nil {
		return fmt.Errorf("%w: not a msgpack map: %v", ErrMalformed, err)
	}
	for range n {
		var key []byte
		if key, rest, err = msgpack.ReadStringBytes(rest); err != nil {
			return fmt.Errorf("%w: key: %v", ErrMalformed, err)
		}
		if rest, err = decodeMsgpackField(m, string(key), rest); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformed, key, err)
		}
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d bytes after the message", ErrMalformed, len(rest))
	}
	return nil
}

func decodeMsgpackField(m *Message, key string, b []byte) (rest []byte, err error) {
	str := func(dst *string) {
		var s []byte
		if s, rest, err = msgpack.ReadStringBytes(b); err == nil && !utf8.Valid(s) {
			err = errors.New("not UTF-8")
		}
		*dst = string(s)
	}
	switch key {
	case "op":
		str(&m.Op)
	case "id":
		m.ID, rest, err = msgpack.ReadUint(b)
	case "client":
		str(&m.Client)
	case "token":
		str(&m.Token)
	case "channel":
		str(&m.Channel)
	case "offset":
		m.Offset, rest, err = msgpack.ReadUint(b)
	case "epoch":
		str(&m.Epoch)
	case "recover":
		m.Recover, rest, err = msgpack.ReadBool(b)
	case "ack":
		str(&m.Ack)
	case "data":
		m.Data, rest, err = msgpackToJSON(b)
	case "result":
		m.Result, rest, err = msgpackToJSON(b)
	case "error":
		var v any
		if v, rest, err = msgpack.ReadAny(b); err == nil {
			em, ok := v.(map[string]any)
			if !ok {
				return b, errors.New("not a map")
			}
			code, _ := em["code"].(string)
			msg, _ := em["message"].(string)
			if !utf8.ValidString(code) || !utf8.ValidString(msg) {
				return b, errors.New("not UTF-8")
			}
			m.Error = &Error{Code: code, Message: msg}
		}
	case "code":
		var c int64
		c, rest, err = msgpack.ReadInt(b)
		m.Code = int(c)
	case "reason":
		str(&m.Reason)
	case "reconnect":
		m.Reconnect, rest, err = msgpack.ReadBool(b)
	default:
		rest, err = msgpack.Skip(b)
	}
	return rest, err
}

// msgpackToJSON converts the msgpack value at the start of b to JSON.
// Bin becomes a base64 string (as encoding/json writes []byte); maps
// need string keys; ext types and non-finite floats are refused.
func msgpackToJSON(b []byte) (json.RawMessage, []byte, error) {
	v, rest, err := msgpack.ReadAny(b)
	if err != nil {
		return nil, b, err
	}
	if err := checkJSONable(v, 0); err != nil {
		return nil, b, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, b, err
	}
	return out, rest, nil
}

func checkJSONable(v any, depth int) error {
	if depth > msgpack.MaxDepth {
		return msgpack.ErrTooDeep
	}
	switch v := v.(type) {
	case map[any]any:
		return errors.New("a map key is not a string")
	case msgpack.Ext:
		return errors.New("ext types have no JSON form")
	case []any:
		for _, e := range v {
			if err := checkJSONable(e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range v {
			if err := checkJSONable(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// JSONToMsgpack converts one JSON value to msgpack, appending to dst.
// Integers stay integers (int64, or uint64 above its range); other
// numbers become float64.
func JSONToMsgpack(dst []byte, raw []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return dst, err
	}
	if d.More() {
		return dst, errors.New("more than one JSON value")
	}
	return appendJSONValue(dst, v)
}

func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return msgpack.AppendNil(b), nil
	case bool:
		return msgpack.AppendBool(b, v), nil
	case string:
		return msgpack.AppendString(b, v), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return msgpack.AppendInt(b, i), nil
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return msgpack.AppendUint(b, u), nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return b, err
		}
		return msgpack.AppendFloat64(b, f), nil
	case []any:
		b = msgpack.AppendArrayHeader(b, len(v))
		for _, e := range v {
			var err error
			if b, err = appendJSONValue(b, e); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]any:
		b = msgpack.AppendMapHeader(b, len(v))
		for k, e := range v {
			var err error
			b = msgpack.AppendString(b, k)
			if b, err = appendJSONValue(b, e); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	return b, fmt.Errorf("unexpected JSON value %T", v)
}
