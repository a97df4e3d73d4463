package configwire

import (
	"time"
	"unicode/utf8"
)

// The JSON bodies of the config API operations (docs/api.md). Values
// travel as a string in "value" when they are UTF-8, else in
// "value_base64".

// Key names one key.
type Key struct {
	NS    string `json:"ns,omitempty"` // defaults to "default"
	Group string `json:"group"`
	Key   string `json:"key"`
}

// Value carries a value's bytes in JSON.
type Value struct {
	Value       *string `json:"value,omitempty"`
	ValueBase64 []byte  `json:"value_base64,omitempty"`
}

// Bytes returns the value's bytes; ok is false when neither field is set
// or both are.
func (v Value) Bytes() (data []byte, ok bool) {
	switch {
	case v.Value != nil && v.ValueBase64 == nil:
		return []byte(*v.Value), true
	case v.Value == nil && v.ValueBase64 != nil:
		return v.ValueBase64, true
	}
	return nil, false
}

// MakeValue fills a Value for data.
func MakeValue(data []byte) Value {
	if utf8.Valid(data) {
		s := string(data)
		return Value{Value: &s}
	}
	return Value{ValueBase64: data}
}

// VersionInfo describes one version of a key.
type VersionInfo struct {
	Version      uint64    `json:"version"`
	Revision     uint64    `json:"revision"` // the stream sequence
	Author       string    `json:"author,omitempty"`
	Time         time.Time `json:"time"`
	Comment      string    `json:"comment,omitempty"`
	ContentType  string    `json:"content_type,omitempty"`
	SHA256       string    `json:"sha256,omitempty"`
	Size         int       `json:"size"`
	Deleted      bool      `json:"deleted,omitempty"`
	RollbackOf   uint64    `json:"rollback_of,omitempty"`
	PromotedFrom uint64    `json:"promoted_from,omitempty"`
}

// Info converts a stored Record at revision seq.
func (r *Record) Info(seq uint64) VersionInfo {
	return VersionInfo{
		Version: r.Version, Revision: seq, Author: r.Author, Time: r.Time, Comment: r.Comment,
		ContentType: r.ContentType, SHA256: r.SHA256, Size: r.Size, Deleted: r.Deleted,
		RollbackOf: r.RollbackOf, PromotedFrom: r.PromotedFrom,
	}
}

// GetRequest is config.get: the current version, or Version.
type GetRequest struct {
	Key
	Version  uint64 `json:"version,omitempty"`
	WithGray bool   `json:"with_gray,omitempty"`
	// Revision reads the version stored at this stream sequence (as
	// config.history lists them): one read, where Version scans the
	// key's history. At most one of Version and Revision.
	Revision uint64 `json:"revision,omitempty"`
}

// GetResponse is config.get's reply. A key that was never written or is
// deleted answers not_found, unless WithGray is set: then the reply says
// so with Exists false, and carries the gray record if one is active.
type GetResponse struct {
	Exists bool `json:"exists"`
	VersionInfo
	Value
	Gray *GrayInfo `json:"gray,omitempty"`
	// GrayRevision is the last stream sequence on the key's gray subject
	// (0 if none), for watchers' gap detection; set with WithGray.
	GrayRevision uint64 `json:"gray_revision,omitempty"`
}

// SetRequest is config.set.
type SetRequest struct {
	Key
	Value
	ContentType string `json:"content_type,omitempty"` // defaults to the current version's, else "text"
	Author      string `json:"author,omitempty"`
	Comment     string `json:"comment,omitempty"`
	// ExpectedVersion makes the write a compare-and-set: 0 means the key
	// must not exist (never written, or deleted), N means its current
	// version must be N. Absent means unconditional.
	ExpectedVersion *uint64 `json:"expected_version,omitempty"`
}

// DeleteRequest is config.delete: a tombstone version.
type DeleteRequest struct {
	Key
	Author          string  `json:"author,omitempty"`
	Comment         string  `json:"comment,omitempty"`
	ExpectedVersion *uint64 `json:"expected_version,omitempty"`
}

// ListRequest is config.list: keys of a namespace, of one group if Group
// is set.
type ListRequest struct {
	NS    string `json:"ns,omitempty"`
	Group string `json:"group,omitempty"`
}

// ListEntry is one live key.
type ListEntry struct {
	Group string `json:"group"`
	Key   string `json:"key"`
	VersionInfo
	Gray bool `json:"gray,omitempty"`
}

// ListResponse is config.list's reply, sorted by group then key.
type ListResponse struct {
	Keys []ListEntry `json:"keys"`
}

// HistoryRequest is config.history: versions newest first, Limit of them
// (default 50, at most 1000), older than Before when set.
type HistoryRequest struct {
	Key
	Before uint64 `json:"before,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// HistoryResponse is config.history's reply. More reports older versions
// beyond the page; pass the last version as Before for the next.
type HistoryResponse struct {
	Versions []VersionInfo `json:"versions"`
	More     bool          `json:"more"`
}

// DiffRequest is config.diff between two versions; To 0 means current.
type DiffRequest struct {
	Key
	From uint64 `json:"from"`
	To   uint64 `json:"to,omitempty"`
}

// DiffResponse carries a unified diff ("" when equal).
type DiffResponse struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	Diff string `json:"diff"`
}

// RollbackRequest is config.rollback: a new version equal to version To.
type RollbackRequest struct {
	Key
	To              uint64  `json:"to"`
	Author          string  `json:"author,omitempty"`
	Comment         string  `json:"comment,omitempty"`
	ExpectedVersion *uint64 `json:"expected_version,omitempty"`
}

// GraySetRequest is config.gray.set.
type GraySetRequest struct {
	Key
	Value
	ContentType string `json:"content_type,omitempty"`
	Rule        Rule   `json:"rule"`
	Author      string `json:"author,omitempty"`
	Comment     string `json:"comment,omitempty"`
}

// GrayInfo is an active gray record.
type GrayInfo struct {
	Generation  uint64    `json:"generation"`
	Revision    uint64    `json:"revision"`
	BaseVersion uint64    `json:"base_version"`
	Rule        Rule      `json:"rule"`
	Author      string    `json:"author,omitempty"`
	Time        time.Time `json:"time"`
	Comment     string    `json:"comment,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	SHA256      string    `json:"sha256,omitempty"`
	Size        int       `json:"size"`
	Value
}

// GrayInfoOf converts a stored gray Record at revision seq.
func GrayInfoOf(r *Record, seq uint64, data []byte) *GrayInfo {
	g := &GrayInfo{
		Generation: r.Version, Revision: seq, BaseVersion: r.BaseVersion, Author: r.Author, Time: r.Time,
		Comment: r.Comment, ContentType: r.ContentType, SHA256: r.SHA256, Size: r.Size, Value: MakeValue(data),
	}
	if r.Rule != nil {
		g.Rule = *r.Rule
	}
	return g
}

// GrayRequest is config.gray.get, config.gray.promote and
// config.gray.abandon.
type GrayRequest struct {
	Key
	Author  string `json:"author,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// NSRequest is config.ns.create and config.ns.delete.
type NSRequest struct {
	NS      string `json:"ns"`
	Author  string `json:"author,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// NSInfo is one namespace.
type NSInfo struct {
	NS      string    `json:"ns"`
	Author  string    `json:"author,omitempty"`
	Time    time.Time `json:"time,omitzero"`
	Comment string    `json:"comment,omitempty"`
}

// NSListResponse is config.ns.list's reply, sorted.
type NSListResponse struct {
	Namespaces []NSInfo `json:"namespaces"`
}
