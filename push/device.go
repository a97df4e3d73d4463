package push

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/pushwire"
)

// Defaults of DeviceConfig.
const (
	MinBackoffDefault  = 250 * time.Millisecond
	MaxBackoffDefault  = 10 * time.Second
	DialTimeoutDefault = 10 * time.Second
)

// DeviceConfig configures a Device.
type DeviceConfig struct {
	// URL is the node's push endpoint: ws://host:7070/push/ws (or wss://)
	// for WebSocket, tcp://host:7071 for length-prefixed TCP. Required.
	URL string
	// Token is the connect token: a push token (SignToken), or a mortar
	// credential (a session token from auth.login, an API key) that
	// connects as its user. TokenFunc, when set, is called before every
	// connect instead, so that an expiring token can be renewed.
	Token     string
	TokenFunc func(ctx context.Context) (string, error)
	// Client is the client ID to connect as with a mortar credential
	// (a push token names its own). Defaults to one the node makes up.
	Client string
	// Msgpack selects the msgpack encoding; JSON is the default.
	Msgpack bool
	// OnPush receives every push, in order, on the device's reader
	// goroutine: return quickly. Pushes that ask for an acknowledgement
	// are acknowledged after OnPush returns.
	OnPush func(Push)
	// OnConnect, OnDisconnect and OnRecovery report the connection's
	// life; each is optional and runs on the reader goroutine.
	OnConnect    func(ConnectInfo)
	OnDisconnect func(Disconnect)
	OnRecovery   func(channel string, recovered bool)
	// MinBackoff and MaxBackoff bound the full-jitter exponential backoff
	// between reconnects. Default to MinBackoffDefault and
	// MaxBackoffDefault.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds one dial and handshake. Defaults to
	// DialTimeoutDefault.
	DialTimeout time.Duration
	// TLS configures wss:// connections; nil means the defaults.
	TLS *tls.Config
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Push is one message pushed to the device.
type Push struct {
	Channel string          // set for channel messages
	Offset  uint64          // the message's offset when its channel keeps history
	Data    json.RawMessage // the payload, JSON
}

// ConnectInfo is the node's answer to a connect.
type ConnectInfo = pushwire.ConnectResult

// SubResult is the node's answer to a subscribe.
type SubResult = pushwire.SubResult

// Disconnect says why a connection ended.
type Disconnect struct {
	Code      int
	Reason    string
	Reconnect bool // whether the device is reconnecting
	Err       error
}

// ErrDeviceStopped is returned by calls on a stopped Device, and by
// Stopped's cause when the node told the device not to reconnect.
var ErrDeviceStopped = errors.New("push: device stopped")

// Device is a long connection to the push gateway that reconnects with
// backoff, resubscribes its channels and recovers what it missed.
type Device struct {
	cfg     DeviceConfig
	u       *url.URL
	log     *slog.Logger
	cancel  context.CancelCauseFunc
	stopped chan struct{}
	started bool

	mu       sync.Mutex // guards the fields below
	sess     *session
	channels map[string]*channelPos // remembered subscriptions
	ready    chan struct{}          // closed while connected
	err      error                  // why the device stopped
}

type channelPos struct {
	offset uint64
	epoch  string
	server bool // a token channel: the node rejoins it at every connect
}

// NewDevice validates cfg and returns a Device; Start connects it.
func NewDevice(cfg *DeviceConfig) (*Device, error) {
	if cfg == nil {
		return nil, errors.New("push: new device: no config")
	}
	c := *cfg
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("push: new device: url: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "tcp":
	default:
		return nil, fmt.Errorf("push: new device: url %q: scheme must be ws, wss or tcp", c.URL)
	}
	if c.Token == "" && c.TokenFunc == nil {
		return nil, errors.New("push: new device: a Token or TokenFunc is required")
	}
	c.MinBackoff = cmp.Or(c.MinBackoff, MinBackoffDefault)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, MaxBackoffDefault)
	c.DialTimeout = cmp.Or(c.DialTimeout, DialTimeoutDefault)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Device{
		cfg: c, u: u, log: c.Logger.With("component", "push-device", "url", c.URL),
		stopped: make(chan struct{}), channels: map[string]*channelPos{}, ready: make(chan struct{}),
	}, nil
}

// Start connects in the background and keeps the device connected until
// Stop, ctx's end, or a disconnect that says not to reconnect (bad token,
// replaced, kicked).
func (d *Device) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return errors.New("push: device already started")
	}
	d.started = true
	ctx, d.cancel = context.WithCancelCause(ctx)
	go d.run(ctx)
	return nil
}

// Stop closes the connection and waits, bounded by ctx, for the device's
// goroutines. It is idempotent and safe before Start.
func (d *Device) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.started {
		d.started = true
		close(d.stopped)
	}
	cancel := d.cancel
	d.mu.Unlock()
	if cancel != nil {
		cancel(ErrDeviceStopped)
	}
	select {
	case <-d.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stopped is closed once the device has stopped for good.
func (d *Device) Stopped() <-chan struct{} { return d.stopped }

// Err returns why the device stopped, once Stopped is closed.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// WaitConnected blocks until the device is connected or ctx ends.
func (d *Device) WaitConnected(ctx context.Context) error {
	d.mu.Lock()
	ready := d.ready
	d.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-d.stopped:
		return cmp.Or(d.Err(), ErrDeviceStopped)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe subscribes to channel and remembers it: after a reconnect
// the device subscribes again and recovers what it missed. When not
// connected it only remembers, and returns a nil result.
func (d *Device) Subscribe(ctx context.Context, channel string) (*SubResult, error) {
	if err := pushwire.CheckChannel(channel); err != nil {
		return nil, fmt.Errorf("push: subscribe: %w", err)
	}
	d.mu.Lock()
	if _, ok := d.channels[channel]; !ok {
		d.channels[channel] = &channelPos{}
	}
	s := d.sess
	d.mu.Unlock()
	if s == nil {
		return nil, nil
	}
	rep, err := s.call(ctx, &pushwire.Message{Op: pushwire.OpSubscribe, Channel: channel})
	if err != nil {
		return nil, fmt.Errorf("push: subscribe %s: %w", channel, err)
	}
	var r SubResult
	if err := json.Unmarshal(rep.Result, &r); err != nil {
		return nil, fmt.Errorf("push: subscribe %s: %w", channel, err)
	}
	return &r, nil
}

// Unsubscribe forgets channel and unsubscribes from it.
func (d *Device) Unsubscribe(ctx context.Context, channel string) error {
	d.mu.Lock()
	delete(d.channels, channel)
	s := d.sess
	d.mu.Unlock()
	if s == nil {
		return nil
	}
	if _, err := s.call(ctx, &pushwire.Message{Op: pushwire.OpUnsubscribe, Channel: channel}); err != nil {
		return fmt.Errorf("push: unsubscribe %s: %w", channel, err)
	}
	return nil
}

// Publish publishes data (encoded as JSON) to channel as this client and
// returns its offset when the channel keeps history.
func (d *Device) Publish(ctx context.Context, channel string, data any) (uint64, error) {
	raw, err := marshal(data)
	if err != nil {
		return 0, fmt.Errorf("push: publish %s: %w", channel, err)
	}
	d.mu.Lock()
	s := d.sess
	d.mu.Unlock()
	if s == nil {
		return 0, fmt.Errorf("push: publish %s: %w", channel, mortar.Errorf(mortar.CodeUnavailable, "not connected"))
	}
	rep, err := s.call(ctx, &pushwire.Message{Op: pushwire.OpPublish, Channel: channel, Data: raw})
	if err != nil {
		return 0, fmt.Errorf("push: publish %s: %w", channel, err)
	}
	var r pushwire.PublishResult
	if len(rep.Result) > 0 {
		if err := json.Unmarshal(rep.Result, &r); err != nil {
			return 0, fmt.Errorf("push: publish %s: %w", channel, err)
		}
	}
	return r.Offset, nil
}

// run connects, serves and reconnects until ctx ends or the node says
// not to reconnect.
func (d *Device) run(ctx context.Context) {
	defer close(d.stopped)
	attempt := 0
	for {
		connected, disc := d.session(ctx)
		if ctx.Err() != nil {
			d.finish(context.Cause(ctx))
			return
		}
		if connected {
			attempt = 0
		}
		disc.Reconnect = disc.Reconnect || disc.Code == 0
		if d.cfg.OnDisconnect != nil {
			d.cfg.OnDisconnect(disc)
		}
		if !disc.Reconnect {
			d.finish(fmt.Errorf("%w: disconnected with %d %s", ErrDeviceStopped, disc.Code, disc.Reason))
			return
		}
		attempt++
		wait := backoff(d.cfg.MinBackoff, d.cfg.MaxBackoff, attempt)
		d.log.Debug("push device reconnecting", "in", wait, "code", disc.Code, "reason", disc.Reason, "err", disc.Err)
		select {
		case <-ctx.Done():
			d.finish(context.Cause(ctx))
			return
		case <-time.After(wait):
		}
	}
}

func (d *Device) finish(err error) {
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
}

// backoff is full jitter: a random wait up to min·2^attempt, capped.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	ceil := hi
	if attempt < 30 {
		ceil = min(hi, lo<<attempt)
	}
	return lo/2 + rand.N(ceil-lo/2+1)
}

// newMask returns a fresh client frame mask.
func newMask() *[4]byte {
	var m [4]byte
	crand.Read(m[:])
	return &m
}
