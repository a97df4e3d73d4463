package node

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/mortarhq/mortar/internal/api"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go/jetstream"
)

// NodeInfo is one live node, as "node.list" reports it.
type NodeInfo struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	// Renewed is when the node last renewed its liveness key.
	Renewed time.Time `json:"renewed"`
}

// registerOps adds the node's own operations.
func (n *Node) registerOps(st *store.Store, replicas int) {
	n.mux.Handle("node.list", func(ctx context.Context, r *api.Request) (any, error) {
		if _, err := api.Decode[struct{}](r.Body); err != nil {
			return nil, err
		}
		if err := api.Check(ctx, "node:read"); err != nil {
			return nil, err
		}
		keys, err := st.Nodes.Keys(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, store.APIError(err)
		}
		nodes := []NodeInfo{}
		for _, k := range keys {
			if strings.HasPrefix(k, "_") {
				continue // the registry's adoption markers
			}
			e, err := st.Nodes.Get(ctx, k)
			if err != nil {
				continue // expired between the listing and the read
			}
			var v struct {
				Name, Version, Started string
			}
			if json.Unmarshal(e.Value(), &v) != nil {
				continue
			}
			started, _ := time.Parse(time.RFC3339, v.Started)
			nodes = append(nodes, NodeInfo{Name: k, Version: v.Version, Started: started, Renewed: e.Created()})
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
		return map[string]any{"nodes": nodes, "replicas": replicas}, nil
	})
}
