package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/config"
)

func TestSetGetVersions(t *testing.T) {
	c, _ := setup(t, &config.Config{Author: "alice"})
	ctx := ctxT(t)
	if _, err := c.Get(ctx, "app", "db.url"); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Get of a missing key = %v, want not found", err)
	}
	for i := 1; i <= 3; i++ {
		v, err := c.Set(ctx, "app", "db.url", fmt.Appendf(nil, "postgres://db/%d", i), &config.SetOpts{Comment: fmt.Sprint("c", i)})
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != uint64(i) || v.Author != "alice" || v.Comment != fmt.Sprint("c", i) {
			t.Fatalf("Set #%d = %+v", i, v)
		}
	}
	v, err := c.Get(ctx, "app", "db.url")
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Data) != "postgres://db/3" || v.Version != 3 || v.ContentType != "text" || v.Gray {
		t.Fatalf("Get = %+v", v)
	}
	old, err := c.GetVersion(ctx, "app", "db.url", 2)
	if err != nil || string(old.Data) != "postgres://db/2" || old.Comment != "c2" {
		t.Fatalf("GetVersion(2) = %+v, %v", old, err)
	}
	if _, err := c.GetVersion(ctx, "app", "db.url", 9); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("GetVersion(9) = %v, want not found", err)
	}
	// A free-form key with any characters; binary values.
	bin := []byte{0, 1, 2, 0xff, 0xfe}
	if _, err := c.Set(ctx, "app", "weird key/with:chars ü", bin, nil); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "app", "weird key/with:chars ü"); err != nil || !bytes.Equal(v.Data, bin) {
		t.Fatalf("Get binary = %+v, %v", v, err)
	}
	keys, err := c.List(ctx, "app")
	if err != nil || len(keys) != 2 || keys[0].Key != "db.url" || keys[0].Version != 3 {
		t.Fatalf("List = %+v, %v", keys, err)
	}
	// Delete is a tombstone version; history stays.
	d, err := c.Delete(ctx, "app", "db.url", nil)
	if err != nil || d.Version != 4 || !d.Deleted {
		t.Fatalf("Delete = %+v, %v", d, err)
	}
	if _, err := c.Get(ctx, "app", "db.url"); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Get after delete = %v", err)
	}
	if _, err := c.Delete(ctx, "app", "db.url", nil); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("second Delete = %v", err)
	}
	if v, err := c.Set(ctx, "app", "db.url", []byte("back"), &config.SetOpts{ExpectedVersion: config.Expect(0)}); err != nil || v.Version != 5 {
		t.Fatalf("recreate = %+v, %v", v, err)
	}
}

func TestHistoryBeyond64(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := ctxT(t)
	const n = 70
	for i := 1; i <= n; i++ {
		if _, err := c.Set(ctx, "g", "k", fmt.Appendf(nil, "v%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	var all []config.Version
	var before uint64
	for {
		page, more, err := c.History(ctx, "g", "k", &config.HistoryOpts{Before: before, Limit: 25})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if !more {
			break
		}
		before = page[len(page)-1].Version
	}
	if len(all) != n {
		t.Fatalf("history has %d versions, want %d", len(all), n)
	}
	for i, v := range all {
		if want := uint64(n - i); v.Version != want {
			t.Fatalf("history[%d].Version = %d, want %d", i, v.Version, want)
		}
	}
	for i := 1; i <= n; i++ {
		v, err := c.GetVersion(ctx, "g", "k", uint64(i))
		if err != nil || string(v.Data) != fmt.Sprintf("v%d", i) {
			t.Fatalf("GetVersion(%d) = %+v, %v", i, v, err)
		}
	}
}

func TestDiffRollback(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := ctxT(t)
	c.Set(ctx, "g", "k", []byte("a\nb\nc\n"), nil)
	c.Set(ctx, "g", "k", []byte("a\nB\nc\nd\n"), nil)
	d, err := c.Diff(ctx, "g", "k", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := "--- default/g/k@1\n+++ default/g/k@2\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n c\n+d\n"
	if d != want {
		t.Fatalf("Diff =\n%s\nwant\n%s", d, want)
	}
	if d, err := c.Diff(ctx, "g", "k", 2, 0); err != nil || d != "" {
		t.Fatalf("Diff(2, current) = %q, %v", d, err)
	}
	v, err := c.Rollback(ctx, "g", "k", 1, nil)
	if err != nil || v.Version != 3 || v.RollbackOf != 1 || v.Comment != "rollback to version 1" {
		t.Fatalf("Rollback = %+v, %v", v, err)
	}
	if got, _ := c.Get(ctx, "g", "k"); string(got.Data) != "a\nb\nc\n" {
		t.Fatalf("after rollback Get = %q", got.Data)
	}
	if _, err := c.Rollback(ctx, "g", "k", 7, nil); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Rollback to a missing version = %v", err)
	}
}

func TestCompareAndSetRace(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := ctxT(t)
	if _, err := c.Set(ctx, "g", "k", []byte("0"), nil); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			_, errs[i] = c.Set(ctx, "g", "k", fmt.Appendf(nil, "w%d", i), &config.SetOpts{ExpectedVersion: config.Expect(1)})
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, config.ErrConflict):
			t.Errorf("CAS loser error = %v, want conflict", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers won the compare-and-set, want 1", wins)
	}
	if _, err := c.Set(ctx, "g", "k", nil, &config.SetOpts{ExpectedVersion: config.Expect(0)}); !errors.Is(err, config.ErrConflict) {
		t.Fatalf("create over existing = %v, want conflict", err)
	}
	// Unconditional concurrent writers all succeed with distinct versions.
	seen := sync.Map{}
	for i := range writers {
		wg.Go(func() {
			v, err := c.Set(ctx, "g", "k", fmt.Appendf(nil, "u%d", i), nil)
			if err != nil {
				t.Error(err)
				return
			}
			if _, dup := seen.LoadOrStore(v.Version, true); dup {
				t.Errorf("version %d given twice", v.Version)
			}
		})
	}
	wg.Wait()
}

func TestErrors(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := ctxT(t)
	big := bytes.Repeat([]byte("x"), config.MaxValueBytes+1)
	tests := []struct {
		name  string
		group string
		key   string
		data  []byte
		ct    string
		code  mortar.Code
		msg   string
	}{
		{"oversized", "g", "k", big, "", mortar.CodeTooLarge, "more than"},
		{"bad json", "g", "k", []byte(`{"a":`), "json", mortar.CodeInvalidArgument, "not valid JSON"},
		{"bad yaml", "g", "k", []byte("a: [1, 2"), "yaml", mortar.CodeInvalidArgument, "not valid YAML"},
		{"bad toml", "g", "k", []byte("a = = 1"), "toml", mortar.CodeInvalidArgument, "not valid TOML"},
		{"bad type", "g", "k", []byte("x"), "xml", mortar.CodeInvalidArgument, "content type"},
		{"bad group", "g.x", "k", []byte("x"), "", mortar.CodeInvalidArgument, "group"},
		{"empty key", "g", "", []byte("x"), "", mortar.CodeInvalidArgument, "key is empty"},
		{"long key", "g", strings.Repeat("k", 257), []byte("x"), "", mortar.CodeInvalidArgument, "more than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Set(ctx, tt.group, tt.key, tt.data, &config.SetOpts{ContentType: tt.ct})
			if mortar.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Set = %v, want %s containing %q", err, tt.code, tt.msg)
			}
		})
	}
	// Nothing was written by the failed writes.
	if _, err := c.Get(ctx, "g", "k"); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Get after failed writes = %v", err)
	}
	// A value exactly 1 MiB is fine; valid typed values are fine.
	if _, err := c.Set(ctx, "g", "big", big[:config.MaxValueBytes], nil); err != nil {
		t.Fatalf("1 MiB value: %v", err)
	}
	for ct, v := range map[string]string{"json": `{"a":1}`, "yaml": "a: [1, 2]\n", "toml": "a = 1\n"} {
		if _, err := c.Set(ctx, "g", "typed-"+ct, []byte(v), &config.SetOpts{ContentType: ct}); err != nil {
			t.Errorf("valid %s: %v", ct, err)
		}
	}
	// A type is kept across writes: a later invalid JSON is refused.
	if _, err := c.Set(ctx, "g", "typed-json", []byte("{"), nil); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
		t.Errorf("invalid JSON into a json key = %v", err)
	}
	// Unknown namespace.
	other, _ := config.New(nil, &config.Config{Namespace: "nope"})
	_ = other
}
