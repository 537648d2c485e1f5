// Command consistency_demo shows what linearizable reads buy. It runs the
// same concurrent workload twice against a 3-node Raft key-value store while
// a nemesis cuts one member off from the others now and then: first with
// stale reads (any member answers from its own state), then with ReadIndex
// reads (the leader confirms with a quorum that it is still the leader and
// answers once it has applied everything committed before the read). Each
// history is checked with porcupine and drawn as HTML.
//
//	go run ./examples/consistency_demo [-d 4s] [-out DIR]
//
// Expect the first verdict to be "Illegal" (a read missed a write that had
// completed before it began) and the second "Ok". Stale reads are not
// always caught: a run in which no read happened to hit the cut-off member
// at the wrong moment passes; run it again or longer.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/kv/kvcheck"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/examples/internal/raftdemo"
)

func main() {
	d := flag.Duration("d", 4*time.Second, "how long each workload runs")
	out := flag.String("out", os.TempDir(), "directory for the HTML views of the histories")
	flag.Parse()
	if err := run(*d, *out); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(d time.Duration, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := raftdemo.Start(ctx, 3)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Leader(ctx); err != nil {
		return err
	}
	for _, stale := range []bool{true, false} {
		name, file := "ReadIndex reads (linearizable)", "history-readindex.html"
		if stale {
			name, file = "stale reads (any member answers from its own state)", "history-stale.html"
		}
		fmt.Printf("== %s: 4 clients, 2 keys, %v, one member cut off now and then\n", name, d)
		rec := kvcheck.NewRecorder()
		wctx, wcancel := context.WithTimeout(ctx, d)
		done := make(chan []string)
		go func() { done <- nemesis(wctx, c) }()
		rec.Run(wctx, kvcheck.Workload{Clients: 4, Keys: 2, OpTimeout: time.Second}, func() *kv.Client {
			return kv.NewClient(c.RaftClient(raft.ClientOptions{StaleReads: stale, AttemptTimeout: 300 * time.Millisecond}))
		})
		faults := <-done
		wcancel()
		st := rec.Stats()
		fmt.Printf("   faults: %v\n", faults)
		fmt.Printf("   history: %d operations (%d ok, %d writes with unknown outcome, %d failed reads left out)\n",
			st.Recorded, st.OK, st.Unknown, st.FailedReads)
		res, info := rec.Check(time.Minute)
		path := filepath.Join(out, file)
		if err := kvcheck.Visualize(info, path); err != nil {
			return err
		}
		verdict := map[porcupine.CheckResult]string{
			porcupine.Ok:      "Ok — linearizable",
			porcupine.Illegal: "Illegal — not linearizable",
			porcupine.Unknown: "Unknown — the check timed out",
		}[res]
		fmt.Printf("   porcupine: %s\n   history drawn in %s\n\n", verdict, path)
	}
	return nil
}

// nemesis cuts a random follower off from everyone else for 600 ms, then
// heals for 300 ms, until ctx ends, and returns what it did.
func nemesis(ctx context.Context, c *raftdemo.Cluster) []string {
	var did []string
	for ctx.Err() == nil {
		lead, err := c.Leader(ctx)
		if err != nil {
			break
		}
		victim := uint64(rand.IntN(len(c.Peers)) + 1)
		if victim == lead.Id {
			victim = victim%uint64(len(c.Peers)) + 1
		}
		var rest []string
		for id := range c.Peers {
			if id != victim {
				rest = append(rest, raftdemo.NodeName(int(id)))
			}
		}
		c.Faults.Partition([]string{raftdemo.NodeName(int(victim))}, rest)
		did = append(did, "cut off "+raftdemo.NodeName(int(victim)))
		pause(ctx, 600*time.Millisecond)
		c.Faults.Heal()
		pause(ctx, 300*time.Millisecond)
	}
	c.Faults.Heal()
	return did
}

// pause waits d (the length of a fault is the point here) or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
