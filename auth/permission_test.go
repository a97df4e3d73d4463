package auth

import (
	"errors"
	"strings"
	"testing"
)

// impliesCase is one assertion: grant.Implies(req) == want, both parsed
// with the same case sensitivity. from names the Shiro test method (in
// core/src/test/java/org/apache/shiro/authz/permission/
// WildcardPermissionTest.java) the row is ported from, or "issue" or
// "mortar" for the rows added here.
type impliesCase struct {
	from      string
	grant     string
	req       string
	sensitive bool
	want      bool
}

// each expands one grant checked against several requests.
func each(from, grant string, want bool, reqs ...string) []impliesCase {
	var cs []impliesCase
	for _, r := range reqs {
		cs = append(cs, impliesCase{from: from, grant: grant, req: r, want: want})
	}
	return cs
}

// both is a pair of rows, a.Implies(b) and b.Implies(a).
func both(from, a, b string, ab, ba bool) []impliesCase {
	return []impliesCase{{from: from, grant: a, req: b, want: ab}, {from: from, grant: b, req: a, want: ba}}
}

// newsletterRequests are the requests testWildcards checks against every
// grant implying all of the newsletter domain.
var newsletterRequests = []string{
	"newsletter:read", "newsletter:read,write", "newsletter:*", "newsletter:*:*",
	"newsletter:*:read", "newsletter:write:*", "newsletter:read,write:*", "newsletter",
}

func impliesCases() []impliesCase {
	var cs []impliesCase
	add := func(more ...[]impliesCase) {
		for _, m := range more {
			cs = append(cs, m...)
		}
	}
	add(
		// testNamed. Shiro's "case sensitive" rows pass caseSensitive=false,
		// so they are case-insensitive here too; real case-sensitive rows follow.
		both("testNamed", "something", "something", true, true),
		both("testNamed", "something", "SOMETHING", true, true),
		both("testNamed", "something", "else", false, false),
		both("testNamed", "BLAHBLAH", "BLAHBLAH", true, true),
		both("testNamed", "BLAHBLAH", "bLAHBLAH", true, true),
		both("testNamed", "BLAHBLAH", "whatwhat", false, false),

		// testLists.
		both("testLists", "one,two", "one", true, false),
		both("testLists", "one,two,three", "one,three", true, false),
		both("testLists", "one,two:one,two,three", "one:three", true, false),
		each("testLists", "one,two:one,two,three", true, "one:two,three"),
		each("testLists", "one:three", false, "one:two,three"),
		each("testLists", "one:two,three", true, "one:three"),
		both("testLists", "one,two,three:one,two,three:one,two", "one:three:two", true, false),
		each("testLists", "one", true, "one:two,three,four", "one:two,three,four:five:six:seven"),
		each("testLists", "one:two,three,four", false, "one"),
		each("testLists", "one:two,three,four:five:six:seven", false, "one"),
		each("testLists", "one:two,three,four", true, "one:two,three,four:five:six:seven"),

		// testWildcards.
		each("testWildcards", "*", true, "one", "one:two", "one,two:three,four", "one,two:three,four,five:six:seven,eight"),
		each("testWildcards", "newsletter:*", true, newsletterRequests...),
		each("testWildcards", "newsletter:*:*", true, newsletterRequests...),
		each("testWildcards", "newsletter:*:*:*", true, newsletterRequests...),
		each("testWildcards", "newsletter", true, newsletterRequests...),
		each("testWildcards", "newsletter:*:read", true, "newsletter:123:read", "newsletter:123:read:write"),
		each("testWildcards", "newsletter:*:read", false, "newsletter:123,456:read,write", "newsletter:read", "newsletter:read,write"),
		each("testWildcards", "newsletter:*:read:*", true, "newsletter:123:read", "newsletter:123:read:write"),

		// testWildcardLeftTermination.
		each("testWildcardLeftTermination", "one", true, "one:*", "one:*:*", "one:read"),
		each("testWildcardLeftTermination", "one:*", true, "one", "one:*:*", "one:read"),
		each("testWildcardLeftTermination", "one:*:*", true, "one", "one:*", "one:read"),
		each("testWildcardLeftTermination", "one:read", false, "one", "one:*", "one:*:*"),

		// The examples.
		each("issue", "printer:print,query", true, "printer:print"),
		each("issue", "printer:print", false, "printer:print,query"),
		each("issue", "printer:print:*", true, "printer:print"),
		each("issue", "printer:print:lp7200", false, "printer:print"),

		// A * in a request is literal.
		each("mortar", "printer:print", false, "printer:*", "*", "printer:print,*"),
		each("mortar", "printer:*", true, "printer:*", "printer:*,print", "printer:*:*"),
		each("mortar", "printer:print,*", true, "printer:*,query"),
		each("mortar", "printer:pr*", false, "printer:print"),
		each("mortar", "printer:pr*", true, "printer:pr*"),
		// Extra grant parts must hold *, wherever it sits in the part.
		each("mortar", "printer:print:lp7200,*", true, "printer:print"),
		each("mortar", "printer:print:*:lp7200", false, "printer:print"),
		// Empty parts and subparts are values like any other.
		each("mortar", "a::b", true, "a::b", "a::b:c"),
		each("mortar", "a::b", false, "a:x:b", "a:"),
		each("mortar", "a:*:b", true, "a::b"),
		each("mortar", "a:,x", true, "a:x", "a:,x"),
		each("mortar", "a:x", false, "a:,x"),
		// Whole strings are trimmed, subparts are not.
		each("mortar", " \tprinter:print\n", true, "printer:print"),
		each("mortar", "printer: print", false, "printer:print"),
		// Trailing dividers are dropped.
		each("mortar", "printer:print:", true, "printer:print"),
		each("mortar", "printer:print,,", true, "printer:print"),
	)
	// Case-sensitive parsing.
	cs = append(cs,
		impliesCase{from: "mortar", grant: "Printer:Print", req: "Printer:Print", sensitive: true, want: true},
		impliesCase{from: "mortar", grant: "Printer:Print", req: "printer:print", sensitive: true, want: false},
		impliesCase{from: "mortar", grant: "printer:print", req: "Printer:Print", sensitive: true, want: false},
		impliesCase{from: "mortar", grant: "Printer:*", req: "Printer:Print", sensitive: true, want: true},
		impliesCase{from: "mortar", grant: "BLAHBLAH", req: "bLAHBLAH", sensitive: true, want: false},
	)
	return cs
}

func TestPermissionImplies(t *testing.T) {
	for _, c := range impliesCases() {
		t.Run(c.from, func(t *testing.T) {
			p, err := ParsePermissionCase(c.grant, c.sensitive)
			if err != nil {
				t.Fatal(err)
			}
			q, err := ParsePermissionCase(c.req, c.sensitive)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Implies(q); got != c.want {
				t.Errorf("ParsePermissionCase(%q, %v).Implies(%q) = %v, want %v", c.grant, c.sensitive, c.req, got, c.want)
			}
			if got := CompileGrants([]Permission{p}).Implies(q); got != c.want {
				t.Errorf("CompileGrants(%q).Implies(%q) = %v, want %v", c.grant, c.req, got, c.want)
			}
		})
	}
}

func TestParsePermission(t *testing.T) {
	tests := []struct {
		from      string
		in        string
		sensitive bool
		want      string
	}{
		// testToString. Shiro's toString keeps the first-seen order of
		// subparts; the canonical form sorts them, so "three,four" reads
		// "four,three". Shiro's equals ignores that order too.
		{"testToString", "*", false, "*"},
		{"testToString", "one", false, "one"},
		{"testToString", "one:two", false, "one:two"},
		{"testToString", "one,two:three,four", false, "one,two:four,three"},
		{"testToString", "one,two:three,four,five:six:seven,eight", false, "one,two:five,four,three:six:eight,seven"},
		// WildcardPermissionResolverTest.
		{"testDefaultIsNonCaseSensitive", "Foo:*", false, "foo:*"},
		{"testCaseSensitive", "Foo:*", true, "Foo:*"},
		// testListDifferentOrder: subparts are a set.
		{"testListDifferentOrder", "two,one:four,three", false, "one,two:four,three"},
		{"mortar", "b,a,b,a", false, "a,b"},
		{"mortar", "Printer:PRINT,Query", false, "printer:print,query"},
		{"mortar", "Printer:PRINT,Query", true, "Printer:PRINT,Query"},
		// Java's String.trim and String.split.
		{"mortar", " \t\r\n\x00printer:print \x1f", false, "printer:print"},
		{"mortar", "a:b:", false, "a:b"},
		{"mortar", "a:b:::", false, "a:b"},
		{"mortar", "a:b,", false, "a:b"},
		{"mortar", "a::b", false, "a::b"},
		{"mortar", ":a", false, ":a"},
		{"mortar", "a,,b", false, ",a,b"},
		{"mortar", "b,", false, "b"},
		{"mortar", ",b", false, ",b"},
		{"mortar", "a: b", false, "a: b"},
		// Spaces inside subparts survive the canonical form's trimming.
		{"mortar", "b, a", false, "b, a"},
		{"mortar", "b ,a", false, "b ,a"},
		{"mortar", "a ,b ,", false, "a ,b ,"},
		{"mortar", "x, y ,", false, "x, y ,"},
		{"mortar", "z, y ,x:q", false, "x, y ,z:q"},
		{"mortar", "q:z ,a", false, "q:z ,a"},
		{"mortar", "q:z ,:", false, "q:z ,"},
		{"mortar", "Ⱥ", false, "ⱥ"},
		{"mortar", "ΟΔΟΣ:İ", false, "οδοσ:i"},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			p, err := ParsePermissionCase(tt.in, tt.sensitive)
			if err != nil {
				t.Fatalf("ParsePermissionCase(%q, %v) error: %v", tt.in, tt.sensitive, err)
			}
			if got := p.String(); got != tt.want {
				t.Errorf("ParsePermissionCase(%q, %v).String() = %q, want %q", tt.in, tt.sensitive, got, tt.want)
			}
			checkRoundTrip(t, p, tt.sensitive)
		})
	}
}

// checkRoundTrip asserts that p's String parses back to p and that p
// implies itself.
func checkRoundTrip(t *testing.T, p Permission, sensitive bool) {
	t.Helper()
	s := p.String()
	q, err := ParsePermissionCase(s, sensitive)
	if err != nil {
		t.Fatalf("ParsePermissionCase(%q, %v) error: %v", s, sensitive, err)
	}
	if !q.Equal(p) || q.String() != s {
		t.Errorf("ParsePermissionCase(%q, %v) = %q, want %q", s, sensitive, q, p)
	}
	if !equalParts(p.parts, q.parts) {
		t.Errorf("ParsePermissionCase(%q, %v).parts = %q, want %q", s, sensitive, q.parts, p.parts)
	}
	if !p.Implies(p) {
		t.Errorf("%q.Implies(itself) = false, want true", s)
	}
}

func equalParts(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") || len(a[i]) != len(b[i]) {
			return false
		}
	}
	return true
}

func TestParsePermissionErrors(t *testing.T) {
	tests := []struct {
		from   string
		in     string
		reason string
	}{
		{"testEmpty", "", "empty"},
		{"testBlank", "   ", "empty"},
		{"testOnlyDelimiters", "::,,::,:", "part 3 has only commas"},
		{"mortar", "\t\n\x00 ", "empty"},
		{"mortar", ":", "only colons"},
		{"mortar", " ::: ", "only colons"},
		{"mortar", ",", "part 1 has only commas"},
		{"mortar", "a:,", "part 2 has only commas"},
		{"mortar", "a:,,:b", "part 2 has only commas"},
		{"mortar", "a\xffb", "not valid UTF-8"},
		{"mortar", strings.Repeat("a", MaxPermissionLen+1), "longer than 1024 bytes"},
		{"mortar", strings.Repeat("Ⱥ", MaxPermissionLen/2), "longer than 1024 bytes once lower-cased"},
		{"mortar", strings.Repeat("a:", MaxPermissionParts) + "a", "more than 32 parts"},
		{"mortar", "a:" + strings.Repeat("b,", MaxPermissionSubparts) + "b", "part 2 has more than 64 subparts"},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			p, err := ParsePermission(tt.in)
			if !errors.Is(err, ErrBadPermission) || !strings.HasSuffix(err.Error(), ": "+tt.reason) {
				t.Errorf("ParsePermission(%.40q) = %q, %v, want error %q", tt.in, p, err, tt.reason)
			}
		})
	}
}

func TestParsePermissionLimits(t *testing.T) {
	ok := []string{
		strings.Repeat("a", MaxPermissionLen),
		strings.Repeat("a:", MaxPermissionParts-1) + "a",
		strings.Repeat("a:", MaxPermissionParts-1) + "a" + strings.Repeat(":", MaxPermissionLen/2),
		strings.Repeat("b,", MaxPermissionSubparts-1) + "b",
		// Reordering would need a trailing comma; the string already has one.
		strings.Repeat("x", MaxPermissionLen-5) + ", y ,",
	}
	for _, in := range ok {
		p, err := ParsePermission(in)
		if err != nil {
			t.Errorf("ParsePermission(%.40q) error: %v", in, err)
			continue
		}
		checkRoundTrip(t, p, false)
	}
}

func TestPermissionEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"one,two:three,four", "two,one:four,three", true}, // testListDifferentOrder
		{"a:b", "A:B:", true},
		{"a:b", "a:b:*", false},
		{"a,b", "a", false},
		{"a::b", "a:b", false},
	}
	for _, tt := range tests {
		a, b := MustParsePermission(tt.a), MustParsePermission(tt.b)
		if got := a.Equal(b); got != tt.want {
			t.Errorf("%q.Equal(%q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMustParsePermissionPanics(t *testing.T) {
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, ErrBadPermission) {
			t.Errorf("MustParsePermission(%q) panicked with %v, want ErrBadPermission", "a:,", err)
		}
	}()
	MustParsePermission("a:,")
}

func TestZeroPermission(t *testing.T) {
	var zero Permission
	all := MustParsePermission("*")
	if zero.Implies(all) || all.Implies(zero) || zero.Implies(zero) {
		t.Errorf("zero Permission takes part in Implies, want it to imply and be implied by nothing")
	}
	if got := zero.String(); got != "" {
		t.Errorf("Permission{}.String() = %q, want %q", got, "")
	}
	g := CompileGrants([]Permission{zero})
	if g.Len() != 0 || g.Implies(all) || CompileGrants([]Permission{all}).Implies(zero) {
		t.Errorf("CompileGrants with zero Permissions: Len() = %d or Implies true, want 0 and false", g.Len())
	}
}

// FuzzParsePermission checks that parsing never panics, that every error
// wraps ErrBadPermission, that anything parsed round-trips through String
// and implies itself, and that parsing and Implies agree with shiroModel, a
// direct transcription of the Java.
func FuzzParsePermission(f *testing.F) {
	for _, c := range impliesCases() {
		f.Add(c.grant, c.req, c.sensitive)
	}
	for _, s := range []string{"", " ", ":", "::,,::,:", "a:,", "a::b", ",a", "b ,a", "x, y ,", "Ⱥ", "a\xff", "İ:Σ"} {
		f.Add(s, "a", false)
	}
	f.Fuzz(func(t *testing.T, s, r string, sensitive bool) {
		p, err := ParsePermissionCase(s, sensitive)
		model, modelErr := shiroModel(s, sensitive)
		if err != nil {
			if !errors.Is(err, ErrBadPermission) {
				t.Fatalf("ParsePermissionCase(%q, %v) error %v does not wrap ErrBadPermission", s, sensitive, err)
			}
			if modelErr == nil && withinLimits(s, sensitive) {
				t.Fatalf("ParsePermissionCase(%q, %v) error %v, Shiro accepts it", s, sensitive, err)
			}
			return
		}
		if modelErr != nil {
			t.Fatalf("ParsePermissionCase(%q, %v) = %q, Shiro rejects it: %v", s, sensitive, p, modelErr)
		}
		if !equalParts(p.parts, model.sorted()) {
			t.Fatalf("ParsePermissionCase(%q, %v).parts = %q, want %q", s, sensitive, p.parts, model.sorted())
		}
		checkRoundTrip(t, p, sensitive)
		q, err := ParsePermissionCase(r, sensitive)
		qm, _ := shiroModel(r, sensitive)
		if err != nil {
			return
		}
		if got, want := p.Implies(q), model.implies(qm); got != want {
			t.Fatalf("%q.Implies(%q) = %v, Shiro says %v", p, q, got, want)
		}
	})
}

func BenchmarkParsePermission(b *testing.B) {
	for _, s := range []string{"config:read:ns0042", "push:send,ack,nack:topic-3", "Registry:Write:SVC-17"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParsePermission(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
