package actor

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the system's Prometheus metrics. Per-message counts are kept in
// each mailbox (no Prometheus call on the message path) and summed when the
// registry is scraped.
type metrics struct {
	s          *System
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	spawned     prometheus.Counter
	exits       *prometheus.CounterVec
	restarts    *prometheus.CounterVec
	deadLetters prometheus.Counter
	askLatency  prometheus.Histogram
	askTimeouts prometheus.Counter

	retiredProcessed atomic.Uint64

	processedDesc, depthDesc, depthMaxDesc, liveDesc *prometheus.Desc
}

func newMetrics(s *System, reg prometheus.Registerer) (*metrics, error) {
	cl := prometheus.Labels{"system": s.cfg.Name}
	m := &metrics{s: s, reg: reg}
	m.spawned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "actor_spawned_total", Help: "Actors spawned.", ConstLabels: cl})
	m.exits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "actor_exits_total", Help: "Actor exits by reason kind.", ConstLabels: cl}, []string{"reason"})
	m.restarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "actor_restarts_total", Help: "Children restarted by supervisors.", ConstLabels: cl}, []string{"supervisor"})
	m.deadLetters = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "actor_dead_letters_total", Help: "Messages that could not be delivered.", ConstLabels: cl})
	m.askLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "actor_ask_duration_seconds", Help: "Latency of answered Asks.", ConstLabels: cl,
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)})
	m.askTimeouts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "actor_ask_timeouts_total", Help: "Asks abandoned because their context ended.", ConstLabels: cl})
	m.processedDesc = prometheus.NewDesc("actor_messages_processed_total", "User messages handled by actors.", nil, cl)
	m.depthDesc = prometheus.NewDesc("actor_mailbox_depth", "Messages waiting in all mailboxes.", nil, cl)
	m.depthMaxDesc = prometheus.NewDesc("actor_mailbox_depth_max", "Largest single mailbox depth.", nil, cl)
	m.liveDesc = prometheus.NewDesc("actor_live", "Live actors.", nil, cl)
	m.collectors = []prometheus.Collector{m.spawned, m.exits, m.restarts, m.deadLetters, m.askLatency, m.askTimeouts, m}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, r := range m.collectors[:i] {
				reg.Unregister(r)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *metrics) retire(p *process, r Reason) {
	m.retiredProcessed.Add(p.mb.processed.Load())
	m.exits.WithLabelValues(r.Kind.String()).Inc()
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.processedDesc
	ch <- m.depthDesc
	ch <- m.depthMaxDesc
	ch <- m.liveDesc
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	processed := m.retiredProcessed.Load()
	var depth, maxDepth, live int
	m.s.procs.Range(func(_, v any) bool {
		p := v.(*process)
		processed += p.mb.processed.Load()
		d := p.mb.UserMessageCount()
		depth += d
		maxDepth = max(maxDepth, d)
		live++
		return true
	})
	ch <- prometheus.MustNewConstMetric(m.processedDesc, prometheus.CounterValue, float64(processed))
	ch <- prometheus.MustNewConstMetric(m.depthDesc, prometheus.GaugeValue, float64(depth))
	ch <- prometheus.MustNewConstMetric(m.depthMaxDesc, prometheus.GaugeValue, float64(maxDepth))
	ch <- prometheus.MustNewConstMetric(m.liveDesc, prometheus.GaugeValue, float64(live))
}

// RecordRestart counts a restart performed by the supervisor sup. It is
// called by supervisor implementations (package supervision).
func (s *System) RecordRestart(sup *PID) {
	if p := s.local(sup); p != nil {
		p.restarts.Add(1)
	}
	s.metrics.restarts.WithLabelValues(sup.Name()).Inc()
}
