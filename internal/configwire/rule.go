package configwire

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Rule says which instances see a gray version: those whose labels match
// Selector, and those whose address is in Addresses. At least one of the
// two is set.
type Rule struct {
	// Selector is a label selector: comma-separated terms that must all
	// hold. A term is "k=v" (or "k==v"), "k!=v", "k in (a,b)",
	// "k notin (a,b)", "k" (the label is set) or "!k" (it is not).
	Selector string `json:"selector,omitempty"`
	// Addresses lists instance addresses (host:port or any string an
	// instance declares) that see the gray version.
	Addresses []string `json:"addresses,omitempty"`
}

// MaxRuleAddresses bounds a rule's address list.
const MaxRuleAddresses = 1000

// Validate checks that r is usable.
func (r *Rule) Validate() error {
	if r.Selector == "" && len(r.Addresses) == 0 {
		return errors.New("gray rule needs a selector, addresses, or both")
	}
	if len(r.Addresses) > MaxRuleAddresses {
		return fmt.Errorf("gray rule has %d addresses, more than %d", len(r.Addresses), MaxRuleAddresses)
	}
	for _, a := range r.Addresses {
		if a == "" {
			return errors.New("gray rule has an empty address")
		}
	}
	_, err := ParseSelector(r.Selector)
	return err
}

// Matches reports whether an instance with labels and address sees the
// gray version. An invalid rule matches nothing.
func (r *Rule) Matches(labels map[string]string, address string) bool {
	if address != "" && slices.Contains(r.Addresses, address) {
		return true
	}
	if r.Selector == "" {
		return false
	}
	sel, err := ParseSelector(r.Selector)
	if err != nil {
		return false
	}
	return sel.Matches(labels)
}

// Selector is a parsed label selector; the empty selector matches
// nothing (a gray rule must name its audience).
type Selector []term

type term struct {
	key    string
	op     string // "=", "!=", "in", "notin", "exists", "!exists"
	values []string
}

// ParseSelector parses a label selector (see Rule.Selector).
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var sel Selector
	for _, raw := range splitTerms(s) {
		t, err := parseTerm(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", s, err)
		}
		sel = append(sel, t)
	}
	return sel, nil
}

// splitTerms splits at commas outside parentheses.
func splitTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func validLabel(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	return !strings.ContainsAny(s, "=!(), \t\r\n")
}

func parseTerm(t string) (term, error) {
	if t == "" {
		return term{}, errors.New("empty term")
	}
	if k, ok := strings.CutPrefix(t, "!"); ok {
		k = strings.TrimSpace(k)
		if !validLabel(k) {
			return term{}, fmt.Errorf("bad label name in %q", t)
		}
		return term{key: k, op: "!exists"}, nil
	}
	if k, v, ok := strings.Cut(t, "!="); ok {
		return kv(t, k, "!=", v)
	}
	if k, v, ok := strings.Cut(t, "=="); ok {
		return kv(t, k, "=", v)
	}
	if k, v, ok := strings.Cut(t, "="); ok {
		return kv(t, k, "=", v)
	}
	fields := strings.Fields(t)
	if len(fields) == 1 {
		if !validLabel(fields[0]) {
			return term{}, fmt.Errorf("bad label name in %q", t)
		}
		return term{key: fields[0], op: "exists"}, nil
	}
	if len(fields) < 3 || (fields[1] != "in" && fields[1] != "notin") {
		return term{}, fmt.Errorf("cannot parse %q: want k=v, k!=v, k in (a,b), k notin (a,b), k or !k", t)
	}
	key, op := fields[0], fields[1]
	if !validLabel(key) {
		return term{}, fmt.Errorf("bad label name in %q", t)
	}
	rest := strings.TrimSpace(t[strings.Index(t, op)+len(op):])
	if len(rest) < 2 || rest[0] != '(' || rest[len(rest)-1] != ')' {
		return term{}, fmt.Errorf("%q: the values of %s go in parentheses", t, op)
	}
	var vals []string
	for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
		v = strings.TrimSpace(v)
		if !validLabel(v) {
			return term{}, fmt.Errorf("bad value %q in %q", v, t)
		}
		vals = append(vals, v)
	}
	return term{key: key, op: op, values: vals}, nil
}

func kv(t, k, op, v string) (term, error) {
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if !validLabel(k) || !validLabel(v) {
		return term{}, fmt.Errorf("cannot parse %q", t)
	}
	return term{key: k, op: op, values: []string{v}}, nil
}

// Matches reports whether labels satisfy every term; the empty selector
// matches nothing.
func (s Selector) Matches(labels map[string]string) bool {
	if len(s) == 0 {
		return false
	}
	for _, t := range s {
		v, ok := labels[t.key]
		var hold bool
		switch t.op {
		case "=":
			hold = ok && v == t.values[0]
		case "!=":
			hold = !ok || v != t.values[0]
		case "in":
			hold = ok && slices.Contains(t.values, v)
		case "notin":
			hold = !ok || !slices.Contains(t.values, v)
		case "exists":
			hold = ok
		case "!exists":
			hold = !ok
		}
		if !hold {
			return false
		}
	}
	return true
}
