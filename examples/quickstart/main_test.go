package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQuickstart(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), &out, "tcp://127.0.0.1:0", true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`greet("Ada") = "Hello, Ada!"`,
		"add(40, 2) = 42",
		"countdown(3) = 3 2 1",
		"divide(1, 0) failed remotely: division by zero",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
