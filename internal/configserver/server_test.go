package configserver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/configwire"
	"github.com/mortarhq/mortar/mortartest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// api calls the config operations of one test node.
type api struct {
	t    *testing.T
	conn *mortar.Conn
	ctx  context.Context
}

func start(t *testing.T) *api {
	t.Helper()
	n := mortartest.StartNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return &api{t: t, conn: n.Dial(t), ctx: ctx}
}

// do performs op and fails the test on an error.
func (a *api) do(op string, req, resp any) {
	a.t.Helper()
	if err := a.conn.Do(a.ctx, op, req, resp); err != nil {
		a.t.Fatalf("%s %+v: %v", op, req, err)
	}
}

// code performs op, which must fail, and returns its error code.
func (a *api) code(op string, req any) mortar.Code {
	a.t.Helper()
	err := a.conn.Do(a.ctx, op, req, nil)
	if err == nil {
		a.t.Fatalf("%s %+v succeeded; want an error", op, req)
	}
	return mortar.ErrorCode(err)
}

func (a *api) set(group, key, value string) configwire.VersionInfo {
	a.t.Helper()
	var v configwire.VersionInfo
	a.do("config.set", configwire.SetRequest{Key: key3("", group, key), Value: configwire.MakeValue([]byte(value))}, &v)
	return v
}

func (a *api) get(group, key string, version uint64) configwire.GetResponse {
	a.t.Helper()
	var r configwire.GetResponse
	a.do("config.get", configwire.GetRequest{Key: key3("", group, key), Version: version}, &r)
	return r
}

func key3(ns, group, key string) configwire.Key {
	return configwire.Key{NS: ns, Group: group, Key: key}
}

func val(s string) configwire.Value { return configwire.MakeValue([]byte(s)) }

func expect(v uint64) *uint64 { return &v }

// TestErrors: requests the server refuses, and the codes it refuses them
// with.
func TestErrors(t *testing.T) {
	a := start(t)
	a.set("g", "k", "v1")
	a.set("g", "k", "v2")
	a.set("g", "gone", "x")
	a.do("config.delete", configwire.DeleteRequest{Key: key3("", "g", "gone")}, nil)

	tooLarge := strings.Repeat("x", configwire.MaxValueBytes+1)
	longKey := strings.Repeat("k", configwire.MaxKeyBytes+1)
	ok := key3("", "g", "k")
	cases := []struct {
		name string
		op   string
		req  any
		want mortar.Code
	}{
		// Bad names.
		{"bad group", "config.set", configwire.SetRequest{Key: key3("", "a b", "k"), Value: val("v")}, mortar.CodeInvalidArgument},
		{"empty group", "config.get", configwire.GetRequest{Key: key3("", "", "k")}, mortar.CodeInvalidArgument},
		{"long group", "config.get", configwire.GetRequest{Key: key3("", strings.Repeat("g", 65), "k")}, mortar.CodeInvalidArgument},
		{"bad namespace", "config.set", configwire.SetRequest{Key: key3("a.b", "g", "k"), Value: val("v")}, mortar.CodeInvalidArgument},
		{"empty key", "config.set", configwire.SetRequest{Key: key3("", "g", ""), Value: val("v")}, mortar.CodeInvalidArgument},
		{"long key", "config.get", configwire.GetRequest{Key: key3("", "g", longKey)}, mortar.CodeInvalidArgument},
		{"bad group in diff", "config.diff", configwire.DiffRequest{Key: key3("", "*", "k"), From: 1}, mortar.CodeInvalidArgument},
		{"bad group in rollback", "config.rollback", configwire.RollbackRequest{Key: key3("", ">", "k"), To: 1}, mortar.CodeInvalidArgument},
		{"bad group in list", "config.list", configwire.ListRequest{Group: "a.b"}, mortar.CodeInvalidArgument},
		{"bad namespace to create", "config.ns.create", configwire.NSRequest{NS: "a b"}, mortar.CodeInvalidArgument},
		// Bad values and fields.
		{"value too large", "config.set", configwire.SetRequest{Key: ok, Value: val(tooLarge)}, mortar.CodeTooLarge},
		{"gray value too large", "config.gray.set", configwire.GraySetRequest{Key: ok, Value: val(tooLarge), Rule: configwire.Rule{Selector: "canary"}}, mortar.CodeTooLarge},
		{"no value", "config.set", configwire.SetRequest{Key: ok}, mortar.CodeInvalidArgument},
		{"two values", "config.set", configwire.SetRequest{Key: ok, Value: configwire.Value{Value: new("a"), ValueBase64: []byte("b")}}, mortar.CodeInvalidArgument},
		{"invalid JSON value", "config.set", configwire.SetRequest{Key: ok, Value: val("{"), ContentType: configwire.TypeJSON}, mortar.CodeInvalidArgument},
		{"unknown content type", "config.set", configwire.SetRequest{Key: ok, Value: val("v"), ContentType: "xml"}, mortar.CodeInvalidArgument},
		{"long comment", "config.set", configwire.SetRequest{Key: ok, Value: val("v"), Comment: strings.Repeat("c", configwire.MaxCommentBytes+1)}, mortar.CodeInvalidArgument},
		{"history limit", "config.history", configwire.HistoryRequest{Key: ok, Limit: 1001}, mortar.CodeInvalidArgument},
		{"diff from 0", "config.diff", configwire.DiffRequest{Key: ok}, mortar.CodeInvalidArgument},
		{"rollback to 0", "config.rollback", configwire.RollbackRequest{Key: ok}, mortar.CodeInvalidArgument},
		{"bad gray rule", "config.gray.set", configwire.GraySetRequest{Key: ok, Value: val("v"), Rule: configwire.Rule{Selector: "a in ("}}, mortar.CodeInvalidArgument},
		// Malformed bodies.
		{"unknown field", "config.set", map[string]any{"group": "g", "key": "k", "value": "v", "colour": "red"}, mortar.CodeInvalidArgument},
		{"wrong type", "config.get", map[string]any{"group": 7, "key": "k"}, mortar.CodeInvalidArgument},
		{"not an object", "config.get", []string{"g", "k"}, mortar.CodeInvalidArgument},
		// Unknown namespaces, keys and versions.
		{"unknown namespace: set", "config.set", configwire.SetRequest{Key: key3("nope", "g", "k"), Value: val("v")}, mortar.CodeNotFound},
		{"unknown namespace: get", "config.get", configwire.GetRequest{Key: key3("nope", "g", "k")}, mortar.CodeNotFound},
		{"unknown namespace: list", "config.list", configwire.ListRequest{NS: "nope"}, mortar.CodeNotFound},
		{"unknown namespace: diff", "config.diff", configwire.DiffRequest{Key: key3("nope", "g", "k"), From: 1}, mortar.CodeNotFound},
		{"unknown namespace: rollback", "config.rollback", configwire.RollbackRequest{Key: key3("nope", "g", "k"), To: 1}, mortar.CodeNotFound},
		{"unknown namespace: delete", "config.ns.delete", configwire.NSRequest{NS: "nope"}, mortar.CodeNotFound},
		{"unknown key", "config.get", configwire.GetRequest{Key: key3("", "g", "none")}, mortar.CodeNotFound},
		{"deleted key", "config.get", configwire.GetRequest{Key: key3("", "g", "gone")}, mortar.CodeNotFound},
		{"unknown version", "config.get", configwire.GetRequest{Key: ok, Version: 3}, mortar.CodeNotFound},
		{"unknown version in diff", "config.diff", configwire.DiffRequest{Key: ok, From: 1, To: 9}, mortar.CodeNotFound},
		{"unknown version in rollback", "config.rollback", configwire.RollbackRequest{Key: ok, To: 9}, mortar.CodeNotFound},
		{"rollback of a never-written key", "config.rollback", configwire.RollbackRequest{Key: key3("", "g", "none"), To: 1}, mortar.CodeNotFound},
		{"history of a never-written key", "config.history", configwire.HistoryRequest{Key: key3("", "g", "none")}, mortar.CodeNotFound},
		{"no gray release", "config.gray.get", configwire.GrayRequest{Key: ok}, mortar.CodeNotFound},
		{"delete of a deleted key", "config.delete", configwire.DeleteRequest{Key: key3("", "g", "gone")}, mortar.CodeNotFound},
		// States that forbid the operation.
		{"rollback to a deletion", "config.rollback", configwire.RollbackRequest{Key: key3("", "g", "gone"), To: 2}, mortar.CodeFailedPrecondition},
		{"delete the default namespace", "config.ns.delete", configwire.NSRequest{NS: "default"}, mortar.CodeFailedPrecondition},
		{"create the default namespace", "config.ns.create", configwire.NSRequest{NS: "default"}, mortar.CodeAlreadyExists},
	}
	for _, c := range cases {
		if got := a.code(c.op, c.req); got != c.want {
			t.Errorf("%s: %s = %s, want %s", c.name, c.op, got, c.want)
		}
	}
	// Nothing refused was written.
	if r := a.get("g", "k", 0); r.Version != 2 || *r.Value.Value != "v2" {
		t.Errorf("after refused writes: version %d %q", r.Version, *r.Value.Value)
	}
}

// TestCompareAndSet: expected_version guards set, delete and rollback; a
// stale one is a conflict and writes nothing.
func TestCompareAndSet(t *testing.T) {
	a := start(t)
	ok := key3("", "g", "k")
	var v configwire.VersionInfo
	a.do("config.set", configwire.SetRequest{Key: ok, Value: val("v1"), ExpectedVersion: expect(0)}, &v)
	if v.Version != 1 {
		t.Fatalf("create = version %d", v.Version)
	}
	a.do("config.set", configwire.SetRequest{Key: ok, Value: val("v2"), ExpectedVersion: expect(1)}, &v)
	if v.Version != 2 {
		t.Fatalf("set at 1 = version %d", v.Version)
	}
	for _, c := range []struct {
		op  string
		req any
	}{
		{"config.set", configwire.SetRequest{Key: ok, Value: val("stale"), ExpectedVersion: expect(1)}},
		{"config.set", configwire.SetRequest{Key: ok, Value: val("stale"), ExpectedVersion: expect(0)}},
		{"config.set", configwire.SetRequest{Key: ok, Value: val("ahead"), ExpectedVersion: expect(3)}},
		{"config.set", configwire.SetRequest{Key: key3("", "g", "new"), Value: val("x"), ExpectedVersion: expect(1)}},
		{"config.delete", configwire.DeleteRequest{Key: ok, ExpectedVersion: expect(1)}},
		{"config.rollback", configwire.RollbackRequest{Key: ok, To: 1, ExpectedVersion: expect(1)}},
	} {
		if got := a.code(c.op, c.req); got != mortar.CodeConflict {
			t.Errorf("%s %+v = %s, want conflict", c.op, c.req, got)
		}
	}
	if r := a.get("g", "k", 0); r.Version != 2 || *r.Value.Value != "v2" {
		t.Fatalf("after conflicts: version %d %q; want 2 v2", r.Version, *r.Value.Value)
	}
	// A deleted key counts as absent: expected_version 0 writes it again.
	a.do("config.delete", configwire.DeleteRequest{Key: ok, ExpectedVersion: expect(2)}, &v)
	a.do("config.set", configwire.SetRequest{Key: ok, Value: val("again"), ExpectedVersion: expect(0)}, &v)
	if v.Version != 4 {
		t.Fatalf("set after delete = version %d, want 4", v.Version)
	}
}

// TestLongHistory: 70 versions, more than one page of history and more
// than the 64 a subject could be expected to keep; every one stays
// readable, rollback copies an old one and diff compares any two.
func TestLongHistory(t *testing.T) {
	a := start(t)
	const n = 70
	for i := 1; i <= n; i++ {
		if v := a.set("g", "k", fmt.Sprintf("value %d\n", i)); v.Version != uint64(i) {
			t.Fatalf("write %d = version %d", i, v.Version)
		}
	}
	for _, v := range []uint64{1, 2, 35, 64, 65, n} {
		r := a.get("g", "k", v)
		if r.Version != v || !r.Exists || *r.Value.Value != fmt.Sprintf("value %d\n", v) {
			t.Errorf("version %d = version %d, exists %v, %q", v, r.Version, r.Exists, *r.Value.Value)
		}
	}
	if r := a.get("g", "k", 0); r.Version != n {
		t.Errorf("current = version %d, want %d", r.Version, n)
	}

	// History pages: newest first, 50 by default, then the rest.
	var h configwire.HistoryResponse
	a.do("config.history", configwire.HistoryRequest{Key: key3("", "g", "k")}, &h)
	if len(h.Versions) != 50 || !h.More || h.Versions[0].Version != n || h.Versions[49].Version != n-49 {
		t.Fatalf("first page: %d versions, more %v", len(h.Versions), h.More)
	}
	a.do("config.history", configwire.HistoryRequest{Key: key3("", "g", "k"), Before: h.Versions[49].Version}, &h)
	if len(h.Versions) != n-50 || h.More || h.Versions[0].Version != n-50 || h.Versions[n-51].Version != 1 {
		t.Fatalf("second page: %d versions, more %v", len(h.Versions), h.More)
	}

	// Rollback writes a new version equal to the old one.
	var rb configwire.VersionInfo
	a.do("config.rollback", configwire.RollbackRequest{Key: key3("", "g", "k"), To: 1, Comment: "back"}, &rb)
	if rb.Version != n+1 || rb.RollbackOf != 1 || rb.Comment != "back" {
		t.Fatalf("rollback = %+v", rb)
	}
	v1, cur := a.get("g", "k", 1), a.get("g", "k", 0)
	if cur.Version != n+1 || *cur.Value.Value != *v1.Value.Value || cur.SHA256 != v1.SHA256 || cur.ContentType != v1.ContentType {
		t.Fatalf("after rollback: current %+v %q, version 1 %+v %q", cur.VersionInfo, *cur.Value.Value, v1.VersionInfo, *v1.Value.Value)
	}
	a.do("config.rollback", configwire.RollbackRequest{Key: key3("", "g", "k"), To: 2}, &rb)
	if rb.Comment != "rollback to version 2" {
		t.Errorf("default rollback comment %q", rb.Comment)
	}

	// Diff of two versions, of a version and the current one, and of
	// equal contents.
	var d configwire.DiffResponse
	a.do("config.diff", configwire.DiffRequest{Key: key3("", "g", "k"), From: 1, To: n}, &d)
	want := "--- default/g/k@1\n+++ default/g/k@70\n@@ -1 +1 @@\n-value 1\n+value 70\n"
	if d.From != 1 || d.To != n || d.Diff != want {
		t.Errorf("diff 1 %d = %d→%d\n%s\nwant\n%s", n, d.From, d.To, d.Diff, want)
	}
	a.do("config.diff", configwire.DiffRequest{Key: key3("", "g", "k"), From: 65}, &d)
	if d.From != 65 || d.To != n+2 || !strings.Contains(d.Diff, "-value 65\n+value 2\n") {
		t.Errorf("diff 65 to current = %d→%d\n%s", d.From, d.To, d.Diff)
	}
	a.do("config.diff", configwire.DiffRequest{Key: key3("", "g", "k"), From: 1, To: n + 1}, &d)
	if d.Diff != "" {
		t.Errorf("diff of version 1 and its rollback = %q, want none", d.Diff)
	}
}

// TestNamespaces: a created namespace holds keys apart from the default
// one, and is deleted only when empty.
func TestNamespaces(t *testing.T) {
	a := start(t)
	a.do("config.ns.create", configwire.NSRequest{NS: "team"}, nil)
	if got := a.code("config.ns.create", configwire.NSRequest{NS: "team"}); got != mortar.CodeAlreadyExists {
		t.Errorf("create twice = %s", got)
	}
	var v configwire.VersionInfo
	a.do("config.set", configwire.SetRequest{Key: key3("team", "g", "k"), Value: val("t")}, &v)
	if got := a.code("config.get", configwire.GetRequest{Key: key3("", "g", "k")}); got != mortar.CodeNotFound {
		t.Errorf("the key in the default namespace = %s, want not_found", got)
	}
	if got := a.code("config.ns.delete", configwire.NSRequest{NS: "team"}); got != mortar.CodeFailedPrecondition {
		t.Errorf("delete a namespace with keys = %s", got)
	}
	a.do("config.delete", configwire.DeleteRequest{Key: key3("team", "g", "k")}, nil)
	a.do("config.ns.delete", configwire.NSRequest{NS: "team"}, nil)
	if got := a.code("config.get", configwire.GetRequest{Key: key3("team", "g", "k")}); got != mortar.CodeNotFound {
		t.Errorf("get in a deleted namespace = %s", got)
	}
}

// TestGray: a gray release shows in get with_gray, then is promoted to
// the next version or abandoned.
func TestGray(t *testing.T) {
	a := start(t)
	k := key3("", "g", "k")
	a.set("g", "k", "v1")
	var g configwire.GrayInfo
	a.do("config.gray.set", configwire.GraySetRequest{Key: k, Value: val("gray"), Rule: configwire.Rule{Selector: "canary"}}, &g)
	if g.Generation != 1 || g.BaseVersion != 1 {
		t.Fatalf("gray set = %+v", g)
	}
	var r configwire.GetResponse
	a.do("config.get", configwire.GetRequest{Key: k, WithGray: true}, &r)
	if !r.Exists || r.Version != 1 || *r.Value.Value != "v1" || r.Gray == nil || r.Gray.Generation != 1 || r.GrayRevision != g.Revision {
		t.Fatalf("get with_gray = %+v", r)
	}
	var v configwire.VersionInfo
	a.do("config.gray.promote", configwire.GrayRequest{Key: k}, &v)
	if v.Version != 2 || v.PromotedFrom != 1 {
		t.Fatalf("promote = %+v", v)
	}
	if r := a.get("g", "k", 0); *r.Value.Value != "gray" {
		t.Fatalf("after promote: %q", *r.Value.Value)
	}
	if got := a.code("config.gray.get", configwire.GrayRequest{Key: k}); got != mortar.CodeNotFound {
		t.Fatalf("gray get after promote = %s", got)
	}
	a.do("config.gray.set", configwire.GraySetRequest{Key: k, Value: val("gray2"), Rule: configwire.Rule{Addresses: []string{"h:1"}}}, &g)
	var ab struct{ Generation uint64 }
	a.do("config.gray.abandon", configwire.GrayRequest{Key: k}, &ab)
	if ab.Generation != g.Generation {
		t.Fatalf("abandon = generation %d, want %d", ab.Generation, g.Generation)
	}
	if r := a.get("g", "k", 0); r.Version != 2 || *r.Value.Value != "gray" {
		t.Fatalf("after abandon: version %d %q", r.Version, *r.Value.Value)
	}

	// A key with only a gray release: with_gray says it does not exist
	// and carries the release; a plain get is not_found.
	n := key3("", "g", "new")
	a.do("config.gray.set", configwire.GraySetRequest{Key: n, Value: val("g"), Rule: configwire.Rule{Selector: "canary"}}, &g)
	r = configwire.GetResponse{}
	a.do("config.get", configwire.GetRequest{Key: n, WithGray: true}, &r)
	if r.Exists || r.Version != 0 || r.Gray == nil || g.BaseVersion != 0 {
		t.Fatalf("get with_gray of a gray-only key = %+v", r)
	}
	if got := a.code("config.get", configwire.GetRequest{Key: n}); got != mortar.CodeNotFound {
		t.Fatalf("plain get of a gray-only key = %s", got)
	}
}

// TestGetByRevision reads versions by their stream sequence, as a
// watcher replaying a gap does.
func TestGetByRevision(t *testing.T) {
	a := start(t)
	v1 := a.set("g", "k", "one")
	a.set("g", "k", "two")
	other := a.set("g", "other", "x")
	var r configwire.GetResponse
	a.do("config.get", configwire.GetRequest{Key: key3("", "g", "k"), Revision: v1.Revision}, &r)
	if got, _ := r.Value.Bytes(); string(got) != "one" || r.Version != 1 || !r.Exists {
		t.Fatalf("revision %d: %+v", v1.Revision, r)
	}
	for _, req := range []configwire.GetRequest{
		{Key: key3("", "g", "k"), Revision: other.Revision}, // another key's revision
		{Key: key3("", "g", "k"), Revision: 1 << 40},        // no such message
	} {
		if code := a.code("config.get", req); code != mortar.CodeNotFound {
			t.Errorf("get %+v: %s, want not_found", req, code)
		}
	}
	if code := a.code("config.get", configwire.GetRequest{Key: key3("", "g", "k"), Revision: v1.Revision, Version: 1}); code != mortar.CodeInvalidArgument {
		t.Errorf("revision with version: %s, want invalid_argument", code)
	}
}
