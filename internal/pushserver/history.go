package pushserver

import (
	"context"
	"errors"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go/jetstream"
)

// historySubject is the stream subject of a channel's history.
func historySubject(ch string) string { return store.PushHistoryPrefix + encodeName(ch) }

// position returns the offset of the channel's newest message, or 0 when
// it has none.
func (s *Server) position(ctx context.Context, ch string) (uint64, error) {
	m, err := s.hist.GetLastMsgForSubject(ctx, historySubject(ch))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Sequence, nil
}

// history returns up to limit of the channel's messages after offset,
// oldest first, and the offset of its oldest retained message (0 when
// it has none).
func (s *Server) history(ctx context.Context, ch string, after uint64, limit int) (pubs []pushwire.Publication, oldest uint64, err error) {
	subj := historySubject(ch)
	first, err := s.hist.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	oldest = first.Sequence
	next := max(after+1, oldest)
	for len(pubs) < limit {
		m := first
		if next != first.Sequence {
			m, err = s.hist.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subj))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return nil, 0, err
			}
		}
		pubs = append(pubs, pushwire.Publication{Offset: m.Sequence, Data: m.Data})
		next = m.Sequence + 1
	}
	return pubs, oldest, nil
}

// recoverChannel returns what a client that last saw r.offset missed,
// and whether that is provably all of it: history drops a channel's
// messages oldest first, so nothing after r.offset is missing when a
// message at or before r.offset is still retained, or when none after it
// ever was.
func (s *Server) recoverChannel(ctx context.Context, r subRequest) (pushwire.SubResult, error) {
	res := pushwire.SubResult{Channel: r.channel, Epoch: s.epoch}
	if r.epoch != s.epoch {
		// Another history: offsets do not compare.
		pos, err := s.position(ctx, r.channel)
		res.Offset = pos
		return res, err
	}
	pubs, oldest, err := s.history(ctx, r.channel, r.offset, s.historyLimit())
	if err != nil {
		return res, err
	}
	res.Pubs = pubs
	res.Recovered = len(pubs) == 0 || oldest <= r.offset
	res.Offset = r.offset
	if n := len(pubs); n > 0 {
		res.Offset = pubs[n-1].Offset
	}
	return res, nil
}

// historyLimit is the most messages a recovery returns: the history's
// per-channel size.
func (s *Server) historyLimit() int {
	if s.hist == nil {
		return 0
	}
	return max(int(s.hist.CachedInfo().Config.MaxMsgsPerSubject), 1)
}
