package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits on a permission string, so that a hostile string costs little to
// parse and to check. Shiro has none; every permission a person would
// write fits well inside them.
const (
	// MaxPermissionLen is the longest permission string, in bytes, both as
	// given and once lower-cased.
	MaxPermissionLen = 1024
	// MaxPermissionParts is the most colon-separated parts a permission has.
	MaxPermissionParts = 32
	// MaxPermissionSubparts is the most comma-separated subparts in one part.
	MaxPermissionSubparts = 64
)

// ErrBadPermission is returned, wrapped with the reason, for a string that
// is not a permission.
var ErrBadPermission = errors.New("auth: malformed permission")

const (
	partDivider    = ':'
	subpartDivider = ','
	wildcardToken  = "*"
)

// Permission is a parsed wildcard permission with the semantics of Apache
// Shiro's WildcardPermission: colon-separated parts such as
// domain:action:instance, each a comma-separated set of subparts, where a
// part containing the subpart * matches anything. A permission with fewer
// parts than another implies all of its missing parts; one with more parts
// implies only if each extra part contains *.
//
// A * in a requested permission has no special meaning: "printer:*" as a
// request is implied only by grants whose second part contains *, so a
// request cannot widen itself.
//
// Implies is reflexive, a permission holding a literal * included, and
// transitive. Permission is an immutable value, safe for concurrent use.
// The zero Permission is not a valid permission: it implies nothing, and
// nothing implies it.
type Permission struct {
	parts [][]string // each part's subparts, sorted and deduplicated
	star  uint64     // bit i is set when parts[i] contains "*"
	s     string     // canonical form, see String
}

// ParsePermission parses a wildcard permission string case-insensitively,
// as Shiro does by default: the string is lower-cased first. See
// ParsePermissionCase.
func ParsePermission(s string) (Permission, error) {
	return ParsePermissionCase(s, false)
}

// ParsePermissionCase parses a wildcard permission string the way Shiro's
// WildcardPermission(String, boolean) constructor does:
//
//   - bytes up to and including space (U+0000 to U+0020) are trimmed from
//     both ends, like Java's String.trim; subparts are not trimmed, so
//     "a: b" has the second part " b";
//   - unless caseSensitive, the string is lower-cased (with
//     [strings.ToLower], which unlike Java's toLowerCase ignores the locale
//     and has no final-sigma rule);
//   - it is split on ':' and each part on ',', dropping trailing empty
//     strings like Java's String.split: "a:b:" is "a:b", while "a::b" has an
//     empty middle part and "a,,b" an empty subpart;
//   - it is an error for the trimmed string to be empty, to hold only
//     colons, or to have a part with only commas (such as "a:,").
//
// Subparts of a part form a set: "a,b" equals "b,a,b". On top of Shiro's
// rules, the string must be valid UTF-8 and within MaxPermissionLen,
// MaxPermissionParts and MaxPermissionSubparts. Errors wrap
// ErrBadPermission.
func ParsePermissionCase(s string, caseSensitive bool) (Permission, error) {
	if len(s) > MaxPermissionLen {
		return Permission{}, badPermission(s, fmt.Sprintf("longer than %d bytes", MaxPermissionLen))
	}
	if !utf8.ValidString(s) {
		return Permission{}, badPermission(s, "not valid UTF-8")
	}
	t := trimJava(s)
	if t == "" {
		return Permission{}, badPermission(s, "empty")
	}
	if !caseSensitive {
		t = strings.ToLower(t)
		if len(t) > MaxPermissionLen {
			return Permission{}, badPermission(s, fmt.Sprintf("longer than %d bytes once lower-cased", MaxPermissionLen))
		}
	}
	return splitParts(s, t)
}

// splitParts splits the trimmed, lower-cased string t (of the input s,
// quoted in errors) into parts and subparts. Java's split drops trailing
// empty strings, which here are trailing dividers.
func splitParts(s, t string) (Permission, error) {
	t = strings.TrimRight(t, string(partDivider))
	if t == "" {
		return Permission{}, badPermission(s, "only colons")
	}
	n := strings.Count(t, string(partDivider)) + 1
	if n > MaxPermissionParts {
		return Permission{}, badPermission(s, fmt.Sprintf("more than %d parts", MaxPermissionParts))
	}
	p := Permission{parts: make([][]string, 0, n)}
	subs := make([]string, 0, n+strings.Count(t, string(subpartDivider)))
	for part := range strings.SplitSeq(t, string(partDivider)) {
		i, start := len(p.parts), len(subs)
		if strings.IndexByte(part, subpartDivider) < 0 {
			// Java's split returns a string without the divider whole,
			// even an empty one: "a::b" has the middle part {""}.
			subs = append(subs, part)
		} else if part = strings.TrimRight(part, string(subpartDivider)); part == "" {
			return Permission{}, badPermission(s, fmt.Sprintf("part %d has only commas", i+1))
		} else {
			for sub := range strings.SplitSeq(part, string(subpartDivider)) {
				subs = append(subs, sub)
			}
		}
		if len(subs)-start > MaxPermissionSubparts {
			return Permission{}, badPermission(s, fmt.Sprintf("part %d has more than %d subparts", i+1, MaxPermissionSubparts))
		}
		set := subs[start:len(subs):len(subs)]
		slices.Sort(set)
		set = slices.Clip(slices.Compact(set))
		if _, ok := slices.BinarySearch(set, wildcardToken); ok {
			p.star |= 1 << i
		}
		p.parts = append(p.parts, set)
	}
	p.s = p.format()
	return p, nil
}

// MustParsePermission is ParsePermission for permissions written in code.
// It panics if s is malformed, which is a programmer error.
func MustParsePermission(s string) Permission {
	p, err := ParsePermission(s)
	if err != nil {
		panic(err)
	}
	return p
}

func badPermission(s, reason string) error {
	return fmt.Errorf("%w %.64q: %s", ErrBadPermission, s, reason)
}

// trimJava is Java's String.trim: it removes every byte up to and including
// ' ' from both ends. Such bytes never occur inside a multi-byte UTF-8
// sequence, so working on bytes is exact.
func trimJava(s string) string {
	for s != "" && s[0] <= ' ' {
		s = s[1:]
	}
	for s != "" && s[len(s)-1] <= ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// Implies reports whether holding p grants q, exactly as Shiro's
// WildcardPermission.implies: for each part of q in turn, if p has no more
// parts then p implies q; otherwise p's part must contain * or every
// subpart of q's part. Then each part p has beyond q's must contain *.
// It does not allocate.
func (p Permission) Implies(q Permission) bool {
	if len(p.parts) == 0 || len(q.parts) == 0 {
		return false
	}
	for i, want := range q.parts {
		if i == len(p.parts) {
			return true
		}
		if p.star&(1<<i) == 0 && !containsAll(p.parts[i], want) {
			return false
		}
	}
	extra := uint64(1)<<len(p.parts) - uint64(1)<<len(q.parts)
	return p.star&extra == extra
}

// containsAll reports whether the sorted set have contains each element of
// the sorted set want.
func containsAll(have, want []string) bool {
	if len(want) > len(have) {
		return false
	}
	i := 0
	for _, w := range want {
		for i < len(have) && have[i] < w {
			i++
		}
		if i == len(have) || have[i] != w {
			return false
		}
		i++
	}
	return true
}

// Equal reports whether p and q are the same permission: the same number
// of parts, each with the same set of subparts.
func (p Permission) Equal(q Permission) bool { return p.s == q.s }

// String returns p in canonical form, which parses back (with the same
// case sensitivity) to a Permission equal to p: parts joined by ':', each
// part's subparts sorted and joined by ','. Where the sorted order would
// not survive parsing, because trimming would eat a subpart's leading or
// trailing bytes U+0000 to U+0020, the string starts with a subpart that
// does not start with such a byte and ends with one that does not end with
// one, and failing that with a ',' that parsing drops. The zero
// Permission's String is "".
func (p Permission) String() string { return p.s }

// format builds the canonical form; see String.
func (p Permission) format() string {
	size := len(p.parts) // the dividers, and room for a trailing ','
	for _, subs := range p.parts {
		for _, sub := range subs {
			size += len(sub) + 1
		}
	}
	var b strings.Builder
	b.Grow(size)
	last := len(p.parts) - 1
	comma := false
	for i, subs := range p.parts {
		if i > 0 {
			b.WriteByte(partDivider)
		}
		if i == 0 || i == last {
			subs, comma = arrange(subs, i == 0, i == last)
		}
		for j, sub := range subs {
			if j > 0 {
				b.WriteByte(subpartDivider)
			}
			b.WriteString(sub)
		}
	}
	if comma {
		b.WriteByte(subpartDivider)
	}
	return b.String()
}

// arrange orders the sorted subparts of the first and of the last part so
// that the formatted string survives trimming and the dropping of trailing
// empty subparts: the first subpart of the first part must not start with a
// space, and the last subpart of the last part must be non-empty and not
// end with a space. When no subpart can end the string, comma is true and
// the caller appends a ',' that parsing drops again.
func arrange(subs []string, first, last bool) (out []string, comma bool) {
	n := len(subs)
	head, tail := -1, -1
	if first {
		head = slices.IndexFunc(subs, canStart)
	}
	if last {
		for i := n - 1; i >= 0; i-- {
			if canEnd(subs[i]) && (i != head || n == 1) {
				tail = i
				break
			}
		}
		if tail < 0 && head >= 0 && n > 1 && canEnd(subs[head]) {
			// Only the head can end the string: start with another subpart.
			for i, s := range subs {
				if i != head && canStart(s) {
					head, tail = i, head
					break
				}
			}
		}
	}
	if (head <= 0) && (tail < 0 || tail == n-1) {
		return subs, last && tail < 0 // sorted order will do
	}
	out = make([]string, 0, n)
	if head >= 0 {
		out = append(out, subs[head])
	}
	for i, s := range subs {
		if i != head && i != tail {
			out = append(out, s)
		}
	}
	if tail >= 0 && tail != head {
		out = append(out, subs[tail])
	}
	return out, last && tail < 0
}

func canStart(s string) bool { return s == "" || s[0] > ' ' }
func canEnd(s string) bool   { return s != "" && s[len(s)-1] > ' ' }
