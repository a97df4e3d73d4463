package config_test

import (
	"context"
	"testing"
	"time"

	"github.com/mortarhq/mortar/config"
	"github.com/mortarhq/mortar/mortartest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup starts a node and returns a client on it.
func setup(t *testing.T, cfg *config.Config) (*config.Client, *mortartest.Node) {
	t.Helper()
	n := mortartest.StartNode(t)
	c, err := config.New(n.Dial(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
