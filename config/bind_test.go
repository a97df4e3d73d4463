package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar/config"
)

type dbConfig struct {
	URL      string `json:"url" yaml:"url" toml:"url"`
	MaxConns int    `json:"max_conns" yaml:"max_conns" toml:"max_conns"`
}

func TestBind(t *testing.T) {
	for _, tc := range []struct {
		ct          string
		good, good2 string
		bad         string
	}{
		{"json", `{"url":"a","max_conns":1}`, `{"url":"b","max_conns":2}`, `{"url":"c","max_conns":-1}`},
		{"yaml", "url: a\nmax_conns: 1\n", "url: b\nmax_conns: 2\n", "url: c\nnope: 1\n"},
		{"toml", "url = \"a\"\nmax_conns = 1\n", "url = \"b\"\nmax_conns = 2\n", "url = \"c\"\nmax_conns = -1\n"},
	} {
		t.Run(tc.ct, func(t *testing.T) {
			c, _ := setup(t, nil)
			ctx := ctxT(t)
			if _, err := c.Set(ctx, "db", "main", []byte(tc.good), &config.SetOpts{ContentType: tc.ct}); err != nil {
				t.Fatal(err)
			}
			changes := make(chan [2]dbConfig, 4)
			errs := make(chan error, 4)
			b, err := config.Bind(ctx, c, "db", "main", &config.BindOpts[dbConfig]{
				Validate: func(d dbConfig) error {
					if d.MaxConns < 1 {
						return errors.New("max_conns must be positive")
					}
					return nil
				},
				OnChange: func(old, new dbConfig) { changes <- [2]dbConfig{old, new} },
				OnError:  func(err error) { errs <- err },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Stop()
			if got := b.Get(); got != (dbConfig{"a", 1}) {
				t.Fatalf("Get = %+v", got)
			}
			c.Set(ctx, "db", "main", []byte(tc.good2), nil)
			select {
			case ch := <-changes:
				if ch[0].URL != "a" || ch[1].URL != "b" || b.Get().URL != "b" {
					t.Fatalf("OnChange(%+v), Get %+v", ch, b.Get())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no OnChange")
			}
			// A value of the right type that fails to decode into T or to
			// validate is reported; the last good value stays.
			if _, err := c.Set(ctx, "db", "main", []byte(tc.bad), nil); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errs:
				if !strings.Contains(err.Error(), "keeping version 2") {
					t.Fatalf("OnError(%v)", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no OnError")
			}
			if got := b.Get(); got != (dbConfig{"b", 2}) || b.Value().Version != 2 {
				t.Fatalf("after a bad value Get = %+v (version %d)", got, b.Value().Version)
			}
			b.Stop()
			b.Stop()
			<-b.Stopped()
		})
	}
}

func TestBindMissingOrInvalid(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := ctxT(t)
	if _, err := config.Bind[dbConfig](ctx, c, "db", "none", nil); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Bind to a missing key = %v", err)
	}
	c.Set(ctx, "db", "text", []byte("not json"), nil)
	if _, err := config.Bind[dbConfig](ctx, c, "db", "text", nil); err == nil || !strings.Contains(err.Error(), "decode json") {
		t.Fatalf("Bind to an undecodable value = %v", err)
	}
}
