package core

// Log compaction and InstallSnapshot, tested against §7 of the Raft paper
// and chapter 5 of the Raft thesis ("Consensus: Bridging Theory and
// Practice", Ongaro).

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// laggingCluster returns a 3-node cluster led by node 1 in which node 3 was
// cut off while entries "e1".."e<n>" were committed, and the leader then
// snapshotted and compacted its whole log; the network is healed.
func laggingCluster(t *testing.T, n int, opts ...option) *network {
	t.Helper()
	nw := newCluster(t, 3, opts...)
	nw.campaign(1)
	nw.isolate(3)
	for i := 1; i <= n; i++ {
		if err := nw.propose(1, fmt.Sprintf("e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ld := nw.nodes[1]
	ld.snapshotAndCompact(t, ld.status().Applied)
	nw.heal()
	return nw
}

// §7: "The leader uses a new RPC called InstallSnapshot to send snapshots to
// followers that are too far behind." Figure 13: the snapshot is sent in
// chunks, each with its byte offset, the last marked done.
func TestSnapshotSentInChunksToLaggingFollower(t *testing.T) {
	const chunk = 10
	nw := laggingCluster(t, 20, withSnapChunk(chunk))
	var snaps []*raftpb.Message
	nw.trace = func(m *raftpb.Message, dropped bool) {
		if m.Type == msgSnap {
			snaps = append(snaps, m)
		}
	}
	nw.tickAll(1)
	ld, f := nw.nodes[1], nw.nodes[3]
	want, _ := ld.st.Snapshot()
	if len(snaps) < 2 {
		t.Fatalf("%d snapshot messages, want the %d-byte snapshot in chunks of %d", len(snaps), len(want.Data), chunk)
	}
	var data []byte
	for i, m := range snaps {
		if m.SnapOffset != uint64(len(data)) {
			t.Fatalf("chunk %d at offset %d, want %d", i, m.SnapOffset, len(data))
		}
		if len(m.SnapData) > chunk {
			t.Fatalf("chunk %d carries %d bytes, more than %d", i, len(m.SnapData), chunk)
		}
		if m.SnapDone != (i == len(snaps)-1) {
			t.Fatalf("chunk %d done=%v", i, m.SnapDone)
		}
		md := m.Snapshot.Metadata
		if md.Index != want.Metadata.Index || md.Term != want.Metadata.Term || len(m.Snapshot.Data) != 0 {
			t.Fatalf("chunk %d carries metadata %v (data %d bytes), want %v and no data", i, md, len(m.Snapshot.Data), want.Metadata)
		}
		data = append(data, m.SnapData...)
	}
	if !bytes.Equal(data, want.Data) {
		t.Fatalf("chunks assemble to %q, want %q", data, want.Data)
	}
	if len(f.snaps) != 1 || !bytes.Equal(f.snaps[0].Data, want.Data) {
		t.Fatalf("follower restored %d snapshots", len(f.snaps))
	}
	got, _ := f.st.Snapshot()
	if got.Metadata.Index != want.Metadata.Index || !slices.Equal(got.Metadata.ConfState.Voters, []uint64{1, 2, 3}) {
		t.Fatalf("follower persisted snapshot %v", got.Metadata)
	}
	// Replication resumes after the snapshot, and the follower's state
	// machine equals the leader's.
	if err := nw.propose(1, "after"); err != nil {
		t.Fatal(err)
	}
	if a, b := strings.Join(f.state(), ","), strings.Join(ld.state(), ","); a != b {
		t.Fatalf("follower state %q, leader state %q", a, b)
	}
	if fs, ls := f.status(), ld.status(); fs.Applied != ls.Applied || fs.LastIndex != ls.LastIndex {
		t.Fatalf("follower %+v, leader %+v", fs, ls)
	}
}

// §7, Figure 13 (receiver implementation): "7. Discard the entire log. 8.
// Reset state machine using snapshot contents (and load snapshot's cluster
// configuration)." §7: the follower "discards its entire log; it is all
// superseded by the snapshot and may possibly have uncommitted entries that
// conflict with the snapshot."
func TestSnapshotReplacesConflictingLog(t *testing.T) {
	f := newNode(t, 2, ids(3), 2, []uint64{1, 1, 2, 2, 2}) // entries 3..5 of term 2 never committed
	snap := &raftpb.Snapshot{Data: []byte("state@6"), Metadata: &raftpb.SnapshotMetadata{
		Index: 6, Term: 3, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}},
	}}
	f.step(t, &raftpb.Message{Type: msgSnap, From: 1, To: 2, Term: 3, Snapshot: &raftpb.Snapshot{Metadata: snap.Metadata},
		SnapData: snap.Data, SnapDone: true})
	rd := f.rn.Ready()
	if rd.Snapshot == nil || rd.Snapshot.Metadata.Index != 6 || !bytes.Equal(rd.Snapshot.Data, snap.Data) {
		t.Fatalf("Ready.Snapshot = %v", rd.Snapshot)
	}
	if !rd.MustSync || len(rd.CommittedEntries) != 0 || len(rd.Entries) != 0 {
		t.Fatalf("with a snapshot: must sync %v, %d committed entries, %d entries", rd.MustSync, len(rd.CommittedEntries), len(rd.Entries))
	}
	if rd.HardState == nil || rd.HardState.Commit != 6 {
		t.Fatalf("hard state %v, want commit 6", rd.HardState)
	}
	if acks := ofType(rd.Messages, MsgAppResp); len(acks) != 1 || acks[0].Index != 6 || acks[0].Reject {
		t.Fatalf("answer %v, want an append acknowledgement at 6", rd.Messages)
	}
	if s := f.status(); s.LastIndex != 6 || !slices.Equal(s.Config.Learners, []uint64{4}) {
		t.Fatalf("after restore: last index %d, config %v", s.LastIndex, s.Config)
	}
	if err := f.st.ApplySnapshot(rd.Snapshot); err != nil {
		t.Fatal(err)
	}
	f.st.SetHardState(rd.HardState)
	f.rn.Advance(rd)
	if s := f.status(); s.Applied != 6 || s.Commit != 6 {
		t.Fatalf("after Advance: %+v", s)
	}
	if first, _ := f.st.FirstIndex(); first != 7 {
		t.Fatalf("storage first index %d, want 7", first)
	}
	// The log continues after the snapshot.
	f.step(t, &raftpb.Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 6, LogTerm: 3, Commit: 7,
		Entries: []*raftpb.Entry{{Index: 7, Term: 3, Data: []byte("x")}}})
	f.handle(t)
	if len(f.applied) != 1 || f.applied[0].Index != 7 {
		t.Fatalf("applied %v after the snapshot", f.applied)
	}
}

// §7: "If instead the follower receives a snapshot that describes a prefix of
// its log (due to retransmission or by mistake), then log entries covered by
// the snapshot are deleted but entries following the snapshot are still
// valid and must be retained." The core keeps the log as it is (the covered
// entries are applied as usual) and only advances the commit index.
func TestSnapshotOfLogPrefixKeepsLog(t *testing.T) {
	f := newNode(t, 2, ids(3), 1, []uint64{1, 1, 1, 1, 1})
	md := &raftpb.SnapshotMetadata{Index: 3, Term: 1, ConfState: &raftpb.ConfState{Voters: ids(3)}}
	f.step(t, &raftpb.Message{Type: msgSnap, From: 1, To: 2, Term: 1, Snapshot: &raftpb.Snapshot{Metadata: md}, SnapData: []byte("s"), SnapDone: true})
	rd := f.rn.Ready()
	if rd.Snapshot != nil {
		t.Fatalf("restored a snapshot of a prefix of the log")
	}
	if s := f.status(); s.LastIndex != 5 || s.Commit != 3 {
		t.Fatalf("last index %d commit %d, want 5 and 3", s.LastIndex, s.Commit)
	}
	if len(rd.CommittedEntries) != 3 {
		t.Fatalf("%d committed entries, want the 3 the snapshot covers", len(rd.CommittedEntries))
	}
}

// Figure 13: "Create new snapshot file if first chunk (offset is 0)" and
// "Write data into snapshot file at given offset": chunks are assembled in
// order; a chunk past the end of what the follower holds is refused with the
// offset it needs, and a duplicate is acknowledged without effect.
func TestSnapshotChunkAssembly(t *testing.T) {
	f := newNode(t, 2, ids(3), 1, nil)
	md := &raftpb.SnapshotMetadata{Index: 10, Term: 1, ConfState: &raftpb.ConfState{Voters: ids(3)}}
	chunk := func(off uint64, data string, done bool) *raftpb.Message {
		return &raftpb.Message{Type: msgSnap, From: 1, To: 2, Term: 1, Snapshot: &raftpb.Snapshot{Metadata: md},
			SnapOffset: off, SnapData: []byte(data), SnapDone: done}
	}
	answer := func() *raftpb.Message {
		t.Helper()
		msgs := f.handle(t)
		if len(msgs) != 1 {
			t.Fatalf("answers %v", msgs)
		}
		return msgs[0]
	}
	// A chunk that does not start the snapshot is refused: nothing is held.
	f.step(t, chunk(4, "efgh", false))
	if m := answer(); m.Type != msgSnapResp || !m.Reject || m.SnapOffset != 0 || m.Index != 10 {
		t.Fatalf("answer %v, want a refusal asking for offset 0", m)
	}
	f.step(t, chunk(0, "abcd", false))
	if m := answer(); m.Type != msgSnapResp || m.Reject || m.SnapOffset != 4 {
		t.Fatalf("answer %v, want an acknowledgement of 4 bytes", m)
	}
	// A gap: refused, asking for offset 4.
	f.step(t, chunk(8, "ijk", true))
	if m := answer(); !m.Reject || m.SnapOffset != 4 {
		t.Fatalf("answer %v, want a refusal asking for offset 4", m)
	}
	// A duplicate: acknowledged with what is held.
	f.step(t, chunk(0, "abcd", false))
	if m := answer(); m.Reject || m.SnapOffset != 4 {
		t.Fatalf("answer %v to a duplicate", m)
	}
	f.step(t, chunk(4, "efgh", false))
	if m := answer(); m.SnapOffset != 8 {
		t.Fatalf("answer %v", m)
	}
	f.step(t, chunk(8, "ijk", true))
	if m := answer(); m.Type != MsgAppResp || m.Index != 10 {
		t.Fatalf("answer %v, want an append acknowledgement at 10", m)
	}
	if len(f.snaps) != 1 || string(f.snaps[0].Data) != "abcdefghijk" {
		t.Fatalf("restored %v", f.snaps)
	}
}

// A snapshot being assembled belongs to the leader of the current term: a
// new term drops it, and the new leader's chunks must start again at
// offset 0.
func TestSnapshotAbortedByLeaderChange(t *testing.T) {
	f := newNode(t, 3, ids(3), 1, nil)
	md := &raftpb.SnapshotMetadata{Index: 10, Term: 1, ConfState: &raftpb.ConfState{Voters: ids(3)}}
	f.step(t, &raftpb.Message{Type: msgSnap, From: 1, To: 3, Term: 1, Snapshot: &raftpb.Snapshot{Metadata: md}, SnapData: []byte("abcd")})
	f.handle(t)
	f.step(t, &raftpb.Message{Type: MsgHeartbeat, From: 2, To: 3, Term: 2})
	f.handle(t)
	f.step(t, &raftpb.Message{Type: msgSnap, From: 2, To: 3, Term: 2, Snapshot: &raftpb.Snapshot{Metadata: md}, SnapOffset: 4, SnapData: []byte("efgh"), SnapDone: true})
	msgs := f.handle(t)
	if len(msgs) != 1 || msgs[0].Type != msgSnapResp || !msgs[0].Reject || msgs[0].SnapOffset != 0 {
		t.Fatalf("answers %v, want a refusal asking the new leader for offset 0", msgs)
	}
	if len(f.snaps) != 0 {
		t.Fatalf("restored a snapshot assembled across leaders")
	}
}

// On the leader: while a follower is being sent a snapshot it gets no
// appends (its progress is paused), and a lost chunk in the middle makes
// the follower refuse the next one, so the leader goes back to the offset
// the follower asks for.
func TestSnapshotLostChunkResent(t *testing.T) {
	nw := laggingCluster(t, 30, withSnapChunk(8))
	dropped := false
	nw.drop = func(m *raftpb.Message) bool {
		if m.Type == msgSnap && m.SnapOffset == 8 && !dropped {
			dropped = true
			return true
		}
		return false
	}
	var rejects int
	nw.trace = func(m *raftpb.Message, _ bool) {
		if m.Type == msgSnapResp && m.Reject {
			rejects++
		}
		if m.Type == MsgApp && m.To == 3 && len(m.Entries) > 0 && nw.nodes[1].status().Progress[3].State == ProgressSnapshot {
			t.Errorf("append %v sent to a follower in snapshot state", m)
		}
	}
	nw.tickAll(1)
	if !dropped || rejects == 0 {
		t.Fatalf("dropped %v, refusals %d: the scenario did not happen", dropped, rejects)
	}
	ld, f := nw.nodes[1], nw.nodes[3]
	if len(f.snaps) != 1 {
		t.Fatalf("follower restored %d snapshots", len(f.snaps))
	}
	want, _ := ld.st.Snapshot()
	if !bytes.Equal(f.snaps[0].Data, want.Data) {
		t.Fatalf("restored %q, want %q", f.snaps[0].Data, want.Data)
	}
	if pr := ld.status().Progress[3]; pr.State != ProgressReplicate || pr.Match != ld.status().LastIndex {
		t.Fatalf("leader's progress for 3: %+v", pr)
	}
}

// ReportSnapshot(SnapshotFailure) abandons the transfer; the leader starts
// again once the follower answers.
func TestReportSnapshotFailure(t *testing.T) {
	nw := laggingCluster(t, 10, withSnapChunk(4))
	nw.drop = func(m *raftpb.Message) bool { return m.Type == msgSnap }
	nw.tickAll(1)
	ld := nw.nodes[1]
	if pr := ld.status().Progress[3]; pr.State != ProgressSnapshot || pr.PendingSnapshot == 0 {
		t.Fatalf("progress %+v, want a snapshot pending", pr)
	}
	ld.rn.ReportSnapshot(3, SnapshotFailure)
	if pr := ld.status().Progress[3]; pr.State != ProgressProbe {
		t.Fatalf("after a failure: %+v, want probe", pr)
	}
	nw.heal()
	nw.tickAll(2)
	if got := len(nw.nodes[3].snaps); got != 1 {
		t.Fatalf("follower restored %d snapshots after the retry", got)
	}
}

// Thesis §5.1: the snapshot holds the configuration as of its last index, so
// a node restarted from a snapshot and a compacted log takes its
// configuration from the snapshot, not from Config.Peers, and applies only
// what follows the snapshot.
func TestRestartFromSnapshot(t *testing.T) {
	st := NewMemoryStorage()
	if err := st.ApplySnapshot(&raftpb.Snapshot{Data: []byte("s"), Metadata: &raftpb.SnapshotMetadata{
		Index: 5, Term: 2, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 4}, Learners: []uint64{5}},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Append([]*raftpb.Entry{{Index: 6, Term: 2, Data: []byte("a")}, {Index: 7, Term: 3, Data: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	st.SetHardState(&raftpb.HardState{Term: 3, Commit: 6})
	n := startNode(t, 1, []uint64{1, 2, 3}, st)
	s := n.status()
	if !slices.Equal(s.Config.Voters, []uint64{1, 2, 4}) || !slices.Equal(s.Config.Learners, []uint64{5}) {
		t.Fatalf("config %v, want the snapshot's", s.Config)
	}
	if s.Applied != 5 || s.Commit != 6 || s.LastIndex != 7 {
		t.Fatalf("status %+v", s)
	}
	n.handle(t)
	if len(n.applied) != 1 || n.applied[0].Index != 6 {
		t.Fatalf("applied %v, want entry 6 only", n.applied)
	}
	// Config.Applied below the snapshot changes nothing; above it, the
	// entries up to it are not applied again.
	for _, tt := range []struct{ applied, want uint64 }{{3, 5}, {6, 6}, {9, 6}} {
		n, err := NewRawNode(&Config{ID: 1, Storage: st, Applied: tt.applied})
		if err != nil {
			t.Fatalf("Applied %d: %v", tt.applied, err)
		}
		if got := n.Status().Applied; got != tt.want {
			t.Fatalf("Applied %d: applied %d, want %d", tt.applied, got, tt.want)
		}
	}
	// Config.Peers may be empty when storage holds a snapshot, but not
	// otherwise.
	if _, err := NewRawNode(&Config{ID: 1, Storage: st}); err != nil {
		t.Fatalf("restart without Peers: %v", err)
	}
	if _, err := NewRawNode(&Config{ID: 1, Storage: NewMemoryStorage()}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("new node without Peers or snapshot: %v", err)
	}
}

// A snapshot whose index the log holds but whose term differs would lose
// entries if treated as a prefix: it replaces the log.
func TestSnapshotTermMismatchReplacesLog(t *testing.T) {
	f := newNode(t, 2, ids(3), 2, []uint64{1, 1, 2})
	md := &raftpb.SnapshotMetadata{Index: 3, Term: 3, ConfState: &raftpb.ConfState{Voters: ids(3)}}
	f.step(t, &raftpb.Message{Type: msgSnap, From: 1, To: 2, Term: 3, Snapshot: &raftpb.Snapshot{Metadata: md}, SnapDone: true})
	rd := f.rn.Ready()
	if rd.Snapshot == nil {
		t.Fatal("no snapshot restored")
	}
	if tm := f.rn.r.log.mustTerm(3); tm != 3 {
		t.Fatalf("term(3) = %d after restore, want 3", tm)
	}
}

func TestMemoryStorageSnapshots(t *testing.T) {
	s := NewMemoryStorage()
	if err := s.Append(ents(1, 1, 2, 2, 3)); err != nil {
		t.Fatal(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	if _, err := s.CreateSnapshot(6, cs, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("snapshot past the end: %v", err)
	}
	snap, err := s.CreateSnapshot(4, cs, []byte("d"))
	if err != nil || snap.Metadata.Index != 4 || snap.Metadata.Term != 2 {
		t.Fatalf("snapshot %v, %v", snap, err)
	}
	cs.Voters[0] = 9 // the storage keeps its own copy
	if got, _ := s.Snapshot(); got.Metadata.ConfState.Voters[0] != 1 {
		t.Fatalf("snapshot shares the caller's conf state")
	}
	if _, err := s.CreateSnapshot(3, cs, nil); !errors.Is(err, ErrSnapOutOfDate) {
		t.Fatalf("older snapshot: %v", err)
	}
	if err := s.Compact(6); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("compact past the end: %v", err)
	}
	if err := s.Compact(3); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(3); !errors.Is(err, ErrCompacted) {
		t.Fatalf("compact twice: %v", err)
	}
	if fi, _ := s.FirstIndex(); fi != 4 {
		t.Fatalf("first index %d, want 4", fi)
	}
	if tm, err := s.Term(3); err != nil || tm != 2 {
		t.Fatalf("term(3) = %d, %v: the last compacted entry's term must stay known", tm, err)
	}
	if _, err := s.Term(2); !errors.Is(err, ErrCompacted) {
		t.Fatalf("term(2): %v", err)
	}
	if _, err := s.Entries(3, 5, noLimit); !errors.Is(err, ErrCompacted) {
		t.Fatalf("entries(3, 5): %v", err)
	}
	if err := s.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: 4, Term: 2}}); !errors.Is(err, ErrSnapOutOfDate) {
		t.Fatalf("apply an older snapshot: %v", err)
	}
	if err := s.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: 9, Term: 4}}); err != nil {
		t.Fatal(err)
	}
	fi, _ := s.FirstIndex()
	li, _ := s.LastIndex()
	if tm, _ := s.Term(9); fi != 10 || li != 9 || tm != 4 {
		t.Fatalf("after ApplySnapshot: first %d last %d term(9) %d", fi, li, tm)
	}
}

// Malformed snapshot messages are refused by Step and change nothing.
func TestStepRejectsMalformedSnapshot(t *testing.T) {
	n := newNode(t, 1, ids(3), 1, nil)
	good := &raftpb.ConfState{Voters: ids(3)}
	bad := []*raftpb.Message{
		{Type: msgSnap, From: 2, To: 1, Term: 1},
		{Type: msgSnap, From: 2, To: 1, Term: 1, Snapshot: &raftpb.Snapshot{}},
		{Type: msgSnap, From: 2, To: 1, Term: 1, Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: 0, Term: 1, ConfState: good}}},
		{Type: msgSnap, From: 2, To: 1, Term: 1, Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: 5, Term: 2, ConfState: good}}},
		{Type: msgSnap, From: 2, To: 1, Term: 1, Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: 5, Term: 1}}},
		{Type: msgSnap, From: 2, To: 1, Term: 1, Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: 5, Term: 1,
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 1}}}}},
		{Type: msgSnapResp, From: 2, To: 1},
	}
	for i, m := range bad {
		if err := n.rn.Step(m); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("#%d: Step(%v) = %v, want ErrInvalidMessage", i, m, err)
		}
	}
	if s := n.status(); s.Term != 1 || s.LastIndex != 0 || n.rn.HasReady() {
		t.Fatalf("malformed messages changed state: %+v", s)
	}
}
