package auth

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// linearImplies is Shiro's check: AuthorizingRealm.isPermitted asks each of
// the subject's permissions in turn.
func linearImplies(perms []Permission, q Permission) bool {
	for _, p := range perms {
		if p.Implies(q) {
			return true
		}
	}
	return false
}

func mustParseAll(t testing.TB, ss []string) []Permission {
	t.Helper()
	perms := make([]Permission, len(ss))
	for i, s := range ss {
		p, err := ParsePermission(s)
		if err != nil {
			t.Fatal(err)
		}
		perms[i] = p
	}
	return perms
}

func TestGrantsImplies(t *testing.T) {
	tests := []struct {
		grants []string
		req    string
		want   bool
	}{
		// Grants are checked one at a time: two never combine.
		{[]string{"printer:print", "printer:query"}, "printer:print,query", false},
		{[]string{"printer:print,query"}, "printer:print,query", true},
		{[]string{"a:b,c:x", "a:b:y"}, "a:b,c:y", false},
		{[]string{"a:b,c:x", "a:b,d:y"}, "a:b:y", true},
		{[]string{"a:b,c:x", "a:b,d:y"}, "a:c:y", false},
		// A comma list in a grant matches each of its subparts.
		{[]string{"printer:print,query:lp1"}, "printer:print:lp1", true},
		{[]string{"printer:print,query:lp1"}, "printer:query:lp1", true},
		{[]string{"printer:print,query:lp1"}, "printer:print:lp2", false},
		{[]string{"a:b,c:x", "a:b,c:y"}, "a:c:y", true},
		{[]string{"a:b,c:x", "a:b,c:y"}, "a:b,c:x", true},
		{[]string{"a:b,c:x", "a:b,c:y"}, "a:b,c:z", false},
		// A requested * is literal.
		{[]string{"printer:print", "printer:query"}, "printer:*", false},
		{[]string{"printer:print", "printer:*,query"}, "printer:*", true},
		{[]string{"printer:print", "printer:*"}, "printer:*:*", true},
		// The literal and the * branch are both followed.
		{[]string{"a:b:c", "a:*:d"}, "a:b:d", true},
		{[]string{"a:b:c", "a:*:d"}, "a:b:c", true},
		{[]string{"a:b:c", "a:*:d"}, "a:x:c", false},
		{[]string{"printer:print", "printer:*:lp1"}, "printer:print:lp1", true},
		{[]string{"printer:print", "printer:*:lp1"}, "printer:query:lp1", true},
		{[]string{"printer:print", "printer:*:lp1"}, "printer:query:lp2", false},
		// Shorter grants imply longer requests; longer grants need * parts.
		{[]string{"a", "a:b"}, "a:c", true},
		{[]string{"a:b:x"}, "a:b", false},
		{[]string{"a:b:x", "a:b:*"}, "a:b", true},
		{[]string{"a:b:x", "a:b:*:x"}, "a:b", false},
		{[]string{"a:b,c:*"}, "a:b", true},
		{[]string{"a:b:x,*:*"}, "a:b", true},
		{[]string{"*"}, "anything:at:all", true},
		{[]string{"*:*:*"}, "anything", true},
		{[]string{"a::b"}, "a::b:c", true},
		{[]string{"a::b"}, "a:x:b", false},
		{nil, "a", false},
	}
	for _, tt := range tests {
		g := CompileGrants(mustParseAll(t, tt.grants))
		if got := g.Implies(MustParsePermission(tt.req)); got != tt.want {
			t.Errorf("CompileGrants(%q).Implies(%q) = %v, want %v", tt.grants, tt.req, got, tt.want)
		}
		if g.Len() != len(tt.grants) {
			t.Errorf("CompileGrants(%q).Len() = %d, want %d", tt.grants, g.Len(), len(tt.grants))
		}
	}
	var nilGrants *Grants
	if nilGrants.Implies(MustParsePermission("*")) || nilGrants.Len() != 0 {
		t.Errorf("(*Grants)(nil) grants something")
	}
}

// randomPermission returns a parsed permission over a small vocabulary, so
// that grants and requests often share prefixes, with comma lists, *,
// empty subparts and one to five parts.
func randomPermission(r *rand.Rand) Permission {
	letters := []string{"a", "b", "c", "d"}
	for {
		parts := make([]string, 1+r.IntN(5))
		for i := range parts {
			subs := make([]string, 1)
			if r.IntN(4) == 0 {
				subs = make([]string, 2+r.IntN(3))
			}
			for j := range subs {
				subs[j] = letters[r.IntN(len(letters))]
				switch r.IntN(10) {
				case 0:
					subs[j] = "*"
				case 1:
					subs[j] = ""
				}
			}
			parts[i] = strings.Join(subs, ",")
		}
		if p, err := ParsePermission(strings.Join(parts, ":")); err == nil {
			return p
		}
	}
}

func TestGrantsMatchLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rounds := 3000
	if testing.Short() {
		rounds = 300
	}
	var checks, granted int
	for range rounds {
		perms := make([]Permission, r.IntN(12))
		for i := range perms {
			perms[i] = randomPermission(r)
		}
		g := CompileGrants(perms)
		reqs := make([]Permission, 0, 40)
		for range 30 {
			reqs = append(reqs, randomPermission(r))
		}
		reqs = append(reqs, perms...) // grants as requests, so that some are granted
		for _, q := range reqs {
			want := linearImplies(perms, q)
			if got := g.Implies(q); got != want {
				t.Fatalf("CompileGrants(%q).Implies(%q) = %v, want %v", perms, q, got, want)
			}
			checks++
			if want {
				granted++
			}
		}
	}
	t.Logf("%d checks, %d granted", checks, granted)
	if granted < checks/10 || granted > checks*9/10 {
		t.Errorf("%d of %d checks granted; the generator should give both answers often", granted, checks)
	}
}

// TestImpliesTransitive checks on random permissions that Shiro's implies
// is transitive, which the trie's sharing of grant prefixes relies on.
func TestImpliesTransitive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	chains := 0
	for range 100_000 {
		p, q, s := randomPermission(r), randomPermission(r), randomPermission(r)
		if p.Implies(q) && q.Implies(s) {
			chains++
			if !p.Implies(s) {
				t.Fatalf("%q implies %q implies %q, but %q.Implies(%q) = false", p, q, s, p, s)
			}
		}
	}
	if chains < 100 {
		t.Errorf("only %d chains p ⇒ q ⇒ s tested, want at least 100", chains)
	}
}

// FuzzGrants checks the compiled grants against the linear scan. grants
// holds one permission a line; req is checked, and so is each grant and
// each grant's every prefix.
func FuzzGrants(f *testing.F) {
	f.Add("printer:print\nprinter:query", "printer:print,query")
	f.Add("printer:print,query:lp1", "printer:print:lp1")
	f.Add("a:b:c\na:*:d\n*:x", "a:b:d")
	f.Add("a:b,c:x\na:b,c:y\na:b:*", "a:b")
	f.Add("printer:print\nprinter:*", "printer:*")
	f.Add("a::b\na,,c:*", "a::b:c")
	f.Fuzz(func(t *testing.T, grants, req string) {
		var perms []Permission
		for line := range strings.SplitSeq(grants, "\n") {
			if p, err := ParsePermission(line); err == nil {
				perms = append(perms, p)
			}
		}
		g := CompileGrants(perms)
		reqs := []string{req}
		for _, p := range perms {
			s := p.String()
			for i := range len(s) + 1 {
				reqs = append(reqs, s[:i])
			}
		}
		for _, s := range reqs {
			q, err := ParsePermission(s)
			if err != nil {
				continue
			}
			if got, want := g.Implies(q), linearImplies(perms, q); got != want {
				t.Fatalf("CompileGrants(%q).Implies(%q) = %v, want %v", perms, q, got, want)
			}
		}
	})
}

// subject returns 1,000 grants of the shapes a mortar deployment gives a
// service account or an operator, and requests of which the first half
// are granted and the second half not.
func subject() (grants, granted, denied []string) {
	for i := range 300 {
		grants = append(grants, fmt.Sprintf("config:read:ns%04d", i))
	}
	for i := range 150 {
		grants = append(grants, fmt.Sprintf("config:read,write:ns%04d", 300+i))
	}
	for i := range 200 {
		grants = append(grants, fmt.Sprintf("registry:write:svc-%d", i))
	}
	for i := range 150 {
		grants = append(grants, fmt.Sprintf("task:submit:proj%d.tasks.*", i)) // a literal *
	}
	for i := range 100 {
		grants = append(grants, fmt.Sprintf("task:*:proj%d", i))
	}
	for i := range 50 {
		grants = append(grants, fmt.Sprintf("push:send,ack:topic-%d:*", i))
	}
	for i := range 49 {
		grants = append(grants, fmt.Sprintf("rpc:call:svc-%d:method%d", i, i%7))
	}
	grants = append(grants, "dashboard:view")
	granted = []string{
		"config:read:ns0042", "config:write:ns0350", "registry:write:svc-17", "task:submit:proj7.tasks.*",
		"task:cancel:proj42", "push:send:topic-3", "rpc:call:svc-5:method5:v2", "dashboard:view:main",
	}
	denied = []string{
		"config:write:ns0042", "registry:read:svc-17", "task:submit:proj7.tasks.x", "push:send,ack,nack:topic-3",
		"config:read:ns9999", "admin", "rpc:call:svc-5", "dashboard:edit",
	}
	return grants, granted, denied
}

// BenchmarkGrants compares the compiled grants with Shiro's linear scan
// for a subject holding 1,000 grants.
func BenchmarkGrants(b *testing.B) {
	grantStrs, grantedStrs, deniedStrs := subject()
	perms := mustParseAll(b, grantStrs)
	g := CompileGrants(perms)
	granted, denied := mustParseAll(b, grantedStrs), mustParseAll(b, deniedStrs)
	for _, q := range granted {
		if !linearImplies(perms, q) || !g.Implies(q) {
			b.Fatalf("%q is not granted", q)
		}
	}
	for _, q := range denied {
		if linearImplies(perms, q) || g.Implies(q) {
			b.Fatalf("%q is granted", q)
		}
	}
	checkers := []struct {
		name    string
		implies func(Permission) bool
	}{
		{"compiled", g.Implies},
		{"linear", func(q Permission) bool { return linearImplies(perms, q) }},
	}
	for _, c := range checkers {
		for _, set := range []struct {
			name string
			reqs []Permission
			want bool
		}{{"granted", granted, true}, {"denied", denied, false}} {
			b.Run(c.name+"/"+set.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if c.implies(set.reqs[i%len(set.reqs)]) != set.want {
						b.Fatal("wrong answer")
					}
					i++
				}
				b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "checks/s")
			})
		}
		reqStrs := append(append([]string(nil), grantedStrs...), deniedStrs...)
		b.Run(c.name+"/parse+check", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q, err := ParsePermission(reqStrs[i%len(reqStrs)])
				if err != nil {
					b.Fatal(err)
				}
				c.implies(q)
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "checks/s")
		})
	}
}

func BenchmarkCompileGrants(b *testing.B) {
	grantStrs, _, _ := subject()
	perms := mustParseAll(b, grantStrs)
	b.ReportAllocs()
	for b.Loop() {
		CompileGrants(perms)
	}
}
