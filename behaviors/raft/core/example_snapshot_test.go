package core_test

import (
	"fmt"
	"strings"

	"github.com/distributed-go/distributed/behaviors/raft/core"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

// kvNode is a single-node cluster whose state machine is a list of applied
// commands, driven by the Ready loop: persist (snapshot first), apply
// (restoring a snapshot first, handing membership changes to the core),
// advance.
type kvNode struct {
	n       *core.RawNode
	st      *core.MemoryStorage
	state   []string
	applied uint64
	conf    *raftpb.ConfState
}

func (k *kvNode) handle() {
	for k.n.HasReady() {
		rd := k.n.Ready()
		if rd.Snapshot != nil {
			if err := k.st.ApplySnapshot(rd.Snapshot); err != nil {
				panic(err)
			}
		}
		if rd.HardState != nil {
			k.st.SetHardState(rd.HardState)
		}
		if err := k.st.Append(rd.Entries); err != nil {
			panic(err)
		}
		// (Send rd.Messages here.)
		if rd.Snapshot != nil {
			k.restore(rd.Snapshot)
		}
		for _, e := range rd.CommittedEntries {
			switch {
			case e.Type == raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE:
				cc := &raftpb.ConfChange{}
				if err := proto.Unmarshal(e.Data, cc); err != nil {
					panic(err)
				}
				cs, err := k.n.ApplyConfChange(cc)
				if err != nil {
					panic(err)
				}
				k.conf = cs
				fmt.Printf("applied membership change at %d: voters %v learners %v\n", e.Index, cs.Voters, cs.Learners)
			case len(e.Data) > 0:
				k.state = append(k.state, string(e.Data))
			}
			k.applied = e.Index
		}
		k.n.Advance(rd)
	}
}

func (k *kvNode) restore(s *raftpb.Snapshot) {
	k.state = nil
	if len(s.Data) > 0 {
		k.state = strings.Split(string(s.Data), ",")
	}
	k.applied, k.conf = s.Metadata.Index, s.Metadata.ConfState
}

func (k *kvNode) campaign() {
	for k.n.Status().Role != core.Leader {
		k.n.Tick()
		k.handle()
	}
}

// Log compaction: the application snapshots its state machine at the
// applied index, with the configuration in effect there, and compacts the
// log. A node restarted from that storage starts from the snapshot: the
// application restores its state from Storage.Snapshot and the core
// delivers only the entries after it.
func ExampleMemoryStorage_CreateSnapshot() {
	st := core.NewMemoryStorage()
	n, err := core.NewRawNode(&core.Config{ID: 1, Peers: []uint64{1}, Storage: st})
	if err != nil {
		panic(err)
	}
	k := &kvNode{n: n, st: st, conf: &raftpb.ConfState{Voters: []uint64{1}}}
	k.campaign()
	for _, cmd := range []string{"a", "b", "c"} {
		_ = n.Propose([]byte(cmd))
		k.handle()
	}
	snap, err := st.CreateSnapshot(k.applied, k.conf, []byte(strings.Join(k.state, ",")))
	if err != nil {
		panic(err)
	}
	if err := st.Compact(snap.Metadata.Index); err != nil {
		panic(err)
	}
	first, _ := st.FirstIndex()
	fmt.Printf("snapshot at %d holds %q; the log now starts at %d\n", snap.Metadata.Index, snap.Data, first)

	// Restart from the storage: Peers may be left out, the snapshot has
	// the configuration.
	n, err = core.NewRawNode(&core.Config{ID: 1, Storage: st})
	if err != nil {
		panic(err)
	}
	k = &kvNode{n: n, st: st}
	k.restore(snap)
	fmt.Printf("restarted: applied %d, state %v, voters %v\n", n.Status().Applied, k.state, n.Status().Config.Voters)
	k.campaign()
	_ = n.Propose([]byte("d"))
	k.handle()
	fmt.Printf("state %v\n", k.state)
	// Output:
	// snapshot at 4 holds "a,b,c"; the log now starts at 5
	// restarted: applied 4, state [a b c], voters [1]
	// state [a b c d]
}

// Membership changes are proposed like commands and take effect when the
// application applies them and hands them to ApplyConfChange. Here a
// single-node cluster adds node 2 as a learner (it would receive the log
// without voting), promotes it to voter, and then, with joint consensus,
// replaces it by node 3.
func ExampleRawNode_ProposeConfChange() {
	st := core.NewMemoryStorage()
	n, err := core.NewRawNode(&core.Config{ID: 1, Peers: []uint64{1}, Storage: st})
	if err != nil {
		panic(err)
	}
	k := &kvNode{n: n, st: st}
	k.campaign()
	single := func(t raftpb.ConfChangeType, id uint64) *raftpb.ConfChange {
		return &raftpb.ConfChange{Changes: []*raftpb.ConfChangeSingle{{Type: t, NodeId: id}}}
	}
	if err := n.ProposeConfChange(single(raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_LEARNER_NODE, 2)); err != nil {
		panic(err)
	}
	// Only one change may be pending at a time.
	err = n.ProposeConfChange(single(raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_NODE, 2))
	fmt.Println("second change before the first is applied:", err)
	k.handle()
	if err := n.ProposeConfChange(single(raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_NODE, 2)); err != nil {
		panic(err)
	}
	k.handle()
	// Node 2 does not exist in this example, so the two-voter cluster
	// cannot commit anything more. The joint change is appended, not
	// committed.
	err = n.ProposeConfChange(&raftpb.ConfChange{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_NODE, NodeId: 3},
		{Type: raftpb.ConfChangeType_CONF_CHANGE_TYPE_REMOVE_NODE, NodeId: 2},
	}})
	k.handle()
	fmt.Println("joint change proposed:", err, "- committed:", n.Status().Commit == n.Status().LastIndex)
	// Output:
	// second change before the first is applied: raft: proposal dropped: a membership change is already pending
	// applied membership change at 2: voters [1] learners [2]
	// applied membership change at 3: voters [1 2] learners []
	// joint change proposed: <nil> - committed: false
}
