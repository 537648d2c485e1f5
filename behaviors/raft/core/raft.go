package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// Short names for the message types.
const (
	msgVote          = raftpb.MessageType_MESSAGE_TYPE_VOTE
	msgVoteResp      = raftpb.MessageType_MESSAGE_TYPE_VOTE_RESP
	msgPreVote       = raftpb.MessageType_MESSAGE_TYPE_PRE_VOTE
	msgPreVoteResp   = raftpb.MessageType_MESSAGE_TYPE_PRE_VOTE_RESP
	msgApp           = raftpb.MessageType_MESSAGE_TYPE_APP
	msgAppResp       = raftpb.MessageType_MESSAGE_TYPE_APP_RESP
	msgHeartbeat     = raftpb.MessageType_MESSAGE_TYPE_HEARTBEAT
	msgHeartbeatResp = raftpb.MessageType_MESSAGE_TYPE_HEARTBEAT_RESP
	msgProp          = raftpb.MessageType_MESSAGE_TYPE_PROP
	msgReadIndex     = raftpb.MessageType_MESSAGE_TYPE_READ_INDEX
	msgReadIndexResp = raftpb.MessageType_MESSAGE_TYPE_READ_INDEX_RESP
	msgTimeoutNow    = raftpb.MessageType_MESSAGE_TYPE_TIMEOUT_NOW
	msgSnap          = raftpb.MessageType_MESSAGE_TYPE_SNAP
	msgSnapResp      = raftpb.MessageType_MESSAGE_TYPE_SNAP_RESP
)

// snapshotWindow is how many snapshot chunks a leader keeps unacknowledged
// per follower.
const snapshotWindow = 4

// transferCtx marks the vote requests of an election started by a
// leadership transfer.
const transferCtx = "transfer"

// ErrProposalDropped is returned when a proposal or read request cannot be
// accepted now (no leader known, or this node is campaigning); the caller
// may retry later.
var ErrProposalDropped = errors.New("raft: proposal dropped")

// ErrNotLeader is returned by requests only a leader can serve.
var ErrNotLeader = errors.New("raft: not the leader")

// ErrTransferring is returned for proposals while leadership is being
// transferred; retry with the new leader.
var ErrTransferring = fmt.Errorf("%w: leadership transfer in progress", ErrProposalDropped)

// ErrInvalidMessage wraps errors about malformed messages given to Step.
var ErrInvalidMessage = errors.New("raft: invalid message")

// Role is a node's role in the protocol.
type Role uint8

const (
	// Follower answers leaders and candidates and never initiates.
	Follower Role = iota
	// PreCandidate asks for pre-votes without changing its term (PreVote).
	PreCandidate
	// Candidate campaigns for votes in a new term.
	Candidate
	// Leader replicates its log and decides commitment.
	Leader
)

func (r Role) String() string {
	switch r {
	case Follower:
		return "follower"
	case PreCandidate:
		return "pre-candidate"
	case Candidate:
		return "candidate"
	case Leader:
		return "leader"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// raft is the protocol state machine. RawNode wraps it.
type raft struct {
	id   uint64
	term uint64
	vote uint64
	lead uint64
	role Role
	log  *raftLog
	cfg  membership
	// members and voters are cfg's members and voters, sorted (cached:
	// they are walked on every broadcast).
	members, voters []uint64
	prs             map[uint64]*Progress
	votes           map[uint64]bool
	// pendingConfIndex is, on a leader, the index of the last membership
	// change it appended (or its last index when it was elected): no new
	// change is accepted until the application has applied up to it.
	pendingConfIndex uint64
	// asm assembles the chunks of a snapshot from the leader.
	asm *snapAssembly

	msgs       []*raftpb.Message
	readStates []ReadState
	readOnly   *readOnly
	// pendingReads are ReadIndex requests a new leader received before it
	// committed an entry of its own term; they wait for that commit.
	pendingReads []*raftpb.Message
	// transferee is the node leadership is being handed to, or None.
	transferee uint64
	// noLease is set once this leader has told a node to campaign
	// (TIMEOUT_NOW): such a campaign ignores the followers' lease, so the
	// leader's lease can no longer be trusted in this term.
	noLease bool
	// ticks is the node's logical clock: ticks since it started.
	ticks uint64
	// heardLeader is the tick at which this node last heard from a leader
	// of its term (valid if heardLeaderSet). With CheckQuorum the node
	// refuses votes for an election timeout after that, whatever happens
	// to its term or role meanwhile: a leader's lease relies on it. A node
	// started with lease reads on counts its start as such a contact,
	// since it may have made the promise before it crashed.
	heardLeader    uint64
	heardLeaderSet bool

	electionElapsed  int
	heartbeatElapsed int
	electionTimeout  int
	heartbeatTimeout int
	randomizedTO     int
	rand             *rand.Rand

	preVote          bool
	checkQuorum      bool
	leaseReads       bool
	maxMsgSize       uint64
	maxSnapChunk     uint64
	maxInflight      int
	maxInflightBytes uint64
	logger           Logger
}

func newRaft(c *Config) (*raft, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := c.withDefaults()
	lg, err := newLog(cfg.Storage, cfg.Logger)
	if err != nil {
		return nil, err
	}
	hs, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("raft: storage InitialState: %w", err)
	}
	snap, err := cfg.Storage.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("raft: storage Snapshot: %w", err)
	}
	var members membership
	if cs := snap.GetMetadata().GetConfState(); len(cs.GetVoters()) > 0 {
		if members, err = membershipFrom(cs); err != nil {
			return nil, fmt.Errorf("raft: storage snapshot: %w", err)
		}
	} else if len(cfg.Peers) > 0 {
		members = membership{voters: slices.Sorted(slices.Values(cfg.Peers))}
	} else {
		return nil, fmt.Errorf("%w: Peers: must list the bootstrap voters when storage holds no snapshot", ErrInvalidConfig)
	}
	r := &raft{
		id:               cfg.ID,
		log:              lg,
		cfg:              members,
		members:          members.ids(),
		voters:           members.voterIDs(),
		prs:              map[uint64]*Progress{},
		readOnly:         newReadOnly(),
		electionTimeout:  cfg.ElectionTick,
		heartbeatTimeout: cfg.HeartbeatTick,
		rand:             rand.New(rand.NewPCG(cfg.RandSeed, cfg.ID)),
		preVote:          cfg.PreVote,
		checkQuorum:      cfg.CheckQuorum,
		leaseReads:       cfg.ReadOnlyLeaseBased,
		maxMsgSize:       cfg.MaxSizePerMsg,
		maxSnapChunk:     cfg.MaxSnapshotChunkSize,
		maxInflight:      cfg.MaxInflightMsgs,
		maxInflightBytes: cfg.MaxInflightBytes,
		logger:           cfg.Logger,
	}
	if hs.Commit > 0 {
		if last := lg.lastIndex(); hs.Commit > last {
			return nil, fmt.Errorf("raft: persisted commit %d is past the last persisted index %d", hs.Commit, last)
		}
		// A snapshot persisted after the hard state may be ahead of it.
		lg.committed = max(lg.committed, hs.Commit)
	}
	if si := snap.GetMetadata().GetIndex(); si > lg.applied {
		// The log may keep entries the snapshot covers (a compaction
		// short of the snapshot): the state machine starts from the
		// snapshot, so they count as applied.
		if last := lg.lastIndex(); si > last {
			return nil, fmt.Errorf("raft: storage snapshot index %d is past the last index %d", si, last)
		}
		lg.committed = max(lg.committed, si)
		lg.applied = si
	}
	if cfg.Applied > lg.applied {
		// The state machine survived the restart: do not apply again what
		// it holds. (An Applied below the snapshot changes nothing: the
		// state machine is restored from the snapshot.)
		lg.appliedTo(min(cfg.Applied, lg.committed))
	}
	r.becomeFollower(hs.Term, None)
	r.vote = hs.Vote
	r.heardLeaderSet = cfg.ReadOnlyLeaseBased
	r.logger.Infof("raft %d: started at term %d, vote %d, commit %d, last index %d, %v",
		r.id, r.term, r.vote, lg.committed, lg.lastIndex(), r.cfg)
	return r, nil
}

func (r *raft) hardState() *raftpb.HardState {
	return &raftpb.HardState{Term: r.term, Vote: r.vote, Commit: r.log.committed}
}

func (r *raft) isVoter(id uint64) bool { return r.cfg.isVoter(id) }

func (r *raft) send(m *raftpb.Message) {
	m.From = r.id
	if m.Term == 0 && m.Type != msgProp && m.Type != msgReadIndex {
		m.Term = r.term
	}
	r.msgs = append(r.msgs, m)
}

// reset prepares for a new role in term, forgetting the vote if the term
// changes.
func (r *raft) reset(term uint64) {
	if r.term != term {
		r.term = term
		r.vote = None
		r.asm = nil // chunks from an earlier term's leader are useless
	}
	r.lead = None
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.randomizedTO = r.electionTimeout + r.rand.IntN(r.electionTimeout)
	r.votes = map[uint64]bool{}
	r.resetProgress()
	r.readOnly = newReadOnly()
	r.pendingReads = nil
	r.transferee = None
	r.noLease = false
}

// resetProgress starts a fresh Progress for every member.
func (r *raft) resetProgress() {
	last := r.log.lastIndex()
	ids := r.members
	r.prs = make(map[uint64]*Progress, len(ids))
	for _, id := range ids {
		r.prs[id] = r.newProgress(id, last)
	}
}

func (r *raft) newProgress(id, last uint64) *Progress {
	pr := &Progress{Next: last + 1, Inflight: inflights{maxCount: r.maxInflight, maxBytes: r.maxInflightBytes},
		IsLearner: !r.cfg.isVoter(id)}
	if id == r.id {
		pr.Match = last
	}
	return pr
}

// heardFromLeader records contact with the leader of the current term.
func (r *raft) heardFromLeader() {
	r.heardLeader, r.heardLeaderSet = r.ticks, true
}

// inVoteLease reports whether this node promised, by hearing from a leader
// less than an election timeout ago, not to vote for anyone else yet. A
// leader is always in its own lease: CheckQuorum makes it step down when it
// loses its quorum.
func (r *raft) inVoteLease() bool {
	if !r.checkQuorum {
		return false
	}
	return r.role == Leader || (r.heardLeaderSet && r.ticks-r.heardLeader < uint64(r.electionTimeout))
}

func (r *raft) becomeFollower(term, lead uint64) {
	r.reset(term)
	r.role = Follower
	r.lead = lead
}

func (r *raft) becomePreCandidate() {
	// The term and vote stay: a pre-vote changes nothing until it wins.
	r.votes = map[uint64]bool{}
	r.lead = None
	r.role = PreCandidate
	r.electionElapsed = 0
	r.randomizedTO = r.electionTimeout + r.rand.IntN(r.electionTimeout)
}

func (r *raft) becomeCandidate() {
	if r.role == Leader {
		panic("raft: leader cannot become candidate")
	}
	r.reset(r.term + 1)
	r.vote = r.id
	r.role = Candidate
}

func (r *raft) becomeLeader() {
	if r.role == Follower {
		panic("raft: follower cannot become leader")
	}
	r.reset(r.term)
	r.lead = r.id
	r.role = Leader
	for _, pr := range r.prs {
		pr.becomeProbe()
	}
	if self := r.prs[r.id]; self != nil {
		self.becomeReplicate()
		self.Match = r.log.lastIndex()
	}
	// A change already in the log may be unapplied: accept no new one
	// until everything up to here is applied.
	r.pendingConfIndex = r.log.lastIndex()
	// A leader commits entries of earlier terms only by committing one of
	// its own (§5.4.2), so it appends a no-op at once.
	r.appendEntries(&raftpb.Entry{})
	r.logger.Infof("raft %d: became leader at term %d", r.id, r.term)
}

// campaign starts a pre-vote or a vote; a vote started by a leadership
// transfer is marked so that voters in a leader's lease still answer it.
func (r *raft) campaign(pre bool) { r.campaignWith(pre, nil) }

func (r *raft) campaignWith(pre bool, ctx []byte) {
	var term uint64
	var typ raftpb.MessageType
	if pre {
		r.becomePreCandidate()
		term, typ = r.term+1, msgPreVote
	} else {
		r.becomeCandidate()
		term, typ = r.term, msgVote
	}
	r.votes[r.id] = true
	if r.pollResult() {
		return
	}
	for _, id := range r.voters {
		if id == r.id {
			continue
		}
		r.send(&raftpb.Message{Type: typ, To: id, Term: term, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm(), Context: ctx})
	}
}

// pollResult acts on the votes so far; it reports whether the election is
// decided.
func (r *raft) pollResult() bool {
	switch r.cfg.voteResult(r.votes) {
	case voteWon:
		if r.role == PreCandidate {
			r.campaign(false)
		} else {
			r.becomeLeader()
			r.bcastAppend()
		}
		return true
	case voteLost:
		r.becomeFollower(r.term, None)
		return true
	}
	return false
}

func (r *raft) hup() {
	if r.role == Leader || !r.isVoter(r.id) {
		return
	}
	if r.unappliedConfChange() {
		// The configuration this node would campaign in may be about to
		// change: apply first.
		r.logger.Infof("raft %d: not campaigning at term %d: committed membership changes are not applied yet", r.id, r.term)
		return
	}
	r.campaign(r.preVote)
}

// unappliedConfChange reports whether a committed entry not yet applied is
// a membership change.
func (r *raft) unappliedConfChange() bool {
	if r.log.committed <= r.log.applied || r.log.snap != nil {
		return false
	}
	lo := r.log.applied + 1
	for lo <= r.log.committed {
		ents, err := r.log.slice(lo, r.log.committed+1, r.maxMsgSize)
		if err != nil || len(ents) == 0 {
			return false
		}
		for _, e := range ents {
			if e.Type == raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE {
				return true
			}
		}
		lo = ents[len(ents)-1].Index + 1
	}
	return false
}

// tick advances the logical clock by one tick.
func (r *raft) tick() {
	r.ticks++
	if r.role == Leader {
		r.tickHeartbeat()
		return
	}
	r.electionElapsed++
	if r.electionElapsed >= r.randomizedTO {
		r.electionElapsed = 0
		r.hup()
	}
}

func (r *raft) tickHeartbeat() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.electionElapsed >= r.electionTimeout {
		r.electionElapsed = 0
		if r.transferee != None {
			// The transfer did not finish within an election timeout
			// (the target is down or cut off): take proposals again.
			r.logger.Infof("raft %d: abandoned leadership transfer to %d", r.id, r.transferee)
			r.transferee = None
		}
		if !r.isVoter(r.id) {
			// Removed from the configuration: keep trying to hand over
			// (the quorum check does not apply to a non-voter).
			r.handOver()
		} else if r.checkQuorum && !r.quorumActive() {
			r.logger.Warnf("raft %d: stepped down at term %d: no quorum heard from in an election timeout", r.id, r.term)
			r.becomeFollower(r.term, None)
			return
		}
	}
	if r.heartbeatElapsed >= r.heartbeatTimeout {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat(r.readOnly.lastCtx())
	}
}

// quorumActive reports whether a quorum of voters was heard from since the
// last check, and starts a new round.
func (r *raft) quorumActive() bool {
	ok := r.cfg.hasQuorum(func(id uint64) bool { return id == r.id || r.prs[id].RecentActive })
	for _, pr := range r.prs {
		pr.RecentActive = false
	}
	return ok
}

func (r *raft) appendEntries(ents ...*raftpb.Entry) {
	li := r.log.lastIndex()
	for i, e := range ents {
		e.Term = r.term
		e.Index = li + 1 + uint64(i)
	}
	li = r.log.append(ents...)
	if self := r.prs[r.id]; self != nil {
		self.maybeUpdate(li)
	}
	r.maybeCommit()
}

// maybeCommit advances the commit index to the highest index matched by a
// quorum, but only if that entry is of the current term (§5.4.2, Figure 8).
func (r *raft) maybeCommit() bool {
	mci := r.cfg.committed(func(id uint64) uint64 { return r.prs[id].Match })
	if mci <= r.log.committed {
		return false
	}
	if t, err := r.log.term(mci); err != nil || t != r.term {
		return false
	}
	r.log.commitTo(mci)
	r.releasePendingReads()
	return true
}

func (r *raft) committedEntryInCurrentTerm() bool {
	t, err := r.log.term(r.log.committed)
	return err == nil && t == r.term
}

func (r *raft) bcastAppend() {
	for _, id := range r.members {
		if id != r.id {
			r.sendAppend(id, true)
		}
	}
}

// sendAppend sends the next batch of entries to a follower; sendIfEmpty
// sends an empty append (carrying the commit index) if there is nothing new.
// It reports whether a message was sent.
func (r *raft) sendAppend(to uint64, sendIfEmpty bool) bool {
	pr := r.prs[to]
	if pr == nil || pr.isPaused() {
		return false
	}
	prev := pr.Next - 1
	prevTerm, err := r.log.term(prev)
	var ents []*raftpb.Entry
	if err == nil && pr.Next <= r.log.lastIndex() {
		ents, err = r.log.slice(pr.Next, r.log.lastIndex()+1, r.maxMsgSize)
	}
	if errors.Is(err, ErrCompacted) {
		// The follower needs entries that only a snapshot still holds.
		return r.sendSnapshot(to, pr)
	}
	if err != nil {
		r.logger.Warnf("raft %d: cannot send append to %d from index %d: %v", r.id, to, pr.Next, err)
		return false
	}
	if len(ents) == 0 && !sendIfEmpty && pr.State == ProgressReplicate {
		return false
	}
	r.send(&raftpb.Message{Type: msgApp, To: to, Index: prev, LogTerm: prevTerm, Entries: ents, Commit: r.log.committed})
	switch pr.State {
	case ProgressReplicate:
		if n := len(ents); n > 0 {
			last := ents[n-1].Index
			pr.Next = last + 1
			pr.Inflight.add(last, entsSize(ents))
		}
	case ProgressProbe:
		pr.ProbeSent = true
	}
	return true
}

func (r *raft) bcastHeartbeat(ctx []byte) {
	for _, id := range r.members {
		if id == r.id {
			continue
		}
		// A follower may not yet hold entries up to the leader's commit, so
		// a heartbeat carries only what it is known to match.
		commit := min(r.prs[id].Match, r.log.committed)
		r.send(&raftpb.Message{Type: msgHeartbeat, To: id, Commit: commit, Context: ctx, Tick: r.ticks})
	}
}

// Step processes one message. Local requests (proposals and read requests
// from this node's caller or forwarded by a follower) carry term 0.
func (r *raft) step(m *raftpb.Message) error {
	switch {
	case m.Term == 0:
		// Local request: no term to check.
	case m.Term > r.term:
		if m.Type == msgVote || m.Type == msgPreVote {
			// With CheckQuorum, a node that heard from a leader within the
			// election timeout does not help depose it (§6 of the thesis).
			force := m.Type == msgVote && string(m.Context) == transferCtx
			if !force && r.inVoteLease() {
				r.logger.Debugf("raft %d: ignored %s from %d at term %d: leader %d is in lease", r.id, m.Type, m.From, m.Term, r.lead)
				return nil
			}
		}
		switch {
		case m.Type == msgPreVote:
			// A pre-vote request changes nothing.
		case m.Type == msgPreVoteResp && !m.Reject:
			// A granted pre-vote echoes the future term we asked about.
		case m.Type == msgApp || m.Type == msgHeartbeat || m.Type == msgSnap:
			r.becomeFollower(m.Term, m.From)
		default:
			r.becomeFollower(m.Term, None)
		}
	case m.Term < r.term:
		if (r.checkQuorum || r.preVote) && (m.Type == msgApp || m.Type == msgHeartbeat || m.Type == msgSnap) {
			// A leader cut off from the cluster for a while may not learn
			// of the higher term any other way when votes are ignored
			// (CheckQuorum) or never raise terms (PreVote); tell it.
			r.send(&raftpb.Message{Type: msgAppResp, To: m.From})
		} else if m.Type == msgPreVote {
			r.send(&raftpb.Message{Type: msgPreVoteResp, To: m.From, Reject: true})
		}
		return nil
	}

	switch m.Type {
	case msgVote, msgPreVote:
		// §5.2, §5.4.1: grant at most one vote per term, and only to a
		// candidate whose log is at least as up-to-date as ours.
		canVote := r.vote == m.From ||
			(r.vote == None && r.lead == None) ||
			(m.Type == msgPreVote && m.Term > r.term)
		respType := msgVoteResp
		if m.Type == msgPreVote {
			respType = msgPreVoteResp
		}
		if canVote && r.log.isUpToDate(m.Index, m.LogTerm) {
			r.send(&raftpb.Message{Type: respType, To: m.From, Term: m.Term})
			if m.Type == msgVote {
				r.electionElapsed = 0
				r.vote = m.From
			}
		} else {
			r.send(&raftpb.Message{Type: respType, To: m.From, Reject: true})
		}
		return nil
	}

	switch r.role {
	case Leader:
		return r.stepLeader(m)
	case Candidate, PreCandidate:
		return r.stepCandidate(m)
	default:
		return r.stepFollower(m)
	}
}

func (r *raft) stepLeader(m *raftpb.Message) error {
	switch m.Type {
	case msgProp:
		if len(m.Entries) == 0 {
			return fmt.Errorf("%w: proposal without entries", ErrInvalidMessage)
		}
		if r.transferee != None {
			return ErrTransferring
		}
		if self := r.prs[r.id]; self == nil || self.IsLearner {
			return fmt.Errorf("%w: this leader is no longer a voter", ErrProposalDropped)
		}
		ents := make([]*raftpb.Entry, len(m.Entries))
		confAt := -1
		for i, e := range m.Entries {
			ents[i] = &raftpb.Entry{Type: e.Type, Data: e.Data}
			if e.Type == raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE {
				if err := r.checkConfChange(e.Data, confAt >= 0); err != nil {
					return err
				}
				confAt = i
			}
		}
		r.appendEntries(ents...)
		if confAt >= 0 {
			r.pendingConfIndex = ents[confAt].Index
		}
		r.bcastAppend()
		return nil
	case msgReadIndex:
		if !r.isVoter(r.id) {
			return fmt.Errorf("%w: this leader is no longer a voter", ErrProposalDropped)
		}
		r.handleReadIndex(m)
		return nil
	}
	pr := r.prs[m.From]
	if pr == nil {
		r.logger.Debugf("raft %d: ignored %s from unknown node %d", r.id, m.Type, m.From)
		return nil
	}
	switch m.Type {
	case msgSnapResp:
		pr.RecentActive = true
		r.handleSnapResp(m, pr)
	case msgAppResp:
		pr.RecentActive = true
		if m.Index > r.log.lastIndex() {
			// We never sent entries up to there: a bug or a forgery.
			r.logger.Warnf("raft %d: ignored append response from %d for index %d past our last index %d", r.id, m.From, m.Index, r.log.lastIndex())
			return nil
		}
		if m.Reject {
			next := r.backtrack(m)
			if pr.maybeDecrTo(m.Index, next) {
				r.sendAppend(m.From, true)
			}
			return nil
		}
		oldPaused := pr.isPaused()
		if pr.maybeUpdate(m.Index) || oldPaused {
			switch pr.State {
			case ProgressProbe:
				pr.becomeReplicate()
			case ProgressReplicate:
				pr.Inflight.freeLE(m.Index)
			case ProgressSnapshot:
				// The follower restored the snapshot (or caught up some
				// other way): replicate from where it now is, or send a
				// newer snapshot if the log was compacted meanwhile.
				if pr.Match >= pr.PendingSnapshot || pr.Match+1 >= r.log.firstIndex() {
					pr.becomeProbe()
					if pr.Match+1 >= r.log.firstIndex() {
						pr.becomeReplicate()
					}
				}
			}
			if r.maybeCommit() {
				r.bcastAppend()
			}
			// Pipeline: keep the window full.
			for r.sendAppend(m.From, false) {
			}
			if m.From == r.transferee && pr.Match == r.log.lastIndex() {
				r.sendTimeoutNow(m.From)
			}
		}
	case msgHeartbeatResp:
		pr.RecentActive = true
		pr.ProbeSent = false
		if m.Tick <= r.ticks {
			pr.LeaseAck = max(pr.LeaseAck, m.Tick)
		}
		if pr.State == ProgressSnapshot && r.ticks-pr.snapAt >= uint64(r.electionTimeout) {
			// No chunk was acknowledged for an election timeout although
			// the follower answers: chunks were lost, resend from the
			// last acknowledged one.
			r.logger.Debugf("raft %d: resending snapshot %d to %d from offset %d", r.id, pr.PendingSnapshot, m.From, pr.SnapshotAcked)
			pr.snapSent = pr.SnapshotAcked
			pr.snapAt = r.ticks
			r.sendSnapChunks(m.From, pr)
		}
		if pr.State == ProgressReplicate && pr.Inflight.full() {
			// Appends may have been lost; free one slot so the stream
			// resumes (a lost append is then detected by a rejection).
			pr.Inflight.freeFirst()
		}
		if pr.Match < r.log.lastIndex() {
			// Even with nothing new to send (an optimistic append may have
			// been lost), an empty append makes the follower reveal how far
			// it really is.
			r.sendAppend(m.From, true)
		}
		if len(m.Context) > 0 {
			r.ackRead(m.From, m.Context)
		}
	}
	return nil
}

// backtrack picks the next index to probe after a rejection, skipping a
// whole conflicting term at once (§5.3, "the follower can include the term
// of the conflicting entry and the first index it stores for that term").
func (r *raft) backtrack(m *raftpb.Message) uint64 {
	if m.ConflictTerm == 0 {
		// The follower's log ends at RejectHint.
		return m.RejectHint + 1
	}
	// If we hold entries of ConflictTerm, the follower likely matches up to
	// our last one; otherwise skip past its whole run of that term.
	for i := m.Index; i > 0; i-- {
		t, err := r.log.term(i)
		if err != nil || t < m.ConflictTerm {
			break
		}
		if t == m.ConflictTerm {
			return i + 1
		}
	}
	return max(m.RejectHint, 1)
}

func (r *raft) stepCandidate(m *raftpb.Message) error {
	switch m.Type {
	case msgProp, msgReadIndex:
		return ErrProposalDropped
	case msgApp:
		r.becomeFollower(m.Term, m.From)
		r.heardFromLeader()
		r.handleAppend(m)
	case msgHeartbeat:
		r.becomeFollower(m.Term, m.From)
		r.heardFromLeader()
		r.handleHeartbeat(m)
	case msgSnap:
		r.becomeFollower(m.Term, m.From)
		r.heardFromLeader()
		r.handleSnapChunk(m)
	case msgVoteResp, msgPreVoteResp:
		if (m.Type == msgVoteResp) != (r.role == Candidate) {
			return nil
		}
		if m.Type == msgPreVoteResp && !m.Reject && m.Term != r.term+1 {
			return nil
		}
		if !r.isVoter(m.From) {
			return nil
		}
		if _, ok := r.votes[m.From]; !ok {
			r.votes[m.From] = !m.Reject
		}
		r.pollResult()
	}
	return nil
}

func (r *raft) stepFollower(m *raftpb.Message) error {
	switch m.Type {
	case msgProp, msgReadIndex:
		if r.lead == None {
			return ErrProposalDropped
		}
		fwd := &raftpb.Message{Type: m.Type, To: r.lead, Entries: m.Entries, Context: m.Context}
		r.send(fwd)
		fwd.From = m.From // keep the origin, so the answer goes back to it
		if fwd.From == None {
			fwd.From = r.id
		}
	case msgApp:
		r.electionElapsed = 0
		r.lead = m.From
		r.heardFromLeader()
		r.handleAppend(m)
	case msgHeartbeat:
		r.electionElapsed = 0
		r.lead = m.From
		r.heardFromLeader()
		r.handleHeartbeat(m)
	case msgSnap:
		r.electionElapsed = 0
		r.lead = m.From
		r.heardFromLeader()
		r.handleSnapChunk(m)
	case msgReadIndexResp:
		r.readStates = append(r.readStates, ReadState{Index: m.Index, RequestCtx: m.Context})
	case msgTimeoutNow:
		// The leader brought our log up to date and steps aside: campaign
		// at once, without a pre-vote (the leader's consent replaces it).
		if r.isVoter(r.id) {
			r.logger.Infof("raft %d: campaigning at the request of leader %d", r.id, m.From)
			r.campaignWith(false, []byte(transferCtx))
		}
	}
	return nil
}

// transferLeader starts handing leadership to the voter to (§3.10 of the
// Raft thesis): the leader stops taking proposals, brings to's log up to
// date, and then tells it to campaign at once. If that does not happen
// within an election timeout, the transfer is abandoned.
func (r *raft) transferLeader(to uint64) error {
	if r.role != Leader {
		return ErrNotLeader
	}
	if to == r.id || !r.isVoter(to) {
		return fmt.Errorf("raft: transfer leadership to %d: not another voter", to)
	}
	r.transferee = to
	r.electionElapsed = 0
	if r.prs[to].Match == r.log.lastIndex() {
		r.sendTimeoutNow(to)
	} else {
		r.sendAppend(to, true)
	}
	return nil
}

// leaseMargin is how many ticks before the followers' lease ends the
// leader stops trusting its own: one for nodes whose ticks are out of phase,
// one for drift.
const leaseMargin = 2

// inLease reports whether lease-based reads are on and no other leader can
// have been elected: a quorum acknowledged heartbeats sent at or after tick
// s, and each of those voters refuses votes for an election timeout after
// receiving one.
func (r *raft) inLease() bool {
	if !r.leaseReads || r.noLease || r.role != Leader {
		return false
	}
	s := r.cfg.committed(func(id uint64) uint64 {
		if id == r.id {
			return r.ticks
		}
		return r.prs[id].LeaseAck
	})
	return s > 0 && r.ticks+leaseMargin < s+uint64(r.electionTimeout)
}

func (r *raft) sendTimeoutNow(to uint64) {
	r.noLease = true
	r.send(&raftpb.Message{Type: msgTimeoutNow, To: to})
}

func (r *raft) handleAppend(m *raftpb.Message) {
	if m.Index < r.log.committed {
		// Everything up to our commit index is already in place.
		r.send(&raftpb.Message{Type: msgAppResp, To: m.From, Index: r.log.committed})
		return
	}
	last, ok, err := r.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries)
	if err != nil {
		r.logger.Warnf("raft %d: dropped append from %d at term %d: %v", r.id, m.From, m.Term, err)
		return
	}
	if ok {
		r.send(&raftpb.Message{Type: msgAppResp, To: m.From, Index: last})
		return
	}
	// Reject, with a hint for fast backtracking.
	resp := &raftpb.Message{Type: msgAppResp, To: m.From, Index: m.Index, Reject: true}
	if last := r.log.lastIndex(); m.Index > last {
		resp.RejectHint = last
	} else {
		ct := r.log.mustTerm(m.Index)
		first := m.Index
		for first-1 > r.log.committed {
			t, err := r.log.term(first - 1)
			if err != nil || t != ct {
				break
			}
			first--
		}
		resp.ConflictTerm = ct
		resp.RejectHint = first
	}
	r.send(resp)
}

func (r *raft) handleHeartbeat(m *raftpb.Message) {
	// The leader sends at most what we are known to match; never trust a
	// commit index past our log.
	r.log.commitTo(min(m.Commit, r.log.lastIndex()))
	r.send(&raftpb.Message{Type: msgHeartbeatResp, To: m.From, Context: m.Context, Tick: m.Tick})
}

// handleReadIndex serves a ReadIndex request on the leader (§6.4 of the
// thesis): record the commit index, then confirm leadership with a round of
// heartbeats before answering.
func (r *raft) handleReadIndex(m *raftpb.Message) {
	if len(m.Context) == 0 {
		return
	}
	if !r.committedEntryInCurrentTerm() {
		// Until an entry of this term commits, the leader's commit index
		// may lag what earlier leaders committed.
		r.pendingReads = append(r.pendingReads, m)
		return
	}
	if r.cfg.isSingle(r.id) || r.inLease() {
		r.answerRead(m, r.log.committed)
		return
	}
	r.readOnly.add(r.log.committed, m)
	r.ackRead(r.id, m.Context)
	r.bcastHeartbeat(m.Context)
}

func (r *raft) ackRead(from uint64, ctx []byte) {
	acks := r.readOnly.ack(from, ctx)
	if acks == nil {
		return
	}
	if !r.cfg.hasQuorum(func(id uint64) bool { return acks[id] }) {
		return
	}
	for _, rs := range r.readOnly.advance(ctx) {
		r.answerRead(rs.req, rs.index)
	}
}

func (r *raft) answerRead(req *raftpb.Message, index uint64) {
	if req.From == None || req.From == r.id {
		r.readStates = append(r.readStates, ReadState{Index: index, RequestCtx: req.Context})
		return
	}
	r.send(&raftpb.Message{Type: msgReadIndexResp, To: req.From, Index: index, Context: req.Context})
}

func (r *raft) releasePendingReads() {
	if len(r.pendingReads) == 0 || !r.committedEntryInCurrentTerm() {
		return
	}
	pending := r.pendingReads
	r.pendingReads = nil
	for _, m := range pending {
		r.handleReadIndex(m)
	}
}
