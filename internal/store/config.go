package store

import "context"

// openConfig creates the config center's streams and buckets. Owned by the
// config part.
func (s *Store) openConfig(ctx context.Context) error { return nil }
