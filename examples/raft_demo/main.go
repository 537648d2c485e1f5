// Command raft_demo tells the story of a Raft key-value store surviving the
// loss of its leader: three nodes in this process, one Raft member actor on
// each under its own supervisor; writes; the leader's actor killed; a new
// leader; the writes intact; the killed member restarted from its log and
// caught up.
//
//	go run ./examples/raft_demo
//
// Every figure printed is measured while the demo runs. Node logs (Warn and
// above) go to stderr.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/examples/internal/raftdemo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	fmt.Println("== Starting a 3-node cluster, one Raft member per node")
	c, err := raftdemo.Start(ctx, 3)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	lead, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("   leader elected: member %d on %s (term %d) after %v\n",
		lead.Id, raftdemo.NodeName(int(lead.Id)), lead.Term, time.Since(start).Round(time.Millisecond))

	store := kv.NewClient(c.RaftClient(raft.ClientOptions{}))
	fmt.Println("\n== Writing 10 keys (each acknowledged once a majority has it on disk)")
	t0 := time.Now()
	for i := range 10 {
		if err := store.Put(ctx, fmt.Sprintf("key-%02d", i), fmt.Appendf(nil, "value-%d", i)); err != nil {
			return fmt.Errorf("put: %w", err)
		}
	}
	fmt.Printf("   10 writes in %v\n", time.Since(t0).Round(time.Microsecond))

	fmt.Printf("\n== Killing the leader's actor (member %d on %s); its supervisor will restart it\n",
		lead.Id, raftdemo.NodeName(int(lead.Id)))
	killed := time.Now()
	if err := c.KillMember(lead.Id); err != nil {
		return err
	}
	// The next write finds the new leader by itself (redirects, retries).
	if err := store.Put(ctx, "after-kill", []byte("first write after the kill")); err != nil {
		return fmt.Errorf("put after the kill: %w", err)
	}
	took := time.Since(killed)
	now, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("   new leader: member %d on %s (term %d); the first write after the kill succeeded %v later\n",
		now.Id, raftdemo.NodeName(int(now.Id)), now.Term, took.Round(time.Millisecond))
	if now.Id == lead.Id {
		fmt.Println("   (the restarted member itself won the new election: it had the whole log)")
	}

	fmt.Println("\n== Writing 10 more keys, then reading all of them back (linearizable reads)")
	for i := 10; i < 20; i++ {
		if err := store.Put(ctx, fmt.Sprintf("key-%02d", i), fmt.Appendf(nil, "value-%d", i)); err != nil {
			return fmt.Errorf("put: %w", err)
		}
	}
	intact := 0
	for i := range 20 {
		v, ok, err := store.Get(ctx, fmt.Sprintf("key-%02d", i))
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		if ok && string(v) == fmt.Sprintf("value-%d", i) {
			intact++
		}
	}
	fmt.Printf("   %d of 20 writes intact\n", intact)

	fmt.Printf("\n== The killed member %d, restarted by its supervisor from its log\n", lead.Id)
	for {
		st, err := c.Status(ctx, lead.Id)
		if err == nil && st.Applied >= now.Commit {
			fmt.Printf("   member %d is a %s in term %d, applied index %d (leader's commit was %d)\n",
				st.Id, st.Role, st.Term, st.Applied, now.Commit)
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("member %d did not catch up: %v", lead.Id, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if intact != 20 {
		return fmt.Errorf("only %d of 20 writes survived", intact)
	}
	fmt.Println("\nDone: no acknowledged write was lost.")
	return nil
}
