package cli

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/mortarhq/mortar/task"
)

func TestTaskCLI(t *testing.T) {
	n := startNode(t)
	conn := n.Dial(t)
	url := "--url=" + n.URL()
	w, err := task.NewWorker(conn, &task.WorkerConfig{Name: "cli-worker", Queues: []string{"default", "side"}, Retry: task.RetryPolicy{MaxRetries: -1},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	task.Handle(w, task.Define[[2]int, int]("cli.add"), func(ctx context.Context, a [2]int) (int, error) { return a[0] + a[1], nil })
	task.Handle(w, task.Define[struct{ Name string }, string]("cli.hello"), func(ctx context.Context, a struct{ Name string }) (string, error) {
		return "hello " + a.Name, nil
	})
	task.Handle(w, task.Define[int, int]("cli.fail"), func(ctx context.Context, _ int) (int, error) { return 0, errors.New("nope") })
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) })

	code, out, errOut := run(t, "task", "send", url, "cli.add", "2", "3", "--wait")
	if code != 0 || !strings.Contains(out, "state:    SUCCESS\n") || !strings.Contains(out, "result:   5\n") {
		t.Fatalf("task send --wait = %d %q %q", code, out, errOut)
	}
	code, out, errOut = run(t, "task", "send", url, "cli.hello", "--kwargs", `{"Name":"ann"}`)
	id := strings.TrimSpace(out)
	if code != 0 || !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(id) {
		t.Fatalf("task send = %d %q %q", code, out, errOut)
	}
	code, out, _ = run(t, "task", "get", url, id, "--wait", "-o", "json")
	var st task.Status
	if json.Unmarshal([]byte(out), &st); code != 0 || st.State != task.Success || string(st.Result) != `"hello ann"` {
		t.Fatalf("task get -o json = %d %q", code, out)
	}
	code, out, _ = run(t, "task", "send", url, "cli.fail", "1", "--wait")
	if code != 0 || !strings.Contains(out, "state:    FAILURE") || !strings.Contains(out, "error:    error: nope") {
		t.Fatalf("failing task = %d %q", code, out)
	}
	code, out, _ = run(t, "dlq", "list", url)
	if code != 0 || !strings.Contains(out, "cli.fail") || !strings.Contains(out, "nope") {
		t.Fatalf("dlq list = %d %q", code, out)
	}
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{[]string{"task", "send", url, "cli.add", "1", "1", "--countdown", "1h", "--id", "later"}, 0, "later\n", ""},
		{[]string{"task", "list", url, "--state", "delayed"}, 0, "later", ""},
		{[]string{"task", "revoke", url, "later"}, 0, "revoked later\n", ""},
		{[]string{"task", "get", url, "later"}, 0, "state:    REVOKED", ""},
		{[]string{"task", "list", url, "--state", "success"}, 0, "cli.hello", ""},
		{[]string{"task", "workers", url}, 0, "cli-worker", ""},
		{[]string{"queue", "stats", url, "side"}, 0, "side   0", ""},
		{[]string{"queue", "pause", url, "side", "--for", "1h"}, 0, "paused side until", ""},
		{[]string{"queue", "stats", url}, 0, "paused until", ""},
		{[]string{"queue", "resume", url, "side"}, 0, "resumed side\n", ""},
		{[]string{"queue", "purge", url, "side"}, 2, "", "add --yes"},
		{[]string{"queue", "purge", url, "side", "--yes"}, 0, "purged 0 tasks from side\n", ""},
		{[]string{"schedule", "add", url, "tick", "cli.add", "1", "2", "--every", "1h"}, 0, "scheduled tick\n", ""},
		{[]string{"schedule", "add", url, "nightly", "cli.add", "--cron", "0 3 * * *", "--tz", "Asia/Tokyo"}, 0, "scheduled nightly\n", ""},
		{[]string{"schedule", "list", url}, 0, "tick     every 1h0m0s", ""},
		{[]string{"schedule", "remove", url, "tick"}, 0, "removed schedule tick\n", ""},
		{[]string{"schedule", "remove", url, "tick"}, 1, "", "not found"},
		{[]string{"schedule", "add", url, "bad", "cli.add", "--every", "1ms"}, 1, "", "1s or more"},
		{[]string{"dlq", "retry", url, "default"}, 2, "", "--all"},
		{[]string{"dlq", "show", url, "default", "1"}, 0, "reason:   error\nerror:    nope", ""},
		{[]string{"dlq", "show", url, "default", "99"}, 1, "", "not found"},
		{[]string{"dlq", "discard", url, "default", "--all"}, 0, "discarded 1 dead letters of default\n", ""},
		{[]string{"task", "list", url}, 2, "", "--state is required"},
		{[]string{"task", "rate-limit", url, "cli.add", "10/m"}, 0, "limited cli.add to 10/m\n", ""},
		{[]string{"task", "rate-limit", url}, 0, "cli.add  10/m", ""},
		{[]string{"task", "rate-limit", url, "cli.add", "--remove"}, 0, "removed the rate limit of cli.add\n", ""},
		{[]string{"task", "rate-limit", url, "cli.add", "fast"}, 1, "", "want N/s"},
		{[]string{"task", "send", url, "cli.add", "--kwargs", "[1]"}, 2, "", "want a JSON object"},
		{[]string{"task", "send", url, "bad name"}, 1, "", "task name"},
		{[]string{"queue", "stats", url, "nobody"}, 1, "", "no worker has bound it"},
	}
	for _, s := range steps {
		code, out, errOut := run(t, s.args...)
		if code != s.wantCode || !strings.Contains(out, s.wantOut) || !strings.Contains(errOut, s.wantErr) {
			t.Fatalf("mortar %v = %d, stdout %q, stderr %q; want %d, stdout containing %q, stderr containing %q",
				s.args, code, out, errOut, s.wantCode, s.wantOut, s.wantErr)
		}
	}
}
