package core_test

import (
	"fmt"

	"github.com/distributed-go/distributed/behaviors/raft/core"
)

// A single-node cluster driven by hand: the same loop an actor shell runs,
// with the network and disk left out.
func ExampleRawNode() {
	storage := core.NewMemoryStorage()
	n, err := core.NewRawNode(&core.Config{ID: 1, Peers: []uint64{1}, Storage: storage})
	if err != nil {
		panic(err)
	}
	handle := func() {
		for n.HasReady() {
			rd := n.Ready()
			// 1. Persist, 2. send (no peers here), 3. apply, 4. read.
			if rd.HardState != nil {
				storage.SetHardState(rd.HardState)
			}
			if err := storage.Append(rd.Entries); err != nil {
				panic(err)
			}
			for _, e := range rd.CommittedEntries {
				if len(e.Data) > 0 {
					fmt.Printf("apply %d: %s\n", e.Index, e.Data)
				}
			}
			for _, rs := range rd.ReadStates {
				fmt.Printf("read %s at index %d\n", rs.RequestCtx, rs.Index)
			}
			n.Advance(rd)
		}
	}
	for n.Status().Role != core.Leader {
		n.Tick()
		handle()
	}
	_ = n.Propose([]byte("x=1"))
	_ = n.ReadIndex([]byte("read-1"))
	handle()
	// Output:
	// apply 2: x=1
	// read read-1 at index 2
}
