package taskwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mortarhq/mortar/internal/msgpack"
	"github.com/nats-io/nats.go"
)

// Celery's protocol 2 headers, and mortar's own.
const (
	HdrLang       = "lang"
	HdrTask       = "task"
	HdrID         = "id"
	HdrRootID     = "root_id"
	HdrParentID   = "parent_id"
	HdrGroup      = "group"
	HdrRetries    = "retries"
	HdrETA        = "eta"
	HdrExpires    = "expires"
	HdrTimeLimit  = "timelimit"
	HdrArgsRepr   = "argsrepr"
	HdrKwargsRepr = "kwargsrepr"
	HdrOrigin     = "origin"
	// HdrPriority is the task's band: high or low; absent means normal.
	// It names the subject the task waits on (BandSubject).
	HdrPriority = "priority"
	// HdrContentType is Celery's content_type property. Only JSON is
	// understood; absent means JSON.
	HdrContentType = "content-type"

	// HdrIgnoreResult "1": store no result.
	HdrIgnoreResult = "mortar-ignore-result"
	// HdrMaxRetries: retries allowed after the first run; absent means
	// the worker's policy for the task.
	HdrMaxRetries = "mortar-max-retries"
	// HdrBackoff "min,max" in seconds: the bounds of the exponential
	// backoff between retries; absent means the worker's policy.
	HdrBackoff = "mortar-backoff"
	// HdrSchedule names the schedule that sent the task; such a task
	// has no id header (one message fires many times): the worker names
	// each run <schedule>-<stream sequence>.
	HdrSchedule = "mortar-schedule"
	// HdrExpiresIn (seconds) bounds how long after it was queued a
	// task may start: a schedule's runs use it, as each has its own time.
	HdrExpiresIn = "mortar-expires-in"
	// HdrScheduleDef holds a schedule's definition (JSON) on its
	// message, for listing.
	HdrScheduleDef = "mortar-schedule-def"
	// HdrReason says why a dead letter died (a TaskError type), and
	// HdrError how.
	HdrReason = "mortar-reason"
	HdrError  = "mortar-error"
)

// The body encodings: JSON, and msgpack (Celery's names). A worker reads
// a msgpack body into JSON; a message mortar writes is JSON.
const (
	ContentJSON    = "application/json"
	ContentMsgpack = "application/x-msgpack"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("task: malformed message")

// Message is one task message: Celery's headers and body.
type Message struct {
	Task     string // the task's registered name
	ID       string
	RootID   string // the first task of the workflow; ID when alone (then not sent)
	ParentID string // the task that sent this one, if any
	Group    string // the group this task belongs to, if any
	Lang     string // the sender's language ("go" from the SDK)
	Origin   string // the sender, host and process
	Schedule string // the schedule that sent it, if any
	Band     string // BandHigh, BandNormal or BandLow
	Retries  int    // runs before this one that ended in a retry

	ETA       time.Time     // not before; zero means now
	Expires   time.Time     // never started after; zero means never
	ExpiresIn time.Duration // never started this long after it was queued; 0 means never

	SoftLimit time.Duration // the handler's ctx ends; 0 means none
	HardLimit time.Duration // the worker abandons the run; 0 means none

	ArgsRepr, KwargsRepr string // for monitors and logs

	IgnoreResult bool
	MaxRetries   int           // -1: the worker's policy
	BackoffMin   time.Duration // 0 with BackoffMax 0: the worker's policy
	BackoffMax   time.Duration

	// Headers are the sender's own headers: any header that is neither
	// one of the above nor the engine's (Nats-…).
	Headers map[string]string

	Args   json.RawMessage // a JSON array; nil means []
	Kwargs json.RawMessage // a JSON object; nil means {}
	Embed  Embed
}

// Embed is the third element of the body: what runs after the task.
type Embed struct {
	Callbacks []Signature `json:"callbacks"` // link: run with the result on success
	Errbacks  []Signature `json:"errbacks"`  // link_error: run on failure
	Chain     []Signature `json:"chain"`     // the rest of a chain, last first (as Celery)
	Chord     *Signature  `json:"chord"`     // the chord body this task's group joins into
}

func (e *Embed) empty() bool {
	return len(e.Callbacks) == 0 && len(e.Errbacks) == 0 && len(e.Chain) == 0 && e.Chord == nil
}

// Signature is a task call written down to be sent later, as Celery's.
type Signature struct {
	Task        string          `json:"task"`
	Args        json.RawMessage `json:"args"`
	Kwargs      json.RawMessage `json:"kwargs"`
	Options     map[string]any  `json:"options"`
	SubtaskType *string         `json:"subtask_type"`
	Immutable   bool            `json:"immutable"`
}

// NewMsg lays m out as a NATS message on subject.
func (m *Message) NewMsg(subject string) *nats.Msg {
	msg := &nats.Msg{Subject: subject, Header: make(nats.Header, 8+len(m.Headers))}
	h := msg.Header
	for k, v := range m.Headers {
		h[k] = []string{v}
	}
	vals := make([]string, 0, 8) // one allocation for the usual headers' values
	set := func(k, v string) {
		if v == "" {
			return
		}
		if len(vals) == cap(vals) {
			vals = make([]string, 0, 8)
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HdrLang, m.Lang)
	set(HdrTask, m.Task)
	set(HdrID, m.ID)
	if m.RootID != m.ID {
		set(HdrRootID, m.RootID) // absent: the task is its own root
	}
	set(HdrParentID, m.ParentID)
	set(HdrGroup, m.Group)
	set(HdrOrigin, m.Origin)
	set(HdrSchedule, m.Schedule)
	set(HdrPriority, m.Band)
	set(HdrArgsRepr, m.ArgsRepr)
	set(HdrKwargsRepr, m.KwargsRepr)
	if m.Retries > 0 {
		set(HdrRetries, strconv.Itoa(m.Retries))
	}
	if !m.ETA.IsZero() {
		set(HdrETA, formatTime(m.ETA))
	}
	if !m.Expires.IsZero() {
		set(HdrExpires, formatTime(m.Expires))
	}
	if m.SoftLimit > 0 || m.HardLimit > 0 {
		set(HdrTimeLimit, seconds(m.SoftLimit)+","+seconds(m.HardLimit))
	}
	if m.IgnoreResult {
		set(HdrIgnoreResult, "1")
	}
	if m.ExpiresIn > 0 {
		set(HdrExpiresIn, seconds(m.ExpiresIn))
	}
	if m.MaxRetries >= 0 {
		set(HdrMaxRetries, strconv.Itoa(m.MaxRetries))
	}
	if m.BackoffMin > 0 || m.BackoffMax > 0 {
		set(HdrBackoff, seconds(m.BackoffMin)+","+seconds(m.BackoffMax))
	}
	msg.Data = m.AppendBody(nil)
	return msg
}

// AppendBody appends the JSON body [args, kwargs, embed] to b.
func (m *Message) AppendBody(b []byte) []byte {
	b = append(b, '[')
	b = appendOr(b, m.Args, "[]")
	b = append(b, ',')
	b = appendOr(b, m.Kwargs, "{}")
	b = append(b, ',')
	if m.Embed.empty() {
		b = append(b, "{}"...)
	} else {
		e, _ := json.Marshal(&m.Embed) // only strings, raw JSON and maps of decoded JSON
		b = append(b, e...)
	}
	return append(b, ']')
}

func appendOr(b, v []byte, empty string) []byte {
	if len(v) == 0 {
		return append(b, empty...)
	}
	return append(b, v...)
}

// seconds writes d as Celery writes time limits: seconds, empty for none.
func seconds(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// Decode reads a task message from its headers and body. Every error
// wraps ErrMalformed and says which part is wrong.
func Decode(h nats.Header, data []byte) (*Message, error) {
	m := &Message{MaxRetries: -1}
	msgpackBody := false
	bad := func(part string, err error) (*Message, error) {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, part, err)
	}
	if len(data) > MaxMessageBytes {
		return bad("body", fmt.Errorf("%d bytes, over %d", len(data), MaxMessageBytes))
	}
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		v := vs[0]
		var err error
		switch k {
		case HdrTask:
			m.Task, err = v, CheckName(v)
		case HdrID:
			m.ID, err = v, CheckID(v)
		case HdrRootID:
			m.RootID, err = v, CheckID(v)
		case HdrParentID:
			m.ParentID, err = v, CheckID(v)
		case HdrGroup:
			m.Group, err = v, CheckID(v)
		case HdrLang:
			m.Lang = v
		case HdrOrigin:
			m.Origin = v
		case HdrPriority:
			m.Band = v
			if v != BandHigh && v != BandLow {
				err = fmt.Errorf("%q: want high or low (absent: normal)", v)
			}
		case HdrSchedule:
			m.Schedule, err = v, CheckQueue(v)
		case HdrArgsRepr:
			m.ArgsRepr = v
		case HdrKwargsRepr:
			m.KwargsRepr = v
		case HdrRetries:
			m.Retries, err = count(v)
		case HdrETA:
			m.ETA, err = parseTime(v)
		case HdrExpires:
			m.Expires, err = parseTime(v)
		case HdrTimeLimit:
			m.SoftLimit, m.HardLimit, err = pair(v)
		case HdrIgnoreResult:
			m.IgnoreResult = v == "1" || strings.EqualFold(v, "true")
		case HdrExpiresIn:
			m.ExpiresIn, err = secs(v)
		case HdrMaxRetries:
			m.MaxRetries, err = count(v)
		case HdrBackoff:
			m.BackoffMin, m.BackoffMax, err = pair(v)
		case HdrContentType:
			switch v {
			case ContentJSON:
			case ContentMsgpack:
				msgpackBody = true
			default:
				err = fmt.Errorf("%q: want %s or %s", v, ContentJSON, ContentMsgpack)
			}
		default:
			if !strings.HasPrefix(k, "Nats-") && !strings.HasPrefix(k, "mortar-") {
				if m.Headers == nil {
					m.Headers = map[string]string{}
				}
				m.Headers[k] = v
			}
		}
		if err != nil {
			return bad("header "+k, err)
		}
	}
	if m.Task == "" {
		return bad("header "+HdrTask, errors.New("missing"))
	}
	if m.ID == "" && m.Schedule == "" {
		return bad("header "+HdrID, errors.New("missing"))
	}
	if m.RootID == "" {
		m.RootID = m.ID
	}
	if msgpackBody {
		var err error
		if data, err = msgpackToJSON(data); err != nil {
			return bad("body", err)
		}
	}
	if err := m.decodeBody(data); err != nil {
		return bad("body", err)
	}
	return m, nil
}

func (m *Message) decodeBody(data []byte) error {
	if !json.Valid(data) {
		return errors.New("not JSON")
	}
	parts := SplitArray(bytes.TrimSpace(data))
	if parts == nil {
		return errors.New("want [args, kwargs, embed]")
	}
	if len(parts) != 3 {
		return fmt.Errorf("want [args, kwargs, embed], got %d elements", len(parts))
	}
	if parts[0][0] != '[' {
		return errors.New("args: want a JSON array")
	}
	if parts[1][0] != '{' {
		return errors.New("kwargs: want a JSON object")
	}
	m.Args, m.Kwargs = parts[0], parts[1]
	switch e := parts[2]; {
	case string(e) == "null" || string(e) == "{}":
	case e[0] != '{':
		return errors.New("embed: want a JSON object")
	default:
		if err := json.Unmarshal(e, &m.Embed); err != nil {
			return fmt.Errorf("embed: %v", err)
		}
	}
	return nil
}

// SplitArray returns the elements of the valid JSON array b, each
// without surrounding space and sharing b's memory, or nil if b is not
// an array. It is the hot path of every task a worker takes: no
// allocation beyond the slice, no second parse.
func SplitArray(b []byte) [][]byte {
	if len(b) < 2 || b[0] != '[' {
		return nil
	}
	parts := make([][]byte, 0, 3)
	depth, start, inStr, esc := 0, 1, false, false
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			depth++
		case (c == ']' || c == '}') && depth > 0:
			depth--
		case c == ',' && depth == 0, c == ']' && depth == 0:
			if el := bytes.TrimSpace(b[start:i]); len(el) > 0 {
				parts = append(parts, el)
			}
			start = i + 1
		}
	}
	return parts
}

// msgpackToJSON reads a msgpack body, [args, kwargs, embed], as JSON.
func msgpackToJSON(data []byte) ([]byte, error) {
	v, rest, err := msgpack.ReadAny(data)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%d bytes after the msgpack body", len(rest))
	}
	parts, ok := v.([]any)
	if !ok || len(parts) != 3 {
		return nil, errors.New("want the msgpack array [args, kwargs, embed]")
	}
	if _, ok := parts[1].(map[string]any); !ok && parts[1] != nil {
		return nil, errors.New("kwargs: want a map with string keys")
	}
	if parts[1] == nil {
		parts[1] = map[string]any{}
	}
	b, err := json.Marshal(parts)
	if err != nil {
		return nil, fmt.Errorf("a value JSON cannot hold: %v", err)
	}
	return b, nil
}

func count(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a count", s)
	}
	return n, nil
}

// pair reads "a,b", each seconds or empty.
func pair(s string) (a, b time.Duration, err error) {
	x, y, ok := strings.Cut(s, ",")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want two numbers of seconds, a comma between", s)
	}
	if a, err = secs(x); err == nil {
		b, err = secs(y)
	}
	return a, b, err
}

func secs(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e9 {
		return 0, fmt.Errorf("%q: want seconds", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// DeadLetter is the dead letter of a task message (its headers h and body
// data) of queue q: the same message on DeadSubject(q), without the
// engine's headers, with the reason (a task.TaskError type) and the
// error, de-duplicated by msgID.
func DeadLetter(h nats.Header, data []byte, q, reason, why, msgID string) *nats.Msg {
	d := &nats.Msg{Subject: DeadSubject(q), Header: nats.Header{}, Data: data}
	for k, v := range h {
		if !strings.HasPrefix(k, "Nats-") {
			d.Header[k] = v
		}
	}
	d.Header.Set(HdrReason, reason)
	d.Header.Set(HdrError, why)
	d.Header.Set("Nats-Msg-Id", msgID)
	return d
}
