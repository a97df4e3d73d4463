// Package configserver is the control-plane half of the configuration
// center: it serves the config API operations (versioned writes with
// compare-and-set, history, diff, rollback, gray release, namespaces) on
// top of the one config stream that internal/store lays out. It keeps no
// state of its own: every node answers from the stream, and watchers get
// changes from the stream's republish, not from this server.
package configserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/api"
	"github.com/mortarhq/mortar/internal/configwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Server.
type Config struct {
	Store    *store.Store
	Conn     *nats.Conn
	NodeName string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics is where the server registers its metrics; nil means
	// nowhere.
	Metrics prometheus.Registerer
}

// Server is the config center's control-plane half on one node.
type Server struct {
	st    *store.Store
	log   *slog.Logger
	cache lastCache // last message per subject, a guess for writes

	writes   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// maxAttempts bounds the read-then-compare-and-set loop of one
// unconditional write under contention.
const maxAttempts = 32

// readTimeout bounds a write's read of the key's last message.
const readTimeout = 2 * time.Second

// headerRequestID is stored on every message a request writes, so that a
// retried request finds its own write.
const headerRequestID = "Mortar-Request-Id"

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("configserver: no store")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		st:  cfg.Store,
		log: log.With("component", "config"),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mortar_config_writes_total",
			Help: "Config writes by operation and result (ok, or an error code).",
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mortar_config_write_duration_seconds",
			Help:    "Config write time (read, compare-and-set publish, acknowledgement) by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
	}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(s.writes); err != nil {
			return nil, fmt.Errorf("configserver: metrics: %w", err)
		}
		if err := cfg.Metrics.Register(s.duration); err != nil {
			return nil, fmt.Errorf("configserver: metrics: %w", err)
		}
	}
	return s, nil
}

// Run serves until ctx ends. The server has no background work: the
// operations run on the API mux's goroutines.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Register adds the config center's operations to mux.
func (s *Server) Register(mux *api.Mux) {
	const read, write = "config:read:{NS|" + configwire.DefaultNS + "}", "config:write:{NS|" + configwire.DefaultNS + "}"
	handle(mux, "config.get", read, s.get)
	handle(mux, "config.list", read, s.list)
	handle(mux, "config.history", read, s.history)
	handle(mux, "config.diff", read, s.diff)
	handleWrite(s, mux, "config.set", write, s.set)
	handleWrite(s, mux, "config.delete", write, s.delete)
	handleWrite(s, mux, "config.rollback", write, s.rollback)
	handleWrite(s, mux, "config.gray.set", write, s.graySet)
	handle(mux, "config.gray.get", read, s.grayGet)
	handleWrite(s, mux, "config.gray.promote", write, s.grayPromote)
	handleWrite(s, mux, "config.gray.abandon", write, s.grayAbandon)
	handleWrite(s, mux, "config.ns.create", "config:admin:{NS}", s.nsCreate)
	handle(mux, "config.ns.list", "config:read", s.nsList)
	handleWrite(s, mux, "config.ns.delete", "config:admin:{NS}", s.nsDelete)
}

// handle registers a typed operation: the body decodes strictly into Req.
func handle[Req any](mux *api.Mux, op, perm string, fn func(ctx context.Context, reqID string, req *Req) (any, error)) {
	mux.Handle(op, api.Typed(perm, func(ctx context.Context, reqID string, req *Req) (any, error) {
		out, err := fn(ctx, reqID, req)
		return out, store.APIError(err)
	}))
}

// handleWrite is handle with write metrics.
func handleWrite[Req any](s *Server, mux *api.Mux, op, perm string, fn func(ctx context.Context, reqID string, req *Req) (any, error)) {
	handle(mux, op, perm, func(ctx context.Context, reqID string, req *Req) (any, error) {
		start := time.Now()
		out, err := fn(ctx, reqID, req)
		s.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		result := "ok"
		if err != nil {
			result = string(mortar.ErrorCode(store.APIError(err)))
		}
		s.writes.WithLabelValues(op, result).Inc()
		return out, err
	})
}

func invalid(format string, args ...any) error {
	return mortar.Errorf(mortar.CodeInvalidArgument, format, args...)
}

// checkKey validates and defaults k.
func checkKey(k *configwire.Key) error {
	k.NS = cmp.Or(k.NS, configwire.DefaultNS)
	if !configwire.ValidName(k.NS) {
		return invalid("namespace %q: want 1 to 64 of [A-Za-z0-9_-]", k.NS)
	}
	if !configwire.ValidName(k.Group) {
		return invalid("group %q: want 1 to 64 of [A-Za-z0-9_-]", k.Group)
	}
	if err := configwire.CheckKey(k.Key); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// checkWrite validates and defaults the key of a write, and its author
// and comment.
func checkWrite(k *configwire.Key, author, comment string) error {
	if err := checkKey(k); err != nil {
		return err
	}
	return checkMeta(author, comment)
}

func checkMeta(author, comment string) error {
	if len(author) > configwire.MaxAuthorBytes {
		return invalid("author is longer than %d bytes", configwire.MaxAuthorBytes)
	}
	if len(comment) > configwire.MaxCommentBytes {
		return invalid("comment is longer than %d bytes", configwire.MaxCommentBytes)
	}
	return nil
}

// checkValue validates a value and its content type.
func checkValue(v configwire.Value, contentType string) ([]byte, error) {
	data, ok := v.Bytes()
	if !ok {
		return nil, invalid("give the value in exactly one of value and value_base64")
	}
	if len(data) > configwire.MaxValueBytes {
		return nil, mortar.Errorf(mortar.CodeTooLarge, "value is %d bytes, more than %d", len(data), configwire.MaxValueBytes)
	}
	if !configwire.ValidContentType(contentType) {
		return nil, invalid("content type %q: want one of %v", contentType, configwire.ContentTypes)
	}
	if err := configwire.CheckContent(contentType, data); err != nil {
		return nil, invalid("%v", err)
	}
	return data, nil
}

// stored is one decoded message of the stream.
type stored struct {
	seq  uint64
	rec  *configwire.Record
	data []byte
	hdr  nats.Header
}

func decode(m *jetstream.RawStreamMsg) (*stored, error) {
	rec, err := configwire.DecodeRecord(m.Header, m.Data)
	if err != nil {
		return nil, fmt.Errorf("configserver: %s seq %d: %w", m.Subject, m.Sequence, err)
	}
	return &stored{seq: m.Sequence, rec: rec, data: m.Data, hdr: m.Header}, nil
}

// last returns the last message on subj, or nil.
func (s *Server) last(ctx context.Context, subj string) (*stored, error) {
	m, err := s.st.ConfigLast(ctx, subj)
	if err != nil || m == nil {
		return nil, err
	}
	return decode(m)
}

// live reports whether a value or gray record is current (not a
// tombstone or a cleared gray).
func (st *stored) live() bool { return st != nil && !st.rec.Deleted }

func (st *stored) version() uint64 {
	if st == nil {
		return 0
	}
	return st.rec.Version
}

// checkNS answers not_found for a namespace that does not exist.
func (s *Server) checkNS(ctx context.Context, ns string) error {
	if ns == configwire.DefaultNS {
		return nil
	}
	last, err := s.last(ctx, configwire.NSSubject(ns))
	if err != nil {
		return err
	}
	if !last.live() {
		return mortar.Errorf(mortar.CodeNotFound, "namespace %q does not exist; create it with config.ns.create (mortar config ns create %s)", ns, ns)
	}
	return nil
}

// build makes the next message for a subject given its last one; it
// returns a *mortar.Error to refuse (a lost user compare-and-set), or
// nil msg to report that prev already is the result.
type build func(prev *stored) (*nats.Msg, error)

// write appends to subj with compare-and-set on the subject's last
// sequence, retrying while other writers win, and applies a request ID
// once: a retried request whose write is already stored gets that write
// back.
func (s *Server) write(ctx context.Context, subj, reqID string, b build) (*stored, error) {
	for attempt := range maxAttempts {
		prev := s.cache.get(subj)
		guessed := attempt == 0 && prev != nil
		if !guessed {
			// Bounded like the publish: while the stream elects a leader
			// nobody answers, and the client should hear unavailable and
			// retry rather than wait out its whole attempt.
			rctx, cancel := context.WithTimeout(ctx, readTimeout)
			var err error
			prev, err = s.last(rctx, subj)
			cancel()
			if err != nil {
				return nil, err
			}
			s.cache.put(subj, prev)
		}
		if reqID != "" && prev != nil && prev.hdr.Get(headerRequestID) == reqID {
			return prev, nil
		}
		msg, err := b(prev)
		if guessed && (err != nil || msg == nil) {
			continue // decide on the engine's last message, not the cache's
		}
		if err != nil {
			return nil, err
		}
		if msg == nil {
			return prev, nil
		}
		msg.Subject = subj
		var prevSeq uint64
		if prev != nil {
			prevSeq = prev.seq
		}
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(prevSeq, 10))
		if reqID != "" {
			msg.Header.Set(headerRequestID, reqID)
			msg.Header.Set(jetstream.MsgIDHeader, reqID+":"+subj)
		}
		ack, err := s.st.ConfigPublish(ctx, msg)
		if isWrongLast(err) {
			continue // another writer won, or the cache was stale; re-read and re-check
		}
		if err != nil {
			s.cache.drop(subj) // the outcome is unknown
			return nil, err
		}
		if ack.Duplicate {
			m, err := s.st.ConfigGet(ctx, ack.Sequence)
			if err != nil {
				return nil, err
			}
			return decode(m)
		}
		rec, err := configwire.DecodeMeta(msg.Header)
		if err != nil {
			return nil, err
		}
		out := &stored{seq: ack.Sequence, rec: rec, data: msg.Data, hdr: msg.Header}
		s.cache.put(subj, out)
		return out, nil
	}
	return nil, mortar.Errorf(mortar.CodeConflict, "too many concurrent writers; retry")
}

func isWrongLast(err error) bool {
	apiErr, ok := errors.AsType[*jetstream.APIError](err)
	return ok && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// newMsg returns a message carrying rec (Size and SHA256 filled) and data.
func newMsg(rec *configwire.Record, data []byte) *nats.Msg {
	rec.Size = len(data)
	rec.SHA256 = configwire.Sum(data)
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	m := &nats.Msg{Header: nats.Header{}, Data: data}
	m.Header.Set(configwire.HeaderMeta, configwire.EncodeHeader(rec))
	return m
}

// checkExpected applies a user compare-and-set against prev.
func checkExpected(expected *uint64, prev *stored) error {
	if expected == nil {
		return nil
	}
	cur := uint64(0)
	if prev.live() {
		cur = prev.rec.Version
	}
	if *expected == cur {
		return nil
	}
	if *expected == 0 {
		return mortar.Errorf(mortar.CodeConflict, "key exists at version %d; expected it not to exist", cur)
	}
	if cur == 0 {
		return mortar.Errorf(mortar.CodeConflict, "key does not exist; expected version %d", *expected)
	}
	return mortar.Errorf(mortar.CodeConflict, "key is at version %d; expected version %d", cur, *expected)
}

func (s *Server) set(ctx context.Context, reqID string, req *configwire.SetRequest) (any, error) {
	if err := checkWrite(&req.Key, req.Author, req.Comment); err != nil {
		return nil, err
	}
	if _, ok := req.Value.Bytes(); !ok {
		return nil, invalid("give the value in exactly one of value and value_base64")
	}
	if err := s.checkNS(ctx, req.NS); err != nil {
		return nil, err
	}
	// Validate once against the content type given, or text; a missing
	// type inherits the current one and is revalidated in the loop.
	data, err := checkValue(req.Value, cmp.Or(req.ContentType, configwire.TypeText))
	if err != nil {
		return nil, err
	}
	subj := configwire.ValueSubject(req.NS, req.Group, req.Key.Key)
	out, err := s.write(ctx, subj, reqID, func(prev *stored) (*nats.Msg, error) {
		if err := checkExpected(req.ExpectedVersion, prev); err != nil {
			return nil, err
		}
		ct := req.ContentType
		if ct == "" {
			ct = configwire.TypeText
			if prev.live() {
				ct = prev.rec.ContentType
			}
			if err := configwire.CheckContent(ct, data); err != nil {
				return nil, invalid("%v (content type %s, kept from version %d)", err, ct, prev.version())
			}
		}
		return newMsg(&configwire.Record{
			Version: prev.version() + 1, Author: req.Author, Comment: req.Comment, ContentType: ct,
		}, data), nil
	})
	if err != nil {
		return nil, err
	}
	return out.rec.Info(out.seq), nil
}

func (s *Server) delete(ctx context.Context, reqID string, req *configwire.DeleteRequest) (any, error) {
	if err := checkWrite(&req.Key, req.Author, req.Comment); err != nil {
		return nil, err
	}
	if err := s.checkNS(ctx, req.NS); err != nil {
		return nil, err
	}
	subj := configwire.ValueSubject(req.NS, req.Group, req.Key.Key)
	out, err := s.write(ctx, subj, reqID, func(prev *stored) (*nats.Msg, error) {
		if err := checkExpected(req.ExpectedVersion, prev); err != nil {
			return nil, err
		}
		if !prev.live() {
			return nil, notFound(req.Key)
		}
		return newMsg(&configwire.Record{
			Version: prev.version() + 1, Author: req.Author, Comment: req.Comment,
			ContentType: prev.rec.ContentType, Deleted: true,
		}, nil), nil
	})
	if err != nil {
		return nil, err
	}
	return out.rec.Info(out.seq), nil
}

func notFound(k configwire.Key) error {
	return mortar.Errorf(mortar.CodeNotFound, "key %s/%s/%q does not exist", k.NS, k.Group, k.Key)
}

// resolve checks that the namespace of k (which checkKey passed) exists
// and returns k's value subject and its last message (nil: never
// written), for version.
func (s *Server) resolve(ctx context.Context, k configwire.Key) (subj string, last *stored, err error) {
	if err = s.checkNS(ctx, k.NS); err != nil {
		return "", nil, err
	}
	subj = configwire.ValueSubject(k.NS, k.Group, k.Key)
	last, err = s.last(ctx, subj)
	return subj, last, err
}

// getRevision answers config.get for the message at req.Revision, if
// it is a version of req's key.
func (s *Server) getRevision(ctx context.Context, req *configwire.GetRequest) (any, error) {
	if req.Version != 0 || req.WithGray {
		return nil, invalid("revision: give neither version nor with_gray with it")
	}
	if err := s.checkNS(ctx, req.NS); err != nil {
		return nil, err
	}
	m, err := s.st.ConfigGet(ctx, req.Revision)
	if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && m.Subject != configwire.ValueSubject(req.NS, req.Group, req.Key.Key) {
		return nil, mortar.Errorf(mortar.CodeNotFound, "key %s/%s/%q has no version at revision %d", req.NS, req.Group, req.Key.Key, req.Revision)
	}
	if err != nil {
		return nil, err
	}
	v, err := decode(m)
	if err != nil {
		return nil, err
	}
	return &configwire.GetResponse{Exists: !v.rec.Deleted, VersionInfo: v.rec.Info(v.seq), Value: configwire.MakeValue(v.data)}, nil
}

// version returns version v of subj (0 means the last), whose last
// message is last.
func (s *Server) version(ctx context.Context, k configwire.Key, subj string, last *stored, v uint64) (*stored, error) {
	if last == nil || v > last.rec.Version {
		return nil, mortar.Errorf(mortar.CodeNotFound, "key %s/%s/%q has no version %d", k.NS, k.Group, k.Key, v)
	}
	if v == 0 || v == last.rec.Version {
		return last, nil
	}
	var seq uint64
	errFound := errors.New("found")
	counts, err := s.st.ConfigSubjects(ctx, subj)
	if err != nil {
		return nil, err
	}
	err = s.st.ConfigScan(ctx, subj, counts[subj], func(sq uint64, h nats.Header) error {
		rec, err := configwire.DecodeMeta(h)
		if err == nil && rec.Version == v {
			seq = sq
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return nil, err
	}
	if seq == 0 {
		return nil, mortar.Errorf(mortar.CodeNotFound, "key %s/%s/%q has no version %d", k.NS, k.Group, k.Key, v)
	}
	m, err := s.st.ConfigGet(ctx, seq)
	if err != nil {
		return nil, err
	}
	return decode(m)
}

func (s *Server) get(ctx context.Context, _ string, req *configwire.GetRequest) (any, error) {
	if err := checkKey(&req.Key); err != nil {
		return nil, err
	}
	if req.Revision != 0 {
		return s.getRevision(ctx, req)
	}
	subj, last, err := s.resolve(ctx, req.Key)
	if err != nil {
		return nil, err
	}
	resp := &configwire.GetResponse{}
	if req.WithGray {
		g, err := s.last(ctx, configwire.GraySubject(req.NS, req.Group, req.Key.Key))
		if err != nil {
			return nil, err
		}
		if g != nil {
			resp.GrayRevision = g.seq
		}
		if g.live() {
			resp.Gray = configwire.GrayInfoOf(g.rec, g.seq, g.data)
		}
		if req.Version == 0 && !last.live() {
			if last != nil {
				resp.VersionInfo = last.rec.Info(last.seq)
			}
			return resp, nil
		}
	}
	if req.Version == 0 && !last.live() {
		return nil, notFound(req.Key)
	}
	v, err := s.version(ctx, req.Key, subj, last, req.Version)
	if err != nil {
		return nil, err
	}
	resp.Exists = !v.rec.Deleted
	resp.VersionInfo = v.rec.Info(v.seq)
	resp.Value = configwire.MakeValue(v.data)
	return resp, nil
}
