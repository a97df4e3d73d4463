// Package testservice is the conformance service TestService: the methods
// anyone can call to check interoperability between mortar and other
// zerorpc implementations. examples/testservice serves it; the rpc tests,
// the interop tests and the benchmarks call it.
package testservice

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime/debug"
	"time"

	"github.com/mortarhq/mortar/internal/msgpack"
	"github.com/mortarhq/mortar/rpc"
)

// Name is the service's name, as _zerorpc_name reports it.
const Name = "TestService"

// Register adds TestService's methods to srv.
func Register(srv *rpc.Server) {
	srv.Handle("hello", hello, &rpc.MethodOpts{Doc: "Return the string 'hello'."})
	srv.Handle("echo", echo, &rpc.MethodOpts{Doc: "Return x unchanged.", Args: []string{"x"}})
	srv.Handle("add", add, &rpc.MethodOpts{Doc: "Return a + b.", Args: []string{"a", "b"}})
	srv.Handle("typeof", typeOf, &rpc.MethodOpts{Doc: "Return the msgpack type name of x.", Args: []string{"x"}})
	srv.Handle("fail", fail, &rpc.MethodOpts{Doc: "Raise TestError(msg).", Args: []string{"msg"}})
	srv.Handle("count", count, &rpc.MethodOpts{Doc: "Stream the integers 0..n-1.", Args: []string{"n"}})
	srv.Handle("count_then_fail", countThenFail, &rpc.MethodOpts{Doc: "Stream 0..n-1, then raise TestError(msg).", Args: []string{"n", "msg"}})
	srv.Handle("sleep", sleep, &rpc.MethodOpts{Doc: "Sleep for seconds, then return seconds.", Args: []string{"seconds"}})
	srv.Handle("header", header, &rpc.MethodOpts{Doc: "Return the value of key in the request event header, or nil.", Args: []string{"key"}})
}

func hello() string { return "hello" }

// echo returns x as decoded: msgpack types survive the round trip.
func echo(x any) any { return x }

func add(a, b any) (any, error) {
	if ai, aok := asInt(a); aok {
		if bi, bok := asInt(b); bok {
			if (bi > 0 && ai > math.MaxInt64-bi) || (bi < 0 && ai < math.MinInt64-bi) {
				return float64(ai) + float64(bi), nil // as Python would, without its bignums
			}
			return ai + bi, nil
		}
	}
	af, aok := asFloat(a)
	bf, bok := asFloat(b)
	if !aok || !bok {
		return nil, &rpc.RemoteError{Name: rpc.TypeErrorName, Message: fmt.Sprintf("unsupported operand types for +: '%s' and '%s'", typeOf(a), typeOf(b))}
	}
	return af + bf, nil
}

func asInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case uint64:
		return int64(v), v <= math.MaxInt64
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

func typeOf(x any) string {
	switch x.(type) {
	case nil:
		return "nil"
	case bool:
		return "bool"
	case int64, uint64:
		return "int"
	case float32, float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bin"
	case []any:
		return "array"
	case map[string]any, map[any]any:
		return "map"
	case msgpack.Ext:
		return "ext"
	}
	return fmt.Sprintf("%T", x)
}

func testError(msg string) error {
	return &rpc.RemoteError{Name: "TestError", Message: msg, Traceback: string(debug.Stack())}
}

func fail(msg string) error { return testError(msg) }

func count(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

func countThenFail(n int, msg string) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for i := range n {
			if !yield(i, nil) {
				return
			}
		}
		yield(0, testError(msg))
	}
}

func sleep(ctx context.Context, seconds any) (any, error) {
	s, ok := asFloat(seconds)
	if !ok || s < 0 || s > 24*3600 {
		return nil, &rpc.RemoteError{Name: rpc.TypeErrorName, Message: "seconds must be a number from 0 to 86400"}
	}
	t := time.NewTimer(time.Duration(s * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return seconds, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func header(ctx context.Context, key string) (any, error) {
	req, ok := rpc.RequestFromContext(ctx)
	if !ok {
		return nil, errors.New("testservice: no request in context")
	}
	raw := req.Header().Raw(key)
	if raw == nil {
		return nil, nil
	}
	return msgpack.Raw(raw), nil
}
