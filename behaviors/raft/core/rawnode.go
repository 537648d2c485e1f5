package core

import (
	"errors"
	"fmt"
	"maps"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

// SoftState is volatile state worth reporting when it changes.
type SoftState struct {
	// Lead is the leader this node knows for its term, or None.
	Lead uint64
	// Role is this node's role.
	Role Role
}

// Ready is a batch of work for the caller. Handle it in this order:
//
//  1. If Snapshot is set, persist it first (it replaces the whole log:
//     MemoryStorage.ApplySnapshot, wal.WAL.ApplySnapshot), then persist
//     HardState (if not nil) and append Entries to durable storage (and to
//     the Storage view). Entries follow the snapshot and may replace
//     persisted entries from Entries[0].Index on.
//  2. Send Messages. Never before step 1: a vote or an acknowledgement
//     promises that the state behind it survives a crash.
//  3. If Snapshot is set, restore the state machine from Snapshot.Data
//     (its configuration is Snapshot.Metadata.ConfState). Then apply
//     CommittedEntries, in order; for an ENTRY_TYPE_CONF_CHANGE entry call
//     ApplyConfChange with the decoded raftpb.ConfChange.
//  4. Serve ReadStates: each is satisfied once CommittedEntries of this and
//     earlier batches are applied.
//  5. Call Advance(rd).
type Ready struct {
	// SoftState is set when the leader or role changed since the last
	// Ready.
	SoftState *SoftState
	// HardState is set when term, vote or commit changed and must be
	// persisted.
	HardState *raftpb.HardState
	// Snapshot, when set, is a snapshot received from the leader: persist
	// it before Entries, and restore the state machine from it before
	// applying CommittedEntries (which follow it). It replaces the log up
	// to its index.
	Snapshot *raftpb.Snapshot
	// Entries are log entries to persist.
	Entries []*raftpb.Entry
	// Messages are to be sent after Entries and HardState are persisted.
	Messages []*raftpb.Message
	// CommittedEntries are to be applied, in order.
	CommittedEntries []*raftpb.Entry
	// ReadStates answer ReadIndex requests whose read index is covered by
	// the entries applied once CommittedEntries are.
	ReadStates []ReadState
	// MustSync reports whether the writes of step 1 must be synced to disk
	// before step 2 (a new term or vote, new entries, or a snapshot).
	MustSync bool
}

// Status is a snapshot of a node's state, for monitoring and tests.
type Status struct {
	ID      uint64
	Term    uint64
	Vote    uint64
	Commit  uint64
	Applied uint64
	Lead    uint64
	Role    Role
	// LastIndex is the index of the last entry in the log.
	LastIndex uint64
	// Progress is the leader's view of each member, voters and learners
	// (nil on other roles).
	Progress map[uint64]Progress
	// Config is the configuration in effect: the last one applied through
	// ApplyConfChange or restored from a snapshot.
	Config *raftpb.ConfState
}

// RawNode is a Raft node without goroutines, clock or I/O. The caller calls
// Tick at a fixed interval, feeds it messages from peers with Step, asks for
// work with Ready, does that work and reports it done with Advance. It is
// not safe for concurrent use.
type RawNode struct {
	r           *raft
	prevSoft    SoftState
	prevHard    *raftpb.HardState
	pendingRead []ReadState
}

// NewRawNode creates a node from c, restoring term, vote, commit index and
// log from c.Storage.
func NewRawNode(c *Config) (*RawNode, error) {
	r, err := newRaft(c)
	if err != nil {
		return nil, err
	}
	return &RawNode{r: r, prevSoft: SoftState{Lead: r.lead, Role: r.role}, prevHard: r.hardState()}, nil
}

// Tick advances the node's logical clock by one tick. Elections and
// heartbeats are measured in ticks.
func (n *RawNode) Tick() { n.r.tick() }

// Campaign makes the node start an election now (as if its election timeout
// elapsed), with a pre-vote first if PreVote is on.
func (n *RawNode) Campaign() { n.r.hup() }

// Propose asks to append data to the log. It returns ErrProposalDropped when
// no leader is known; a proposal accepted here may still be lost (if the
// leader changes), so the caller watches CommittedEntries and retries on a
// timeout.
func (n *RawNode) Propose(data []byte) error {
	return n.r.step(&raftpb.Message{Type: msgProp, From: n.r.id, Entries: []*raftpb.Entry{{Data: data}}})
}

// ReadIndex requests a linearizable read. rctx identifies the request: it
// must be non-empty and unique across the cluster among pending requests
// (the leader keys requests by it, so include the node id); the answer is a
// ReadState with the same RequestCtx in a later Ready. Requests can be lost
// (on a leader change, or dropped messages): retry after a timeout.
func (n *RawNode) ReadIndex(rctx []byte) error {
	if len(rctx) == 0 {
		return errors.New("raft: ReadIndex: empty request context")
	}
	return n.r.step(&raftpb.Message{Type: msgReadIndex, From: n.r.id, Context: rctx})
}

// ProposeConfChange asks to change the membership. The change is appended
// to the log as an ENTRY_TYPE_CONF_CHANGE entry and takes effect on each
// node when the application, applying the committed entry, calls
// ApplyConfChange; the leader accepts a new change only once the previous
// one is applied (ErrConfChangePending), and only if it applies to the
// current configuration (an error wrapping ErrInvalidConfChange).
//
// A single change with CONF_CHANGE_TRANSITION_AUTO is a single-server
// change (thesis §4.1): add a voter, remove one, add a learner, promote a
// learner. Several changes, or a JOINT transition, go through joint
// consensus (thesis §4.3): a joint configuration in which every decision
// needs a majority of the old voters and a majority of the new ones, left
// automatically (AUTO, JOINT_IMPLICIT) or by proposing an empty ConfChange
// (JOINT_EXPLICIT). Like any proposal, an accepted change can be lost with
// a leader change; watch CommittedEntries and retry.
func (n *RawNode) ProposeConfChange(cc *raftpb.ConfChange) error {
	if cc == nil {
		return fmt.Errorf("%w: nil", ErrInvalidConfChange)
	}
	for _, ch := range cc.Changes {
		if ch.GetNodeId() == None {
			return fmt.Errorf("%w: change %v names node 0", ErrInvalidConfChange, ch.GetType())
		}
	}
	data, err := proto.Marshal(cc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfChange, err)
	}
	return n.r.step(&raftpb.Message{Type: msgProp, From: n.r.id, Entries: []*raftpb.Entry{{Type: raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE, Data: data}}})
}

// ApplyConfChange makes a committed membership change take effect on this
// node and returns the resulting configuration (to be stored with the
// application's next snapshot, see MemoryStorage.CreateSnapshot). Call it
// for every committed ENTRY_TYPE_CONF_CHANGE entry, in log order, while
// applying CommittedEntries and before Advance. A change that does not
// apply to the current configuration (which a correct leader never
// commits) is refused with an error wrapping ErrInvalidConfChange and the
// unchanged configuration.
//
// A leader that is no longer a voter afterwards steps down. Joining nodes
// get Progress and are probed at once.
func (n *RawNode) ApplyConfChange(cc *raftpb.ConfChange) (*raftpb.ConfState, error) {
	if cc == nil {
		return n.r.cfg.confState(), fmt.Errorf("%w: nil", ErrInvalidConfChange)
	}
	return n.r.applyConfChange(cc)
}

// SnapshotStatus is what ReportSnapshot reports.
type SnapshotStatus uint8

const (
	// SnapshotFinish: the snapshot was delivered.
	SnapshotFinish SnapshotStatus = iota
	// SnapshotFailure: the snapshot could not be delivered (the transport
	// failed, or the follower is unreachable).
	SnapshotFailure
)

// ReportSnapshot tells a leader what became of the snapshot it is sending
// to id. On SnapshotFailure the transfer is abandoned and started afresh
// (from the storage's newest snapshot) when the follower next answers. The
// core also resends chunks not acknowledged within an election timeout, so
// calling this is an optimisation. SnapshotFinish changes nothing: the
// follower's acknowledgement after restoring moves replication on.
func (n *RawNode) ReportSnapshot(id uint64, status SnapshotStatus) {
	r := n.r
	pr := r.prs[id]
	if r.role != Leader || pr == nil || pr.State != ProgressSnapshot || status != SnapshotFailure {
		return
	}
	pr.clearSnapshot()
	pr.becomeProbe()
	pr.ProbeSent = true // wait for the follower to answer a heartbeat
}

// TransferLeader asks this node, which must be the leader, to hand
// leadership to the voter to. Proposals fail with ErrTransferring until the
// transfer ends: when to wins an election (this node then follows it) or,
// failing that, after an election timeout. Watch SoftState for the outcome.
func (n *RawNode) TransferLeader(to uint64) error { return n.r.transferLeader(to) }

// Step feeds a message received from a peer. Malformed messages are
// rejected with an error wrapping ErrInvalidMessage; a message is never
// modified or retained beyond its entries.
func (n *RawNode) Step(m *raftpb.Message) error {
	if m == nil {
		return fmt.Errorf("%w: nil", ErrInvalidMessage)
	}
	if m.From == None {
		return fmt.Errorf("%w: %s without sender", ErrInvalidMessage, m.Type)
	}
	if m.To != n.r.id {
		return fmt.Errorf("%w: %s for %d delivered to %d", ErrInvalidMessage, m.Type, m.To, n.r.id)
	}
	if m.From == n.r.id {
		return fmt.Errorf("%w: %s from this node to itself", ErrInvalidMessage, m.Type)
	}
	for i, e := range m.Entries {
		if e == nil {
			return fmt.Errorf("%w: %s from %d: entry %d missing", ErrInvalidMessage, m.Type, m.From, i)
		}
	}
	switch m.Type {
	case msgVote, msgVoteResp, msgPreVote, msgPreVoteResp, msgApp, msgAppResp,
		msgHeartbeat, msgHeartbeatResp, msgReadIndexResp, msgTimeoutNow, msgSnap, msgSnapResp:
		if m.Term == 0 {
			return fmt.Errorf("%w: %s from %d without term", ErrInvalidMessage, m.Type, m.From)
		}
	case msgProp, msgReadIndex:
		if m.Term != 0 {
			return fmt.Errorf("%w: %s from %d with term %d", ErrInvalidMessage, m.Type, m.From, m.Term)
		}
	default:
		return fmt.Errorf("%w: unsupported type %s from %d", ErrInvalidMessage, m.Type, m.From)
	}
	if m.Type == msgSnap {
		md := m.Snapshot.GetMetadata()
		if md == nil || md.Index == 0 || md.Term == 0 || md.Term > m.Term {
			return fmt.Errorf("%w: snapshot chunk from %d without valid metadata", ErrInvalidMessage, m.From)
		}
		if _, err := membershipFrom(md.ConfState); err != nil || len(md.GetConfState().GetVoters()) == 0 {
			return fmt.Errorf("%w: snapshot chunk from %d: bad configuration: %v", ErrInvalidMessage, m.From, err)
		}
	}
	if m.Type == msgApp {
		for i, e := range m.Entries {
			if e.Index != m.Index+1+uint64(i) {
				return fmt.Errorf("%w: append from %d: entry %d has index %d, want %d", ErrInvalidMessage, m.From, i, e.Index, m.Index+1+uint64(i))
			}
			if e.Term > m.Term || e.Term < m.LogTerm {
				return fmt.Errorf("%w: append from %d: entry %d has term %d outside [%d, %d]", ErrInvalidMessage, m.From, e.Index, e.Term, m.LogTerm, m.Term)
			}
		}
	}
	return n.r.step(m)
}

func (n *RawNode) readyWithoutAccept() Ready {
	r := n.r
	rd := Ready{
		Snapshot:         r.log.snap,
		Entries:          r.log.unstableEntries(),
		Messages:         r.msgs,
		CommittedEntries: r.log.nextCommitted(r.maxMsgSize),
	}
	if soft := (SoftState{Lead: r.lead, Role: r.role}); soft != n.prevSoft {
		rd.SoftState = &soft
	}
	if p := n.prevHard; r.term != p.Term || r.vote != p.Vote || r.log.committed != p.Commit {
		rd.HardState = r.hardState()
	}
	rd.MustSync = len(rd.Entries) > 0 || rd.Snapshot != nil || (rd.HardState != nil &&
		(rd.HardState.Term != n.prevHard.Term || rd.HardState.Vote != n.prevHard.Vote))
	// A read state is served once the entries up to its index are applied.
	applied := r.log.applied
	if rd.Snapshot != nil {
		applied = max(applied, rd.Snapshot.Metadata.Index)
	}
	if k := len(rd.CommittedEntries); k > 0 {
		applied = rd.CommittedEntries[k-1].Index
	}
	for _, rs := range append(n.pendingRead, r.readStates...) {
		if rs.Index <= applied {
			rd.ReadStates = append(rd.ReadStates, rs)
		}
	}
	return rd
}

// HasReady reports whether Ready would return any work.
func (n *RawNode) HasReady() bool {
	r := n.r
	if len(r.msgs) > 0 || len(r.log.unstable) > 0 || r.log.committed > r.log.applied || r.log.snap != nil {
		return true
	}
	if (SoftState{Lead: r.lead, Role: r.role}) != n.prevSoft {
		return true
	}
	if p := n.prevHard; r.term != p.Term || r.vote != p.Vote || r.log.committed != p.Commit {
		return true
	}
	for _, rs := range append(n.pendingRead, r.readStates...) {
		if rs.Index <= r.log.applied {
			return true
		}
	}
	return false
}

// Ready returns the work to do now. The caller must handle it and call
// Advance before calling Ready again.
func (n *RawNode) Ready() Ready {
	rd := n.readyWithoutAccept()
	r := n.r
	// Messages and read states now belong to the caller.
	r.msgs = nil
	var keep []ReadState
	for _, rs := range append(n.pendingRead, r.readStates...) {
		if !containsRead(rd.ReadStates, rs) {
			keep = append(keep, rs)
		}
	}
	n.pendingRead = keep
	r.readStates = nil
	if rd.SoftState != nil {
		n.prevSoft = *rd.SoftState
	}
	if rd.HardState != nil {
		n.prevHard = rd.HardState
	}
	return rd
}

func containsRead(list []ReadState, rs ReadState) bool {
	for _, x := range list {
		if x.Index == rs.Index && string(x.RequestCtx) == string(rs.RequestCtx) {
			return true
		}
	}
	return false
}

// Advance tells the node that rd was handled: its entries and hard state
// persisted (and visible through Storage) and its committed entries
// applied.
func (n *RawNode) Advance(rd Ready) {
	if rd.Snapshot != nil {
		i := rd.Snapshot.Metadata.Index
		n.r.log.stableSnapTo(i)
		if i > n.r.log.applied {
			n.r.log.appliedTo(i)
		}
	}
	if k := len(rd.Entries); k > 0 {
		e := rd.Entries[k-1]
		n.r.log.stableTo(e.Index, e.Term)
	}
	if k := len(rd.CommittedEntries); k > 0 {
		n.r.log.appliedTo(rd.CommittedEntries[k-1].Index)
	}
	n.r.maybeAutoLeave()
}

// Status returns the node's current state.
func (n *RawNode) Status() Status {
	r := n.r
	s := Status{
		ID: r.id, Term: r.term, Vote: r.vote, Commit: r.log.committed, Applied: r.log.applied,
		Lead: r.lead, Role: r.role, LastIndex: r.log.lastIndex(), Config: r.cfg.confState(),
	}
	if r.role == Leader {
		s.Progress = make(map[uint64]Progress, len(r.prs))
		for id, pr := range maps.All(r.prs) {
			cp := *pr
			cp.Inflight = inflights{maxCount: pr.Inflight.maxCount, maxBytes: pr.Inflight.maxBytes,
				last: append([]uint64(nil), pr.Inflight.last...), sizes: append([]uint64(nil), pr.Inflight.sizes...), bytes: pr.Inflight.bytes}
			s.Progress[id] = cp
		}
	}
	return s
}
