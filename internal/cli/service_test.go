package cli

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar/registry"
)

func TestServiceCLI(t *testing.T) {
	n := startNode(t)
	url := "--url=" + n.URL()
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{[]string{"service", "list", url}, 0, "NAME  INSTANCES  PASSING  WARNING  CRITICAL\n", ""},
		{[]string{"service", "register", url, "web", "w1", "--address", "127.0.0.1", "--port", "4242", "--zone", "eu-1",
			"--version", "1.2.0", "--meta", "git=abc", "--meta", "note=a, b=c", "--tag", "primary", "--tag", "canary",
			"--check", "tcp", "--check-interval", "1h"}, 0, "registered web/w1 at tcp://127.0.0.1:4242", ""},
		{[]string{"service", "list", url, "web"}, 0, "tcp://127.0.0.1:4242", ""},
		{[]string{"service", "get", url, "web", "w1"}, 0, "zone:       eu-1\n", ""},
		{[]string{"service", "deregister", url, "web", "w1"}, 0, "deregistered web/w1\n", ""},
		{[]string{"service", "deregister", url, "web", "w1"}, 0, "web/w1 was not registered\n", ""},
		{[]string{"service", "get", url, "web", "w1"}, 1, "", "instance web/w1 is not registered"},
		{[]string{"service", "get", url, "web"}, 2, "", "takes 2 argument(s)"},
		{[]string{"service", "list", url, "bad name"}, 2, "", `service "bad name"`},
	}
	for i, s := range steps {
		code, out, errOut := run(t, s.args...)
		if code != s.wantCode || !strings.Contains(out, s.wantOut) || !strings.Contains(errOut, s.wantErr) {
			t.Fatalf("mortar %v = %d, stdout %q, stderr %q; want %d, stdout containing %q, stderr containing %q",
				s.args[1:], code, out, errOut, s.wantCode, s.wantOut, s.wantErr)
		}
		if i != 3 {
			continue
		}
		// While w1 is registered: the fields of get, and the JSON forms.
		for _, want := range []string{"endpoint:   tcp://127.0.0.1:4242\n", "version:    1.2.0\n", "metadata:   git=abc\n            note=a, b=c\n",
			"tags:       primary, canary\n", "ttl:        none", "check:      tcp tcp://127.0.0.1:4242 every 1h0m0s", "node:       n1\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("service get lacks %q:\n%s", want, out)
			}
		}
		code, out, errOut = run(t, "service", "get", url, "-o", "json", "web", "w1")
		var in registry.Instance
		if err := json.Unmarshal([]byte(out), &in); err != nil || code != 0 {
			t.Fatalf("service get -o json = %d %q %q: %v", code, out, errOut, err)
		}
		if in.Service != "web" || in.ID != "w1" || in.Port != 4242 || in.Metadata["note"] != "a, b=c" || len(in.Tags) != 2 ||
			in.Check == nil || in.Check.Type != registry.CheckTCP || in.Node != n.Name() || in.Registered.IsZero() {
			t.Errorf("service get -o json decoded to %+v", in)
		}
		_, out, _ = run(t, "service", "list", url)
		if !regexp.MustCompile(`(?m)^web +1 +`).MatchString(out) {
			t.Errorf("service list does not show web with 1 instance:\n%s", out)
		}
		_, out, _ = run(t, "service", "list", url, "-o", "json")
		var svcs []registry.ServiceInfo
		if err := json.Unmarshal([]byte(out), &svcs); err != nil || len(svcs) != 1 || svcs[0].Name != "web" || svcs[0].Instances != 1 {
			t.Errorf("service list -o json = %q (%v)", out, err)
		}
		_, out, _ = run(t, "service", "list", url, "-o", "json", "web")
		var ins []registry.Instance
		if err := json.Unmarshal([]byte(out), &ins); err != nil || len(ins) != 1 || ins[0].ID != "w1" {
			t.Errorf("service list -o json web = %q (%v)", out, err)
		}
	}
}

func TestServiceRegisterUsage(t *testing.T) {
	// No node: every one of these must fail before connecting.
	url := "--url=nats://127.0.0.1:1"
	reg := func(args ...string) []string {
		return append([]string{"service", "register", url, "web", "w1"}, args...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{reg("--port", "80"), "--address is required"},
		{reg("--address", "h"), "--port is required"},
		{reg("--address", "h", "--port", "70000"), "--port 70000: want 1 to 65535"},
		{reg("--address", "h", "--port", "80", "--meta", "novalue"), `--meta "novalue": want KEY=VALUE`},
		{reg("--address", "h", "--port", "80", "--meta", "=v"), `--meta "=v": want KEY=VALUE`},
		{reg("--address", "h", "--port", "80", "--meta", "k=1", "--meta", "k=2"), "given twice"},
		{reg("--address", "h", "--port", "80", "--ttl", "500ms"), "ttl 500ms"},
		{reg("--address", "h", "--port", "80", "--weight", "20000"), "weight 20000"},
		{reg("--address", "h", "--port", "80", "--check", "ping"), `check type "ping"`},
		{reg("--address", "h", "--port", "80", "--check-url", "http://h/"), "--check-url needs --check"},
		{reg("--address", "h", "--port", "80", "--check", "tcp", "--check-url", "http://h/"), "--check-url needs --check http"},
		{reg("--address", "h", "--port", "80", "--check", "tcp", "--check-interval", "10ms"), "check interval 10ms"},
		{reg("--address", "h", "--port", "x"), "invalid argument"},
		{[]string{"service", "register", url, "bad/name", "w1", "--address", "h", "--port", "80"}, `service "bad/name"`},
		{[]string{"service", "register", url, "web"}, "takes 2 argument(s)"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("mortar %v = %d, stderr %q; want %d containing %q", tc.args[3:], code, stderr, ExitUsage, tc.want)
		}
	}
}

// runBackground runs the CLI until ctx ends; the returned channel gets
// its exit code.
func runBackground(ctx context.Context, stdout, stderr *syncBuffer, args ...string) <-chan int {
	code := make(chan int, 1)
	go func() { code <- Main(ctx, args, stdout, stderr) }()
	return code
}

// exitCode waits for the code of a background run.
func exitCode(t *testing.T, code <-chan int, stderr *syncBuffer) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("command did not return after its context ended; stderr:\n%s", stderr.String())
		return 0
	}
}

func TestServiceRegisterWithLease(t *testing.T) {
	n := startNode(t)
	c, err := registry.New(n.Dial(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, errb := newSyncBuffer(), newSyncBuffer()
	code := runBackground(ctx, out, errb, "service", "register", "--url", n.URL(), "web", "w1", "--address", "127.0.0.1", "--port", "4242", "--ttl", "3s")
	out.waitFor(t, "until interrupted", 10*time.Second)
	if !strings.Contains(out.String(), "registered web/w1 at tcp://127.0.0.1:4242, status passing\nlease 3s: heartbeating every 1s") {
		t.Errorf("register output:\n%s", out.String())
	}
	got, err := c.Get(t.Context(), "web", "w1")
	if err != nil || got.TTL != 3*time.Second {
		t.Fatalf("Get while registered = %+v, %v", got, err)
	}
	cancel()
	if c := exitCode(t, code, errb); c != ExitOK {
		t.Fatalf("register exit = %d; stderr:\n%s", c, errb.String())
	}
	if !strings.HasSuffix(out.String(), "deregistering web/w1\nderegistered web/w1\n") {
		t.Errorf("register output after interrupt:\n%s", out.String())
	}
	if _, err := c.Get(t.Context(), "web", "w1"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get after interrupt: %v, want not found", err)
	}
}

func TestServiceWatch(t *testing.T) {
	n := startNode(t)
	url := "--url=" + n.URL()
	c, err := registry.New(n.Dial(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "service", "register", url, "web", "w0", "--address", "127.0.0.1", "--port", "4000"); code != 0 {
		t.Fatalf("register = %d %q %q", code, out, errOut)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, errb := newSyncBuffer(), newSyncBuffer()
	code := runBackground(ctx, out, errb, "service", "watch", url, "web")
	jout, jerrb := newSyncBuffer(), newSyncBuffer()
	jcode := runBackground(ctx, jout, jerrb, "service", "watch", url, "-o", "json")
	// The instance registered before the watch started comes first.
	out.waitFor(t, "  put     web/w0  tcp://127.0.0.1:4000  passing\n", 10*time.Second)
	jout.waitFor(t, `"id":"w0"`, 10*time.Second)

	if _, err := c.Register(t.Context(), registry.Instance{Service: "web", ID: "w1", Address: "127.0.0.1", Port: 4001}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "  put     web/w1  tcp://127.0.0.1:4001  passing\n", 10*time.Second)
	if ok, err := c.Deregister(t.Context(), "web", "w1"); !ok || err != nil {
		t.Fatalf("Deregister = %v, %v", ok, err)
	}
	out.waitFor(t, "  delete  web/w1\n", 10*time.Second)
	jout.waitFor(t, `"type":"delete"`, 10*time.Second)
	if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*  put     web/w0  `).MatchString(out.String()) {
		t.Errorf("watch lines do not start with a time:\n%s", out.String())
	}
	var types []registry.EventType
	for line := range strings.Lines(jout.String()) {
		var ev struct {
			Time time.Time `json:"time"`
			registry.Event
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Time.IsZero() || ev.Instance.Service != "web" {
			t.Fatalf("watch -o json line %q: %+v, %v", line, ev, err)
		}
		if ev.Type == registry.EventDelete && !strings.HasSuffix(line, `"instance":{"service":"web","id":"w1"}}`+"\n") {
			t.Errorf("watch -o json delete line %q: want only service and id", line)
		}
		types = append(types, ev.Type)
	}
	if len(types) != 3 || types[0] != registry.EventPut || types[1] != registry.EventPut || types[2] != registry.EventDelete {
		t.Errorf("watch -o json events %v, want put put delete:\n%s", types, jout.String())
	}

	cancel()
	if c := exitCode(t, code, errb); c != ExitOK {
		t.Fatalf("watch exit = %d; stderr:\n%s", c, errb.String())
	}
	if c := exitCode(t, jcode, jerrb); c != ExitOK {
		t.Fatalf("watch -o json exit = %d; stderr:\n%s", c, jerrb.String())
	}
	if errb.String() != "" {
		t.Errorf("watch stderr: %s", errb.String())
	}
}

// TestServiceRegisterIgnoresServerEnv: MORTAR_PORT, meant for mortar
// server, does not become the port of an instance being registered.
func TestServiceRegisterIgnoresServerEnv(t *testing.T) {
	t.Setenv("MORTAR_PORT", "4222")
	code, _, stderr := run(t, "service", "register", "--url=nats://127.0.0.1:1", "web", "w1", "--address", "127.0.0.1")
	if code != ExitUsage || !strings.Contains(stderr, "port") {
		t.Fatalf("register without --port = %d, %q; want a usage error about the port", code, stderr)
	}
}
