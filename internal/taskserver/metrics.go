package taskserver

import (
	"context"
	"time"

	"github.com/mortarhq/mortar/task"
	"github.com/prometheus/client_golang/prometheus"
)

// collector reports every queue's counters, read from the engine at
// scrape time (never by scanning keys), and the workers online.
type collector struct {
	s                             *Server
	waiting, taken, delayed, dead *prometheus.Desc
	workers                       *prometheus.Desc
}

func newCollector(s *Server) *collector {
	q := []string{"queue"}
	return &collector{
		s:       s,
		waiting: prometheus.NewDesc("mortar_task_queue_waiting", "Tasks queued and not yet taken by a worker.", q, nil),
		taken:   prometheus.NewDesc("mortar_task_queue_taken", "Tasks taken by a worker and not yet acknowledged: running or prefetched.", q, nil),
		delayed: prometheus.NewDesc("mortar_task_queue_delayed", "Tasks held by the engine until an ETA or a retry's backoff.", q, nil),
		dead:    prometheus.NewDesc("mortar_task_queue_dead", "Dead letters.", q, nil),
		workers: prometheus.NewDesc("mortar_task_workers_online", "Workers whose heartbeats this node hears.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.waiting, c.taken, c.delayed, c.dead, c.workers} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	online := 0
	for _, w := range c.s.listWorkers(time.Now()) {
		if w.Online {
			online++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(online))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	qs, err := c.s.queues(ctx, "", nil)
	if err != nil {
		c.s.log.Warn("task queue metrics unavailable", "err", err)
		return
	}
	for _, q := range qs.([]task.QueueStats) {
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(q.Waiting), q.Queue)
		ch <- prometheus.MustNewConstMetric(c.taken, prometheus.GaugeValue, float64(q.Taken), q.Queue)
		ch <- prometheus.MustNewConstMetric(c.delayed, prometheus.GaugeValue, float64(q.Delayed), q.Queue)
		ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(q.Dead), q.Queue)
	}
}
