package node

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer serves the API on /api/v1/, /healthz (the process is up),
// /readyz (the node serves) and /metrics.
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{Registry: n.metrics}))
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}
