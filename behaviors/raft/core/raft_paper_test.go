package core

// Tests that quote the Raft paper ("In Search of an Understandable Consensus
// Algorithm (Extended Version)", Ongaro and Ousterhout) and check exactly
// the quoted claim. Section numbers and figures refer to that paper.

import (
	"fmt"
	"slices"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// §5.1: "When servers start up, they begin as followers."
func TestStartAsFollower(t *testing.T) {
	n := newNode(t, 1, ids(3), 0, nil)
	if s := n.status(); s.Role != Follower || s.Term != 0 {
		t.Fatalf("role %s term %d, want follower at term 0", s.Role, s.Term)
	}
	n = newNode(t, 1, ids(3), 5, []uint64{1, 5})
	if s := n.status(); s.Role != Follower || s.Term != 5 {
		t.Fatalf("restarted: role %s term %d, want follower at term 5", s.Role, s.Term)
	}
}

// §5.1: "If one server's current term is smaller than the other's, then it
// updates its current term to the larger value. If a candidate or leader
// discovers that its term is out of date, it immediately reverts to follower
// state."
func TestUpdateTermFromMessage(t *testing.T) {
	for _, role := range []Role{Follower, Candidate, Leader} {
		t.Run(role.String(), func(t *testing.T) {
			n := newNode(t, 1, ids(3), 0, nil)
			switch role {
			case Candidate:
				n.rn.Campaign()
			case Leader:
				n.elect(t, false)
			}
			n.step(t, &raftpb.Message{Type: MsgApp, From: 2, To: 1, Term: 2})
			if s := n.status(); s.Term != 2 || s.Role != Follower || s.Lead != 2 {
				t.Fatalf("term %d role %s lead %d, want term 2, follower of 2", s.Term, s.Role, s.Lead)
			}
		})
	}
}

// §5.1: "If a server receives a request with a stale term number, it
// rejects the request."
func TestRejectStaleTermMessage(t *testing.T) {
	n := newNode(t, 1, ids(3), 2, []uint64{1, 2})
	n.step(t, &raftpb.Message{Type: MsgApp, From: 2, To: 1, Term: 1, Index: 1, LogTerm: 1,
		Entries: []*raftpb.Entry{{Index: 2, Term: 1}, {Index: 3, Term: 1}}, Commit: 3})
	if s := n.status(); s.LastIndex != 2 || s.Commit != 0 || s.Lead != None {
		t.Fatalf("stale append changed state: %+v", s)
	}
	n.step(t, &raftpb.Message{Type: MsgVote, From: 3, To: 1, Term: 1, Index: 5, LogTerm: 2})
	if s := n.status(); s.Vote != None {
		t.Fatalf("voted for %d at a stale term", s.Vote)
	}
	for _, m := range n.handle(t) {
		if m.Type == MsgVoteResp && !m.Reject {
			t.Fatalf("granted a stale vote: %v", m)
		}
	}
}

// §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no
// log entries) to all followers in order to maintain their authority."
func TestLeaderBcastBeat(t *testing.T) {
	n := newNode(t, 1, ids(3), 0, nil)
	n.elect(t, true)
	n.tick(1) // HeartbeatTick
	hb := ofType(n.handle(t), MsgHeartbeat)
	var to []uint64
	for _, m := range hb {
		to = append(to, m.To)
		if len(m.Entries) != 0 || m.Term != 1 {
			t.Fatalf("bad heartbeat %v", m)
		}
	}
	slices.Sort(to)
	if !slices.Equal(to, []uint64{2, 3}) {
		t.Fatalf("heartbeats to %v, want [2 3]", to)
	}
}

// §5.2: "If a follower receives no communication over a period of time
// called the election timeout, then it assumes there is no viable leader and
// begins an election to choose a new leader. To begin an election, a
// follower increments its current term and transitions to candidate state.
// It then votes for itself and issues RequestVote RPCs in parallel to each
// of the other servers in the cluster."
func TestFollowerStartElection(t *testing.T) {
	testNonleaderStartElection(t, Follower)
}

// §5.2: "each candidate will time out and start a new election by
// incrementing its term and initiating another round of RequestVote RPCs."
func TestCandidateStartNewElection(t *testing.T) {
	testNonleaderStartElection(t, Candidate)
}

func testNonleaderStartElection(t *testing.T, role Role) {
	n := newNode(t, 1, ids(3), 1, nil)
	if role == Candidate {
		n.rn.Campaign()
		n.handle(t)
	}
	term := n.status().Term
	n.tick(2 * 10) // more than any randomized election timeout
	s := n.status()
	if s.Role != Candidate || s.Term != term+1 || s.Vote != 1 {
		t.Fatalf("role %s term %d vote %d, want candidate at term %d voting for itself", s.Role, s.Term, s.Vote, term+1)
	}
	votes := ofType(n.handle(t), MsgVote)
	var to []uint64
	for _, m := range votes {
		to = append(to, m.To)
		if m.Term != term+1 {
			t.Fatalf("vote request at term %d, want %d", m.Term, term+1)
		}
	}
	slices.Sort(to)
	if !slices.Equal(to, []uint64{2, 3}) {
		t.Fatalf("vote requests to %v, want [2 3]", to)
	}
}

// §5.2: "A candidate wins an election if it receives votes from a majority
// of the servers in the full cluster for the same term. [...] a candidate
// continues in this state until one of three things happens: (a) it wins
// the election, (b) another server establishes itself as leader, or (c) a
// period of time goes by with no winner."
func TestLeaderElectionInOneRoundRPC(t *testing.T) {
	tests := []struct {
		size  int
		votes map[uint64]bool
		want  Role
	}{
		{1, nil, Leader},
		{3, map[uint64]bool{2: true, 3: true}, Leader},
		{3, map[uint64]bool{2: true}, Leader},
		{5, map[uint64]bool{2: true, 3: true, 4: true, 5: true}, Leader},
		{5, map[uint64]bool{2: true, 3: true, 4: true}, Leader},
		{5, map[uint64]bool{2: true, 3: true}, Leader},
		// Lost: a majority rejected.
		{3, map[uint64]bool{2: false, 3: false}, Follower},
		{5, map[uint64]bool{2: false, 3: false, 4: false}, Follower},
		{5, map[uint64]bool{2: true, 3: false, 4: false, 5: false}, Follower},
		// Undecided: no majority either way.
		{3, nil, Candidate},
		{5, map[uint64]bool{2: true}, Candidate},
		{5, map[uint64]bool{2: false, 3: false}, Candidate},
		{5, map[uint64]bool{2: true, 3: false, 4: false}, Candidate},
	}
	for i, tt := range tests {
		n := newNode(t, 1, ids(tt.size), 0, nil)
		n.rn.Campaign()
		for id := uint64(2); id <= uint64(tt.size); id++ {
			v, ok := tt.votes[id]
			if !ok {
				continue
			}
			n.step(t, &raftpb.Message{Type: MsgVoteResp, From: id, To: 1, Term: 1, Reject: !v})
		}
		if s := n.status(); s.Role != tt.want || s.Term != 1 {
			t.Errorf("#%d: role %s term %d, want %s at term 1", i, s.Role, s.Term, tt.want)
		}
	}
}

// §5.2: "Each server will vote for at most one candidate in a given term, on
// a first-come-first-served basis."
func TestFollowerVote(t *testing.T) {
	tests := []struct {
		vote, candidate uint64
		reject          bool
	}{
		{None, 2, false},
		{None, 3, false},
		{2, 2, false},
		{3, 3, false},
		{2, 3, true},
		{3, 2, true},
	}
	for i, tt := range tests {
		st := NewMemoryStorage()
		st.SetHardState(&raftpb.HardState{Term: 1, Vote: tt.vote})
		n := startNode(t, 1, ids(3), st)
		n.step(t, &raftpb.Message{Type: MsgVote, From: tt.candidate, To: 1, Term: 1})
		resp := ofType(n.handle(t), MsgVoteResp)
		if len(resp) != 1 || resp[0].Reject != tt.reject || resp[0].To != tt.candidate {
			t.Errorf("#%d: responses %v, want one with reject=%v to %d", i, resp, tt.reject, tt.candidate)
		}
	}
	// First come, first served within one term.
	n := newNode(t, 1, ids(3), 0, nil)
	n.step(t, &raftpb.Message{Type: MsgVote, From: 2, To: 1, Term: 1})
	n.step(t, &raftpb.Message{Type: MsgVote, From: 3, To: 1, Term: 1})
	resp := ofType(n.handle(t), MsgVoteResp)
	if len(resp) != 2 || resp[0].Reject || !resp[1].Reject {
		t.Fatalf("responses %v: want the first granted and the second rejected", resp)
	}
}

// §5.2: "While waiting for votes, a candidate may receive an AppendEntries
// RPC from another server claiming to be leader. If the leader's term [...]
// is at least as large as the candidate's current term, then the candidate
// recognizes the leader as legitimate and returns to follower state."
func TestCandidateFallback(t *testing.T) {
	for _, term := range []uint64{1, 2} {
		n := newNode(t, 1, ids(3), 0, nil)
		n.rn.Campaign()
		if s := n.status(); s.Role != Candidate || s.Term != 1 {
			t.Fatalf("not a candidate at term 1: %+v", s)
		}
		n.step(t, &raftpb.Message{Type: MsgApp, From: 2, To: 1, Term: term})
		if s := n.status(); s.Role != Follower || s.Term != term || s.Lead != 2 {
			t.Errorf("term %d: role %s term %d lead %d, want follower of 2", term, s.Role, s.Term, s.Lead)
		}
	}
}

// §5.2: "Raft uses randomized election timeouts [...] election timeouts are
// chosen randomly from a fixed interval (e.g., 150–300ms)." Here the
// interval is [ElectionTick, 2*ElectionTick) ticks.
func TestElectionTimeoutRandomized(t *testing.T) {
	for _, role := range []Role{Follower, Candidate} {
		seen := map[int]bool{}
		for seed := uint64(1); seed <= 300; seed++ {
			n := newNode(t, 1, ids(3), 0, nil, withSeed(seed))
			if role == Candidate {
				n.rn.Campaign()
			}
			term := n.status().Term
			ticks := 0
			for n.status().Term == term {
				n.tick(1)
				ticks++
			}
			if ticks < 10 || ticks >= 20 {
				t.Fatalf("%s, seed %d: election after %d ticks, want [10, 20)", role, seed, ticks)
			}
			seen[ticks] = true
		}
		if len(seen) < 8 {
			t.Errorf("%s: only %d distinct timeouts in [10, 20): not random enough", role, len(seen))
		}
	}
}

// §5.2: "This spreads out the servers so that in most cases only a single
// server will time out; it wins the election and sends heartbeats before
// any other servers time out."
func TestFollowersElectionTimeoutNonconflict(t *testing.T) {
	const rounds = 1000
	conflicts := 0
	for round := range uint64(rounds) {
		var nodes []*node
		for id := uint64(1); id <= 5; id++ {
			nodes = append(nodes, newNode(t, id, ids(5), 0, nil, withSeed(round*7+id)))
		}
		for timedOut := 0; timedOut == 0; {
			for _, n := range nodes {
				n.tick(1)
				if n.status().Role == Candidate {
					timedOut++
				}
			}
			if timedOut > 1 {
				conflicts++
			}
		}
	}
	if p := float64(conflicts) / rounds; p > 0.3 {
		t.Fatalf("several followers timed out at once in %.0f%% of rounds, want at most 30%%", 100*p)
	}
}

// §5.2: "A server remains in follower state as long as it receives valid
// RPCs from a leader or candidate."
func TestFollowerRemainsFollower(t *testing.T) {
	n := newNode(t, 1, ids(3), 1, nil)
	for range 100 {
		n.tick(5)
		n.step(t, &raftpb.Message{Type: MsgHeartbeat, From: 2, To: 1, Term: 1})
		if s := n.status(); s.Role != Follower || s.Term != 1 {
			t.Fatalf("left follower state: %+v", s)
		}
	}
}

// §5.3: "The leader appends the command to its log as a new entry, then
// issues AppendEntries RPCs in parallel to each of the other servers to
// replicate the entry."
func TestLeaderStartReplication(t *testing.T) {
	n := newNode(t, 1, ids(3), 0, nil)
	n.elect(t, true)
	li := n.status().LastIndex
	if err := n.rn.Propose([]byte("some data")); err != nil {
		t.Fatal(err)
	}
	if got := n.status().LastIndex; got != li+1 {
		t.Fatalf("last index %d, want %d", got, li+1)
	}
	apps := ofType(n.handle(t), MsgApp)
	if len(apps) != 2 {
		t.Fatalf("%d appends, want 2", len(apps))
	}
	for _, m := range apps {
		if m.Index != li || m.LogTerm != 1 || len(m.Entries) != 1 ||
			m.Entries[0].Index != li+1 || m.Entries[0].Term != 1 || string(m.Entries[0].Data) != "some data" {
			t.Fatalf("bad append %v", m)
		}
	}
}

// §5.3: "When the entry has been safely replicated (as described below),
// the leader applies the entry to its state machine [...] The leader keeps
// track of the highest index it knows to be committed, and it includes that
// index in future AppendEntries RPCs (including heartbeats) so that the
// other servers eventually find out."
func TestLeaderCommitEntry(t *testing.T) {
	n := newNode(t, 1, ids(3), 0, nil)
	n.elect(t, true)
	li := n.status().LastIndex
	n.applied = nil
	_ = n.rn.Propose([]byte("some data"))
	n.handle(t)
	for _, id := range []uint64{2, 3} {
		n.step(t, &raftpb.Message{Type: MsgAppResp, From: id, To: 1, Term: 1, Index: li + 1})
	}
	if c := n.status().Commit; c != li+1 {
		t.Fatalf("commit %d, want %d", c, li+1)
	}
	msgs := n.handle(t)
	if len(n.applied) != 1 || string(n.applied[0].Data) != "some data" {
		t.Fatalf("applied %v, want the proposal", n.applied)
	}
	apps := ofType(msgs, MsgApp)
	if len(apps) != 2 {
		t.Fatalf("%d appends after commit, want 2", len(apps))
	}
	for _, m := range apps {
		if m.Commit != li+1 {
			t.Fatalf("append carries commit %d, want %d", m.Commit, li+1)
		}
	}
}

// §5.3: "A log entry is committed once the leader that created the entry
// has replicated it on a majority of the servers."
func TestLeaderAcknowledgeCommit(t *testing.T) {
	tests := []struct {
		size      int
		acceptors []uint64
		commit    bool
	}{
		{1, nil, true},
		{3, nil, false},
		{3, []uint64{2}, true},
		{3, []uint64{2, 3}, true},
		{5, nil, false},
		{5, []uint64{2}, false},
		{5, []uint64{2, 3}, true},
		{5, []uint64{2, 3, 4}, true},
		{5, []uint64{2, 3, 4, 5}, true},
	}
	for i, tt := range tests {
		n := newNode(t, 1, ids(tt.size), 0, nil)
		n.elect(t, true)
		li := n.status().LastIndex
		_ = n.rn.Propose([]byte("x"))
		n.handle(t)
		for _, id := range tt.acceptors {
			n.step(t, &raftpb.Message{Type: MsgAppResp, From: id, To: 1, Term: 1, Index: li + 1})
		}
		if got := n.status().Commit > li; got != tt.commit {
			t.Errorf("#%d: committed=%v, want %v", i, got, tt.commit)
		}
	}
}

// §5.3: "This also commits all preceding entries in the leader's log,
// including entries created by previous leaders."
func TestLeaderCommitPrecedingEntries(t *testing.T) {
	for i, logTerms := range [][]uint64{{}, {2}, {1, 1}, {1, 2}} {
		n := newNode(t, 1, ids(3), 2, logTerms)
		n.elect(t, true) // followers acknowledge the whole log
		want := append(slices.Clone(logTerms), 3)
		if got := termsOf(n.applied); !slices.Equal(got, want) {
			t.Errorf("#%d: applied terms %v, want %v", i, got, want)
		}
	}
}

// §5.3: "Once a follower learns that a log entry is committed, it applies
// the entry to its local state machine (in log order)."
func TestFollowerCommitEntry(t *testing.T) {
	tests := []struct {
		ents   []*raftpb.Entry
		commit uint64
	}{
		{[]*raftpb.Entry{{Term: 1, Index: 1, Data: []byte("a")}}, 1},
		{[]*raftpb.Entry{{Term: 1, Index: 1, Data: []byte("a")}, {Term: 1, Index: 2, Data: []byte("b")}}, 2},
		{[]*raftpb.Entry{{Term: 1, Index: 1, Data: []byte("a")}, {Term: 1, Index: 2, Data: []byte("b")}}, 1},
	}
	for i, tt := range tests {
		n := newNode(t, 1, ids(3), 1, nil)
		n.step(t, &raftpb.Message{Type: MsgApp, From: 2, To: 1, Term: 1, Entries: tt.ents, Commit: tt.commit})
		n.handle(t)
		if c := n.status().Commit; c != tt.commit {
			t.Errorf("#%d: commit %d, want %d", i, c, tt.commit)
		}
		var got []string
		for _, e := range n.applied {
			got = append(got, string(e.Data))
		}
		var want []string
		for _, e := range tt.ents[:tt.commit] {
			want = append(want, string(e.Data))
		}
		if !slices.Equal(got, want) {
			t.Errorf("#%d: applied %v, want %v", i, got, want)
		}
	}
}

// §5.3: "When sending an AppendEntries RPC, the leader includes the index
// and term of the entry in its log that immediately precedes the new
// entries. If the follower does not find an entry in its log with the same
// index and term, then it refuses the new entries."
func TestFollowerCheckMsgApp(t *testing.T) {
	tests := []struct {
		logTerm, index uint64
		reject         bool
		index2         uint64 // acknowledged index, or rejected index
		hint, conflict uint64
	}{
		{0, 0, false, 1, 0, 0}, // below the commit index: acknowledge it
		{1, 1, false, 1, 0, 0},
		{2, 2, false, 2, 0, 0},
		{1, 2, true, 2, 2, 2}, // term mismatch: skip term 2, which starts at 2
		{3, 3, true, 3, 2, 0}, // past the end: the log ends at 2
	}
	for i, tt := range tests {
		st := NewMemoryStorage()
		_ = st.Append(ents(1, 2))
		st.SetHardState(&raftpb.HardState{Term: 2, Commit: 1})
		n := startNode(t, 1, ids(3), st)
		n.step(t, &raftpb.Message{Type: MsgApp, From: 2, To: 1, Term: 2, LogTerm: tt.logTerm, Index: tt.index})
		resp := ofType(n.handle(t), MsgAppResp)
		if len(resp) != 1 {
			t.Fatalf("#%d: %d responses", i, len(resp))
		}
		m := resp[0]
		if m.Reject != tt.reject || m.Index != tt.index2 || m.RejectHint != tt.hint || m.ConflictTerm != tt.conflict {
			t.Errorf("#%d: reject=%v index=%d hint=%d conflict=%d, want %v %d %d %d",
				i, m.Reject, m.Index, m.RejectHint, m.ConflictTerm, tt.reject, tt.index2, tt.hint, tt.conflict)
		}
	}
}

// §5.3: "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it;
// append any new entries not already in the log." (Figure 2,
// AppendEntries receiver implementation, steps 3 and 4.)
func TestFollowerAppendEntries(t *testing.T) {
	tests := []struct {
		index, logTerm uint64
		ents           []*raftpb.Entry
		want           []uint64
	}{
		{2, 2, []*raftpb.Entry{{Term: 3, Index: 3}}, []uint64{1, 2, 3}},
		{1, 1, []*raftpb.Entry{{Term: 3, Index: 2}, {Term: 4, Index: 3}}, []uint64{1, 3, 4}},
		{0, 0, []*raftpb.Entry{{Term: 1, Index: 1}}, []uint64{1, 2}},
		{0, 0, []*raftpb.Entry{{Term: 3, Index: 1}}, []uint64{3}},
	}
	for i, tt := range tests {
		n := newNode(t, 1, ids(3), 2, []uint64{1, 2})
		n.step(t, &raftpb.Message{Type: MsgApp, From: 2, To: 1, Term: 4, LogTerm: tt.logTerm, Index: tt.index, Entries: tt.ents})
		if got := termsOf(n.entries()); !slices.Equal(got, tt.want) {
			t.Errorf("#%d: log terms %v, want %v", i, got, tt.want)
		}
		n.handle(t)
		if got := n.logTerms(); !slices.Equal(got, tt.want) {
			t.Errorf("#%d: persisted log terms %v, want %v", i, got, tt.want)
		}
	}
}

// figure7 is the leader's log and the followers' logs (a)-(f) of Figure 7.
var figure7 = struct {
	leader    []uint64
	followers map[string][]uint64
}{
	leader: []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6},
	followers: map[string][]uint64{
		"a": {1, 1, 1, 4, 4, 5, 5, 6, 6},
		"b": {1, 1, 1, 4},
		"c": {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},
		"d": {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},
		"e": {1, 1, 1, 4, 4, 4, 4},
		"f": {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},
	},
}

// syncFigure7 elects the leader of Figure 7 at term 8 (with the vote of a
// third node holding the leader's log), lets it replicate to the follower
// and returns the network and the number of rejected appends.
func syncFigure7(t *testing.T, follower []uint64) (*network, int) {
	leader := newNode(t, 1, ids(3), 7, figure7.leader)
	f := newNode(t, 2, ids(3), 7, follower)
	other := newNode(t, 3, ids(3), 7, figure7.leader)
	nw := newNetwork(t, leader, f, other)
	rejections := 0
	nw.drop = func(m *raftpb.Message) bool {
		if m.Type == MsgAppResp && m.Reject && m.From == 2 {
			rejections++
		}
		return false
	}
	nw.campaign(1)
	if s := leader.status(); s.Role != Leader || s.Term != 8 {
		t.Fatalf("leader: %+v", s)
	}
	return nw, rejections
}

// §5.3, Figure 7: "In Raft, the leader handles inconsistencies by forcing
// the followers' logs to duplicate its own. [...] a follower may be missing
// entries that are present on the leader, it may have extra entries that
// are not present on the leader, or both."
func TestLeaderSyncFollowerLog(t *testing.T) {
	for name, follower := range figure7.followers {
		t.Run(name, func(t *testing.T) {
			nw, _ := syncFigure7(t, follower)
			want := append(slices.Clone(figure7.leader), 8)
			for _, id := range nw.ids {
				if got := nw.nodes[id].logTerms(); !slices.Equal(got, want) {
					t.Errorf("node %d persisted log terms %v, want %v", id, got, want)
				}
			}
		})
	}
}

// §5.3: "If desired, the protocol can be optimized to reduce the number of
// rejected AppendEntries RPCs. For example, when rejecting an AppendEntries
// request, the follower can include the term of the conflicting entry and
// the first index it stores for that term. With this information, the
// leader can decrement nextIndex to bypass all of the conflicting entries in
// that term; one AppendEntries RPC will be required for each term with
// conflicting entries, rather than one RPC per entry."
func TestFastBacktracking(t *testing.T) {
	// One rejection per conflicting term (or for a short log), not per
	// entry.
	want := map[string]int{"a": 1, "b": 1, "c": 0, "d": 0, "e": 2, "f": 2}
	for name, follower := range figure7.followers {
		_, rejections := syncFigure7(t, follower)
		if rejections != want[name] {
			t.Errorf("(%s): %d rejected appends, want %d", name, rejections, want[name])
		}
	}
}

// Figure 3, Leader Append-Only: "a leader never overwrites or deletes
// entries in its log; it only appends new entries."
func TestLeaderNeverOverwrites(t *testing.T) {
	n := newNode(t, 1, ids(3), 2, []uint64{1, 1, 2})
	n.elect(t, false)
	before := n.entries()
	inputs := []*raftpb.Message{
		{Type: MsgAppResp, From: 2, To: 1, Term: 3, Index: 3, Reject: true, RejectHint: 1, ConflictTerm: 1},
		{Type: MsgApp, From: 3, To: 1, Term: 2, Index: 1, LogTerm: 1, Entries: []*raftpb.Entry{{Index: 2, Term: 2}}},
		{Type: MsgVote, From: 3, To: 1, Term: 3, Index: 9, LogTerm: 3},
		{Type: MsgAppResp, From: 3, To: 1, Term: 3, Index: 3, Reject: true, RejectHint: 0},
		{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 3},
	}
	for i, m := range inputs {
		n.step(t, m)
		n.handle(t)
		_ = n.rn.Propose(fmt.Appendf(nil, "p%d", i))
		after := n.entries()
		if len(after) < len(before) || !slices.Equal(after[:len(before)], before) {
			t.Fatalf("after %v: log %v no longer extends %v", m, termsOf(after), termsOf(before))
		}
		before = after
	}
}

// §5.4.1: "RequestVote RPC [...] includes information about the candidate's
// log": the index and term of its last entry.
func TestVoteRequest(t *testing.T) {
	for i, logTerms := range [][]uint64{{}, {1}, {1, 1, 2}, {2, 3, 3, 3}} {
		n := newNode(t, 1, ids(3), 3, logTerms)
		n.rn.Campaign()
		votes := ofType(n.handle(t), MsgVote)
		if len(votes) != 2 {
			t.Fatalf("#%d: %d vote requests", i, len(votes))
		}
		var lastTerm uint64
		if len(logTerms) > 0 {
			lastTerm = logTerms[len(logTerms)-1]
		}
		for _, m := range votes {
			if m.Index != uint64(len(logTerms)) || m.LogTerm != lastTerm || m.Term != 4 {
				t.Errorf("#%d: vote request index %d log term %d term %d, want %d %d 4", i, m.Index, m.LogTerm, m.Term, len(logTerms), lastTerm)
			}
		}
	}
}

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than
// that of the candidate. [...] If the logs have last entries with different
// terms, then the log with the later term is more up-to-date. If the logs
// end with the same term, then whichever log is longer is more up-to-date."
func TestVoter(t *testing.T) {
	tests := []struct {
		voter          []uint64
		index, logTerm uint64
		reject         bool
	}{
		// Same last term.
		{[]uint64{1}, 1, 1, false},
		{[]uint64{1}, 2, 1, false},
		{[]uint64{1, 1}, 1, 1, true},
		// Candidate has a later last term.
		{[]uint64{1}, 1, 2, false},
		{[]uint64{1, 1}, 1, 2, false},
		// Voter has a later last term.
		{[]uint64{2}, 1, 1, true},
		{[]uint64{2}, 5, 1, true},
		{[]uint64{1, 2}, 2, 1, true},
	}
	for i, tt := range tests {
		n := newNode(t, 1, ids(3), 2, tt.voter)
		n.step(t, &raftpb.Message{Type: MsgVote, From: 2, To: 1, Term: 3, Index: tt.index, LogTerm: tt.logTerm})
		resp := ofType(n.handle(t), MsgVoteResp)
		if len(resp) != 1 || resp[0].Reject != tt.reject {
			t.Errorf("#%d: responses %v, want reject=%v", i, resp, tt.reject)
		}
	}
}

// §5.4.2: "Raft never commits log entries from previous terms by counting
// replicas. Only log entries from the leader's current term are committed by
// counting replicas; once an entry from the current term has been committed
// in this way, then all prior entries are committed indirectly because of
// the Log Matching Property."
func TestLeaderOnlyCommitsLogFromCurrentTerm(t *testing.T) {
	tests := []struct {
		ack, commit uint64
	}{
		{1, 0}, // term 1: an earlier term, not committed by counting
		{2, 0}, // term 2: likewise
		{3, 3}, // the new leader's no-op, term 3: commits all three
	}
	for i, tt := range tests {
		n := newNode(t, 1, ids(3), 2, []uint64{1, 2})
		n.elect(t, false)
		n.step(t, &raftpb.Message{Type: MsgAppResp, From: 2, To: 1, Term: 3, Index: tt.ack})
		if c := n.status().Commit; c != tt.commit {
			t.Errorf("#%d: acknowledged %d, commit %d, want %d", i, tt.ack, c, tt.commit)
		}
	}
}

// §5.4.2, Figure 8: "A time sequence showing why a leader cannot determine
// commitment using log entries from older terms." The scenario is played
// out on five nodes; the leader of term 4 holds the term-2 entry on a
// majority yet must not commit it, because S5 can still be elected and
// overwrite it (d); once the leader's own entry reaches a majority (e),
// both are committed and S5 can no longer win.
func TestFigure8(t *testing.T) {
	for _, ending := range []string{"d", "e"} {
		t.Run(ending, func(t *testing.T) {
			var nodes []*node
			for id := uint64(1); id <= 5; id++ {
				nodes = append(nodes, newNode(t, id, ids(5), 0, nil, withMaxSizePerMsg(1)))
			}
			nw := newNetwork(t, nodes...)
			s := func(id uint64) *node { return nw.nodes[id] }
			// Index 1, term 1, on every server (S2 leads term 1).
			nw.campaign(2)
			// (a) S1 leads term 2 and replicates index 2 to S2 only.
			nw.drop = func(m *raftpb.Message) bool { return m.Type == MsgApp && m.From == 1 && m.To != 2 }
			nw.campaign(1)
			if st := s(1).status(); st.Role != Leader || st.Term != 2 {
				t.Fatalf("(a) S1: %+v", st)
			}
			// (b) S1 crashes; S5 leads term 3 with votes from S3, S4 and
			// itself, and writes index 2 in its own log only.
			nw.drop = func(m *raftpb.Message) bool { return m.From == 1 || m.To == 1 || (m.Type == MsgApp && m.From == 5) }
			nw.campaign(5)
			if st := s(5).status(); st.Role != Leader || st.Term != 3 {
				t.Fatalf("(b) S5: %+v", st)
			}
			// (c) S5 crashes; S1 restarts, leads term 4 and replicates the
			// term-2 entry at index 2 to S3, but not its own entry.
			nw.drop = func(m *raftpb.Message) bool {
				if m.From == 5 || m.To == 5 {
					return true
				}
				// Drop the term-4 entry where it would be accepted (after
				// the term-2 entry); elsewhere it is rejected, which makes
				// S1 back up and send the term-2 entry.
				if m.Type != MsgApp || len(m.Entries) == 0 || m.Entries[0].Term != 4 {
					return false
				}
				lg := s(m.To).logTerms()
				return len(lg) >= 2 && lg[1] == 2
			}
			nw.restart(1, withMaxSizePerMsg(1))
			for s(1).status().Role != Leader {
				nw.campaign(1)
			}
			if st := s(1).status(); st.Term != 4 {
				t.Fatalf("(c) S1 leads term %d, want 4", st.Term)
			}
			for _, id := range []uint64{1, 2, 3} {
				if got := s(id).logTerms(); len(got) < 2 || got[1] != 2 {
					t.Fatalf("(c) S%d log %v: want the term-2 entry at index 2", id, got)
				}
			}
			if c := s(1).status().Commit; c != 1 {
				t.Fatalf("(c) S1 committed %d by counting replicas of a term-2 entry, want 1", c)
			}
			switch ending {
			case "d":
				// (d) S1 crashes; S5 is elected (votes from S2, S3, S4) and
				// overwrites index 2 everywhere with its term-3 entry.
				nw.drop = func(m *raftpb.Message) bool { return m.From == 1 || m.To == 1 }
				nw.restart(5, withMaxSizePerMsg(1))
				for s(5).status().Role != Leader {
					nw.campaign(5)
				}
				for _, id := range []uint64{2, 3, 4, 5} {
					if got := s(id).logTerms(); got[1] != 3 {
						t.Errorf("(d) S%d log %v: want index 2 overwritten by term 3", id, got)
					}
				}
				for _, id := range nw.ids {
					n := s(id)
					for _, e := range n.applied {
						if e.Index == 2 && e.Term == 2 {
							t.Errorf("(d) S%d applied the overwritten term-2 entry", n.id)
						}
					}
				}
			case "e":
				// (e) S1 replicates its term-4 entry to a majority: both
				// entries are committed, and S5 cannot be elected.
				nw.drop = func(m *raftpb.Message) bool { return m.From == 5 || m.To == 5 }
				nw.tickAll(1)
				if c := s(1).status().Commit; c < 3 {
					t.Fatalf("(e) S1 commit %d, want 3: %+v", c, s(1).status())
				}
				nw.drop = func(m *raftpb.Message) bool { return m.From == 1 || m.To == 1 }
				nw.restart(5, withMaxSizePerMsg(1))
				for range 5 {
					nw.campaign(5)
				}
				if st := s(5).status(); st.Role == Leader {
					t.Fatalf("(e) S5 was elected without the committed entries: %+v", st)
				}
			}
		})
	}
}
