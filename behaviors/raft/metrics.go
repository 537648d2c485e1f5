package raft

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one member's Prometheus series, labelled with its group and
// node_id (the seed's names: raft_log_entries_total{node_id},
// consensus_round_duration_seconds{node_id}).
type metrics struct {
	entries       prometheus.Counter
	round         prometheus.Observer
	fsync         prometheus.Observer
	term          prometheus.Gauge
	commit        prometheus.Gauge
	applied       prometheus.Gauge
	isLeader      prometheus.Gauge
	leaderChanges prometheus.Counter
	invalid       prometheus.Counter
	unroutable    prometheus.Counter
	snapshots     prometheus.Counter
	// lag is replication_lag_seconds{shard, replica}: on the leader, per
	// follower, the age of the oldest entry it lacks.
	lag *prometheus.GaugeVec
}

type vecs struct {
	entries, leaderChanges, invalid *prometheus.CounterVec
	unroutable, snapshots           *prometheus.CounterVec
	round, fsync                    *prometheus.HistogramVec
	term, commit, applied, isLeader *prometheus.GaugeVec
	lag                             *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, group string, id uint64) (*metrics, error) {
	labels := []string{"group", "node_id"}
	v := vecs{
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "raft_log_entries_total",
			Help: "Log entries persisted by the member."}, labels),
		leaderChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "raft_leader_changes_total",
			Help: "Times the member saw the leader change."}, labels),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "raft_invalid_messages_total",
			Help: "Messages from peers the member refused as malformed."}, labels),
		unroutable: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "raft_unroutable_messages_total",
			Help: "Messages for members whose address the member does not know."}, labels),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "raft_snapshots_total",
			Help: "Snapshots of the state machine taken by the member."}, labels),
		round: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "consensus_round_duration_seconds",
			Help:    "Time from a proposal reaching the leader to its result (committed and applied).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}, labels),
		fsync: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "raft_fsync_duration_seconds",
			Help:    "Duration of the log's fsyncs.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18)}, labels),
		term: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "raft_term",
			Help: "The member's current term."}, labels),
		commit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "raft_commit_index",
			Help: "The member's commit index."}, labels),
		applied: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "raft_applied_index",
			Help: "The last index the member applied to its state machine."}, labels),
		isLeader: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "raft_is_leader",
			Help: "1 while the member is the leader, else 0."}, labels),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "replication_lag_seconds",
			Help: "On the leader of Raft group shard, for each follower replica (member id): the age of the oldest log entry the replica does not have yet; 0 when it is up to date."},
			[]string{"shard", "replica"}),
	}
	if reg != nil {
		v.entries = register(reg, v.entries)
		v.leaderChanges = register(reg, v.leaderChanges)
		v.invalid = register(reg, v.invalid)
		v.unroutable = register(reg, v.unroutable)
		v.snapshots = register(reg, v.snapshots)
		v.round = register(reg, v.round)
		v.fsync = register(reg, v.fsync)
		v.term = register(reg, v.term)
		v.commit = register(reg, v.commit)
		v.applied = register(reg, v.applied)
		v.isLeader = register(reg, v.isLeader)
		v.lag = register(reg, v.lag)
	}
	l := prometheus.Labels{"group": group, "node_id": strconv.FormatUint(id, 10)}
	return &metrics{
		entries: v.entries.With(l), leaderChanges: v.leaderChanges.With(l), invalid: v.invalid.With(l),
		unroutable: v.unroutable.With(l), snapshots: v.snapshots.With(l),
		round: v.round.With(l), fsync: v.fsync.With(l),
		term: v.term.With(l), commit: v.commit.With(l), applied: v.applied.With(l), isLeader: v.isLeader.With(l),
		lag: v.lag,
	}, nil
}

// register registers c, or returns the collector already registered under
// the same description (several members, or restarts, on one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting description: keep the unregistered collector so
		// that the member still works; its series are just not exported.
	}
	return c
}
