package push_test

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/push"
)

// chromium finds a headless browser, or skips the test; with
// MORTAR_REQUIRE_CHROMIUM set (CI) a missing browser fails it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("MORTAR_REQUIRE_CHROMIUM") != "" {
		t.Fatal("no chromium on PATH (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install chromium)")
	return ""
}

// TestBrowserDemo opens the node's demo page in headless Chromium. The
// page connects with the browser client (/push/mortar-push.js),
// subscribes to a channel and, asked to echo, publishes every push it
// receives back to an echo channel, where the test's own device reads it.
func TestBrowserDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := chromium(t)
	n := mortartest.StartNode(t)
	pc, _ := push.New(n.Dial(t), nil)
	ctx := t.Context()
	watcher := startDevice(t, n.PushURL(), token(t, n, push.Claims{Client: "watcher"}), nil)
	if _, err := watcher.Subscribe(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	q := url.Values{
		"token":   {token(t, n, push.Claims{Client: "browser-1", User: "carol"})},
		"channel": {"news"},
		"echo":    {"echo"},
	}
	page := n.AdminURL() + "/push/demo?" + q.Encode()
	cmd := exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-extensions", "--user-data-dir="+t.TempDir(), page)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The page is subscribed once presence lists it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		pres, err := pc.Presence(ctx, "news")
		if err != nil {
			t.Fatal(err)
		}
		if pres.Total == 1 && pres.Conns[0].Client == "browser-1" {
			if pres.Conns[0].Transport != "websocket" || pres.Conns[0].User != "carol" {
				t.Errorf("browser connection = %+v", pres.Conns[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo page did not subscribe within 60s")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	type echo struct {
		Echo   json.RawMessage `json:"echo"`
		Client string          `json:"client"`
	}
	for i, to := range []push.Target{push.ToChannel("news"), push.ToClient("browser-1"), push.ToUser("carol"), push.ToAll()} {
		want := map[string]any{"n": i, "to": to.String()}
		if _, err := pc.Send(ctx, to, want, nil); err != nil {
			t.Fatal(err)
		}
		p := watcher.next(t)
		for p.Channel != "echo" { // the watcher's own copy of the broadcast
			p = watcher.next(t)
		}
		var e echo
		if err := json.Unmarshal(p.Data, &e); err != nil {
			t.Fatalf("echo %s: %v", p.Data, err)
		}
		var got map[string]any
		json.Unmarshal(e.Echo, &got)
		if e.Client != "browser-1" || got["to"] != to.String() {
			t.Errorf("echo of the push to %s = %s", to, p.Data)
		}
	}
}
