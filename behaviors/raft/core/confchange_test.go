package core

// Membership changes and learners, tested against §6 of the Raft paper and
// chapter 4 of the Raft thesis.

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

func cc(transition raftpb.ConfChangeTransition, changes ...*raftpb.ConfChangeSingle) *raftpb.ConfChange {
	return &raftpb.ConfChange{Transition: transition, Changes: changes}
}

func addV(id uint64) *raftpb.ConfChangeSingle {
	return &raftpb.ConfChangeSingle{Type: ccAddNode, NodeId: id}
}
func addL(id uint64) *raftpb.ConfChangeSingle {
	return &raftpb.ConfChangeSingle{Type: ccAddLearner, NodeId: id}
}
func rm(id uint64) *raftpb.ConfChangeSingle {
	return &raftpb.ConfChangeSingle{Type: ccRemoveNode, NodeId: id}
}

func TestMembershipApply(t *testing.T) {
	base := membership{voters: []uint64{1, 2, 3}, learners: []uint64{4}}
	joint := membership{voters: []uint64{1, 2, 5}, outgoing: []uint64{1, 2, 3}, learnersNext: []uint64{3}, autoLeave: true}
	tests := []struct {
		from membership
		cc   *raftpb.ConfChange
		want string // String() of the result, or "error: <substring>"
	}{
		{base, cc(ccAuto, addV(5)), "voters=[1 2 3 5] learners=[4]"},
		{base, cc(ccAuto, addV(4)), "voters=[1 2 3 4]"}, // promote
		{base, cc(ccAuto, rm(2)), "voters=[1 3] learners=[4]"},
		{base, cc(ccAuto, rm(4)), "voters=[1 2 3]"},
		{base, cc(ccAuto, addL(5)), "voters=[1 2 3] learners=[4 5]"},
		{base, cc(ccAuto, addL(3)), "voters=[1 2] learners=[3 4]"}, // demote
		{base, cc(ccAuto, addV(0)), "error: node 0"},
		{membership{voters: []uint64{1}}, cc(ccAuto, rm(1)), "error: remove every voter"},
		// Several changes, or a joint transition: joint consensus.
		{base, cc(ccAuto, addV(5), addL(3)), "voters=[1 2 5]&&[1 2 3] learners=[4] learners_next=[3] autoleave"},
		{base, cc(ccJointImplicit, addV(5)), "voters=[1 2 3 5]&&[1 2 3] learners=[4] autoleave"},
		{base, cc(ccJointExplicit, addV(5), rm(1)), "voters=[2 3 5]&&[1 2 3] learners=[4]"},
		{joint, cc(ccAuto, addV(6)), "error: the configuration is joint"},
		{joint, cc(ccAuto), "voters=[1 2 5] learners=[3]"},
		{base, cc(ccAuto), "error: not joint"},
		{membership{}, cc(ccAuto, addV(1)), "error: no configuration"},
	}
	for i, tt := range tests {
		got, err := tt.from.apply(tt.cc)
		if strings.HasPrefix(tt.want, "error: ") {
			if !errors.Is(err, ErrInvalidConfChange) || !strings.Contains(err.Error(), strings.TrimPrefix(tt.want, "error: ")) {
				t.Errorf("#%d: %v -> %v: error %v, want %s", i, tt.from, tt.cc, err, tt.want)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("#%d: %v -> %v: %v, %v; want %s", i, tt.from, tt.cc, got, err, tt.want)
			continue
		}
		// The ConfState round-trips.
		back, err := membershipFrom(got.confState())
		if err != nil || back.String() != got.String() {
			t.Errorf("#%d: conf state round trip: %v, %v", i, back, err)
		}
	}
}

// §6: "Agreement (for elections and entry commitment) requires separate
// majorities from both the old and new configurations."
func TestJointQuorum(t *testing.T) {
	c := membership{voters: []uint64{1, 4, 5}, outgoing: []uint64{1, 2, 3}}
	match := map[uint64]uint64{1: 9, 2: 9, 3: 9, 4: 2, 5: 1}
	if got := c.committed(func(id uint64) uint64 { return match[id] }); got != 2 {
		t.Fatalf("committed %d, want 2: the old majority holds 9, the new one only 2", got)
	}
	match = map[uint64]uint64{1: 9, 2: 1, 3: 1, 4: 9, 5: 9}
	if got := c.committed(func(id uint64) uint64 { return match[id] }); got != 1 {
		t.Fatalf("committed %d, want 1: the new majority holds 9, the old one only 1", got)
	}
	votes := map[uint64]bool{1: true, 2: true, 3: true}
	if r := c.voteResult(votes); r != votePending {
		t.Fatalf("old majority alone: %v, want pending", r)
	}
	votes[4] = true
	if r := c.voteResult(votes); r != voteWon {
		t.Fatalf("both majorities: %v, want won", r)
	}
	if r := c.voteResult(map[uint64]bool{1: true, 2: true, 3: true, 4: false, 5: false}); r != voteLost {
		t.Fatalf("new majority refused: %v, want lost", r)
	}
	if !c.hasQuorum(func(id uint64) bool { return id != 5 && id != 3 }) || c.hasQuorum(func(id uint64) bool { return id <= 3 }) {
		t.Fatal("hasQuorum does not require both majorities")
	}
}

// §6: new servers "join the cluster as non-voting members (the leader
// replicates log entries to them, but they are not considered for
// majorities)". A learner receives the log, does not count towards
// commitment, and never campaigns.
func TestLearnerReceivesLogButNeverVotes(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	nw.addNode(4)
	if err := nw.nodes[1].rn.ProposeConfChange(cc(ccAuto, addL(4))); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if err := nw.propose(1, "x"); err != nil {
		t.Fatal(err)
	}
	l := nw.nodes[4]
	if s := l.status(); s.LastIndex != nw.nodes[1].status().LastIndex || !slices.Equal(s.Config.Learners, []uint64{4}) {
		t.Fatalf("learner %+v", s)
	}
	if pr := nw.nodes[1].status().Progress[4]; !pr.IsLearner || pr.Match != l.status().LastIndex {
		t.Fatalf("leader's progress for the learner: %+v", pr)
	}
	// Commitment needs a majority of the voters 1, 2, 3: the learner's
	// acknowledgement does not help.
	nw.drop = func(m *raftpb.Message) bool { return m.To == 2 || m.To == 3 || m.From == 2 || m.From == 3 }
	commit := nw.nodes[1].status().Commit
	_ = nw.propose(1, "y")
	if got := nw.nodes[1].status().Commit; got != commit {
		t.Fatalf("committed %d with the learner's acknowledgement only", got)
	}
	// A learner never campaigns, however long it hears nothing.
	nw.drop = func(m *raftpb.Message) bool { return true }
	for range 50 {
		l.rn.Tick()
	}
	if msgs := l.handle(t); len(msgs) != 0 || l.status().Role != Follower {
		t.Fatalf("learner campaigned: %v %s", msgs, l.status().Role)
	}
}

// Thesis §4.1: changes add or remove one server at a time, and the leader
// accepts the next change only once the previous one is applied.
func TestOneConfChangeAtATime(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	ld := nw.nodes[1]
	if err := ld.rn.ProposeConfChange(cc(ccAuto, addL(4))); err != nil {
		t.Fatal(err)
	}
	if err := ld.rn.ProposeConfChange(cc(ccAuto, addL(5))); !errors.Is(err, ErrConfChangePending) {
		t.Fatalf("second change: %v, want ErrConfChangePending", err)
	}
	nw.settle()
	if err := ld.rn.ProposeConfChange(cc(ccAuto, addL(5))); err != nil {
		t.Fatalf("after the first was applied: %v", err)
	}
	// A change that does not apply to the configuration is refused.
	nw.settle()
	if err := ld.rn.ProposeConfChange(cc(ccAuto)); !errors.Is(err, ErrInvalidConfChange) {
		t.Fatalf("leave without a joint configuration: %v", err)
	}
	// A new leader accepts no change before it has applied its whole log:
	// a change of an earlier term may be in it, unapplied. Node 2 receives
	// a change but not its commitment, and then wins an election.
	if err := ld.rn.ProposeConfChange(cc(ccAuto, rm(4))); err != nil {
		t.Fatal(err)
	}
	n2 := nw.nodes[2]
	for _, m := range ld.handle(t) {
		if m.To == 2 && m.Type == MsgApp {
			n2.step(t, m)
		}
	}
	n2.handle(t)
	n2.rn.Campaign()
	for _, m := range n2.handle(t) {
		nw.nodes[m.To].step(t, m)
		for _, resp := range nw.nodes[m.To].handle(t) {
			if resp.To == 2 {
				n2.step(t, resp)
			}
		}
	}
	if s := n2.status(); s.Role != Leader {
		t.Fatalf("node 2 is %s", s.Role)
	}
	if err := n2.rn.ProposeConfChange(cc(ccAuto, rm(5))); !errors.Is(err, ErrConfChangePending) {
		t.Fatalf("new leader before applying its log: %v, want ErrConfChangePending", err)
	}
	nw.settle()
	if s := n2.status(); !slices.Equal(s.Config.Learners, []uint64{5}) {
		t.Fatalf("config %v, want learner 4 removed", s.Config)
	}
	if err := n2.rn.ProposeConfChange(cc(ccAuto, rm(5))); err != nil {
		t.Fatalf("new leader, log applied: %v", err)
	}
}

// §6: "the cluster leader may not be part of the new configuration. In this
// case, the leader steps down (returns to follower state) once it has
// committed the C_new log entry." Here it first hands leadership to a voter
// of the new configuration, so that the voters, which may not know yet that
// C_new is committed, are not left unable to elect a leader.
func TestRemovedLeaderStepsDown(t *testing.T) {
	for _, opts := range [][]option{nil, {withPreVote, withCheckQuorum}} {
		nw := newCluster(t, 3, opts...)
		nw.campaign(1)
		if err := nw.nodes[1].rn.ProposeConfChange(cc(ccAuto, rm(1))); err != nil {
			t.Fatal(err)
		}
		nw.settle()
		if s := nw.nodes[1].status(); s.Role == Leader {
			t.Fatalf("removed leader still leads: %+v", s)
		}
		var lead uint64
		for _, id := range []uint64{2, 3} {
			if s := nw.nodes[id].status(); s.Role == Leader {
				lead = id
			}
		}
		if lead == 0 {
			t.Fatalf("no new leader among the remaining voters")
		}
		if err := nw.propose(lead, "after"); err != nil {
			t.Fatal(err)
		}
		other := 5 - lead
		if got := nw.nodes[other].applied; string(got[len(got)-1].Data) != "after" {
			t.Fatalf("the cluster of 2 and 3 does not commit")
		}
		// The removed node takes no part any more.
		if s := nw.nodes[1].status(); s.Config == nil || slices.Contains(s.Config.Voters, 1) {
			t.Fatalf("removed node's configuration %v", s.Config)
		}
	}
}

// A node added to a running cluster is given the bootstrap voters; it
// catches up from the log (or a snapshot, if the leader compacted), applies
// the change that added it and then votes.
func TestAddVoterJoinsAndVotes(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	_ = nw.propose(1, "before")
	nw.nodes[1].snapshotAndCompact(t, nw.nodes[1].status().Applied)
	n4 := nw.addNode(4)
	if err := nw.nodes[1].rn.ProposeConfChange(cc(ccAuto, addV(4))); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if len(n4.snaps) != 1 {
		t.Fatalf("joining node restored %d snapshots, want the leader's", len(n4.snaps))
	}
	if s := n4.status(); !slices.Equal(s.Config.Voters, []uint64{1, 2, 3, 4}) || s.Applied != nw.nodes[1].status().Applied {
		t.Fatalf("joining node %+v", s)
	}
	if got := strings.Join(n4.state(), ","); got != "before" {
		t.Fatalf("joining node's state %q", got)
	}
	// Four voters: a majority is three. Node 4 can now be elected.
	nw.campaign(4)
	if s := n4.status(); s.Role != Leader {
		t.Fatalf("node 4 is %s after campaigning", s.Role)
	}
}

// A node that restarts with committed membership changes not yet applied
// does not campaign until it has applied them: the configuration it would
// campaign in may be about to change.
func TestNoCampaignWithUnappliedConfChange(t *testing.T) {
	st := NewMemoryStorage()
	data, err := protoMarshal(cc(ccAuto, addV(4)))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Append([]*raftpb.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1, Type: raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE, Data: data}}); err != nil {
		t.Fatal(err)
	}
	st.SetHardState(&raftpb.HardState{Term: 1, Commit: 2})
	n := startNode(t, 1, ids(3), st)
	n.rn.Campaign()
	if s := n.status(); s.Role != Follower || s.Term != 1 {
		t.Fatalf("campaigned with an unapplied membership change: %+v", s)
	}
	n.handle(t) // applies it
	if s := n.status(); !slices.Equal(s.Config.Voters, []uint64{1, 2, 3, 4}) {
		t.Fatalf("config %v", s.Config)
	}
	n.rn.Campaign()
	msgs := ofType(n.handle(t), MsgVote)
	var to []uint64
	for _, m := range msgs {
		to = append(to, m.To)
	}
	if !slices.Equal(to, []uint64{2, 3, 4}) {
		t.Fatalf("vote requests to %v, want the new configuration's voters 2, 3, 4", to)
	}
}

// Joint consensus end to end: while joint, commitment needs both
// majorities; the automatic transition leaves the joint configuration once
// it is applied.
func TestJointConsensusAutoLeave(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	nw.addNode(4)
	nw.addNode(5)
	// Hold back everything for 4 and 5 so the joint configuration stays.
	nw.drop = func(m *raftpb.Message) bool { return m.To >= 4 || m.From >= 4 }
	if err := nw.nodes[1].rn.ProposeConfChange(cc(ccAuto, addV(4), addV(5), rm(2), rm(3))); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	s := nw.nodes[1].status()
	if !slices.Equal(s.Config.Voters, []uint64{1, 4, 5}) || !slices.Equal(s.Config.VotersOutgoing, []uint64{1, 2, 3}) || !s.Config.AutoLeave {
		t.Fatalf("config %v, want joint [1 4 5]&&[1 2 3] with auto-leave", s.Config)
	}
	// The leader proposed leaving at once, but with 4 and 5 cut off the
	// new majority is missing: nothing more commits.
	if s.LastIndex <= s.Commit {
		t.Fatalf("leader did not propose leaving the joint configuration: %+v", s)
	}
	commit := s.Commit
	_ = nw.propose(1, "x")
	if got := nw.nodes[1].status().Commit; got != commit {
		t.Fatalf("committed %d with the old majority only", got)
	}
	nw.heal()
	nw.tickAll(2)
	for _, id := range []uint64{1, 4, 5} {
		s := nw.nodes[id].status()
		if !slices.Equal(s.Config.Voters, []uint64{1, 4, 5}) || len(s.Config.VotersOutgoing) != 0 {
			t.Fatalf("node %d config %v, want [1 4 5]", id, s.Config)
		}
		if got := nw.nodes[id].state(); !slices.Contains(got, "x") {
			t.Fatalf("node %d state %v lacks x", id, got)
		}
	}
}

// ApplyConfChange refuses a change that does not apply and leaves the
// configuration as it was.
func TestApplyConfChangeRefusesInvalid(t *testing.T) {
	n := newNode(t, 1, ids(3), 0, nil)
	cs, err := n.rn.ApplyConfChange(cc(ccAuto))
	if !errors.Is(err, ErrInvalidConfChange) || !slices.Equal(cs.Voters, ids(3)) {
		t.Fatalf("%v, %v", cs, err)
	}
	if _, err := n.rn.ApplyConfChange(nil); !errors.Is(err, ErrInvalidConfChange) {
		t.Fatalf("nil: %v", err)
	}
	if err := n.rn.ProposeConfChange(cc(ccAuto, addV(0))); !errors.Is(err, ErrInvalidConfChange) {
		t.Fatalf("propose node 0: %v", err)
	}
}

func protoMarshal(m *raftpb.ConfChange) ([]byte, error) { return proto.Marshal(m) }

// The other half of §6's rule: while joint, a majority of the new voters
// alone does not commit either.
func TestJointNewMajorityAloneDoesNotCommit(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	nw.addNode(4)
	nw.addNode(5)
	if err := nw.nodes[1].rn.ProposeConfChange(cc(ccJointExplicit, addV(4), addV(5), rm(2), rm(3))); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if s := nw.nodes[1].status(); !slices.Equal(s.Config.VotersOutgoing, []uint64{1, 2, 3}) {
		t.Fatalf("config %v, want joint", s.Config)
	}
	nw.drop = func(m *raftpb.Message) bool { return m.To == 2 || m.To == 3 || m.From == 2 || m.From == 3 }
	commit := nw.nodes[1].status().Commit
	_ = nw.propose(1, "x")
	if s := nw.nodes[1].status(); s.Commit != commit || nw.nodes[4].status().LastIndex != s.LastIndex {
		t.Fatalf("leader commit %d last %d (was %d): committed with the new majority alone, or 4 lacks the entry", s.Commit, s.LastIndex, commit)
	}
	nw.heal()
	nw.tickAll(1)
	if s := nw.nodes[1].status(); s.Commit != s.LastIndex {
		t.Fatalf("commit %d of %d: not committed once both majorities hold it", s.Commit, s.LastIndex)
	}
}
