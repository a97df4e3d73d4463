package config

import (
	"context"
	"fmt"

	"github.com/mortarhq/mortar/internal/configwire"
)

// Rule says which instances see a gray release: those whose labels match
// Selector ("k=v,k2!=v,k3 in (a,b),k4 notin (c),k5,!k6", every term must
// hold) and those whose address is in Addresses.
type Rule = configwire.Rule

// Gray is an active gray release of a key.
type Gray = configwire.GrayInfo

// GrayOpts are the options of SetGray. A nil *GrayOpts means defaults.
type GrayOpts struct {
	// ContentType defaults to the current version's, else text.
	ContentType string
	Comment     string
}

// SetGray starts (or replaces) the gray release of group/key: data is
// what instances matching rule see, until Promote or Abandon.
func (c *Client) SetGray(ctx context.Context, group, key string, data []byte, rule Rule, opts *GrayOpts) (*Gray, error) {
	var o GrayOpts
	if opts != nil {
		o = *opts
	}
	req := configwire.GraySetRequest{
		Key: c.key(group, key), Value: configwire.MakeValue(data), ContentType: o.ContentType,
		Rule: rule, Author: c.cfg.Author, Comment: o.Comment,
	}
	var g Gray
	if err := c.conn.Do(ctx, "config.gray.set", req, &g); err != nil {
		return nil, fmt.Errorf("config: gray set %s/%s: %w", group, key, err)
	}
	return &g, nil
}

// GetGray returns the active gray release of group/key, or ErrNotFound.
func (c *Client) GetGray(ctx context.Context, group, key string) (*Gray, error) {
	var g Gray
	if err := c.conn.Do(ctx, "config.gray.get", configwire.GrayRequest{Key: c.key(group, key)}, &g); err != nil {
		return nil, fmt.Errorf("config: gray get %s/%s: %w", group, key, err)
	}
	return &g, nil
}

// Promote makes the gray value the next version of group/key for
// everyone and ends the gray release, atomically.
func (c *Client) Promote(ctx context.Context, group, key, comment string) (*Version, error) {
	var v Version
	req := configwire.GrayRequest{Key: c.key(group, key), Author: c.cfg.Author, Comment: comment}
	if err := c.conn.Do(ctx, "config.gray.promote", req, &v); err != nil {
		return nil, fmt.Errorf("config: gray promote %s/%s: %w", group, key, err)
	}
	return &v, nil
}

// Abandon ends the gray release of group/key; everyone sees the current
// version again.
func (c *Client) Abandon(ctx context.Context, group, key, comment string) error {
	req := configwire.GrayRequest{Key: c.key(group, key), Author: c.cfg.Author, Comment: comment}
	if err := c.conn.Do(ctx, "config.gray.abandon", req, nil); err != nil {
		return fmt.Errorf("config: gray abandon %s/%s: %w", group, key, err)
	}
	return nil
}
