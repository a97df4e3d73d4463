package registryserver

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	instances        prometheus.Gauge
	selfPreservation prometheus.Gauge
	heartbeats       prometheus.Counter
	registrations    prometheus.Counter
	deregistrations  prometheus.Counter
	adoptions        prometheus.Counter
	evictions        *prometheus.CounterVec
	checks           *prometheus.CounterVec
}

func newMetrics() metrics {
	return metrics{
		instances: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mortar_registry_instances", Help: "Registered instances, as this node sees them.",
		}),
		selfPreservation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mortar_registry_self_preservation", Help: "1 while this node withholds evictions because most of its leases lapsed at once.",
		}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_registry_heartbeats_total", Help: "Instance heartbeats heard by this node.",
		}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_registry_registrations_total", Help: "Registrations accepted by this node.",
		}),
		deregistrations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_registry_deregistrations_total", Help: "Deregistrations done by this node.",
		}),
		adoptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mortar_registry_adoptions_total", Help: "Instances this node took over from a dead node.",
		}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mortar_registry_evictions_total", Help: "Instances evicted by this node, by reason: lease (no heartbeat) or node (owner died).",
		}, []string{"reason"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mortar_registry_checks_total", Help: "Active health checks run by this node, by type and result.",
		}, []string{"type", "result"}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.instances, m.selfPreservation, m.heartbeats, m.registrations, m.deregistrations, m.adoptions, m.evictions, m.checks} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
