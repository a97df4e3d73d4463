package store

import "context"

// openRegistry creates the registry's buckets. Owned by the registry part.
func (s *Store) openRegistry(ctx context.Context) error { return nil }
