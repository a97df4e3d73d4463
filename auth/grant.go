package auth

import "strings"

// Grants is a subject's permissions compiled for checking: Implies answers
// exactly as a scan asking each permission in turn (Shiro's
// AuthorizingRealm does that linear scan), in time that grows with the
// requested permission's parts rather than with the number of grants.
//
// The grants form a trie with one level per part. A grant's part that
// contains * becomes the node's star branch; any other part becomes a
// branch labelled with its whole subpart set, reachable from each of its
// subparts, so a grant written with comma lists is stored once, never
// multiplied out. Grants that agree on their first parts share nodes. A
// node records whether a grant ends there and whether a grant passing
// through it has only *-parts left.
//
// A check walks the request one part at a time, following from each node
// the star branch and the branches whose set holds the requested subpart:
// one map lookup per part when the request part is a single subpart. A
// request part with a comma list looks up its first subpart and keeps the
// branches whose set holds all the others, at a cost of one sorted-set
// comparison per branch holding that subpart. Because a walk follows both
// the literal and the star branch, it can visit several nodes per level;
// it never visits a node twice, so even at worst a check costs no more
// than a constant multiple of the grants' total size, the linear scan's
// cost (plus the set comparisons for comma lists).
//
// A Grants is immutable once built and safe for concurrent use. A nil
// *Grants grants nothing.
type Grants struct {
	root node
	n    int
}

// node is a point in the trie: the grants that reach it agree on every
// earlier part (after reducing each part holding * to just *).
type node struct {
	set  []string           // subparts of the branch leading here; nil for the root and star branches
	next map[string][]*node // by subpart: the branches whose set holds it
	star *node              // grants whose part here contains *
	end  bool               // a grant ends here: it implies any longer request that reaches here
	tail bool               // a grant here has no parts left, or only parts holding *
}

// CompileGrants compiles perms into a Grants. Zero Permissions in perms
// are skipped. It does not keep perms.
func CompileGrants(perms []Permission) *Grants {
	g := &Grants{}
	branches := make(map[branchKey]*node)
	for _, p := range perms {
		if len(p.parts) == 0 {
			continue
		}
		g.n++
		g.add(p, branches)
	}
	return g
}

// branchKey identifies a literal branch while compiling: the node it leaves
// and its subpart set, joined by ',' (which no subpart contains).
type branchKey struct {
	from *node
	set  string
}

func (g *Grants) add(p Permission, branches map[branchKey]*node) {
	n := &g.root
	for i, subs := range p.parts {
		if p.onlyStarsFrom(i) {
			n.tail = true
		}
		n = n.child(subs, p.star&(1<<i) != 0, branches)
	}
	n.end, n.tail = true, true
}

// onlyStarsFrom reports whether every part of p from the i-th on holds *.
func (p Permission) onlyStarsFrom(i int) bool {
	rest := uint64(1)<<len(p.parts) - uint64(1)<<i
	return p.star&rest == rest
}

// child returns the branch of n for a part with the subparts subs, adding
// it if needed.
func (n *node) child(subs []string, star bool, branches map[branchKey]*node) *node {
	if star {
		if n.star == nil {
			n.star = &node{}
		}
		return n.star
	}
	key := branchKey{n, strings.Join(subs, string(subpartDivider))}
	if c, ok := branches[key]; ok {
		return c
	}
	c := &node{set: subs}
	branches[key] = c
	if n.next == nil {
		n.next = make(map[string][]*node)
	}
	for _, s := range subs {
		n.next[s] = append(n.next[s], c)
	}
	return c
}

// Implies reports whether any of the compiled permissions implies q, which
// is exactly whether some p among them has p.Implies(q); several grants
// never combine. It does not allocate.
func (g *Grants) Implies(q Permission) bool {
	if g == nil || len(q.parts) == 0 {
		return false
	}
	return g.root.implies(q.parts, 0)
}

// implies reports whether a grant through n implies a request whose first
// i parts have already matched the path to n.
func (n *node) implies(q [][]string, i int) bool {
	if i == len(q) {
		return n.tail
	}
	if n.end {
		return true
	}
	if n.star != nil && n.star.implies(q, i+1) {
		return true
	}
	want := q[i]
	for _, c := range n.next[want[0]] {
		if (len(want) == 1 || containsAll(c.set, want)) && c.implies(q, i+1) {
			return true
		}
	}
	return false
}

// Len returns the number of permissions g was compiled from, not counting
// zero Permissions.
func (g *Grants) Len() int {
	if g == nil {
		return 0
	}
	return g.n
}
