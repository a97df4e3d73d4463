package pushserver

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSSEChannels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		channels, since, token []string
		want                   []subRequest
		wantErr                string
	}{
		{want: nil},
		{channels: []string{"news"}, want: []subRequest{{channel: "news"}}},
		{
			channels: []string{"news", "alerts", "news"}, token: []string{"alerts", "mine"},
			want: []subRequest{{channel: "alerts"}, {channel: "mine"}, {channel: "news"}},
		},
		{
			since: []string{"news:41:1764500000123456789"},
			want:  []subRequest{{channel: "news", recover: true, offset: 41, epoch: "1764500000123456789"}},
		},
		{
			// The channel may hold colons: offset and epoch are the last two fields.
			channels: []string{"room:1"}, since: []string{"room:1:7:e", "a:b:c:0:"},
			want: []subRequest{{channel: "room:1", recover: true, offset: 7, epoch: "e"}, {channel: "a:b:c", recover: true, offset: 0, epoch: ""}},
		},
		{since: []string{"news:5"}, wantErr: "CHANNEL:OFFSET:EPOCH"},
		{since: []string{"news"}, wantErr: "CHANNEL:OFFSET:EPOCH"},
		{since: []string{"news:x:1"}, wantErr: "bad offset"},
		{since: []string{"news:-1:1"}, wantErr: "bad offset"},
		{since: []string{":5:1"}, wantErr: "bad name"},
		{channels: []string{"has space"}, wantErr: "bad name"},
		{channels: []string{""}, wantErr: "bad name"},
		{token: []string{strings.Repeat("x", 256)}, wantErr: "bad name"},
	} {
		got, err := sseChannels(tc.channels, tc.since, tc.token)
		name := fmt.Sprintf("sseChannels(%q, %q, %q)", tc.channels, tc.since, tc.token)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s = %+v, %v, want an error with %q", name, got, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s = %v, want %+v", name, err, tc.want)
		case fmt.Sprint(got) != fmt.Sprint(tc.want):
			t.Errorf("%s = %+v, want %+v", name, got, tc.want)
		}
	}
}

func TestTargetSubject(t *testing.T) {
	t.Parallel()
	for _, tg := range []target{
		{kind: kindAll},
		{kind: kindClient, name: "phone-1"},
		{kind: kindUser, name: "alice@example.com"},
		{kind: kindChannel, name: "room:1.news/é"},
		{kind: kindChannel, name: "*"},
		{kind: kindChannel, name: ">"},
	} {
		subj := tg.subject()
		if strings.Count(subj, ".") != strings.Count(routePrefix, ".")+btoi(tg.kind != kindAll) {
			t.Errorf("%+v.subject() = %q, want the name in one token", tg, subj)
		}
		got, err := parseTarget(subj)
		if err != nil || got != tg {
			t.Errorf("parseTarget(%q) = %+v, %v, want %+v", subj, got, err, tg)
		}
	}
	for _, subj := range []string{"foo.bar", routePrefix + "client", routePrefix + "thing.eA", routePrefix + "client.!!"} {
		if got, err := parseTarget(subj); err == nil {
			t.Errorf("parseTarget(%q) = %+v, want an error", subj, got)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestBadRequestReason(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("y", 300)
	for _, tc := range []struct{ in, want string }{
		{"connect first", "bad request: connect first"},
		{long, "bad request: " + long[:100]},
	} {
		if got := badRequest(tc.in); got.Code != 4000 || got.Reason != tc.want {
			t.Errorf("badRequest(%q) = %d %q, want 4000 %q", tc.in, got.Code, got.Reason, tc.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	if _, err := (Config{Secrets: [][]byte{[]byte("s")}}).withDefaults(); err == nil {
		t.Error("withDefaults without a NATS connection = nil error, want one")
	}
	c := Config{Ping: time.Second, Pong: 2 * time.Second, ConnectTimeout: 3 * time.Second, Tick: time.Second}
	if got, want := wheelSlots(c), 5; got != want {
		t.Errorf("wheelSlots(%+v) = %d, want %d", c, got, want)
	}
}
