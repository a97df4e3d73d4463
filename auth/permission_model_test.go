package auth

import (
	"errors"
	"slices"
	"strings"
	"unicode/utf8"
)

// shiroPerm is WildcardPermission transcribed from Shiro's Java as directly
// as Go allows (List<Set<String>> parts), as an oracle for the fuzzer.
type shiroPerm []map[string]bool

// shiroModel is WildcardPermission.setParts(String, boolean).
func shiroModel(s string, caseSensitive bool) (shiroPerm, error) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' }) // StringUtils.clean
	if s == "" {
		return nil, errors.New("Wildcard string cannot be null or empty.")
	}
	if !caseSensitive {
		s = strings.ToLower(s)
	}
	var parts shiroPerm
	for _, part := range javaSplit(s, ':') {
		subparts := map[string]bool{}
		for _, sub := range javaSplit(part, ',') {
			subparts[sub] = true
		}
		if len(subparts) == 0 {
			return nil, errors.New("Wildcard string cannot contain parts with only dividers.")
		}
		parts = append(parts, subparts)
	}
	if len(parts) == 0 {
		return nil, errors.New("Wildcard string cannot contain only dividers.")
	}
	return parts, nil
}

// javaSplit is String.split(String regex) for a one-character regex that
// is not a metacharacter, following the JDK's fast path: no match returns
// the string itself; otherwise trailing empty strings are removed.
func javaSplit(s string, sep byte) []string {
	var list []string
	off := 0
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			list = append(list, s[off:i])
			off = i + 1
		}
	}
	if off == 0 {
		return []string{s}
	}
	list = append(list, s[off:])
	size := len(list)
	for size > 0 && list[size-1] == "" {
		size--
	}
	return list[:size]
}

// implies is WildcardPermission.implies(Permission).
func (p shiroPerm) implies(other shiroPerm) bool {
	i := 0
	for _, otherPart := range other {
		if len(p)-1 < i {
			return true
		}
		part := p[i]
		if !part["*"] && !containsAllSet(part, otherPart) {
			return false
		}
		i++
	}
	for ; i < len(p); i++ {
		if !p[i]["*"] {
			return false
		}
	}
	return true
}

func containsAllSet(have, want map[string]bool) bool {
	for w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

// sorted returns the parts' subparts as sorted slices.
func (p shiroPerm) sorted() [][]string {
	out := make([][]string, len(p))
	for i, part := range p {
		for sub := range part {
			out[i] = append(out[i], sub)
		}
		slices.Sort(out[i])
	}
	return out
}

// withinLimits reports whether s is within the limits mortar adds to
// Shiro's rules, so that rejecting s needs another reason.
func withinLimits(s string, caseSensitive bool) bool {
	if !caseSensitive && len(strings.ToLower(s)) > MaxPermissionLen {
		return false
	}
	return len(s) <= MaxPermissionLen && utf8.ValidString(s) &&
		strings.Count(s, ":") < MaxPermissionParts && strings.Count(s, ",") < MaxPermissionSubparts
}
