package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/mortartest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQuickstart(t *testing.T) {
	n := mortartest.StartNode(t)
	// As a program on the node's machine finds the local credential.
	t.Setenv(mortar.EnvToken, n.Token())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out, n.URL(), true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"registered Greeter at tcp://127.0.0.1:",
		`greet("Ada") = "Hello, Ada!"`,
		"add(40, 2) = 42",
		"countdown(3) = 3 2 1",
		`config changed: greeting is now "Howdy"`,
		`greet("Ada") = "Howdy, Ada!"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestQuickstartWithoutNode(t *testing.T) {
	var out strings.Builder
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	err := run(ctx, &out, "nats://127.0.0.1:1", true)
	if err == nil || !strings.Contains(err.Error(), "start a node first") {
		t.Fatalf("without a node: %v", err)
	}
}
