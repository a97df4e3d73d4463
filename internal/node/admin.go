package node

import (
	"net/http"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/api"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer serves the API on /api/v1/, /healthz (the process is up),
// /readyz (the node serves), /metrics (with a credential permitted
// node:metrics), the token verification keys on /auth/jwks.json, the
// OIDC browser login on /auth/oidc/ when configured, and the push
// gateway on /push/.
func (n *Node) adminServer(ready func() bool) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", n.mux)
	mux.Handle("/push/", n.pushHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"starting"}` + "\n"))
			return
		}
		w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	mux.Handle("GET /metrics", n.guard("node:metrics", promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{Registry: n.metrics})))
	mux.HandleFunc("GET /auth/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		if a := n.auth.Load(); a != nil {
			a.JWKSHandler().ServeHTTP(w, r)
			return
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
	})
	if n.cfg.Auth.OIDC != nil {
		mux.HandleFunc("GET /auth/oidc/", func(w http.ResponseWriter, r *http.Request) {
			if a := n.auth.Load(); a != nil {
				a.OIDCHandler().ServeHTTP(w, r)
				return
			}
			http.Error(w, "starting", http.StatusServiceUnavailable)
		})
	}
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// guard serves h to requests whose bearer credential is permitted perm.
func (n *Node) guard(perm string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := n.auth.Load()
		if a == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		cred := api.BearerCredential(r.Header.Get(mortar.HeaderAuthorization))
		if cred == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mortar"`)
			http.Error(w, "credentials required: Authorization: Bearer <API key or token>", http.StatusUnauthorized)
			return
		}
		s, err := a.Authenticate(r.Context(), cred, r.RemoteAddr)
		if err != nil {
			http.Error(w, mortar.ErrorMessage(err), mortar.ErrorCode(err).HTTPStatus())
			return
		}
		if err := s.CheckPermission(perm); err != nil {
			a.Denied(r.Context(), s, r.URL.Path, mortar.ErrorMessage(err))
			http.Error(w, mortar.ErrorMessage(err), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
