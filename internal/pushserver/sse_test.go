package pushserver_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/push"
)

// sseStream reads server-sent events.
type sseStream struct {
	t  testing.TB
	br *bufio.Reader
}

// openSSE opens /push/sse with query and checks the response head.
func openSSE(t testing.TB, n *mortartest.Node, query url.Values) *sseStream {
	t.Helper()
	resp := httpOpen(t, n.AdminURL(), "/push/sse?"+query.Encode())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /push/sse: %s, want 200", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sseStream{t: t, br: bufio.NewReader(resp.Body)}
}

// next returns the next event's message, skipping comment lines
// (heartbeats).
func (s *sseStream) next() *pushwire.Message {
	s.t.Helper()
	var data []string
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			s.t.Fatalf("reading the event stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && len(data) > 0:
			m, err := pushwire.Decode(pushwire.JSON, []byte(strings.Join(data, "\n")))
			if err != nil {
				s.t.Fatalf("event data %q: %v", data, err)
			}
			return m
		case line == "", strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		default:
			s.t.Fatalf("unexpected event stream line %q", line)
		}
	}
}

// connectResult reads the first event, the connect reply.
func (s *sseStream) connectResult() pushwire.ConnectResult {
	s.t.Helper()
	m := s.next()
	var res pushwire.ConnectResult
	if m.Op != pushwire.OpReply || m.Error != nil || json.Unmarshal(m.Result, &res) != nil {
		s.t.Fatalf("first event = %s, want the connect reply", jsonString(m))
	}
	return res
}

func TestSSE(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	pc := pushClient(t, n)

	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		tok := token(t, n, pushwire.Claims{Client: "sse-1", User: "u-sse", Channels: []string{"sse-token"}})
		s := openSSE(t, n, url.Values{"token": {tok}, "channel": {"sse-news", "sse-alerts"}})
		res := s.connectResult()
		var subs []string
		for _, r := range res.Subs {
			subs = append(subs, r.Channel)
		}
		if res.Client != "sse-1" || res.User != "u-sse" || fmt.Sprint(subs) != "[sse-token sse-news sse-alerts]" {
			t.Errorf("connect result = %s, want client sse-1, user u-sse, subs [sse-token sse-news sse-alerts]", jsonString(res))
		}
		off := send(t, pc, push.ToChannel("sse-news"), map[string]string{"title": "hello"}).Offset
		if m := s.next(); m.Op != pushwire.OpPush || m.Channel != "sse-news" || m.Offset != off || string(m.Data) != `{"title":"hello"}` {
			t.Errorf("event = %s, want the push to sse-news at offset %d", jsonString(m), off)
		}
		send(t, pc, push.ToUser("u-sse"), 2)
		send(t, pc, push.ToChannel("sse-token"), 3)
		for _, want := range []string{"2", "3"} {
			if m := s.next(); m.Op != pushwire.OpPush || string(m.Data) != want {
				t.Errorf("event = %s, want a push of %s", jsonString(m), want)
			}
		}
		conns, err := pc.Conns(ctx(t), &push.ConnsFilter{Client: "sse-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(conns.Conns) != 1 || conns.Conns[0].Transport != "sse" || conns.Conns[0].Conn != res.Conn {
			t.Errorf("Conns(sse-1) = %s, want one sse connection %s", jsonString(conns), res.Conn)
		}
	})
	t.Run("since", func(t *testing.T) {
		t.Parallel()
		// A channel name may hold colons; since splits at the last two.
		const ch = "sse:room:1"
		first := send(t, pc, push.ToChannel(ch), 1).Offset
		send(t, pc, push.ToChannel(ch), 2)
		third := send(t, pc, push.ToChannel(ch), 3).Offset
		h, err := pc.History(ctx(t), ch, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		tok := token(t, n, pushwire.Claims{Client: "sse-since"})
		s := openSSE(t, n, url.Values{"token": {tok}, "since": {fmt.Sprintf("%s:%d:%s", ch, first, h.Epoch)}})
		res := s.connectResult()
		if len(res.Subs) != 1 {
			t.Fatalf("connect result = %s, want one sub", jsonString(res))
		}
		sub := res.Subs[0]
		if sub.Channel != ch || !sub.Recovered || len(sub.Pubs) != 2 || string(sub.Pubs[0].Data) != "2" || sub.Pubs[1].Offset != third {
			t.Errorf("sub = %s, want %s recovered with pubs 2 and 3 (offset %d)", jsonString(sub), ch, third)
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		t.Parallel()
		for _, q := range []url.Values{
			{"channel": {"news"}},
			{"token": {"nope"}, "channel": {"news"}},
			{"token": {token(t, n, pushwire.Claims{Client: "sse-x"})}, "client": {"sse-y"}},
		} {
			resp, _ := httpGet(t, n.AdminURL(), "/push/sse?"+q.Encode())
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET /push/sse?%s: %s, want 401", q.Encode(), resp.Status)
			}
		}
	})
	t.Run("bad request", func(t *testing.T) {
		t.Parallel()
		tok := token(t, n, pushwire.Claims{Client: "sse-bad"})
		for _, q := range []url.Values{
			{"token": {tok}, "channel": {"has space"}},
			{"token": {tok}, "since": {"news:1"}},
			{"token": {tok}, "since": {"news:x:1"}},
		} {
			resp, _ := httpGet(t, n.AdminURL(), "/push/sse?"+q.Encode())
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET /push/sse?%s: %s, want 400", q.Encode(), resp.Status)
			}
		}
	})
}
