package main

import (
	"context"
	"io"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/config"
)

func init() {
	for _, d := range []string{"always", "interval"} {
		name := "mortar"
		about := "mortar config center (config.Client Set/Watch) on one node, --durability always"
		if d == "interval" {
			name, about = "mortar-interval", "as mortar with --durability interval (fsync every 2 minutes)"
		}
		registerKV(kvSystem{name: name, about: about,
			start: func(ctx context.Context, dir string, stderr io.Writer) (*kvServer, error) {
				return startNodeKV(ctx, dir, d, stderr, newMortarConfig)
			}})
	}
}

type mortarConfig struct{ c *config.Client }

func newMortarConfig(_ context.Context, conn *mortar.Conn) (kvClient, error) {
	c, err := config.New(conn, nil)
	if err != nil {
		return nil, err
	}
	return mortarConfig{c}, nil
}

func (m mortarConfig) Put(ctx context.Context, key string, val []byte) error {
	_, err := m.c.Set(ctx, "bench", key, val, nil)
	return err
}

func (m mortarConfig) Watch(ctx context.Context, key string) (<-chan []byte, error) {
	w, err := m.c.Watch(ctx, "bench", key)
	if err != nil {
		return nil, err
	}
	out := make(chan []byte, 1024)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			v, err := w.Next(ctx)
			if err != nil {
				return
			}
			select {
			case out <- v.Data:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (m mortarConfig) Close() error { return nil }
