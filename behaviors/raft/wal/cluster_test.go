package wal

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/core"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

// walNode is a core RawNode persisting to a WAL through the Ready loop, with
// a state machine that is the list of commands applied.
type walNode struct {
	id    uint64
	dir   string
	w     *WAL
	n     *core.RawNode
	state []string
	conf  *raftpb.ConfState
}

func startWALNode(t *testing.T, id uint64, dir string) *walNode {
	t.Helper()
	w, err := Open(dir, Options{SegmentSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	n, err := core.NewRawNode(&core.Config{ID: id, Peers: []uint64{1, 2, 3}, Storage: w, MaxSnapshotChunkSize: 16, RandSeed: id})
	if err != nil {
		t.Fatal(err)
	}
	wn := &walNode{id: id, dir: dir, w: w, n: n}
	if snap, _ := w.Snapshot(); snap.Metadata.Index > 0 {
		wn.restore(snap)
	}
	return wn
}

func (wn *walNode) restore(s *raftpb.Snapshot) {
	wn.state = nil
	if len(s.Data) > 0 {
		wn.state = strings.Split(string(s.Data), ",")
	}
	wn.conf = s.Metadata.ConfState
}

// handle runs the Ready loop: persist (snapshot first) and sync, then hand
// out the messages, then apply.
func (wn *walNode) handle(t *testing.T) []*raftpb.Message {
	t.Helper()
	var out []*raftpb.Message
	for wn.n.HasReady() {
		rd := wn.n.Ready()
		if rd.Snapshot != nil {
			if err := wn.w.ApplySnapshot(rd.Snapshot); err != nil {
				t.Fatalf("node %d: ApplySnapshot: %v", wn.id, err)
			}
		}
		if err := wn.w.Save(rd.HardState, rd.Entries); err != nil {
			t.Fatalf("node %d: Save: %v", wn.id, err)
		}
		if rd.MustSync {
			if err := wn.w.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, rd.Messages...)
		if rd.Snapshot != nil {
			wn.restore(rd.Snapshot)
		}
		for _, e := range rd.CommittedEntries {
			switch {
			case e.Type == raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE:
				cc := &raftpb.ConfChange{}
				if err := proto.Unmarshal(e.Data, cc); err != nil {
					t.Fatal(err)
				}
				cs, err := wn.n.ApplyConfChange(cc)
				if err != nil {
					t.Fatal(err)
				}
				wn.conf = cs
			case len(e.Data) > 0:
				wn.state = append(wn.state, string(e.Data))
			}
		}
		wn.n.Advance(rd)
	}
	return out
}

// TestClusterOverWALs runs three core nodes persisting to WALs: the leader
// compacts, a follower that was cut off catches up through a chunked
// snapshot that it installs in its WAL, and after a restart from its
// directory it comes back with the same state and configuration.
func TestClusterOverWALs(t *testing.T) {
	nodes := map[uint64]*walNode{}
	for id := uint64(1); id <= 3; id++ {
		nodes[id] = startWALNode(t, id, t.TempDir())
	}
	defer func() {
		for _, wn := range nodes {
			wn.w.Close()
		}
	}()
	cut := uint64(0)
	settle := func() {
		for {
			var q []*raftpb.Message
			for id := uint64(1); id <= 3; id++ {
				q = append(q, nodes[id].handle(t)...)
			}
			if len(q) == 0 {
				return
			}
			for _, m := range q {
				if m.From != cut && m.To != cut {
					_ = nodes[m.To].n.Step(m)
				}
			}
		}
	}
	nodes[1].n.Campaign()
	settle()
	// Add node 3 as a learner and back to a voter, so that the snapshot
	// carries a configuration that differs from the bootstrap one.
	for _, typ := range []raftpb.ConfChangeType{raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_LEARNER_NODE, raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_NODE} {
		if err := nodes[1].n.ProposeConfChange(&raftpb.ConfChange{Changes: []*raftpb.ConfChangeSingle{{Type: typ, NodeId: 2}}}); err != nil {
			t.Fatal(err)
		}
		settle()
	}
	cut = 3
	for i := range 40 {
		if err := nodes[1].n.Propose([]byte(fmt.Sprintf("cmd%d", i))); err != nil {
			t.Fatal(err)
		}
		settle()
	}
	ld := nodes[1]
	applied := ld.n.Status().Applied
	if _, err := ld.w.CreateSnapshot(applied, ld.conf, []byte(strings.Join(ld.state, ","))); err != nil {
		t.Fatal(err)
	}
	if err := ld.w.Compact(applied); err != nil {
		t.Fatal(err)
	}
	cut = 0
	for range 3 {
		for _, wn := range nodes {
			wn.n.Tick()
		}
		settle()
	}
	f := nodes[3]
	if snap, _ := f.w.Snapshot(); snap.Metadata.Index != applied {
		t.Fatalf("follower's WAL holds snapshot %d, want %d", snap.Metadata.Index, applied)
	}
	if !slices.Equal(f.state, ld.state) {
		t.Fatalf("follower state %v, leader %v", f.state, ld.state)
	}
	// Restart the follower from its directory.
	if err := f.w.Close(); err != nil {
		t.Fatal(err)
	}
	nodes[3] = startWALNode(t, 3, f.dir)
	f = nodes[3]
	f.handle(t)
	if !slices.Equal(f.state, ld.state) || !proto.Equal(f.conf, ld.conf) {
		t.Fatalf("restarted follower: state %v conf %v, leader %v %v", f.state, f.conf, ld.state, ld.conf)
	}
	if err := ld.n.Propose([]byte("after")); err != nil {
		t.Fatal(err)
	}
	settle()
	if got := f.state[len(f.state)-1]; got != "after" {
		t.Fatalf("restarted follower's last command %q", got)
	}
}
