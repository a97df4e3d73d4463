package pushserver

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	conns       *prometheus.GaugeVec
	disconnects *prometheus.CounterVec
	pushes      *prometheus.CounterVec
	latency     prometheus.Histogram
	refused     prometheus.Counter
	slow        prometheus.Counter
	limited     prometheus.Counter
	idle        prometheus.Counter
	pings       prometheus.Counter
}

func newMetrics(s *Server, reg prometheus.Registerer) *metrics {
	m := &metrics{
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mortar_push_connections",
			Help: "Authenticated push connections on this node, by transport.",
		}, []string{"transport"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mortar_push_disconnects_total",
			Help: "Push connections the node closed, by reason.",
		}, []string{"reason"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mortar_push_deliveries_total",
			Help: "Pushes written to connections, by target kind (client, user, chan, all).",
		}, []string{"target"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mortar_push_route_seconds",
			Help:    "Time from publish to this node receiving a push for delivery.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_push_connects_refused_total",
			Help: "Connects refused for a bad, expired or mismatched token.",
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_push_slow_total",
			Help: "Connections closed because their send queue overflowed.",
		}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_push_rate_limited_total",
			Help: "Client messages refused by the rate limit.",
		}),
		idle: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_push_idle_closed_total",
			Help: "Connections closed by reader-idle detection (missed heartbeats).",
		}),
		pings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_push_pings_total",
			Help: "Heartbeats sent on writer-idle connections.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.conns, m.disconnects, m.pushes, m.latency, m.refused, m.slow, m.limited, m.idle, m.pings,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "mortar_push_channels",
				Help: "Channels with at least one subscriber on this node.",
			}, func() float64 { _, ch := s.hub.len(); return float64(ch) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "mortar_push_sockets",
				Help: "Open push sockets on this node, authenticated or not.",
			}, func() float64 { return float64(s.poll.Len()) }),
		)
	}
	return m
}
