package configwire

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// Headers the stream adds to a republished message.
const (
	hdrSequence     = "Nats-Sequence"
	hdrLastSequence = "Nats-Last-Sequence"
)

// DecodeEvent decodes a message the config stream republished on
// EventPrefix: which key it is about, its stream sequence and the
// previous one on the same subject (for gap detection), its record and
// value.
func DecodeEvent(subject string, h nats.Header, data []byte) (Event, *Record, error) {
	ev, err := ParseEventSubject(subject)
	if err != nil {
		return Event{}, nil, err
	}
	ev.Seq, err = strconv.ParseUint(h.Get(hdrSequence), 10, 64)
	if err != nil || ev.Seq == 0 {
		return Event{}, nil, fmt.Errorf("%w: %s header %q", ErrMalformed, hdrSequence, h.Get(hdrSequence))
	}
	ev.LastSeq, err = strconv.ParseUint(h.Get(hdrLastSequence), 10, 64)
	if err != nil || ev.LastSeq >= ev.Seq {
		return Event{}, nil, fmt.Errorf("%w: %s header %q", ErrMalformed, hdrLastSequence, h.Get(hdrLastSequence))
	}
	rec, err := DecodeRecord(h, data)
	if err != nil {
		return Event{}, nil, err
	}
	return ev, rec, nil
}
