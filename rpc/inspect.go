package rpc

import (
	"context"
	"slices"
	"strings"

	"github.com/mortarhq/mortar/internal/msgpack"
)

// builtins returns zerorpc's introspection methods, served by every server.
func (s *Server) builtins() []*method {
	b := func(name string, fn func(ctx context.Context, args []byte) (any, error)) *method {
		return &method{name: name, builtin: fn}
	}
	return []*method{
		b("_zerorpc_list", func(context.Context, []byte) (any, error) { return s.publicNames(), nil }),
		b("_zerorpc_name", func(context.Context, []byte) (any, error) { return s.cfg.Name, nil }),
		b("_zerorpc_ping", func(context.Context, []byte) (any, error) { return []any{"pong", s.cfg.Name}, nil }),
		b("_zerorpc_inspect", func(context.Context, []byte) (any, error) { return s.inspect(), nil }),
		b("_zerorpc_help", func(_ context.Context, args []byte) (any, error) {
			m, err := s.methodArg("_zerorpc_help", args)
			if err != nil || m.doc == "" {
				return nil, err
			}
			return m.doc, nil
		}),
		b("_zerorpc_args", func(_ context.Context, args []byte) (any, error) {
			m, err := s.methodArg("_zerorpc_args", args)
			if err != nil {
				return nil, err
			}
			// The shape of Python's inspect.getargspec: (args, varargs, keywords, defaults).
			return []any{m.args, nil, nil, nil}, nil
		}),
	}
}

// methodArg decodes the single method-name argument of a built-in.
func (s *Server) methodArg(builtin string, args []byte) (*method, error) {
	var names []string
	if _, err := msgpack.Unmarshal(args, &names); err != nil || len(names) != 1 {
		return nil, typeErrorf("%s() takes 1 argument, the method name", builtin)
	}
	m := s.lookup([]byte(names[0]))
	if m == nil {
		return nil, &RemoteError{Name: NameErrorName, Message: names[0]}
	}
	return m, nil
}

// publicNames lists the methods not starting with "_", sorted.
func (s *Server) publicNames() []string {
	var names []string
	for name := range *s.methods.Load() {
		if !strings.HasPrefix(name, "_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// inspect builds _zerorpc_inspect's reply:
// {"name": NAME, "methods": {METHOD: {"args": [{"name": ARG}…], "doc": DOC}}}.
func (s *Server) inspect() map[string]any {
	methods := make(map[string]any)
	for _, name := range s.publicNames() {
		m := s.lookup([]byte(name))
		args := make([]any, len(m.args))
		for i, a := range m.args {
			args[i] = map[string]any{"name": a}
		}
		var doc any
		if m.doc != "" {
			doc = m.doc
		}
		methods[name] = map[string]any{"args": args, "doc": doc}
	}
	return map[string]any{"name": s.cfg.Name, "methods": methods}
}
