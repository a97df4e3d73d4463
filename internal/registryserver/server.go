// Package registryserver is the control-plane half of the service
// registry: it serves the registry API operations, tracks heartbeats in
// memory, evicts lapsed instances and runs active health checks.
package registryserver

import (
	"context"
	"log/slog"

	"github.com/mortarhq/mortar/internal/api"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Server.
type Config struct {
	Store    *store.Store
	Conn     *nats.Conn
	NodeName string
	Logger   *slog.Logger
	Metrics  prometheus.Registerer
}

// Server is the registry's control-plane half on one node.
type Server struct{ cfg Config }

// New returns a Server.
func New(cfg Config) (*Server, error) { return &Server{cfg: cfg}, nil }

// Register adds the registry's operations to mux.
func (s *Server) Register(mux *api.Mux) {}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
