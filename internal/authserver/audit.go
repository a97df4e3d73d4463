package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// auditQueue bounds the entries waiting to be written. A flood of bad
// credentials must not slow the requests that cause it: beyond the bound
// entries are dropped and counted.
const auditQueue = 4096

// Audit page sizes.
const (
	AuditLimitDefault = 100
	AuditLimitMax     = 1000
)

type auditMsg struct {
	e     authwire.AuditEntry
	msgID string // dedupes what every node records (a session expiry)
}

// auditor writes security events to the audit stream, off the request
// path.
type auditor struct {
	s       *Server
	q       chan auditMsg
	dropped prometheus.Counter
	events  *prometheus.CounterVec
}

func newAuditor(s *Server, reg prometheus.Registerer) *auditor {
	a := &auditor{
		s: s,
		q: make(chan auditMsg, auditQueue),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_auth_audit_dropped_total",
			Help: "Audit entries dropped because the audit writer fell behind.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mortar_auth_events_total",
			Help: "Security events by kind (login.ok, login.fail, denied, …).",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(a.dropped, a.events)
	}
	return a
}

// record queues e for the audit log.
func (a *auditor) record(e authwire.AuditEntry) { a.recordOnce("", e) }

// recordOnce queues e with a message ID: of the entries with one ID
// written within the stream's duplicate window, one is kept.
func (a *auditor) recordOnce(msgID string, e authwire.AuditEntry) {
	e.Time = a.s.cfg.Now().UTC()
	e.Node = a.s.cfg.NodeName
	a.events.WithLabelValues(e.Kind).Inc()
	select {
	case a.q <- auditMsg{e: e, msgID: msgID}:
	default:
		a.dropped.Inc()
	}
}

// run writes queued entries until ctx ends, then what is queued, for a
// short while.
func (a *auditor) run(ctx context.Context) {
	for {
		select {
		case m := <-a.q:
			a.write(ctx, m)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			for {
				select {
				case m := <-a.q:
					a.write(fctx, m)
				default:
					return
				}
			}
		}
	}
}

func (a *auditor) write(ctx context.Context, m auditMsg) {
	b, err := json.Marshal(m.e)
	if err != nil {
		return
	}
	msg := nats.NewMsg(store.AuditPrefix + m.e.Kind)
	msg.Data = b
	if m.msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, m.msgID)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := a.s.st.JetStream().PublishMsg(wctx, msg); err != nil && ctx.Err() == nil {
		a.s.log.Warn("audit write failed", "kind", m.e.Kind, "err", err)
	}
}

// query reads the audit log.
func (s *Server) auditQuery(ctx context.Context, req *authwire.AuditRequest) (*authwire.AuditResponse, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = AuditLimitDefault
	}
	limit = min(limit, AuditLimitMax)
	filter := store.AuditPrefix + ">"
	if req.Kind != "" {
		if strings.ContainsAny(req.Kind, " \t\r\n") || strings.HasPrefix(req.Kind, ".") || strings.HasSuffix(req.Kind, ".") || strings.Contains(req.Kind, "..") {
			return nil, mortar.Errorf(mortar.CodeInvalidArgument, "kind %q: want a subject filter like login.* or denied", req.Kind)
		}
		filter = store.AuditPrefix + req.Kind
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
	switch {
	case req.After > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, req.After+1
	case !req.Since.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &req.Since
	}
	info, err := s.st.Audit.Info(ctx)
	if err != nil {
		return nil, store.APIError(err)
	}
	resp := &authwire.AuditResponse{Entries: []authwire.AuditEntry{}}
	if info.State.Msgs == 0 || (req.After > 0 && req.After >= info.State.LastSeq) {
		return resp, nil
	}
	c, err := s.st.Audit.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, store.APIError(err)
	}
	for len(resp.Entries) < limit {
		batch, err := c.FetchNoWait(limit - len(resp.Entries))
		if err != nil {
			return nil, store.APIError(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			var e authwire.AuditEntry
			if json.Unmarshal(m.Data(), &e) != nil {
				continue
			}
			e.Seq = md.Sequence.Stream
			resp.Entries = append(resp.Entries, e)
			if md.NumPending == 0 {
				return resp, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, store.APIError(err)
		}
		if n == 0 {
			return resp, nil
		}
	}
	resp.Next = resp.Entries[len(resp.Entries)-1].Seq
	return resp, nil
}
