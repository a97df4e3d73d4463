package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// Formats Bind decodes.
const (
	FormatJSON = "json"
	FormatYAML = "yaml"
	FormatTOML = "toml"
)

// BindOpts configure a Binding. A nil *BindOpts means defaults.
type BindOpts[T any] struct {
	// Format is json, yaml or toml. Defaults to the value's content type
	// when it is one of those, else json.
	Format string
	// Validate, when set, must accept a decoded value for it to be used.
	Validate func(T) error
	// OnChange is called, from the binding's goroutine, after a new good
	// value replaced old.
	OnChange func(old, new T)
	// OnError is called, from the binding's goroutine, when a new value
	// does not decode or validate (the last good value is kept), when the
	// key is deleted (likewise), or when the watch fails.
	OnError func(error)
}

// Binding keeps the decoded value of one key current. Get is safe for
// concurrent use.
type Binding[T any] struct {
	c     *Client
	group string
	key   string
	opts  BindOpts[T]
	w     *Watcher
	cur   atomic.Pointer[T]
	ver   atomic.Pointer[Value]

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	done   chan struct{}
}

// Bind decodes group/key into a T and keeps it current until ctx ends or
// Stop is called. It returns an error if the key does not exist or its
// current value does not decode or validate. OnChange and OnError run on
// the binding's one goroutine, which Stop waits for.
func Bind[T any](ctx context.Context, c *Client, group, key string, opts *BindOpts[T]) (*Binding[T], error) {
	b := &Binding[T]{c: c, group: group, key: key, done: make(chan struct{})}
	if opts != nil {
		b.opts = *opts
	}
	switch b.opts.Format {
	case "", FormatJSON, FormatYAML, FormatTOML:
	default:
		return nil, fmt.Errorf("config: bind %s/%s: format %q: want json, yaml or toml", group, key, b.opts.Format)
	}
	w, err := c.Watch(ctx, group, key)
	if err != nil {
		return nil, fmt.Errorf("config: bind %s/%s: %w", group, key, err)
	}
	v, err := w.Next(ctx)
	if err == nil && !v.Exists {
		err = ErrNotFound
	}
	if err == nil {
		var t T
		if t, err = b.decode(v); err == nil {
			b.cur.Store(&t)
			b.ver.Store(v)
		}
	}
	if err != nil {
		w.Stop()
		return nil, fmt.Errorf("config: bind %s/%s: %w", group, key, err)
	}
	b.w = w
	rctx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	b.wg.Go(func() { b.run(rctx) })
	return b, nil
}

// Get returns the last good value.
func (b *Binding[T]) Get() T { return *b.cur.Load() }

// Value returns the version the last good value was decoded from.
func (b *Binding[T]) Value() *Value { return b.ver.Load() }

// Stop ends the binding and waits for its goroutine. It is idempotent.
func (b *Binding[T]) Stop() {
	b.once.Do(func() {
		b.cancel()
		b.w.Stop()
	})
	b.wg.Wait()
}

// Stopped is closed once the binding's goroutine has returned.
func (b *Binding[T]) Stopped() <-chan struct{} { return b.done }

func (b *Binding[T]) run(ctx context.Context) {
	defer close(b.done)
	for {
		v, err := b.w.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, ErrWatcherStopped) {
			return
		}
		if err != nil {
			b.report(err) // a failed re-read; Next retries it
			continue
		}
		if !v.Exists {
			b.report(fmt.Errorf("config: bind %s/%s: key deleted at version %d; keeping version %d", b.group, b.key, v.Version, b.ver.Load().Version))
			continue
		}
		t, err := b.decode(v)
		if err != nil {
			b.report(fmt.Errorf("config: bind %s/%s: version %d: %w; keeping version %d", b.group, b.key, v.Version, err, b.ver.Load().Version))
			continue
		}
		old := b.cur.Swap(&t)
		b.ver.Store(v)
		if b.opts.OnChange != nil {
			b.opts.OnChange(*old, t)
		}
	}
}

func (b *Binding[T]) report(err error) {
	if b.opts.OnError != nil {
		b.opts.OnError(err)
	} else {
		b.c.log.Warn("config bind", "group", b.group, "key", b.key, "err", err)
	}
}

// decode decodes v by the binding's format and validates it.
func (b *Binding[T]) decode(v *Value) (T, error) {
	var t T
	format := b.opts.Format
	if format == "" {
		format = FormatJSON
		switch v.ContentType {
		case TypeYAML, TypeTOML:
			format = v.ContentType
		}
	}
	var err error
	switch format {
	case FormatJSON:
		dec := json.NewDecoder(bytes.NewReader(v.Data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&t)
	case FormatYAML:
		dec := yaml.NewDecoder(bytes.NewReader(v.Data))
		dec.KnownFields(true)
		err = dec.Decode(&t)
	case FormatTOML:
		var md toml.MetaData
		md, err = toml.Decode(string(v.Data), &t)
		if err == nil && len(md.Undecoded()) > 0 {
			err = fmt.Errorf("unknown fields %v", md.Undecoded())
		}
	}
	if err != nil {
		return t, fmt.Errorf("decode %s: %w", format, err)
	}
	if b.opts.Validate != nil {
		if err := b.opts.Validate(t); err != nil {
			return t, fmt.Errorf("invalid: %w", err)
		}
	}
	return t, nil
}
