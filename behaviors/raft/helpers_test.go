package raft_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/kv/kvcheck"
	"github.com/distributed-go/distributed/internal/freeport"
)

var soak = flag.Duration("raft.soak", 0, "run each linearizability scenario this long instead of the CI default")

// freePort reserves a loopback address for a node that must keep it across
// restarts, below the kernel's ephemeral range (see package freeport: one
// of the cluster's own outbound connections once took a node's port before
// it started, "address already in use").
func freePort(t testing.TB) string {
	t.Helper()
	a, err := freeport.Pick("127.0.0.1", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sleepCtx waits d (the nemesis' fault duration is the point, not a
// stand-in for a condition) or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// linearizable runs workload w (clients from newClient) for the default
// duration d, or -raft.soak, while nemesis injects faults, and fails the
// test unless porcupine judges the history linearizable. nemesis runs until
// its context ends and returns what it did, which must not be nothing. A
// failing history is written as HTML next to the test's temporary files.
func linearizable(t *testing.T, d time.Duration, seed uint64, w kvcheck.Workload, newClient func() *kv.Client,
	nemesis func(ctx context.Context, rng *rand.Rand) []string) {
	t.Helper()
	if *soak > 0 {
		d = *soak
	}
	w.Seed = seed
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var faults []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		faults = nemesis(ctx, rand.New(rand.NewPCG(seed, 1)))
	}()
	rec := kvcheck.NewRecorder()
	rec.Run(ctx, w, newClient)
	<-done
	res, info := rec.Check(60 * time.Second)
	st := rec.Stats()
	t.Logf("seed %d; faults %v; history %+v; verdict %s", seed, faults, st, res)
	if st.OK < 20 || len(faults) == 0 {
		t.Fatalf("too little happened to judge: %+v, %d faults", st, len(faults))
	}
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("raft-history-%d.html", seed))
		if err := kvcheck.Visualize(info, path); err == nil {
			t.Logf("history written to %s", path)
		}
		t.Fatalf("history is %s (seed %d)", res, seed)
	}
}
