// Package api serves the node's API operations on both of its transports:
// NATS request/reply on "mortar.api.v1.<op>" (queue group "mortar-api", so
// one node of a cluster answers) and HTTP "POST /api/v1/<op>" on the admin
// port. A handler is written once, takes JSON and returns JSON or an
// error; an error's mortar.Code picks the NATS header and the HTTP status.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// MaxBodyBytes bounds a request body on both transports: a 1 MiB config
// value plus its envelope and JSON escaping.
const MaxBodyBytes = 8 << 20

// QueueGroup is the NATS queue group every node's API subscriptions join.
const QueueGroup = "mortar-api"

// handlerTimeout bounds one NATS-served request, including during
// shutdown.
const handlerTimeout = 30 * time.Second

// MaxInFlightDefault bounds the NATS requests a node handles at once.
const MaxInFlightDefault = 1024

// Request is one API call.
type Request struct {
	Op         string
	Body       []byte
	RequestID  string // stable across a client's retries; may be empty
	Credential string // the caller's bearer credential; may be empty
	RunAs      string // the user the caller asks to run as; may be empty
	Addr       string // the caller's network address, when the transport knows it
}

// Handler serves one operation. It returns a value to encode as JSON (nil
// for {}), or an error: a *mortar.Error is passed on, anything else is
// logged and answered as internal.
type Handler func(ctx context.Context, req *Request) (any, error)

// Mux holds the operations of a node.
type Mux struct {
	mu     sync.RWMutex
	ops    map[string]Handler
	public map[string]bool // operations that need no credential
	auth   Authenticator   // nil: every request may do anything
	log    *slog.Logger

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMux returns an empty Mux logging to log and registering its metrics
// on reg (nil means none).
func NewMux(log *slog.Logger, reg prometheus.Registerer) *Mux {
	m := &Mux{
		ops:    map[string]Handler{},
		public: map[string]bool{},
		log:    log.With("component", "api"),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mortar_api_requests_total",
			Help: "API requests by operation and result code (\"ok\" or an error code).",
		}, []string{"op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mortar_api_request_duration_seconds",
			Help:    "API request handling time by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

// Handle registers op. It panics on a duplicate or malformed name: that is
// a programming error.
func (m *Mux) Handle(op string, h Handler) {
	if op == "" || strings.ContainsAny(op, " */>") {
		panic("api: bad operation name " + op)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.ops[op]; dup {
		panic("api: duplicate operation " + op)
	}
	m.ops[op] = h
}

// Ops lists the registered operations, sorted.
func (m *Mux) Ops() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ops := make([]string, 0, len(m.ops))
	for op := range m.ops {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// Call runs op in process: the same path as the NATS and HTTP transports
// without the encoding of the reply. With an Authenticator it
// authenticates req.Credential first, and the handler runs with the
// subject in its ctx (auth.SubjectFrom).
func (m *Mux) Call(ctx context.Context, req *Request) (out []byte, err error) {
	m.mu.RLock()
	h, public, a := m.ops[req.Op], m.public[req.Op], m.auth
	m.mu.RUnlock()
	if h == nil {
		m.requests.WithLabelValues("unknown", string(mortar.CodeNotFound)).Inc()
		return nil, mortar.Errorf(mortar.CodeNotFound, "unknown operation %q", req.Op)
	}
	start := time.Now()
	defer func() {
		m.duration.WithLabelValues(req.Op).Observe(time.Since(start).Seconds())
		code := "ok"
		if err != nil {
			code = string(mortar.ErrorCode(err))
		}
		m.requests.WithLabelValues(req.Op, code).Inc()
	}()
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("api handler panicked", "op", req.Op, "panic", p)
			err = mortar.Errorf(mortar.CodeInternal, "internal error")
		}
	}()
	subject, err := m.subject(ctx, req, a, public)
	if err != nil {
		return nil, err
	}
	if subject != nil {
		ctx = auth.WithSubject(ctx, subject)
	}
	v, err := h(ctx, req)
	if err != nil && a != nil && denied(err) {
		a.Denied(ctx, subject, req.Op, mortar.ErrorMessage(err))
	}
	if err != nil {
		if _, ok := errors.AsType[*mortar.Error](err); !ok && ctx.Err() == nil {
			m.log.Error("api operation failed", "op", req.Op, "err", err)
		}
		return nil, err
	}
	if v == nil {
		return []byte("{}"), nil
	}
	out, err = json.Marshal(v)
	if err != nil {
		m.log.Error("api encode reply", "op", req.Op, "err", err)
		return nil, mortar.Errorf(mortar.CodeInternal, "internal error")
	}
	return out, nil
}

// errorBody is the JSON body of every error reply.
func errorBody(err error) (mortar.Code, []byte) {
	e := mortar.Error{Code: mortar.ErrorCode(err), Message: mortar.ErrorMessage(err)}
	b, _ := json.Marshal(e)
	return e.Code, b
}

// ServeHTTP serves "POST /api/v1/<op>" with a JSON body.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.URL.Path, "/api/v1/")
	if !ok || op == "" {
		writeHTTP(w, nil, mortar.Errorf(mortar.CodeNotFound, "no such path %s", r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeHTTP(w, nil, mortar.Errorf(mortar.CodeInvalidArgument, "%s %s: use POST with a JSON body", r.Method, r.URL.Path))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			err = mortar.Errorf(mortar.CodeTooLarge, "request body exceeds %d bytes", MaxBodyBytes)
		} else {
			err = mortar.Errorf(mortar.CodeInvalidArgument, "read body: %v", err)
		}
		writeHTTP(w, nil, err)
		return
	}
	out, err := m.Call(r.Context(), &Request{
		Op:         op,
		Body:       body,
		RequestID:  r.Header.Get(mortar.HeaderRequestID),
		Credential: BearerCredential(r.Header.Get(mortar.HeaderAuthorization)),
		RunAs:      r.Header.Get(mortar.HeaderRunAs),
		Addr:       r.RemoteAddr,
	})
	writeHTTP(w, out, err)
}

func writeHTTP(w http.ResponseWriter, out []byte, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code, body := errorBody(err)
		w.WriteHeader(code.HTTPStatus())
		w.Write(append(body, '\n'))
		return
	}
	w.Write(append(out, '\n'))
}

// ServeNATS subscribes to every operation on nc, calls subscribed (if not
// nil) once the subscription is in place, and serves requests until ctx
// ends; it returns after in-flight requests finish. maxInFlight
// bounds concurrent requests (0 means MaxInFlightDefault); beyond it a
// request waits, which NATS's per-subscription pending limits bound.
func (m *Mux) ServeNATS(ctx context.Context, nc *nats.Conn, maxInFlight int, subscribed func()) error {
	if maxInFlight <= 0 {
		maxInFlight = MaxInFlightDefault
	}
	sem := make(chan struct{}, maxInFlight)
	// Handlers outlive ctx so that shutdown lets a write finish; each is
	// bounded by handlerTimeout.
	base := context.WithoutCancel(ctx)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
	)
	handle := func(msg *nats.Msg) {
		op := strings.TrimPrefix(msg.Subject, mortar.APISubjectPrefix)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if closed {
			<-sem
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			hctx, cancel := context.WithTimeout(base, handlerTimeout)
			defer cancel()
			out, err := m.Call(hctx, &Request{
				Op:         op,
				Body:       msg.Data,
				RequestID:  msg.Header.Get(mortar.HeaderRequestID),
				Credential: BearerCredential(msg.Header.Get(mortar.HeaderAuthorization)),
				RunAs:      msg.Header.Get(mortar.HeaderRunAs),
			})
			reply := nats.NewMsg(msg.Reply)
			if err != nil {
				code, body := errorBody(err)
				reply.Header.Set(mortar.HeaderError, string(code))
				reply.Data = body
			} else {
				reply.Data = out
			}
			if msg.Reply != "" {
				if err := nc.PublishMsg(reply); err != nil {
					m.log.Warn("api reply failed", "op", op, "err", err)
				}
			}
		})
	}
	sub, err := nc.QueueSubscribe(mortar.APISubjectPrefix+">", QueueGroup, handle)
	if err != nil {
		return fmt.Errorf("api: subscribe: %w", err)
	}
	if err := sub.SetPendingLimits(64*1024, 256<<20); err != nil {
		return fmt.Errorf("api: subscribe: %w", err)
	}
	// Once the server has the interest, requests reach this node.
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("api: subscribe: %w", err)
	}
	if subscribed != nil {
		subscribed()
	}
	<-ctx.Done()
	sub.Unsubscribe()
	mu.Lock()
	closed = true
	mu.Unlock()
	wg.Wait()
	return nil
}

// Decode decodes a JSON request body strictly into a T: unknown fields
// and trailing data are invalid_argument errors. An empty body is {}.
func Decode[T any](body []byte) (T, error) {
	var v T
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, mortar.Errorf(mortar.CodeInvalidArgument, "malformed request body: %v", err)
	}
	if dec.More() {
		return v, mortar.Errorf(mortar.CodeInvalidArgument, "malformed request body: trailing data")
	}
	return v, nil
}

// Typed adapts fn, which takes the request ID and the request body
// decoded strictly (Decode) into a Req, to a Handler that first checks
// the permission perm asks of the request (see perm in guard.go for the
// template; "" asks only for an authenticated caller). It panics on a
// malformed template.
func Typed[Req any](perm string, fn func(ctx context.Context, reqID string, req *Req) (any, error)) Handler {
	p := compilePerm[Req](perm)
	return func(ctx context.Context, r *Request) (any, error) {
		req, err := Decode[Req](r.Body)
		if err != nil {
			return nil, err
		}
		if err := checkRequest(ctx, p, &req); err != nil {
			return nil, err
		}
		return fn(ctx, r.RequestID, &req)
	}
}

// BearerCredential returns the credential of an Authorization header
// value: what follows "Bearer " (any case), or the whole value when it has
// no scheme.
func BearerCredential(h string) string {
	h = strings.TrimSpace(h)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return h
}
