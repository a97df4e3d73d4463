package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigCLI(t *testing.T) {
	n := startNode(t)
	url := "--url=" + n.URL()
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{[]string{"config", "get", url, "app/db.url"}, 1, "", "not_found"},
		{[]string{"config", "set", url, "app/db.url", "postgres://a"}, 0, "version 1\n", ""},
		{[]string{"config", "set", url, "-m", "second", "app/db.url", "postgres://b"}, 0, "version 2\n", ""},
		{[]string{"config", "get", url, "app/db.url"}, 0, "postgres://b", ""},
		{[]string{"config", "get", url, "--version", "1", "app/db.url"}, 0, "postgres://a", ""},
		{[]string{"config", "set", url, "--expect-version", "1", "app/db.url", "x"}, 1, "", "conflict"},
		{[]string{"config", "set", url, "--type", "json", "app/j", "{"}, 1, "", "not valid JSON"},
		{[]string{"config", "diff", url, "app/db.url", "1", "2"}, 0, "-postgres://a\n", ""},
		{[]string{"config", "history", url, "app/db.url"}, 0, "second", ""},
		{[]string{"config", "rollback", url, "app/db.url", "--to", "1"}, 0, "version 3\n", ""},
		{[]string{"config", "list", url}, 0, "app/db.url  3", ""},
		{[]string{"config", "gray", "set", url, "--selector", "canary", "app/db.url", "postgres://gray"}, 0, "gray generation 1 on version 3\n", ""},
		{[]string{"config", "gray", "get", url, "app/db.url"}, 0, "postgres://gray", ""},
		{[]string{"config", "gray", "promote", url, "app/db.url"}, 0, "version 4\n", ""},
		{[]string{"config", "get", url, "app/db.url"}, 0, "postgres://gray", ""},
		{[]string{"config", "gray", "abandon", url, "app/db.url"}, 1, "", "no gray release"},
		{[]string{"config", "ns", "create", url, "team"}, 0, "", ""},
		{[]string{"config", "ns", "list", url}, 0, "default\nteam\n", ""},
		{[]string{"config", "set", url, "--ns", "nope", "app/k", "v"}, 1, "", "create it"},
		{[]string{"config", "delete", url, "app/db.url"}, 0, "deleted at version 5\n", ""},
		{[]string{"config", "get", url, "nokey"}, 2, "", "GROUP/KEY"},
		{[]string{"config", "set", url, "app/k"}, 2, "", "give VALUE"},
		{[]string{"config", "rollback", url, "app/k"}, 2, "", "--to N"},
	}
	for _, s := range steps {
		code, out, errOut := run(t, s.args...)
		if code != s.wantCode || !strings.Contains(out, s.wantOut) || !strings.Contains(errOut, s.wantErr) {
			t.Fatalf("mortar %v = %d, stdout %q, stderr %q; want %d, stdout containing %q, stderr containing %q",
				s.args[1:], code, out, errOut, s.wantCode, s.wantOut, s.wantErr)
		}
	}
}

func TestConfigEdit(t *testing.T) {
	n := startNode(t)
	url := "--url=" + n.URL()
	run(t, "config", "set", url, "app/k", "old")
	dir := t.TempDir()
	script := filepath.Join(dir, "ed.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nsed -i s/old/new/ \"$1\"\n"), 0o755)
	t.Setenv("VISUAL", "")
	t.Setenv("EDITOR", script)
	if code, out, errOut := run(t, "config", "edit", url, "app/k"); code != 0 || out != "version 2\n" {
		t.Fatalf("edit = %d %q %q", code, out, errOut)
	}
	if _, out, _ := run(t, "config", "get", url, "app/k"); out != "new" {
		t.Fatalf("after edit get = %q", out)
	}
	// An editor that changes nothing writes nothing.
	t.Setenv("EDITOR", "true")
	if code, _, errOut := run(t, "config", "edit", url, "app/k"); code != 0 || !strings.Contains(errOut, "unchanged") {
		t.Fatalf("unchanged edit = %d %q", code, errOut)
	}
	if _, out, _ := run(t, "config", "history", url, "app/k"); strings.Count(out, "\n") != 3 {
		t.Fatalf("history after a no-op edit:\n%s", out)
	}
}

func TestConfigWatch(t *testing.T) {
	n := startNode(t)
	url := "--url=" + n.URL()
	if code, _, errOut := run(t, "config", "set", url, "app/greeting", "hello"); code != 0 {
		t.Fatal(errOut)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, errb := newSyncBuffer(), newSyncBuffer()
	code := runBackground(ctx, out, errb, "config", "watch", url, "-o", "json", "app/greeting")
	out.waitFor(t, `"hello"`, 10*time.Second)
	// Values pass through unchanged, runs of spaces included.
	if code, _, errOut := run(t, "config", "set", url, "app/greeting", "hi  there"); code != 0 {
		t.Fatal(errOut)
	}
	out.waitFor(t, `"hi  there"`, 10*time.Second)
	cancel()
	if c := exitCode(t, code, errb); c != 0 {
		t.Fatalf("watch exited %d: %s", c, errb.String())
	}
}
