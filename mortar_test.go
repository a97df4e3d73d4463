package mortar_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	return ns.ClientURL()
}

// TestDoRetriesUnavailable: an unavailable answer is retried with the same
// request ID until a node answers.
func TestDoRetriesUnavailable(t *testing.T) {
	url := startNATS(t)
	c, err := mortar.Dial(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var ids []string
	sub, err := c.NATS().Subscribe(mortar.APISubjectPrefix+"test.op", func(m *nats.Msg) {
		mu.Lock()
		ids = append(ids, m.Header.Get(mortar.HeaderRequestID))
		n := len(ids)
		mu.Unlock()
		r := nats.NewMsg(m.Reply)
		if n < 3 {
			r.Header.Set(mortar.HeaderError, string(mortar.CodeUnavailable))
			r.Data = []byte(`{"code":"unavailable","message":"no quorum"}`)
		} else {
			r.Data = []byte(`{"n":42}`)
		}
		m.RespondMsg(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	var out struct{ N int }
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Do(ctx, "test.op", map[string]int{"a": 1}, &out); err != nil || out.N != 42 {
		t.Fatalf("Do = %v, %+v; want n 42", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 3 || ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("request IDs across retries = %q, want 3 equal non-empty", ids)
	}
}

// TestDoErrors: API errors come back as *mortar.Error; with no node the
// call ends with the caller's deadline.
func TestDoErrors(t *testing.T) {
	url := startNATS(t)
	c, err := mortar.Dial(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, _ := c.NATS().Subscribe(mortar.APISubjectPrefix+"test.bad", func(m *nats.Msg) {
		r := nats.NewMsg(m.Reply)
		r.Header.Set(mortar.HeaderError, "conflict")
		r.Data = []byte(`{"code":"conflict","message":"version 3 is not 2"}`)
		m.RespondMsg(r)
	})
	defer sub.Unsubscribe()
	err = c.Do(t.Context(), "test.bad", nil, nil)
	if !errors.Is(err, &mortar.Error{Code: mortar.CodeConflict}) || mortar.ErrorMessage(err) != "version 3 is not 2" {
		t.Fatalf("Do(test.bad) = %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = c.Do(ctx, "test.nobody", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || mortar.ErrorCode(err) != mortar.CodeDeadlineExceeded {
		t.Fatalf("Do with no responder = %v, want deadline exceeded", err)
	}
}

func TestDialNoServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := mortar.Dial(ctx, "nats://127.0.0.1:1", nil)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to nothing = %v, want deadline exceeded", err)
	}
}

func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code mortar.Code
	}{
		{nil, ""},
		{mortar.Errorf(mortar.CodeNotFound, "x"), mortar.CodeNotFound},
		{errors.Join(errors.New("a"), mortar.Errorf(mortar.CodeTooLarge, "y")), mortar.CodeTooLarge},
		{context.DeadlineExceeded, mortar.CodeDeadlineExceeded},
		{errors.New("boom"), mortar.CodeInternal},
	} {
		if got := mortar.ErrorCode(tc.err); got != tc.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tc.err, got, tc.code)
		}
	}
	if mortar.CodeConflict.HTTPStatus() != 409 || mortar.Code("made-up").HTTPStatus() != 500 {
		t.Error("HTTPStatus mapping")
	}
}
