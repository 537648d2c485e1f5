package core

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

func TestConfigValidate(t *testing.T) {
	st := NewMemoryStorage()
	tests := []struct {
		c     Config
		field string // "" means valid
	}{
		{Config{ID: 1, Peers: []uint64{1}, Storage: st}, ""},
		{Config{ID: 1, Peers: []uint64{1, 2, 3}, Storage: st, ElectionTick: 20, HeartbeatTick: 2}, ""},
		{Config{Peers: []uint64{1}, Storage: st}, "ID"},
		{Config{ID: 1, Peers: []uint64{1}}, "Storage"},
		// A node added to a running cluster is given the bootstrap voters,
		// without itself.
		{Config{ID: 4, Peers: []uint64{1, 2, 3}, Storage: st}, ""},
		{Config{ID: 1, Peers: []uint64{1, 1}, Storage: st}, "Peers"},
		{Config{ID: 1, Peers: []uint64{1, 0}, Storage: st}, "Peers"},
		{Config{ID: 1, Peers: []uint64{1}, Storage: st, HeartbeatTick: -1}, "HeartbeatTick"},
		{Config{ID: 1, Peers: []uint64{1}, Storage: st, ElectionTick: 3, HeartbeatTick: 3}, "ElectionTick"},
		{Config{ID: 1, Peers: []uint64{1}, Storage: st, MaxInflightMsgs: -1}, "MaxInflightMsgs"},
		{Config{ID: 1, Peers: []uint64{1}, Storage: st, ReadOnlyLeaseBased: true}, "ReadOnlyLeaseBased"},
		{Config{ID: 1, Peers: []uint64{1}, Storage: st, ReadOnlyLeaseBased: true, CheckQuorum: true}, ""},
	}
	for i, tt := range tests {
		err := tt.c.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("#%d: unexpected error %v", i, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("#%d: error %v, want ErrInvalidConfig naming %s", i, err, tt.field)
		}
		if _, err := NewRawNode(&tt.c); err == nil {
			t.Errorf("#%d: NewRawNode accepted an invalid config", i)
		}
	}
}

func TestMemoryStorage(t *testing.T) {
	s := NewMemoryStorage()
	if fi, _ := s.FirstIndex(); fi != 1 {
		t.Fatalf("first index %d, want 1", fi)
	}
	if err := s.Append(ents(1, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if li, _ := s.LastIndex(); li != 3 {
		t.Fatalf("last index %d", li)
	}
	// Overwrite a suffix.
	if err := s.Append([]*raftpb.Entry{{Index: 2, Term: 3}}); err != nil {
		t.Fatal(err)
	}
	if li, _ := s.LastIndex(); li != 2 {
		t.Fatalf("last index after overwrite %d, want 2", li)
	}
	if tm, _ := s.Term(2); tm != 3 {
		t.Fatalf("term(2) %d, want 3", tm)
	}
	if tm, err := s.Term(0); err != nil || tm != 0 {
		t.Fatalf("term(0) = %d, %v", tm, err)
	}
	if _, err := s.Term(3); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("term(3) error %v", err)
	}
	if _, err := s.Entries(1, 4, noLimit); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("entries past the end: %v", err)
	}
	if _, err := s.Entries(0, 2, noLimit); !errors.Is(err, ErrCompacted) {
		t.Fatalf("entries from 0: %v", err)
	}
	if err := s.Append([]*raftpb.Entry{{Index: 5, Term: 3}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append with a gap: %v", err)
	}
	// Size limit: always at least one entry.
	if es, _ := s.Entries(1, 3, 1); len(es) != 1 {
		t.Fatalf("%d entries within 1 byte, want 1", len(es))
	}
}

func TestStepRejectsMalformed(t *testing.T) {
	n := newNode(t, 1, ids(3), 1, nil)
	bad := []*raftpb.Message{
		nil,
		{Type: MsgApp, From: 0, To: 1, Term: 1},
		{Type: MsgApp, From: 2, To: 3, Term: 1},
		{Type: MsgApp, From: 2, To: 1},
		{Type: raftpb.MessageType(99), From: 2, To: 1, Term: 1},
		{Type: raftpb.MessageType_MESSAGE_TYPE_UNSPECIFIED, From: 2, To: 1, Term: 1},
		{Type: msgProp, From: 2, To: 1, Term: 1},
		{Type: MsgApp, From: 2, To: 1, Term: 1, Index: 0, Entries: []*raftpb.Entry{{Index: 2, Term: 1}}},
		{Type: MsgApp, From: 2, To: 1, Term: 1, Index: 0, Entries: []*raftpb.Entry{{Index: 1, Term: 2}}},
		{Type: MsgApp, From: 2, To: 1, Term: 1, Index: 0, Entries: []*raftpb.Entry{nil}},
		{Type: msgProp, From: 2, To: 1, Entries: []*raftpb.Entry{nil}},
		{Type: MsgHeartbeat, From: 1, To: 1, Term: 1},
	}
	for i, m := range bad {
		if err := n.rn.Step(m); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("#%d: Step(%v) = %v, want ErrInvalidMessage", i, m, err)
		}
	}
	if s := n.status(); s.Term != 1 || s.LastIndex != 0 {
		t.Fatalf("malformed messages changed state: %+v", s)
	}
}

// A vote is persisted in the same Ready that carries the vote response, so
// a caller that persists before sending never votes twice across a crash.
func TestVotePersistedWithResponse(t *testing.T) {
	n := newNode(t, 1, ids(3), 0, nil)
	n.step(t, &raftpb.Message{Type: MsgVote, From: 2, To: 1, Term: 1})
	rd := n.rn.Ready()
	if rd.HardState == nil || rd.HardState.Vote != 2 || rd.HardState.Term != 1 || !rd.MustSync {
		t.Fatalf("hard state %v, must sync %v: want vote 2 at term 1, synced", rd.HardState, rd.MustSync)
	}
	if len(ofType(rd.Messages, MsgVoteResp)) != 1 {
		t.Fatalf("messages %v", rd.Messages)
	}
}

func TestRestartFromStorage(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	for i := range 5 {
		if err := nw.propose(1, fmt.Sprintf("x%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	before := nw.nodes[2].status()
	nw.restart(2)
	after := nw.nodes[2].status()
	if after.Term != before.Term || after.Vote != before.Vote || after.LastIndex != before.LastIndex || after.Commit != before.Commit {
		t.Fatalf("restarted %+v, had %+v", after, before)
	}
	// The state machine is rebuilt from the log.
	nw.settle()
	if got := len(nw.nodes[2].applied); got != int(before.Commit) {
		t.Fatalf("re-applied %d entries, want %d", got, before.Commit)
	}
}

// PreVote (thesis §9.6): a node that was partitioned away, and so missed
// entries, does not disrupt the cluster when it returns: it cannot win a
// pre-vote and so never raises its term. (A returning node whose log is
// still up to date can win a pre-vote; with CheckQuorum, followers that hear
// from their leader refuse it, see TestCheckQuorumLease.)
func TestPreVoteDoesNotDisruptLeader(t *testing.T) {
	for _, preVote := range []bool{true, false} {
		var opts []option
		if preVote {
			opts = append(opts, withPreVote)
		}
		nw := newCluster(t, 3, opts...)
		nw.campaign(1)
		_ = nw.propose(1, "x")
		nw.isolate(3)
		_ = nw.propose(1, "y") // node 3 misses it: its log is now behind
		for range 50 {
			nw.nodes[3].tick(1)
			nw.settle()
		}
		s3 := nw.nodes[3].status()
		nw.heal()
		nw.campaign(3)
		nw.tickAll(3)
		s1 := nw.nodes[1].status()
		if preVote {
			if s3.Term != 1 {
				t.Errorf("prevote: isolated node raised its term to %d", s3.Term)
			}
			if s1.Role != Leader || s1.Term != 1 {
				t.Errorf("prevote: leader disrupted: %+v", s1)
			}
		} else if s1.Term == 1 {
			t.Errorf("without prevote the returning node should have forced a new term")
		}
	}
}

func TestPreVoteCampaign(t *testing.T) {
	n := newNode(t, 1, ids(3), 3, []uint64{1, 3}, withPreVote)
	n.rn.Campaign()
	if s := n.status(); s.Role != PreCandidate || s.Term != 3 || s.Vote != None {
		t.Fatalf("after campaign: %+v, want pre-candidate at term 3 without a vote", s)
	}
	pv := ofType(n.handle(t), MsgPreVote)
	if len(pv) != 2 || pv[0].Term != 4 || pv[0].Index != 2 || pv[0].LogTerm != 3 {
		t.Fatalf("pre-vote requests %v", pv)
	}
	// A granted pre-vote carries the future term; a majority starts the
	// real election.
	n.step(t, &raftpb.Message{Type: MsgPreVoteResp, From: 2, To: 1, Term: 4})
	if s := n.status(); s.Role != Candidate || s.Term != 4 || s.Vote != 1 {
		t.Fatalf("after pre-vote won: %+v, want candidate at term 4", s)
	}
	// A voter grants a pre-vote without changing its term or its vote.
	v := newNode(t, 2, ids(3), 3, []uint64{1, 3})
	v.step(t, &raftpb.Message{Type: MsgPreVote, From: 1, To: 2, Term: 4, Index: 2, LogTerm: 3})
	resp := ofType(v.handle(t), MsgPreVoteResp)
	if len(resp) != 1 || resp[0].Reject || resp[0].Term != 4 {
		t.Fatalf("pre-vote response %v", resp)
	}
	if s := v.status(); s.Term != 3 || s.Vote != None {
		t.Fatalf("pre-vote changed the voter: %+v", s)
	}
}

// CheckQuorum: a leader that has not heard from a quorum within an
// election timeout steps down.
func TestCheckQuorumStepDown(t *testing.T) {
	for _, cq := range []bool{true, false} {
		var opts []option
		if cq {
			opts = append(opts, withCheckQuorum)
		}
		nw := newCluster(t, 3, opts...)
		nw.campaign(1)
		nw.isolate(1)
		for range 2 * 10 {
			nw.nodes[1].tick(1)
			nw.settle()
		}
		if got := nw.nodes[1].status().Role; (got == Leader) == cq {
			t.Errorf("checkquorum=%v: isolated leader is %s", cq, got)
		}
	}
}

// CheckQuorum: a follower that heard from its leader within the election
// timeout ignores vote requests, so a node that comes back from a partition
// cannot depose a working leader.
func TestCheckQuorumLease(t *testing.T) {
	n := newNode(t, 1, ids(3), 1, nil, withCheckQuorum)
	n.step(t, &raftpb.Message{Type: MsgHeartbeat, From: 2, To: 1, Term: 1})
	n.step(t, &raftpb.Message{Type: MsgVote, From: 3, To: 1, Term: 5, Index: 9, LogTerm: 4})
	if s := n.status(); s.Term != 1 || s.Vote != None || s.Lead != 2 {
		t.Fatalf("vote in lease changed state: %+v", s)
	}
	n.tick(10)
	n.step(t, &raftpb.Message{Type: MsgVote, From: 3, To: 1, Term: 5, Index: 9, LogTerm: 4})
	if s := n.status(); s.Term != 5 || s.Vote != 3 {
		t.Fatalf("after the lease: %+v, want a vote for 3 at term 5", s)
	}
}

func TestReadIndex(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	_ = nw.propose(1, "x")
	commit := nw.nodes[1].status().Commit
	for _, id := range []uint64{1, 2, 3} {
		ctx := fmt.Sprintf("read-at-%d", id)
		if err := nw.nodes[id].rn.ReadIndex([]byte(ctx)); err != nil {
			t.Fatal(err)
		}
		nw.settle()
		reads := nw.nodes[id].reads
		if len(reads) != 1 || string(reads[0].RequestCtx) != ctx || reads[0].Index != commit {
			t.Fatalf("node %d: read states %v, want one at %d", id, reads, commit)
		}
	}
	// Single node: answered at once.
	single := newCluster(t, 1)
	single.campaign(1)
	_ = single.nodes[1].rn.ReadIndex([]byte("r"))
	single.settle()
	if r := single.nodes[1].reads; len(r) != 1 || r[0].Index != 1 {
		t.Fatalf("single node: %v", r)
	}
}

// A leader answers a read only after a quorum confirms it is still leader.
func TestReadIndexNeedsQuorum(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	nw.isolate(1)
	_ = nw.nodes[1].rn.ReadIndex([]byte("r"))
	nw.tickAll(5)
	if r := nw.nodes[1].reads; len(r) != 0 {
		t.Fatalf("isolated leader served a read: %v", r)
	}
	nw.heal()
	nw.tickAll(1) // the next heartbeat carries the pending request
	if r := nw.nodes[1].reads; len(r) != 1 {
		t.Fatalf("after healing: %v", r)
	}
}

// A new leader serves reads only once an entry of its term is committed:
// until then its commit index may lag what earlier leaders committed.
func TestReadIndexWaitsForCurrentTermCommit(t *testing.T) {
	n := newNode(t, 1, ids(3), 0, nil)
	n.elect(t, false)
	if err := n.rn.ReadIndex([]byte("r")); err != nil {
		t.Fatal(err)
	}
	if hb := ofType(n.handle(t), MsgHeartbeat); len(hb) != 0 {
		t.Fatalf("read confirmed before the first commit of the term: %v", hb)
	}
	n.step(t, &raftpb.Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 1})
	hb := ofType(n.handle(t), MsgHeartbeat)
	if len(hb) != 2 || string(hb[0].Context) != "r" {
		t.Fatalf("heartbeats %v, want two carrying the read", hb)
	}
	n.step(t, &raftpb.Message{Type: MsgHeartbeatResp, From: 3, To: 1, Term: 1, Context: []byte("r")})
	n.handle(t)
	if len(n.reads) != 1 || n.reads[0].Index != 1 {
		t.Fatalf("reads %v, want one at 1", n.reads)
	}
}

func TestProposalForwarding(t *testing.T) {
	nw := newCluster(t, 3)
	if err := nw.nodes[2].rn.Propose([]byte("x")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("propose without a leader: %v", err)
	}
	nw.campaign(1)
	if err := nw.propose(2, "y"); err != nil {
		t.Fatal(err)
	}
	a := nw.nodes[3].applied
	if len(a) != 2 || string(a[1].Data) != "y" {
		t.Fatalf("applied %v", a)
	}
}

// The leader keeps at most MaxInflightMsgs appends in flight to a follower
// in replicate state.
func TestInflightWindow(t *testing.T) {
	n := newNode(t, 1, ids(3), 0, nil, func(c *Config) { c.MaxInflightMsgs = 2 })
	n.elect(t, true)
	for i := range 5 {
		_ = n.rn.Propose(fmt.Appendf(nil, "p%d", i))
	}
	apps := 0
	for _, m := range ofType(n.handle(t), MsgApp) {
		if m.To == 2 {
			apps++
		}
	}
	if apps != 2 {
		t.Fatalf("%d appends in flight to 2, want 2", apps)
	}
	// An acknowledgement frees the window and the rest is sent at once.
	n.step(t, &raftpb.Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 3})
	var sent []*raftpb.Entry
	for _, m := range ofType(n.handle(t), MsgApp) {
		if m.To == 2 {
			sent = append(sent, m.Entries...)
		}
	}
	if len(sent) != 3 || sent[0].Index != 4 {
		t.Fatalf("sent %v after the ack, want entries 4..6", termsOf(sent))
	}
}

// MaxInflightBytes bounds the bytes in flight, and MaxSizePerMsg the bytes
// of one append (batching as many entries as fit).
func TestByteBoundedFlowControl(t *testing.T) {
	data := make([]byte, 100) // each entry counts 124 bytes
	n := newNode(t, 1, ids(3), 0, nil, func(c *Config) {
		c.MaxSizePerMsg = 300
		c.MaxInflightBytes = 500
	})
	n.elect(t, true)
	for range 10 {
		_ = n.rn.Propose(data)
	}
	var batches []int
	for _, m := range ofType(n.handle(t), MsgApp) {
		if m.To == 2 && len(m.Entries) > 0 {
			batches = append(batches, len(m.Entries))
		}
	}
	// Proposals arrive one at a time: each is sent as it comes until 500
	// bytes are in flight (four entries), then the window is closed.
	total := 0
	for _, b := range batches {
		total += b
	}
	if total != 5 {
		t.Fatalf("batches %v: %d entries in flight, want 5 (the window closes at 500 bytes)", batches, total)
	}
	// Freed, the backlog goes out in batches of at most two entries (300
	// bytes).
	n.step(t, &raftpb.Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 6})
	batches = nil
	for _, m := range ofType(n.handle(t), MsgApp) {
		if m.To == 2 {
			batches = append(batches, len(m.Entries))
		}
	}
	if fmt.Sprint(batches) != "[2 2 1]" {
		t.Fatalf("batches %v after the ack, want [2 2 1]", batches)
	}
}

// Leadership transfer (thesis §3.10): the leader brings the target's log up
// to date, then tells it to campaign at once; it wins at the next term.
func TestTransferLeader(t *testing.T) {
	for _, opts := range [][]option{nil, {withPreVote, withCheckQuorum}} {
		nw := newCluster(t, 3, opts...)
		nw.campaign(1)
		// Node 3 misses an entry, so the leader must catch it up first.
		nw.isolate(3)
		_ = nw.propose(1, "x")
		nw.heal()
		if err := nw.nodes[1].rn.TransferLeader(3); err != nil {
			t.Fatal(err)
		}
		if err := nw.nodes[1].rn.Propose([]byte("y")); !errors.Is(err, ErrTransferring) || !errors.Is(err, ErrProposalDropped) {
			t.Fatalf("propose during transfer: %v", err)
		}
		nw.settle()
		s3 := nw.nodes[3].status()
		if s3.Role != Leader || s3.Term != 2 {
			t.Fatalf("target: %+v, want leader at term 2", s3)
		}
		if s1 := nw.nodes[1].status(); s1.Role != Follower || s1.Lead != 3 {
			t.Fatalf("old leader: %+v, want follower of 3", s1)
		}
		if err := nw.propose(3, "z"); err != nil {
			t.Fatal(err)
		}
		if a := nw.nodes[1].applied; string(a[len(a)-1].Data) != "z" {
			t.Fatalf("old leader applied %v", termsOf(a))
		}
	}
}

// A transfer to an unreachable node is abandoned after an election timeout,
// and the leader takes proposals again.
func TestTransferLeaderTimeout(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	nw.isolate(3)
	if err := nw.nodes[1].rn.TransferLeader(3); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if err := nw.nodes[1].rn.Propose([]byte("y")); !errors.Is(err, ErrTransferring) {
		t.Fatalf("propose during transfer: %v", err)
	}
	for range 10 { // ElectionTick
		nw.nodes[1].tick(1)
		nw.settle()
	}
	if err := nw.propose(1, "y"); err != nil {
		t.Fatalf("propose after the transfer was abandoned: %v", err)
	}
	if s := nw.nodes[1].status(); s.Role != Leader || s.Term != 1 {
		t.Fatalf("leader: %+v", s)
	}
}

func TestTransferLeaderRefused(t *testing.T) {
	nw := newCluster(t, 3)
	nw.campaign(1)
	if err := nw.nodes[2].rn.TransferLeader(3); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("transfer on a follower: %v", err)
	}
	for _, to := range []uint64{1, 7} {
		if err := nw.nodes[1].rn.TransferLeader(to); err == nil {
			t.Fatalf("transfer to %d accepted", to)
		}
	}
}

// Lease-based reads: while a quorum acknowledged a recent heartbeat, the
// leader answers at once, without a heartbeat round; once the lease runs
// out it falls back to confirming with a quorum.
func TestLeaseRead(t *testing.T) {
	nw := newCluster(t, 3, withCheckQuorum, withLeaseReads)
	nw.tickAll(10) // past the start guard, during which votes are refused
	nw.campaign(1)
	_ = nw.propose(1, "x")
	nw.tickAll(1) // a heartbeat round: the acknowledgements start the lease
	leader := nw.nodes[1]
	_ = leader.rn.ReadIndex([]byte("r1"))
	if msgs := leader.handle(t); len(ofType(msgs, MsgHeartbeat)) != 0 {
		t.Fatalf("lease read sent heartbeats: %v", msgs)
	}
	if len(leader.reads) != 1 || leader.reads[0].Index != 2 {
		t.Fatalf("reads %v, want r1 at 2 at once", leader.reads)
	}
	// Cut off, the leader's lease lapses before the followers' does.
	nw.isolate(1)
	for range 10 - leaseMargin {
		leader.tick(1)
		nw.settle()
	}
	_ = leader.rn.ReadIndex([]byte("r2"))
	nw.settle()
	if len(leader.reads) != 1 {
		t.Fatalf("a leader out of its lease served a read: %v", leader.reads)
	}
}

// With lease reads, a node that just started refuses votes for an election
// timeout: before it crashed it may have promised a leader not to vote.
func TestLeaseStartGuard(t *testing.T) {
	n := newNode(t, 1, ids(3), 1, nil, withCheckQuorum, withLeaseReads)
	n.step(t, &raftpb.Message{Type: MsgVote, From: 2, To: 1, Term: 2})
	if s := n.status(); s.Term != 1 || s.Vote != None {
		t.Fatalf("voted right after start: %+v", s)
	}
	n.tick(10)
	n.step(t, &raftpb.Message{Type: MsgVote, From: 2, To: 1, Term: 2})
	if s := n.status(); s.Term != 2 || s.Vote != 2 {
		t.Fatalf("after an election timeout: %+v, want a vote for 2 at term 2", s)
	}
}

// checkLogger fails the test on a malformed log message (a format verb
// without its argument, or an argument without its verb).
type checkLogger struct {
	t     testing.TB
	lines int
}

func (l *checkLogger) check(f string, a ...any) {
	l.lines++
	if s := fmt.Sprintf(f, a...); strings.Contains(s, "%!") {
		l.t.Errorf("malformed log message: %s", s)
	}
}
func (l *checkLogger) Debugf(f string, a ...any) { l.check(f, a...) }
func (l *checkLogger) Infof(f string, a ...any)  { l.check(f, a...) }
func (l *checkLogger) Warnf(f string, a ...any)  { l.check(f, a...) }

// Every log message the core writes, in simulations that exercise
// elections, snapshots and membership changes, is well formed.
func TestLogMessagesWellFormed(t *testing.T) {
	lg := &checkLogger{t: t}
	for seed := range int64(20) {
		s := newSimWith(t, seed, 3, faultsFor(seed), simOpts{compact: true, spares: 2, confChange: true},
			withPreVote, withCheckQuorum, func(c *Config) { c.Logger = lg })
		s.run(300)
	}
	if lg.lines == 0 {
		t.Fatal("nothing was logged")
	}
}
