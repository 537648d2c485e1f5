//go:build !race

package raft_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/raft"
)

// BenchmarkFailover kills the leader's actor and measures the time until
// the next write succeeds (the client finding the new leader by itself),
// with the default timing. It reports the median and the worst case:
//
//	go test ./behaviors/raft -run '^$' -bench Failover -benchtime 20x
func BenchmarkFailover(b *testing.B) {
	c := newTestCluster(b, 3)
	defer func() {
		c.client.Stop()
		for i := range c.nodes {
			c.crash(i)
		}
	}()
	ctx := context.Background()
	kc := kv.NewClient(c.raftClient(raft.ClientOptions{AttemptTimeout: 200 * time.Millisecond}))
	if err := kc.Put(ctx, "k", []byte("v")); err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		l := c.leader(10 * time.Second)
		start := time.Now()
		if err := c.killMember(l); err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := kc.Put(wctx, "k", []byte("v"))
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		// Let the restarted member catch up before the next round.
		st, err := c.raftClient(raft.ClientOptions{}).Status(ctx, uint64(c.leader(10*time.Second)+1))
		if err != nil {
			b.Fatal(err)
		}
		c.waitApplied(st.Commit, 10*time.Second)
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
}
