package core

import (
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// FuzzStep feeds arbitrary messages to a leader and to a follower: they may
// be refused, but must never panic a node or break its invariants.
func FuzzStep(f *testing.F) {
	f.Add(uint8(5), uint64(2), uint64(2), uint64(1), uint64(1), uint64(3), false, uint64(0), uint64(0), uint8(2), uint64(2))
	f.Add(uint8(6), uint64(2), uint64(2), uint64(0), uint64(9), uint64(0), true, uint64(4), uint64(1), uint8(0), uint64(0))
	f.Add(uint8(1), uint64(3), uint64(7), uint64(5), uint64(9), uint64(0), false, uint64(0), uint64(0), uint8(0), uint64(0))
	f.Add(uint8(7), uint64(2), uint64(2), uint64(0), uint64(0), uint64(99), false, uint64(0), uint64(0), uint8(0), uint64(0))
	f.Add(uint8(13), uint64(2), uint64(2), uint64(1), uint64(5), uint64(0), true, uint64(0), uint64(0), uint8(0), uint64(0))
	f.Add(uint8(14), uint64(2), uint64(1), uint64(0), uint64(5), uint64(0), false, uint64(0), uint64(3), uint8(0), uint64(0))
	f.Fuzz(func(t *testing.T, typ uint8, from, term, logTerm, index, commit uint64, reject bool, hint, conflict uint64, nents uint8, entTerm uint64) {
		for _, leader := range []bool{true, false} {
			n := newNode(t, 1, ids(3), 1, []uint64{1, 1})
			if leader {
				n.elect(t, true)
			}
			m := &raftpb.Message{
				Type: raftpb.MessageType(typ % 16), From: from % 5, To: 1, Term: term % 8, LogTerm: logTerm % 8,
				Index: index % 16, Commit: commit % 16, Reject: reject, RejectHint: hint % 16, ConflictTerm: conflict % 8,
				Context: []byte("c"),
			}
			if m.Type == msgSnap || m.Type == msgSnapResp {
				// Snapshot chunks: metadata from index and logTerm, offset
				// from conflict, done from reject.
				m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: m.Index, Term: m.LogTerm,
					ConfState: &raftpb.ConfState{Voters: ids(int(1 + hint%4))}}}
				m.SnapOffset, m.SnapData, m.SnapDone = conflict%8, []byte("dd"), reject
			}
			for i := range uint64(nents % 8) {
				m.Entries = append(m.Entries, &raftpb.Entry{Index: m.Index + 1 + i, Term: entTerm % 8, Data: []byte("d")})
			}
			_ = n.rn.Step(m)
			n.handle(t)
			s := n.status()
			if s.Commit > s.LastIndex || s.Applied > s.Commit {
				t.Fatalf("broken invariant after %v: %+v", m, s)
			}
			if leader && s.Role == Leader && s.Commit < 3 {
				t.Fatalf("leader lost committed entries after %v: %+v", m, s)
			}
		}
	})
}
