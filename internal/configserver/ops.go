package configserver

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/configwire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// History page sizes.
const (
	HistoryLimitDefault = 50
	HistoryLimitMax     = 1000
)

func (s *Server) list(ctx context.Context, _ string, req *configwire.ListRequest) (any, error) {
	req.NS = cmp.Or(req.NS, configwire.DefaultNS)
	if !configwire.ValidName(req.NS) {
		return nil, invalid("namespace %q: want 1 to 64 of [A-Za-z0-9_-]", req.NS)
	}
	if req.Group != "" && !configwire.ValidName(req.Group) {
		return nil, invalid("group %q: want 1 to 64 of [A-Za-z0-9_-]", req.Group)
	}
	if err := s.checkNS(ctx, req.NS); err != nil {
		return nil, err
	}
	group := cmp.Or(req.Group, "*")
	subjects, err := s.st.ConfigSubjects(ctx, configwire.ValuePrefix+req.NS+"."+group+".*")
	if err != nil {
		return nil, err
	}
	grays, err := s.st.ConfigSubjects(ctx, configwire.GrayPrefix+req.NS+"."+group+".*")
	if err != nil {
		return nil, err
	}
	resp := &configwire.ListResponse{Keys: []configwire.ListEntry{}}
	for subj := range subjects {
		parts := strings.Split(subj, ".")
		key, err := configwire.DecodeKey(parts[len(parts)-1])
		if err != nil {
			continue
		}
		last, err := s.last(ctx, subj)
		if err != nil {
			return nil, err
		}
		if !last.live() {
			continue
		}
		e := configwire.ListEntry{Group: parts[len(parts)-2], Key: key, VersionInfo: last.rec.Info(last.seq)}
		if gsubj := configwire.GraySubject(req.NS, e.Group, key); grays[gsubj] > 0 {
			g, err := s.last(ctx, gsubj)
			if err != nil {
				return nil, err
			}
			e.Gray = g.live()
		}
		resp.Keys = append(resp.Keys, e)
	}
	slices.SortFunc(resp.Keys, func(a, b configwire.ListEntry) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Key, b.Key))
	})
	return resp, nil
}

// versions returns the metadata of every version of subj, oldest first.
func (s *Server) versions(ctx context.Context, subj string) ([]configwire.VersionInfo, error) {
	counts, err := s.st.ConfigSubjects(ctx, subj)
	if err != nil {
		return nil, err
	}
	var out []configwire.VersionInfo
	err = s.st.ConfigScan(ctx, subj, counts[subj], func(seq uint64, h nats.Header) error {
		rec, err := configwire.DecodeMeta(h)
		if err != nil {
			return fmt.Errorf("configserver: %s seq %d: %w", subj, seq, err)
		}
		out = append(out, rec.Info(seq))
		return nil
	})
	return out, err
}

func (s *Server) history(ctx context.Context, _ string, req *configwire.HistoryRequest) (any, error) {
	if err := checkKey(&req.Key); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > HistoryLimitMax {
		return nil, invalid("limit %d: want 1 to %d (0 means %d)", req.Limit, HistoryLimitMax, HistoryLimitDefault)
	}
	limit := cmp.Or(req.Limit, HistoryLimitDefault)
	if err := s.checkNS(ctx, req.NS); err != nil {
		return nil, err
	}
	all, err := s.versions(ctx, configwire.ValueSubject(req.NS, req.Group, req.Key.Key))
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, notFound(req.Key)
	}
	resp := &configwire.HistoryResponse{Versions: []configwire.VersionInfo{}}
	for i := len(all) - 1; i >= 0; i-- {
		if req.Before != 0 && all[i].Version >= req.Before {
			continue
		}
		if len(resp.Versions) == limit {
			resp.More = true
			break
		}
		resp.Versions = append(resp.Versions, all[i])
	}
	return resp, nil
}

func (s *Server) diff(ctx context.Context, _ string, req *configwire.DiffRequest) (any, error) {
	if err := checkKey(&req.Key); err != nil {
		return nil, err
	}
	if req.From == 0 {
		return nil, invalid("from: give a version (1 or more)")
	}
	subj, last, err := s.resolve(ctx, req.Key)
	if err != nil {
		return nil, err
	}
	a, err := s.version(ctx, req.Key, subj, last, req.From)
	if err != nil {
		return nil, err
	}
	b, err := s.version(ctx, req.Key, subj, last, req.To)
	if err != nil {
		return nil, err
	}
	name := func(st *stored) string {
		n := fmt.Sprintf("%s/%s/%s@%d", req.NS, req.Group, req.Key.Key, st.rec.Version)
		if st.rec.Deleted {
			n += " (deleted)"
		}
		return n
	}
	return &configwire.DiffResponse{
		From: a.rec.Version, To: b.rec.Version,
		Diff: configwire.Diff(name(a), name(b), a.data, b.data),
	}, nil
}

func (s *Server) rollback(ctx context.Context, reqID string, req *configwire.RollbackRequest) (any, error) {
	if err := checkWrite(&req.Key, req.Author, req.Comment); err != nil {
		return nil, err
	}
	if req.To == 0 {
		return nil, invalid("to: give the version to roll back to (1 or more)")
	}
	subj, last, err := s.resolve(ctx, req.Key)
	if err != nil {
		return nil, err
	}
	target, err := s.version(ctx, req.Key, subj, last, req.To)
	if err != nil {
		return nil, err
	}
	if target.rec.Deleted {
		return nil, mortar.Errorf(mortar.CodeFailedPrecondition, "version %d is a deletion; use config.delete", req.To)
	}
	comment := cmp.Or(req.Comment, fmt.Sprintf("rollback to version %d", req.To))
	out, err := s.write(ctx, subj, reqID, func(prev *stored) (*nats.Msg, error) {
		if err := checkExpected(req.ExpectedVersion, prev); err != nil {
			return nil, err
		}
		return newMsg(&configwire.Record{
			Version: prev.version() + 1, Author: req.Author, Comment: comment,
			ContentType: target.rec.ContentType, RollbackOf: target.rec.Version,
		}, target.data), nil
	})
	if err != nil {
		return nil, err
	}
	return out.rec.Info(out.seq), nil
}

func (s *Server) graySet(ctx context.Context, reqID string, req *configwire.GraySetRequest) (any, error) {
	if err := checkWrite(&req.Key, req.Author, req.Comment); err != nil {
		return nil, err
	}
	if err := req.Rule.Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	_, main, err := s.resolve(ctx, req.Key)
	if err != nil {
		return nil, err
	}
	ct := req.ContentType
	if ct == "" {
		ct = configwire.TypeText
		if main.live() {
			ct = main.rec.ContentType
		}
	}
	data, err := checkValue(req.Value, ct)
	if err != nil {
		return nil, err
	}
	rule := req.Rule
	out, err := s.write(ctx, configwire.GraySubject(req.NS, req.Group, req.Key.Key), reqID, func(prev *stored) (*nats.Msg, error) {
		var base uint64
		if main.live() {
			base = main.rec.Version
		}
		return newMsg(&configwire.Record{
			Version: prev.version() + 1, Author: req.Author, Comment: req.Comment, ContentType: ct,
			Rule: &rule, BaseVersion: base,
		}, data), nil
	})
	if err != nil {
		return nil, err
	}
	return configwire.GrayInfoOf(out.rec, out.seq, out.data), nil
}

func (s *Server) grayGet(ctx context.Context, _ string, req *configwire.GrayRequest) (any, error) {
	if err := checkKey(&req.Key); err != nil {
		return nil, err
	}
	if err := s.checkNS(ctx, req.NS); err != nil {
		return nil, err
	}
	g, err := s.last(ctx, configwire.GraySubject(req.NS, req.Group, req.Key.Key))
	if err != nil {
		return nil, err
	}
	if !g.live() {
		return nil, noGray(req.Key)
	}
	return configwire.GrayInfoOf(g.rec, g.seq, g.data), nil
}

func noGray(k configwire.Key) error {
	return mortar.Errorf(mortar.CodeNotFound, "key %s/%s/%q has no gray release", k.NS, k.Group, k.Key)
}

func (s *Server) grayAbandon(ctx context.Context, reqID string, req *configwire.GrayRequest) (any, error) {
	if err := checkWrite(&req.Key, req.Author, req.Comment); err != nil {
		return nil, err
	}
	if err := s.checkNS(ctx, req.NS); err != nil {
		return nil, err
	}
	out, err := s.write(ctx, configwire.GraySubject(req.NS, req.Group, req.Key.Key), reqID, func(prev *stored) (*nats.Msg, error) {
		if !prev.live() {
			return nil, noGray(req.Key)
		}
		return newMsg(&configwire.Record{
			Version: prev.version() + 1, Author: req.Author, Comment: req.Comment,
			Deleted: true, Outcome: "abandoned", BaseVersion: prev.rec.BaseVersion,
		}, nil), nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"generation": out.rec.Version - 1, "revision": out.seq}, nil
}

// grayPromote writes the gray value as the next main version and clears
// the gray record in one atomic batch: both or neither, each under
// compare-and-set on its subject.
func (s *Server) grayPromote(ctx context.Context, reqID string, req *configwire.GrayRequest) (any, error) {
	if err := checkWrite(&req.Key, req.Author, req.Comment); err != nil {
		return nil, err
	}
	if err := s.checkNS(ctx, req.NS); err != nil {
		return nil, err
	}
	vsubj := configwire.ValueSubject(req.NS, req.Group, req.Key.Key)
	gsubj := configwire.GraySubject(req.NS, req.Group, req.Key.Key)
	for range maxAttempts {
		g, err := s.last(ctx, gsubj)
		if err != nil {
			return nil, err
		}
		main, err := s.last(ctx, vsubj)
		if err != nil {
			return nil, err
		}
		if reqID != "" && g != nil && g.hdr.Get(headerRequestID) == reqID && main != nil && main.hdr.Get(headerRequestID) == reqID {
			return main.rec.Info(main.seq), nil // a retry of a promote that applied
		}
		if !g.live() {
			return nil, noGray(req.Key)
		}
		comment := cmp.Or(req.Comment, fmt.Sprintf("promote gray generation %d", g.rec.Version))
		rec := &configwire.Record{
			Version: main.version() + 1, Author: req.Author, Comment: comment,
			ContentType: g.rec.ContentType, PromotedFrom: g.rec.Version,
		}
		vmsg := newMsg(rec, g.data)
		vmsg.Subject = vsubj
		gmsg := newMsg(&configwire.Record{
			Version: g.rec.Version + 1, Author: req.Author, Comment: comment,
			Deleted: true, Outcome: "promoted", BaseVersion: g.rec.BaseVersion,
		}, nil)
		gmsg.Subject = gsubj
		var mainSeq uint64
		if main != nil {
			mainSeq = main.seq
		}
		vmsg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(mainSeq, 10))
		gmsg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(g.seq, 10))
		if reqID != "" {
			vmsg.Header.Set(headerRequestID, reqID)
			gmsg.Header.Set(headerRequestID, reqID)
		}
		err = s.st.ConfigPublishAtomic(ctx, []*nats.Msg{vmsg, gmsg})
		if isWrongLast(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// The batch ack gives the last sequence; read the version back.
		v, err := s.last(ctx, vsubj)
		if err != nil {
			return nil, err
		}
		return v.rec.Info(v.seq), nil
	}
	return nil, mortar.Errorf(mortar.CodeConflict, "too many concurrent writers; retry")
}

func checkNSName(ns string) error {
	if !configwire.ValidName(ns) {
		return invalid("namespace %q: want 1 to 64 of [A-Za-z0-9_-]", ns)
	}
	return nil
}

func (s *Server) nsCreate(ctx context.Context, reqID string, req *configwire.NSRequest) (any, error) {
	if err := checkNSName(req.NS); err != nil {
		return nil, err
	}
	if err := checkMeta(req.Author, req.Comment); err != nil {
		return nil, err
	}
	if req.NS == configwire.DefaultNS {
		return nil, mortar.Errorf(mortar.CodeAlreadyExists, "namespace %q always exists", req.NS)
	}
	out, err := s.write(ctx, configwire.NSSubject(req.NS), reqID, func(prev *stored) (*nats.Msg, error) {
		if prev.live() {
			return nil, mortar.Errorf(mortar.CodeAlreadyExists, "namespace %q exists", req.NS)
		}
		return newMsg(&configwire.Record{Version: prev.version() + 1, Author: req.Author, Comment: req.Comment}, nil), nil
	})
	if err != nil {
		return nil, err
	}
	return configwire.NSInfo{NS: req.NS, Author: out.rec.Author, Time: out.rec.Time, Comment: out.rec.Comment}, nil
}

func (s *Server) nsList(ctx context.Context, _ string, _ *struct{}) (any, error) {
	subjects, err := s.st.ConfigSubjects(ctx, configwire.NSPrefix+"*")
	if err != nil {
		return nil, err
	}
	resp := &configwire.NSListResponse{Namespaces: []configwire.NSInfo{{NS: configwire.DefaultNS}}}
	for subj := range subjects {
		last, err := s.last(ctx, subj)
		if err != nil {
			return nil, err
		}
		if last.live() {
			ns := strings.TrimPrefix(subj, configwire.NSPrefix)
			resp.Namespaces = append(resp.Namespaces, configwire.NSInfo{NS: ns, Author: last.rec.Author, Time: last.rec.Time, Comment: last.rec.Comment})
		}
	}
	slices.SortFunc(resp.Namespaces, func(a, b configwire.NSInfo) int { return cmp.Compare(a.NS, b.NS) })
	return resp, nil
}

// nsDelete deletes an empty namespace. Its keys' history stays in the
// stream; creating the namespace again shows it.
func (s *Server) nsDelete(ctx context.Context, reqID string, req *configwire.NSRequest) (any, error) {
	if err := checkNSName(req.NS); err != nil {
		return nil, err
	}
	if err := checkMeta(req.Author, req.Comment); err != nil {
		return nil, err
	}
	if req.NS == configwire.DefaultNS {
		return nil, mortar.Errorf(mortar.CodeFailedPrecondition, "the default namespace cannot be deleted")
	}
	_, err := s.write(ctx, configwire.NSSubject(req.NS), reqID, func(prev *stored) (*nats.Msg, error) {
		if !prev.live() {
			return nil, mortar.Errorf(mortar.CodeNotFound, "namespace %q does not exist", req.NS)
		}
		keys, err := s.list(ctx, "", &configwire.ListRequest{NS: req.NS})
		if err != nil {
			return nil, err
		}
		if n := len(keys.(*configwire.ListResponse).Keys); n > 0 {
			return nil, mortar.Errorf(mortar.CodeFailedPrecondition, "namespace %q has %d keys; delete them first", req.NS, n)
		}
		return newMsg(&configwire.Record{Version: prev.version() + 1, Author: req.Author, Comment: req.Comment, Deleted: true}, nil), nil
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
