package rpc

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"unicode"

	"github.com/mortarhq/mortar/internal/msgpack"
)

// MethodOpts describes a method for introspection (_zerorpc_inspect,
// _zerorpc_help, mortar call --inspect).
type MethodOpts struct {
	// Name overrides the name the method is called by. Defaults to the
	// name given to Handle, or for HandleObject the Go method name in
	// snake_case (CountThenFail becomes count_then_fail).
	Name string
	// Doc is the method's documentation. Defaults to none.
	Doc string
	// Args names the arguments sent on the wire, excluding a leading
	// context.Context and a trailing send function. Defaults to a0, a1, …
	Args []string
}

var (
	ctxType  = reflect.TypeFor[context.Context]()
	errType  = reflect.TypeFor[error]()
	boolType = reflect.TypeFor[bool]()
)

// method is one callable entry of a server.
type method struct {
	name string
	doc  string
	args []string

	fn       reflect.Value
	hasCtx   bool
	params   []reflect.Type // decoded from the event's args
	variadic bool
	sendType reflect.Type // item type of a trailing func(T) error, or nil
	hasVal   bool         // returns a result value (first output)
	hasErr   bool         // last output is an error
	seq      int          // 1: the result is an iter.Seq, 2: an iter.Seq2[T, error]

	builtin func(ctx context.Context, args []byte) (any, error)
}

// streams reports whether the method replies with STREAM events.
func (m *method) streams() bool { return m.sendType != nil || m.seq != 0 }

// newMethod checks fn's signature. Accepted shapes, with every part optional
// but the order fixed:
//
//	func([ctx context.Context,] args... [, send func(T) error]) ([R,] [error])
//	func([ctx context.Context,] args...) (iter.Seq[T] | iter.Seq2[T, error] [, error])
func newMethod(name string, fn any, opts *MethodOpts) (*method, error) {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return nil, fmt.Errorf("rpc: method %q: want a function, got %T", name, fn)
	}
	t := v.Type()
	m := &method{name: name, fn: v, variadic: t.IsVariadic()}
	in := make([]reflect.Type, t.NumIn())
	for i := range in {
		in[i] = t.In(i)
	}
	if len(in) > 0 && in[0] == ctxType {
		m.hasCtx, in = true, in[1:]
	}
	if len(in) > 0 && !m.variadic {
		if item, ok := sendFuncItem(in[len(in)-1]); ok {
			m.sendType, in = item, in[:len(in)-1]
		}
	}
	m.params = in
	if err := m.checkOutputs(t); err != nil {
		return nil, fmt.Errorf("rpc: method %q: %w", name, err)
	}
	if opts != nil {
		m.doc = opts.Doc
		m.args = opts.Args
	}
	if len(m.args) != len(m.params) {
		if m.args != nil {
			return nil, fmt.Errorf("rpc: method %q: %d argument names for %d arguments", name, len(m.args), len(m.params))
		}
		for i := range m.params {
			m.args = append(m.args, fmt.Sprintf("a%d", i))
		}
	}
	return m, nil
}

func (m *method) checkOutputs(t reflect.Type) error {
	out := make([]reflect.Type, t.NumOut())
	for i := range out {
		out[i] = t.Out(i)
	}
	if len(out) > 0 && out[len(out)-1] == errType {
		m.hasErr, out = true, out[:len(out)-1]
	}
	switch len(out) {
	case 0:
	case 1:
		m.hasVal = true
		m.seq = seqKind(out[0])
	default:
		return fmt.Errorf("want at most a result and an error, got %d outputs", t.NumOut())
	}
	if m.seq != 0 && m.sendType != nil {
		return fmt.Errorf("both a send function and an iterator result")
	}
	return nil
}

// sendFuncItem reports whether t is func(T) error, and returns T.
func sendFuncItem(t reflect.Type) (reflect.Type, bool) {
	if t.Kind() != reflect.Func || t.NumIn() != 1 || t.NumOut() != 1 || t.Out(0) != errType || t.IsVariadic() {
		return nil, false
	}
	return t.In(0), true
}

// seqKind tells iter.Seq[T] (1) and iter.Seq2[T, error] (2) from other types.
func seqKind(t reflect.Type) int {
	if t.Kind() != reflect.Func || t.NumIn() != 1 || t.NumOut() != 0 {
		return 0
	}
	y := t.In(0)
	if y.Kind() != reflect.Func || y.NumOut() != 1 || y.Out(0) != boolType {
		return 0
	}
	switch {
	case y.NumIn() == 1:
		return 1
	case y.NumIn() == 2 && y.In(1) == errType:
		return 2
	}
	return 0
}

// invoke decodes args, calls the method and returns its result. Stream
// items go to emit, one call per item, before invoke returns.
func (m *method) invoke(ctx context.Context, args []byte, emit func(any) error) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &RemoteError{Name: PanicErrorName, Message: fmt.Sprint(r), Traceback: string(debug.Stack())}
		}
	}()
	if m.builtin != nil {
		return m.builtin(ctx, args)
	}
	in, err := m.decodeArgs(ctx, args, emit)
	if err != nil {
		return nil, err
	}
	out := m.fn.Call(in)
	if m.hasErr {
		if e := out[len(out)-1]; !e.IsNil() {
			return nil, e.Interface().(error)
		}
	}
	if !m.hasVal {
		return nil, nil
	}
	if m.seq != 0 {
		return nil, m.drain(out[0], emit)
	}
	return out[0].Interface(), nil
}

func (m *method) decodeArgs(ctx context.Context, args []byte, emit func(any) error) ([]reflect.Value, error) {
	n, rest, err := 0, []byte(nil), error(nil)
	if msgpack.NextType(args) != msgpack.NilType { // nil args: none, leniently
		if n, rest, err = msgpack.ReadArrayHeader(args); err != nil {
			return nil, typeErrorf("%s() arguments: %v", m.name, err)
		}
	}
	fixed := len(m.params)
	if m.variadic {
		fixed--
	}
	if n < fixed || (!m.variadic && n > fixed) {
		return nil, typeErrorf("%s() takes %s (%d given)", m.name, m.arity(), n)
	}
	in := make([]reflect.Value, 0, n+2)
	if m.hasCtx {
		in = append(in, reflect.ValueOf(ctx))
	}
	for i := range n {
		t := m.params[min(i, len(m.params)-1)]
		if i >= fixed {
			t = t.Elem()
		}
		arg := reflect.New(t).Elem()
		if rest, err = msgpack.UnmarshalValue(rest, arg); err != nil {
			return nil, typeErrorf("%s() argument %d (%s): %v", m.name, i, m.argName(i), err)
		}
		in = append(in, arg)
	}
	if m.sendType != nil {
		in = append(in, m.sendFunc(emit))
	}
	return in, nil
}

func (m *method) arity() string {
	if m.variadic {
		return fmt.Sprintf("at least %d arguments", len(m.params)-1)
	}
	if len(m.params) == 1 {
		return "1 argument"
	}
	return fmt.Sprintf("%d arguments", len(m.params))
}

func (m *method) argName(i int) string {
	if i < len(m.args) {
		return m.args[i]
	}
	return m.args[len(m.args)-1]
}

// sendFunc builds the func(T) error a streaming handler sends items with.
func (m *method) sendFunc(emit func(any) error) reflect.Value {
	ft := reflect.FuncOf([]reflect.Type{m.sendType}, []reflect.Type{errType}, false)
	return reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
		err := emit(args[0].Interface())
		errv := reflect.New(errType).Elem()
		if err != nil {
			errv.Set(reflect.ValueOf(err))
		}
		return []reflect.Value{errv}
	})
}

// drain ranges over an iter.Seq or iter.Seq2 result, emitting each item.
func (m *method) drain(seq reflect.Value, emit func(any) error) error {
	if seq.IsNil() {
		return nil
	}
	var err error
	yt := seq.Type().In(0)
	yield := reflect.MakeFunc(yt, func(args []reflect.Value) []reflect.Value {
		if m.seq == 2 && !args[1].IsNil() {
			err = args[1].Interface().(error)
			return []reflect.Value{reflect.ValueOf(false)}
		}
		if err = emit(args[0].Interface()); err != nil {
			return []reflect.Value{reflect.ValueOf(false)}
		}
		return []reflect.Value{reflect.ValueOf(true)}
	})
	seq.Call([]reflect.Value{yield})
	return err
}

// snakeCase turns a Go method name into the zerorpc style: CountThenFail
// becomes count_then_fail and HTTPStatus http_status.
func snakeCase(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))) {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
