package saga

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distributed-go/distributed/behaviors/saga/journal"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

// metrics are a manager's Prometheus metrics, labelled with the actor
// system's name like the actor package's.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	started, committed, compensated prometheus.Counter
	stuck                           prometheus.Gauge
	stepDuration                    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, system string, j *journal.Journal) (*metrics, error) {
	cl := prometheus.Labels{"system": system}
	m := &metrics{reg: reg}
	m.started = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "saga_started_total", Help: "Sagas started.", ConstLabels: cl})
	m.committed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "saga_committed_total", Help: "Sagas whose every step succeeded.", ConstLabels: cl})
	m.compensated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "saga_compensated_total", Help: "Sagas rolled back by their compensations.", ConstLabels: cl})
	m.stuck = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "saga_stuck", Help: "Sagas whose compensation gave up and that wait for an operator.", ConstLabels: cl})
	m.stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "saga_step_duration_seconds", Help: "Time from sending a step's action or compensation to its reply or timeout.",
		ConstLabels: cl, Buckets: prometheus.ExponentialBuckets(50e-6, 4, 10)}, []string{"step", "phase", "outcome"})
	appends := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "saga_journal_appends_total", Help: "Saga journal records made durable.", ConstLabels: cl},
		func() float64 { return float64(j.Stats().Appends) })
	syncs := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "saga_journal_fsyncs_total", Help: "fsyncs of the saga journal.", ConstLabels: cl},
		func() float64 { return float64(j.Stats().Syncs) })
	m.collectors = []prometheus.Collector{m.started, m.committed, m.compensated, m.stuck, m.stepDuration, appends, syncs}
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

func (m *metrics) observeStep(step string, phase sagapb.Phase, outcome string, d time.Duration) {
	p := "action"
	if phase == sagapb.Phase_PHASE_COMPENSATION {
		p = "compensation"
	}
	m.stepDuration.WithLabelValues(step, p, outcome).Observe(d.Seconds())
}
