//go:build !race

// Several cluster nodes in one process: built without -race, as the
// cluster package's own multi-node tests (see the Makefile's norace).

package query

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/query/tpch"
	"github.com/distributed-go/distributed/cluster"
)

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startCluster starts n nodes, each with one executor over a catalog made
// by mkCat, and waits until every node sees all executors.
func startCluster(t *testing.T, n int, mkCat func() *Catalog) []*cluster.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var nodes []*cluster.Node
	for k := 0; k < n; k++ {
		cfg := cluster.Local(fmt.Sprintf("q%d", k+1))
		cfg.Logger, cfg.Secret = zap.NewNop(), "query-test"
		// No crash detection is needed here: relax the Local preset's
		// 50 ms probe timeout, which a loaded machine can miss, declaring
		// a busy node dead.
		cfg.Gossip.ProbeInterval, cfg.Gossip.ProbeTimeout, cfg.Gossip.SuspicionMult = 250*time.Millisecond, 500*time.Millisecond, 4
		if k > 0 {
			cfg.Seeds = []string{nodes[0].GossipAddress()}
		}
		nd, err := cluster.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nd.Stop)
		if _, err := StartExecutors(nd, mkCat(), 1); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes {
		waitUntil(t, nd.Name()+" sees all executors", 15*time.Second, func() bool {
			return len(nd.GroupMembers(ExecutorGroup)) == n
		})
	}
	return nodes
}

func sortedExecs(nd *cluster.Node) []*actor.PID {
	es := nd.GroupMembers(ExecutorGroup)
	sort.Slice(es, func(a, b int) bool { return es[a].String() < es[b].String() })
	return es
}

func TestClusterOneVsThreeExecutors(t *testing.T) {
	lineitem := lineitemTable(t, 40000, 4000)
	taxiRng := rand.New(rand.NewPCG(7, 7))
	rt := randTable(taxiRng, 6)
	nodes := startCluster(t, 3, func() *Catalog {
		c := NewCatalog()
		_ = c.Register("lineitem", lineitem)
		_ = c.Register("t", rt)
		return c
	})
	cat := NewCatalog()
	_ = cat.Register("lineitem", lineitem)
	_ = cat.Register("t", rt)
	execs := sortedExecs(nodes[0])
	one := &Cluster{Node: nodes[0], Executors: execs[:1]}
	three := &Cluster{Node: nodes[0], Window: 2, MaxBatchBytes: 64 << 10}
	queries := []string{tpch.Q1, tpch.Q6,
		"SELECT g, COUNT(*), COUNT(DISTINCT s), SUM(a) FROM t GROUP BY 1 ORDER BY 1",
		"SELECT l_orderkey, l_extendedprice FROM lineitem WHERE l_quantity < 3 ORDER BY 2 DESC, 1 LIMIT 20",
		"SELECT COUNT(*) FROM lineitem WHERE l_shipmode IN ('AIR', 'RAIL') AND l_shipinstruct LIKE '%PERSON'",
	}
	rng := rand.New(rand.NewPCG(11, 11))
	for k := 0; k < 15; k++ {
		q := randQuery(rng)
		if p, err := Prepare(cat, q); err == nil && (p.agg || len(p.order) > 0) {
			queries = append(queries, q) // results with a defined order
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, q := range queries {
		var res [3][][]value
		for k, r := range []Runner{LocalRunner{}, one, three} {
			_, recs, err := (&Engine{Catalog: cat, Runner: r}).Query(ctx, q)
			if err != nil {
				t.Fatalf("%s (runner %d): %v", q, k, err)
			}
			res[k] = rowsOf(t, recs)
		}
		if err := sameRows(res[1], res[0]); err != nil {
			t.Fatalf("%s: 1 executor vs local: %v", q, err)
		}
		if err := sameRows(res[2], res[1]); err != nil {
			t.Fatalf("%s: 3 executors vs 1: %v", q, err)
		}
	}
	// A streamed (unordered) scan returns every row once.
	_, recs, err := (&Engine{Catalog: cat, Runner: three}).Query(ctx, "SELECT l_orderkey FROM lineitem")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rowsOf(t, recs)); got != 40000 {
		t.Fatalf("streamed %d rows, want 40000", got)
	}
}

// gatedTable lets each partition emit one batch, then waits for the gate.
type gatedTable struct {
	*MemTable
	gate chan struct{}
}

func (g *gatedTable) Partitions() []Partition {
	var out []Partition
	for _, p := range g.MemTable.Partitions() {
		out = append(out, gatedPart{p, g.gate})
	}
	return out
}

type gatedPart struct {
	Partition
	gate chan struct{}
}

func (p gatedPart) Scan(ctx context.Context, cols []int, batchRows int, emit func(arrow.RecordBatch) error) error {
	first := true
	return p.Partition.Scan(ctx, cols, batchRows, func(rec arrow.RecordBatch) error {
		if !first {
			select {
			case <-p.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		first = false
		return emit(rec)
	})
}

func gatedCluster(t *testing.T) (*gatedTable, *Catalog, []*cluster.Node) {
	old := scanBatchRows
	scanBatchRows = 500
	t.Cleanup(func() { scanBatchRows = old })
	g := &gatedTable{MemTable: lineitemTable(t, 12000, 2000), gate: make(chan struct{})}
	nodes := startCluster(t, 3, func() *Catalog {
		c := NewCatalog()
		_ = c.Register("lineitem", g)
		return c
	})
	cat := NewCatalog()
	_ = cat.Register("lineitem", g)
	waitUntil(t, "no tasks left from earlier tests", 10*time.Second, func() bool { return runningTasks.Load() == 0 })
	return g, cat, nodes
}

// execOn returns the executor of nd as nd's group view lists it, waiting
// for it to appear there (the count startCluster waits for may include a
// departing record).
func execOn(t *testing.T, nd *cluster.Node, name string) *actor.PID {
	t.Helper()
	var found *actor.PID
	waitUntil(t, "an executor on "+name, 10*time.Second, func() bool {
		for _, e := range nd.GroupMembers(ExecutorGroup) {
			if e.Address() == nd.Address() {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func plainAnswer(t *testing.T, g *gatedTable, sql string) [][]value {
	t.Helper()
	cat := NewCatalog()
	_ = cat.Register("lineitem", g.MemTable)
	_, recs, err := (&Engine{Catalog: cat}).Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	return rowsOf(t, recs)
}

type outcome struct {
	rows [][]value
	err  error
}

func runAsync(t *testing.T, ctx context.Context, cat *Catalog, r Runner, sql string, emitted *atomic.Int64) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		p, err := Prepare(cat, sql)
		if err != nil {
			done <- outcome{err: err}
			return
		}
		var recs []arrow.RecordBatch
		err = Execute(ctx, p, r, func(rec arrow.RecordBatch) error {
			rec.Retain()
			recs = append(recs, rec)
			emitted.Add(1)
			return nil
		})
		if err != nil {
			done <- outcome{err: err}
			return
		}
		done <- outcome{rows: rowsOf(t, recs)}
	}()
	return done
}

func TestClusterExecutorKilledMidQueryIsRerun(t *testing.T) {
	g, cat, nodes := gatedCluster(t)
	want := plainAnswer(t, g, tpch.Q1)
	victim := execOn(t, nodes[1], "q2")
	var emitted atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := runAsync(t, ctx, cat, &Cluster{Node: nodes[0]}, tpch.Q1, &emitted)
	waitUntil(t, "a task on every executor", 10*time.Second, func() bool { return runningTasks.Load() == 3 })
	if err := nodes[0].System().Kill(victim); err != nil {
		t.Fatal(err)
	}
	// The coordinator re-runs the victim's partitions on the others; let
	// them (and the victim's orphaned goroutine) past the gate.
	close(g.gate)
	var out outcome
	select {
	case out = <-done:
	case <-ctx.Done():
		t.Fatal("query did not finish after an executor was killed")
	}
	if out.err != nil {
		t.Fatal(out.err)
	}
	if err := sameRows(out.rows, want); err != nil {
		t.Fatalf("after the kill: %v", err)
	}
	// The supervisor restarts the executor, which rejoins the group.
	waitUntil(t, "the executor restarted", 10*time.Second, func() bool {
		e := execOn(t, nodes[1], "q2")
		return e != nil && !e.Equal(victim) && len(nodes[0].GroupMembers(ExecutorGroup)) == 3
	})
}

func TestClusterExecutorKilledAfterStreamingFailsClearly(t *testing.T) {
	g, cat, nodes := gatedCluster(t)
	victim := execOn(t, nodes[2], "q3")
	var emitted atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := runAsync(t, ctx, cat, &Cluster{Node: nodes[0]}, "SELECT l_orderkey, l_quantity FROM lineitem", &emitted)
	// Each executor's first partition sends one batch, then waits.
	waitUntil(t, "a batch from every executor", 10*time.Second, func() bool { return emitted.Load() >= 3 })
	if err := nodes[0].System().Kill(victim); err != nil {
		t.Fatal(err)
	}
	var out outcome
	select {
	case out = <-done:
	case <-ctx.Done():
		t.Fatal("query did not end after an executor was killed")
	}
	close(g.gate)
	if !errors.Is(out.err, ErrExecutorLost) {
		t.Fatalf("got %v, want ErrExecutorLost", out.err)
	}
	waitUntil(t, "every task stopped", 10*time.Second, func() bool { return runningTasks.Load() == 0 })
}

func TestClusterCancel(t *testing.T) {
	_, cat, nodes := gatedCluster(t)
	var emitted atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(t, ctx, cat, &Cluster{Node: nodes[0]}, tpch.Q1, &emitted)
	waitUntil(t, "a task on every executor", 10*time.Second, func() bool { return runningTasks.Load() == 3 })
	cancel()
	select {
	case out := <-done:
		if !errors.Is(out.err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", out.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled query did not return")
	}
	// The gate is never opened: only the Cancel message stops the tasks.
	waitUntil(t, "executor tasks cancelled", 10*time.Second, func() bool { return runningTasks.Load() == 0 })
}
