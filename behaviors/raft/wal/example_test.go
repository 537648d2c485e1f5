package wal_test

import (
	"fmt"
	"os"

	"github.com/distributed-go/distributed/behaviors/raft/core"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"github.com/distributed-go/distributed/behaviors/raft/wal"
)

// A single-node cluster whose log lives in a WAL, restarted from it: the
// Ready loop persists and syncs before it would send, and the restarted
// node applies the recovered log again.
func Example() {
	dir, err := os.MkdirTemp("", "wal-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	run := func(propose string) {
		w, err := wal.Open(dir, wal.Options{})
		if err != nil {
			panic(err)
		}
		defer w.Close()
		hs := w.HardState()
		last, _ := w.LastIndex()
		fmt.Printf("open: term %d, commit %d, last index %d\n", hs.Term, hs.Commit, last)
		n, err := core.NewRawNode(&core.Config{ID: 1, Peers: []uint64{1}, Storage: w})
		if err != nil {
			panic(err)
		}
		handle := func() {
			for n.HasReady() {
				rd := n.Ready()
				// 1. Persist (and sync) before 2. sending rd.Messages.
				if err := w.Save(rd.HardState, rd.Entries); err != nil {
					panic(err)
				}
				if rd.MustSync {
					if err := w.Sync(); err != nil {
						panic(err)
					}
				}
				// 3. Apply.
				for _, e := range rd.CommittedEntries {
					if len(e.Data) > 0 {
						fmt.Printf("apply %d: %s\n", e.Index, e.Data)
					}
				}
				n.Advance(rd)
			}
		}
		for n.Status().Role != core.Leader {
			n.Tick()
			handle()
		}
		_ = n.Propose([]byte(propose))
		handle()
	}
	run("x=1")
	run("y=2")
	// Output:
	// open: term 0, commit 0, last index 0
	// apply 2: x=1
	// open: term 1, commit 2, last index 2
	// apply 2: x=1
	// apply 4: y=2
}

// Snapshots in a WAL: CreateSnapshot writes the snapshot file atomically,
// Compact drops the log it covers, and after a restart the core starts from
// the snapshot (its configuration included) and replays only what follows.
func ExampleWAL_CreateSnapshot() {
	dir, err := os.MkdirTemp("", "wal-snapshot-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	w, err := wal.Open(dir, wal.Options{})
	if err != nil {
		panic(err)
	}
	// Entries 1..5 as a node would have persisted them, all committed.
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 5; i++ {
		ents = append(ents, &raftpb.Entry{Index: i, Term: 1, Data: []byte(fmt.Sprintf("cmd%d", i))})
	}
	if err := w.SaveSync(&raftpb.HardState{Term: 1, Commit: 5}, ents); err != nil {
		panic(err)
	}
	// The state machine applied up to 4; snapshot it and compact.
	cs := &raftpb.ConfState{Voters: []uint64{1}}
	if _, err := w.CreateSnapshot(4, cs, []byte("state after cmd4")); err != nil {
		panic(err)
	}
	if err := w.Compact(4); err != nil {
		panic(err)
	}
	w.Close()

	w, err = wal.Open(dir, wal.Options{})
	if err != nil {
		panic(err)
	}
	defer w.Close()
	snap, _ := w.Snapshot()
	first, _ := w.FirstIndex()
	fmt.Printf("snapshot %d@%d %q, log from %d\n", snap.Metadata.Index, snap.Metadata.Term, snap.Data, first)
	n, err := core.NewRawNode(&core.Config{ID: 1, Storage: w})
	if err != nil {
		panic(err)
	}
	rd := n.Ready()
	for _, e := range rd.CommittedEntries {
		fmt.Printf("apply %d: %s\n", e.Index, e.Data)
	}
	// Output:
	// snapshot 4@1 "state after cmd4", log from 5
	// apply 5: cmd5
}
