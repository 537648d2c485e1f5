//go:build !race

package raft_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/kv/kvcheck"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/replog"
)

// TestReplicatedKV: writes survive the leader actor being killed; a new
// leader is elected; the killed member is restarted by its supervisor from
// its log and catches up.
func TestReplicatedKV(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kc := kv.NewClient(c.raftClient(raft.ClientOptions{}))
	for i := range 20 {
		if err := kc.Put(ctx, fmt.Sprintf("k%d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	old := c.leader(5 * time.Second)
	if err := c.killMember(old); err != nil {
		t.Fatal(err)
	}
	for i := 20; i < 40; i++ {
		if err := kc.Put(ctx, fmt.Sprintf("k%d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("put %d after the leader was killed: %v", i, err)
		}
	}
	for i := range 40 {
		v, ok, err := kc.Get(ctx, fmt.Sprintf("k%d", i))
		if err != nil || !ok || string(v) != fmt.Sprint(i) {
			t.Fatalf("get k%d = %q %v %v", i, v, ok, err)
		}
	}
	rc := c.raftClient(raft.ClientOptions{})
	st, err := rc.Status(ctx, uint64(c.leader(5*time.Second)+1))
	if err != nil {
		t.Fatal(err)
	}
	c.waitApplied(st.Commit, 10*time.Second) // the restarted member too
}

// TestCrashRestartNode: a node crashed and restarted from its data
// directory rejoins with its log and catches up; acknowledged writes are
// all there.
func TestCrashRestartNode(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kc := kv.NewClient(c.raftClient(raft.ClientOptions{}))
	for i := range 10 {
		if err := kc.Put(ctx, fmt.Sprintf("k%d", i), []byte("a")); err != nil {
			t.Fatal(err)
		}
	}
	l := c.leader(5 * time.Second)
	c.crash(l)
	for i := range 10 {
		if err := kc.Put(ctx, fmt.Sprintf("k%d", i), []byte("b")); err != nil {
			t.Fatalf("put with node %d down: %v", l+1, err)
		}
	}
	c.start(l)
	// Stop another node: the restarted one is needed for a quorum now.
	other := (l + 1) % 3
	c.crash(other)
	for i := range 10 {
		v, _, err := kc.Get(ctx, fmt.Sprintf("k%d", i))
		if err != nil || string(v) != "b" {
			t.Fatalf("get k%d = %q, %v", i, v, err)
		}
	}
}

// TestNoQuorumFailsClearly: with a majority down, writes end with an error
// that says the outcome is unknown or no leader was found, never hang.
func TestNoQuorumFailsClearly(t *testing.T) {
	c := newTestCluster(t, 3)
	c.leader(5 * time.Second)
	c.crash(0)
	c.crash(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := kv.NewClient(c.raftClient(raft.ClientOptions{AttemptTimeout: 300 * time.Millisecond})).Put(ctx, "k", []byte("v"))
	if !errors.Is(err, replog.ErrOutcomeUnknown) && !errors.Is(err, replog.ErrNoLeader) {
		t.Fatalf("put without quorum: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error does not say the deadline passed: %v", err)
	}
}

// nemesis injects one fault at a time while the workload runs, and undoes
// it before the next.
type nemesis struct {
	c      *testCluster
	rng    *rand.Rand
	faults atomic.Int64
	log    []string
}

func (n *nemesis) run(ctx context.Context, kinds []string, every time.Duration) {
	for ctx.Err() == nil {
		kind := kinds[n.rng.IntN(len(kinds))]
		l := n.c.leaderOrRandom(n.rng)
		switch kind {
		case "kill-leader":
			if err := n.c.killMember(l); err == nil {
				n.log = append(n.log, fmt.Sprintf("kill member %d", l+1))
			}
		case "partition-leader":
			var rest []string
			for i := range n.c.nodes {
				if i != l {
					rest = append(rest, nodeName(i))
				}
			}
			n.c.faults.Partition([]string{nodeName(l)}, append(rest, "client"))
			n.log = append(n.log, fmt.Sprintf("partition %s away", nodeName(l)))
		case "crash-restart":
			n.c.crash(l)
			n.log = append(n.log, fmt.Sprintf("crash %s", nodeName(l)))
		}
		n.faults.Add(1)
		sleepCtx(ctx, every)
		n.c.faults.Heal()
		if n.c.node(l) == nil {
			n.c.start(l)
		}
		sleepCtx(ctx, every/2)
	}
}

func (c *testCluster) leaderOrRandom(rng *rand.Rand) int {
	rc := c.raftClient(raft.ClientOptions{})
	for i := range c.nodes {
		if c.node(i) == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		st, err := rc.Status(ctx, uint64(i+1))
		cancel()
		if err == nil && st.Role == "leader" {
			return i
		}
	}
	return rng.IntN(len(c.nodes))
}

func runLinearizability(t *testing.T, nodes int, kinds []string) {
	c := newTestCluster(t, nodes, snapshots(300, 30))
	c.leader(10 * time.Second)
	linearizable(t, 4*time.Second, rand.Uint64(), kvcheck.Workload{Clients: 5, Keys: 3, OpTimeout: 1500 * time.Millisecond},
		func() *kv.Client {
			return kv.NewClient(c.raftClient(raft.ClientOptions{AttemptTimeout: 500 * time.Millisecond}))
		},
		func(ctx context.Context, rng *rand.Rand) []string {
			nm := &nemesis{c: c, rng: rng}
			nm.run(ctx, kinds, 700*time.Millisecond)
			return nm.log
		})
}

var allFaults = []string{"kill-leader", "partition-leader", "crash-restart"}

func TestLinearizability3Nodes(t *testing.T) {
	runLinearizability(t, 3, allFaults)
}

func TestLinearizability5Nodes(t *testing.T) {
	if testing.Short() {
		t.Skip("5-node scenario skipped in -short")
	}
	runLinearizability(t, 5, allFaults)
}

// TestLinearizabilityCatchesStaleReads is the negative control of the
// suite: a read served by a member cut off from the group (a stale read,
// without ReadIndex) after a write completed elsewhere must make the
// history Illegal.
func TestLinearizabilityCatchesStaleReads(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := c.leader(10 * time.Second)
	f := (l + 1) % 3
	rec := kvcheck.NewRecorder()
	writer := kv.NewClient(c.raftClient(raft.ClientOptions{}))
	if _, err := rec.Do(ctx, 0, writer, kvcheck.Input{Op: kvcheck.Put, Key: "k", Value: "v1"}); err != nil {
		t.Fatal(err)
	}
	c.waitApplied(2, 10*time.Second) // the follower has v1
	var rest []string
	for i := range 3 {
		if i != f {
			rest = append(rest, nodeName(i))
		}
	}
	c.faults.Partition([]string{nodeName(f)}, rest) // the client node reaches both sides
	defer c.faults.Heal()
	if _, err := rec.Do(ctx, 0, writer, kvcheck.Input{Op: kvcheck.Put, Key: "k", Value: "v2"}); err != nil {
		t.Fatal(err)
	}
	stale := kv.NewClient(raft.NewClient(c.client.System(), "kv", map[uint64]string{uint64(f + 1): c.addrs[f]},
		raft.ClientOptions{StaleReads: true}))
	if _, err := rec.Do(ctx, 1, stale, kvcheck.Input{Op: kvcheck.Get, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if res, _ := rec.Check(10 * time.Second); res != porcupine.Illegal {
		t.Fatalf("a stale read was judged %s; history %v", res, rec.History())
	}
}

// TestLeaderStopHandsOff: a leader stopped gracefully (its node leaves)
// hands leadership to an up-to-date follower, so the next write does not
// wait for an election timeout.
func TestLeaderStopHandsOff(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kc := kv.NewClient(c.raftClient(raft.ClientOptions{AttemptTimeout: 200 * time.Millisecond}))
	if err := kc.Put(ctx, "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	l := c.leader(5 * time.Second)
	rc := c.raftClient(raft.ClientOptions{})
	before, err := rc.Status(ctx, uint64(l+1))
	if err != nil {
		t.Fatal(err)
	}
	nd := c.node(l)
	c.mu.Lock()
	c.nodes[l] = nil
	c.mu.Unlock()
	if err := nd.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	now := c.leader(5 * time.Second)
	st, err := rc.Status(ctx, uint64(now+1))
	if err != nil {
		t.Fatal(err)
	}
	handoffs := c.logs.FilterMessage("leadership handed off on stop").All()
	if len(handoffs) != 1 {
		t.Fatalf("%d hand-offs logged, want 1", len(handoffs))
	}
	if to := handoffs[0].ContextMap()["to"]; to != uint64(now+1) {
		t.Fatalf("handed off to %v, but member %d leads", to, now+1)
	}
	if st.Term != before.Term+1 {
		t.Fatalf("term went from %d to %d", before.Term, st.Term)
	}
	if err := kc.Put(ctx, "k", []byte("2")); err != nil {
		t.Fatal(err)
	}
}

// lagOf reads replication_lag_seconds{replica} from a node's registry
// (-1 if absent).
func lagOf(t *testing.T, c *testCluster, node int, replica uint64) float64 {
	t.Helper()
	nd := c.node(node)
	if nd == nil {
		return -1
	}
	mfs, err := nd.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "replication_lag_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "replica" && l.GetValue() == fmt.Sprint(replica) {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// TestReplicationLag: the leader reports how far behind, in seconds, a
// follower is (the seed's replication_lag_seconds): growing while the
// follower is down and writes go on, back to 0 once it has caught up.
func TestReplicationLag(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := c.leader(5 * time.Second)
	f := (l + 1) % 3
	kc := kv.NewClient(c.raftClient(raft.ClientOptions{}))
	waitFor(t, "a lag series for every follower, at 0", 10*time.Second, func() bool {
		return lagOf(t, c, l, uint64(f+1)) == 0
	})
	c.crash(f)
	if err := kc.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the down follower's lag above 0", 10*time.Second, func() bool {
		return lagOf(t, c, l, uint64(f+1)) > 0
	})
	c.start(f)
	waitFor(t, "the restarted follower's lag back to 0 (as the leader sees it)", 20*time.Second, func() bool {
		if err := kc.Put(ctx, "k", []byte("w")); err != nil {
			t.Fatal(err)
		}
		return lagOf(t, c, c.leader(5*time.Second), uint64(f+1)) == 0
	})
}
