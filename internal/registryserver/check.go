package registryserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/mortarhq/mortar/registry"
	"github.com/mortarhq/mortar/rpc"
)

// checkState is the running state of one instance's active check.
type checkState struct {
	next    time.Time
	running bool
	fails   int // consecutive failures
}

// result is one check's outcome.
type result struct {
	ok      bool
	warning bool // an explicit warning (HTTP 429), not a failure
	output  string
}

// scheduleCheckLocked starts in's check if it is due and not running.
func (s *Server) scheduleCheckLocked(ctx context.Context, key string, in *registry.Instance, now time.Time) {
	st := s.checks[key]
	if st == nil {
		st = &checkState{}
		s.checks[key] = st
	}
	if st.running || now.Before(st.next) {
		return
	}
	st.running = true
	st.next = now.Add(in.Check.Interval)
	target := *in
	s.wg.Go(func() {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			s.finishCheck(key, nil)
			return
		}
		r := runCheck(ctx, &target)
		<-s.sem
		s.m.checks.WithLabelValues(string(target.Check.Type), resultLabel(r)).Inc()
		s.finishCheck(key, &r)
		if ctx.Err() == nil {
			s.applyCheck(ctx, key, &r)
		}
	})
}

func resultLabel(r result) string {
	switch {
	case r.ok:
		return "passing"
	case r.warning:
		return "warning"
	}
	return "failed"
}

func (s *Server) finishCheck(key string, r *result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.checks[key]
	if st == nil {
		return
	}
	st.running = false
	if r != nil {
		if r.ok || r.warning {
			st.fails = 0
		} else {
			st.fails++
		}
	}
}

// applyCheck writes the instance's new status if the check changed it.
// Only a status change is a write: a check that keeps passing costs
// nothing in the replicated store.
func (s *Server) applyCheck(ctx context.Context, key string, r *result) {
	s.mu.Lock()
	e, ok := s.entries[key]
	st := s.checks[key]
	if !ok || st == nil || e.inst.Node != s.self || e.inst.Check == nil {
		s.mu.Unlock()
		return
	}
	in := e.inst
	c := in.Check
	fails := st.fails
	s.mu.Unlock()
	status := registry.StatusPassing
	switch {
	case fails >= c.CriticalAfter:
		status = registry.StatusCritical
	case fails >= c.WarningAfter || r.warning:
		status = registry.StatusWarning
	case fails > 0:
		status = in.Status // below the warning threshold: unchanged
	}
	if status == in.Status {
		return
	}
	s.log.Info("instance health changed", "service", in.Service, "id", in.ID, "from", in.Status, "to", status, "output", r.output)
	in.Status = status
	in.Output = r.output
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.write(wctx, registrywire.Key(in.Service, in.ID), &in, in.Revision)
	if err != nil && ctx.Err() == nil && mortar.ErrorCode(store.APIError(err)) != mortar.CodeConflict {
		s.log.Warn("write instance health", "service", in.Service, "id", in.ID, "err", err)
	}
}

// runCheck runs one active check against in.
func runCheck(ctx context.Context, in *registry.Instance) result {
	c := in.Check
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	addr := net.JoinHostPort(in.Address, strconv.Itoa(in.Port))
	start := time.Now()
	took := func() string { return time.Since(start).Round(time.Microsecond).String() }
	switch c.Type {
	case registry.CheckTCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return result{output: "tcp: " + err.Error()}
		}
		conn.Close()
		return result{ok: true, output: "tcp connect ok in " + took()}
	case registry.CheckHTTP:
		u := c.URL
		if u == "" {
			u = "http://" + addr + "/health"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return result{output: "http: " + err.Error()}
		}
		resp, err := checkClient.Do(req)
		if err != nil {
			return result{output: "http: " + err.Error()}
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		out := fmt.Sprintf("http GET %s: %s in %s", u, resp.Status, took())
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return result{ok: true, output: out}
		case resp.StatusCode == http.StatusTooManyRequests:
			return result{warning: true, output: out}
		}
		return result{output: out}
	case registry.CheckRPC:
		cfg := &rpc.ClientConfig{Logger: discard}
		if in.Metadata["tls"] == "true" {
			// An rpc.Server with TLS says so in its metadata. The check
			// asks whether it answers, not who it is: no verification.
			cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // liveness only
		}
		cl, err := rpc.Dial(ctx, in.Endpoint(), cfg)
		if err != nil {
			return result{output: "rpc: " + err.Error()}
		}
		defer cl.Close()
		if err := cl.Call(ctx, "_zerorpc_ping", nil); err != nil {
			return result{output: "rpc _zerorpc_ping: " + err.Error()}
		}
		return result{ok: true, output: "rpc _zerorpc_ping ok in " + took()}
	}
	return result{output: "unknown check type " + string(c.Type)}
}

var checkClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

var discard = slog.New(slog.DiscardHandler)
