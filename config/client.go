package config

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/configwire"
)

// Defaults for Config.
const (
	NamespaceDefault      = configwire.DefaultNS
	ResyncIntervalDefault = 30 * time.Second
)

// Content types.
const (
	TypeText       = configwire.TypeText
	TypeJSON       = configwire.TypeJSON
	TypeYAML       = configwire.TypeYAML
	TypeTOML       = configwire.TypeTOML
	TypeProperties = configwire.TypeProperties
)

// MaxValueBytes is the largest value: 1 MiB.
const MaxValueBytes = configwire.MaxValueBytes

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound: the key (or version, namespace, gray release) does not
	// exist.
	ErrNotFound = &mortar.Error{Code: mortar.CodeNotFound}
	// ErrConflict: a compare-and-set lost; the key changed since it was
	// read.
	ErrConflict = &mortar.Error{Code: mortar.CodeConflict}
)

// Config configures a Client. A nil *Config means all defaults.
type Config struct {
	// Namespace the client works in. Defaults to "default", which always
	// exists; others are created with Client.CreateNamespace.
	Namespace string
	// Labels describe this instance for gray releases: a gray version
	// whose selector matches them is what Get, Watch and Bind see.
	// Defaults to none.
	Labels map[string]string
	// Address identifies this instance for gray releases by address
	// (host:port, or any string the release names). Defaults to none.
	Address string
	// Author is recorded on every write. Defaults to "".
	Author string
	// ResyncInterval is how often a watcher re-reads its key as a safety
	// net for a change notice lost without a gap to show it (a slow
	// consumer drop). Defaults to ResyncIntervalDefault; negative means
	// never.
	ResyncInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Client reads, writes and watches configuration in one namespace. It is
// safe for concurrent use and has no goroutines of its own.
type Client struct {
	conn *mortar.Conn
	cfg  Config
	log  *slog.Logger
}

// New returns a Client on conn.
func New(conn *mortar.Conn, cfg *Config) (*Client, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Namespace = cmp.Or(c.Namespace, NamespaceDefault)
	if !configwire.ValidName(c.Namespace) {
		return nil, fmt.Errorf("config: namespace %q: want 1 to 64 of [A-Za-z0-9_-]", c.Namespace)
	}
	c.Labels = maps.Clone(c.Labels)
	c.ResyncInterval = cmp.Or(c.ResyncInterval, ResyncIntervalDefault)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Client{conn: conn, cfg: c, log: c.Logger.With("component", "config", "ns", c.Namespace)}, nil
}

// Namespace returns the client's namespace.
func (c *Client) Namespace() string { return c.cfg.Namespace }

// Value is one version of a key as this client sees it.
type Value struct {
	Group, Key string
	// Data is the value; nil when Exists is false.
	Data []byte
	// Exists is false when the key was never written or is deleted (a
	// watcher reports deletions this way).
	Exists bool
	// Version is the key's version: 1, 2, … per key. For a gray value it
	// is the main version the client would otherwise see.
	Version uint64
	// Revision is the stream sequence of the version (or gray record).
	Revision    uint64
	ContentType string
	Author      string
	Time        time.Time
	Comment     string
	// Gray reports that this is a gray release's value, which this
	// client sees because its labels or address match the release's
	// rule; GrayGeneration numbers the gray records of the key.
	Gray           bool
	GrayGeneration uint64
}

func (c *Client) key(group, key string) configwire.Key {
	return configwire.Key{NS: c.cfg.Namespace, Group: group, Key: key}
}

func valueBytes(v configwire.Value) []byte {
	b, _ := v.Bytes()
	return b
}

// Get returns the value of group/key that this client sees: the gray
// release's when one is active and matches the client's labels or
// address, else the current version. A key that does not exist is
// ErrNotFound.
func (c *Client) Get(ctx context.Context, group, key string) (*Value, error) {
	var resp configwire.GetResponse
	if err := c.conn.Do(ctx, "config.get", configwire.GetRequest{Key: c.key(group, key), WithGray: true}, &resp); err != nil {
		return nil, fmt.Errorf("config: get %s/%s: %w", group, key, err)
	}
	st := stateOf(group, key, &resp)
	v := st.effective(c.cfg.Labels, c.cfg.Address)
	if !v.Exists {
		return nil, fmt.Errorf("config: get %s/%s: %w", group, key, &mortar.Error{Code: mortar.CodeNotFound, Message: "key does not exist"})
	}
	return v, nil
}

// getRevision reads the version of group/key stored at stream sequence
// rev (Value.Revision, Version.Revision): one read, where a version
// number makes the node scan the key's history.
func (c *Client) getRevision(ctx context.Context, group, key string, rev uint64) (*Value, error) {
	var resp configwire.GetResponse
	if err := c.conn.Do(ctx, "config.get", configwire.GetRequest{Key: c.key(group, key), Revision: rev}, &resp); err != nil {
		return nil, fmt.Errorf("config: get %s/%s at revision %d: %w", group, key, rev, err)
	}
	return mainValue(group, key, &resp.VersionInfo, valueBytes(resp.Value)), nil
}

// GetVersion returns version of group/key, ignoring gray releases.
func (c *Client) GetVersion(ctx context.Context, group, key string, version uint64) (*Value, error) {
	var resp configwire.GetResponse
	if err := c.conn.Do(ctx, "config.get", configwire.GetRequest{Key: c.key(group, key), Version: version}, &resp); err != nil {
		return nil, fmt.Errorf("config: get %s/%s@%d: %w", group, key, version, err)
	}
	return mainValue(group, key, &resp.VersionInfo, valueBytes(resp.Value)), nil
}

func mainValue(group, key string, vi *configwire.VersionInfo, data []byte) *Value {
	v := &Value{
		Group: group, Key: key, Exists: vi.Version > 0 && !vi.Deleted, Version: vi.Version, Revision: vi.Revision,
		ContentType: vi.ContentType, Author: vi.Author, Time: vi.Time, Comment: vi.Comment,
	}
	if v.Exists {
		v.Data = data
		if v.Data == nil {
			v.Data = []byte{}
		}
	}
	return v
}

// Expect returns a pointer to v, for SetOpts.ExpectedVersion.
func Expect(v uint64) *uint64 { return &v }

// SetOpts are the options of a write. A nil *SetOpts means defaults.
type SetOpts struct {
	// ContentType is one of text, json, yaml, toml, properties; a json,
	// yaml or toml value must parse. Defaults to the current version's,
	// else text.
	ContentType string
	// Comment is recorded with the version.
	Comment string
	// ExpectedVersion makes the write a compare-and-set: Expect(0) means
	// the key must not exist, Expect(n) that its current version is n.
	// A lost race is ErrConflict. Defaults to nil: unconditional.
	ExpectedVersion *uint64
}

// Version describes one stored version.
type Version = configwire.VersionInfo

// Set writes data as the next version of group/key and returns it.
func (c *Client) Set(ctx context.Context, group, key string, data []byte, opts *SetOpts) (*Version, error) {
	var o SetOpts
	if opts != nil {
		o = *opts
	}
	if len(data) > MaxValueBytes {
		return nil, fmt.Errorf("config: set %s/%s: %w", group, key, mortar.Errorf(mortar.CodeTooLarge, "value is %d bytes, more than %d", len(data), MaxValueBytes))
	}
	req := configwire.SetRequest{
		Key: c.key(group, key), Value: configwire.MakeValue(data), ContentType: o.ContentType,
		Author: c.cfg.Author, Comment: o.Comment, ExpectedVersion: o.ExpectedVersion,
	}
	var v Version
	if err := c.conn.Do(ctx, "config.set", req, &v); err != nil {
		return nil, fmt.Errorf("config: set %s/%s: %w", group, key, err)
	}
	return &v, nil
}

// DeleteOpts are the options of Delete. A nil *DeleteOpts means defaults.
type DeleteOpts struct {
	Comment         string
	ExpectedVersion *uint64
}

// Delete writes a tombstone version of group/key; its history stays.
func (c *Client) Delete(ctx context.Context, group, key string, opts *DeleteOpts) (*Version, error) {
	var o DeleteOpts
	if opts != nil {
		o = *opts
	}
	req := configwire.DeleteRequest{Key: c.key(group, key), Author: c.cfg.Author, Comment: o.Comment, ExpectedVersion: o.ExpectedVersion}
	var v Version
	if err := c.conn.Do(ctx, "config.delete", req, &v); err != nil {
		return nil, fmt.Errorf("config: delete %s/%s: %w", group, key, err)
	}
	return &v, nil
}

// Entry is one live key in a listing.
type Entry = configwire.ListEntry

// List returns the live keys of a group, or of the namespace when group
// is "".
func (c *Client) List(ctx context.Context, group string) ([]Entry, error) {
	var resp configwire.ListResponse
	if err := c.conn.Do(ctx, "config.list", configwire.ListRequest{NS: c.cfg.Namespace, Group: group}, &resp); err != nil {
		return nil, fmt.Errorf("config: list %s: %w", group, err)
	}
	return resp.Keys, nil
}

// HistoryOpts page through history. A nil *HistoryOpts means the newest
// 50 versions.
type HistoryOpts struct {
	// Before lists versions older than this one (0: from the newest).
	Before uint64
	// Limit defaults to 50; at most 1000.
	Limit int
}

// History returns versions of group/key, newest first, and whether older
// ones remain.
func (c *Client) History(ctx context.Context, group, key string, opts *HistoryOpts) ([]Version, bool, error) {
	var o HistoryOpts
	if opts != nil {
		o = *opts
	}
	var resp configwire.HistoryResponse
	req := configwire.HistoryRequest{Key: c.key(group, key), Before: o.Before, Limit: o.Limit}
	if err := c.conn.Do(ctx, "config.history", req, &resp); err != nil {
		return nil, false, fmt.Errorf("config: history %s/%s: %w", group, key, err)
	}
	return resp.Versions, resp.More, nil
}

// Diff returns a unified diff from version from to version to (0: the
// current one), "" when they are equal.
func (c *Client) Diff(ctx context.Context, group, key string, from, to uint64) (string, error) {
	var resp configwire.DiffResponse
	if err := c.conn.Do(ctx, "config.diff", configwire.DiffRequest{Key: c.key(group, key), From: from, To: to}, &resp); err != nil {
		return "", fmt.Errorf("config: diff %s/%s: %w", group, key, err)
	}
	return resp.Diff, nil
}

// RollbackOpts are the options of Rollback. A nil *RollbackOpts means
// defaults.
type RollbackOpts struct {
	// Comment defaults to "rollback to version N".
	Comment         string
	ExpectedVersion *uint64
}

// Rollback writes a new version of group/key equal to version to.
func (c *Client) Rollback(ctx context.Context, group, key string, to uint64, opts *RollbackOpts) (*Version, error) {
	var o RollbackOpts
	if opts != nil {
		o = *opts
	}
	req := configwire.RollbackRequest{Key: c.key(group, key), To: to, Author: c.cfg.Author, Comment: o.Comment, ExpectedVersion: o.ExpectedVersion}
	var v Version
	if err := c.conn.Do(ctx, "config.rollback", req, &v); err != nil {
		return nil, fmt.Errorf("config: rollback %s/%s to %d: %w", group, key, to, err)
	}
	return &v, nil
}

// Namespace is one namespace.
type Namespace = configwire.NSInfo

// CreateNamespace creates ns; an existing one is mortar.CodeAlreadyExists.
func (c *Client) CreateNamespace(ctx context.Context, ns, comment string) error {
	if err := c.conn.Do(ctx, "config.ns.create", configwire.NSRequest{NS: ns, Author: c.cfg.Author, Comment: comment}, nil); err != nil {
		return fmt.Errorf("config: create namespace %s: %w", ns, err)
	}
	return nil
}

// DeleteNamespace deletes an empty namespace.
func (c *Client) DeleteNamespace(ctx context.Context, ns string) error {
	if err := c.conn.Do(ctx, "config.ns.delete", configwire.NSRequest{NS: ns, Author: c.cfg.Author}, nil); err != nil {
		return fmt.Errorf("config: delete namespace %s: %w", ns, err)
	}
	return nil
}

// Namespaces lists the namespaces, "default" included.
func (c *Client) Namespaces(ctx context.Context) ([]Namespace, error) {
	var resp configwire.NSListResponse
	if err := c.conn.Do(ctx, "config.ns.list", struct{}{}, &resp); err != nil {
		return nil, fmt.Errorf("config: list namespaces: %w", err)
	}
	return resp.Namespaces, nil
}
