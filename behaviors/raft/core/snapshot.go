package core

import (
	"errors"
	"fmt"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

// snapAssembly is a snapshot a follower is receiving in chunks from the
// leader of its current term.
type snapAssembly struct {
	from uint64
	md   *raftpb.SnapshotMetadata
	data []byte
}

func (a *snapAssembly) matches(from uint64, md *raftpb.SnapshotMetadata) bool {
	return a != nil && a.from == from && a.md.Index == md.Index && a.md.Term == md.Term
}

// sendSnapshot starts sending the storage's snapshot to a follower that
// needs compacted entries (§7 of the Raft paper, InstallSnapshot). It
// reports whether a message was sent.
func (r *raft) sendSnapshot(to uint64, pr *Progress) bool {
	snap, err := r.log.snapshot()
	if err != nil {
		if errors.Is(err, ErrSnapshotTemporarilyUnavailable) {
			r.logger.Debugf("raft %d: snapshot for %d temporarily unavailable", r.id, to)
		} else {
			r.logger.Warnf("raft %d: cannot send snapshot to %d: %v", r.id, to, err)
		}
		return false
	}
	md := snap.GetMetadata()
	if md == nil || md.Index == 0 || md.Index+1 < r.log.firstIndex() {
		r.logger.Warnf("raft %d: %d needs entries from %d, compacted (first index %d), and the storage's snapshot (index %d) does not cover them",
			r.id, to, pr.Next, r.log.firstIndex(), md.GetIndex())
		return false
	}
	r.logger.Debugf("raft %d: sending snapshot %d@%d (%d bytes) to %d", r.id, md.Index, md.Term, len(snap.Data), to)
	pr.becomeSnapshot(snap, r.ticks)
	return r.sendSnapChunks(to, pr)
}

// sendSnapChunks sends chunks of the pending snapshot while fewer than
// snapshotWindow are unacknowledged. It reports whether it sent any.
func (r *raft) sendSnapChunks(to uint64, pr *Progress) bool {
	if pr.State != ProgressSnapshot || pr.snap == nil {
		return false
	}
	data := pr.snap.Data
	size := uint64(len(data))
	md := &raftpb.Snapshot{Metadata: pr.snap.Metadata}
	sent := false
	for pr.snapSent-pr.SnapshotAcked < snapshotWindow*r.maxSnapChunk {
		off := pr.snapSent
		if off > size || (off == size && size > 0) || (size == 0 && sent) {
			break
		}
		end := min(size, off+r.maxSnapChunk)
		r.send(&raftpb.Message{Type: msgSnap, To: to, Snapshot: md, SnapOffset: off, SnapData: data[off:end], SnapDone: end == size})
		pr.snapSent = end
		pr.snapAt = r.ticks
		sent = true
		if end == size {
			break
		}
	}
	return sent
}

// handleSnapResp moves a snapshot transfer on after a chunk
// acknowledgement.
func (r *raft) handleSnapResp(m *raftpb.Message, pr *Progress) {
	if pr.State != ProgressSnapshot || m.Index != pr.PendingSnapshot {
		return // stale
	}
	size := uint64(len(pr.snap.Data))
	off := min(m.SnapOffset, size)
	if m.Reject {
		// The follower lacks bytes before what we sent (it lost its
		// partial copy, or chunks were lost): go back.
		pr.SnapshotAcked = off
		pr.snapSent = off
	} else if off > pr.SnapshotAcked {
		pr.SnapshotAcked = off
		pr.snapSent = max(pr.snapSent, off)
	}
	pr.snapAt = r.ticks
	r.sendSnapChunks(m.From, pr)
}

// handleSnapChunk adds a chunk to the snapshot being assembled and
// restores the snapshot once it is complete. Chunks must arrive in order;
// a gap is refused so that the leader resends from the end of what is
// held.
func (r *raft) handleSnapChunk(m *raftpb.Message) {
	md := m.Snapshot.Metadata
	if md.Index <= r.log.committed {
		// Everything the snapshot holds is committed here already.
		r.asm = nil
		r.send(&raftpb.Message{Type: msgAppResp, To: m.From, Index: r.log.committed})
		return
	}
	if !r.asm.matches(m.From, md) {
		if m.SnapOffset != 0 {
			r.send(&raftpb.Message{Type: msgSnapResp, To: m.From, Index: md.Index, Reject: true})
			return
		}
		r.asm = &snapAssembly{from: m.From, md: md}
	}
	a := r.asm
	have := uint64(len(a.data))
	if m.SnapOffset > have {
		r.send(&raftpb.Message{Type: msgSnapResp, To: m.From, Index: md.Index, SnapOffset: have, Reject: true})
		return
	}
	if end := m.SnapOffset + uint64(len(m.SnapData)); end < have || (end == have && !m.SnapDone) {
		// A duplicate: acknowledge what we hold.
		r.send(&raftpb.Message{Type: msgSnapResp, To: m.From, Index: md.Index, SnapOffset: have})
		return
	}
	a.data = append(a.data, m.SnapData[have-m.SnapOffset:]...)
	if !m.SnapDone {
		r.send(&raftpb.Message{Type: msgSnapResp, To: m.From, Index: md.Index, SnapOffset: uint64(len(a.data))})
		return
	}
	r.asm = nil
	snap := &raftpb.Snapshot{Data: a.data, Metadata: proto.Clone(md).(*raftpb.SnapshotMetadata)}
	if r.restore(snap) {
		r.logger.Infof("raft %d: restored snapshot %d@%d from %d (%d bytes), %v", r.id, md.Index, md.Term, m.From, len(a.data), r.cfg)
		r.send(&raftpb.Message{Type: msgAppResp, To: m.From, Index: r.log.lastIndex()})
		return
	}
	r.send(&raftpb.Message{Type: msgAppResp, To: m.From, Index: r.log.committed})
}

// restore replaces the log and the configuration with the snapshot's, and
// reports whether it did. A snapshot whose last entry the log already
// holds only moves the commit index.
func (r *raft) restore(s *raftpb.Snapshot) bool {
	md := s.Metadata
	if md.Index <= r.log.committed {
		return false
	}
	if r.role != Follower {
		r.logger.Warnf("raft %d: refused to restore a snapshot as %s", r.id, r.role)
		return false
	}
	cfg, err := membershipFrom(md.ConfState)
	if err != nil || len(cfg.voters) == 0 {
		r.logger.Warnf("raft %d: refused snapshot %d@%d with a bad configuration: %v", r.id, md.Index, md.Term, err)
		return false
	}
	if r.log.matchTerm(md.Index, md.Term) {
		// Log Matching: our log equals the leader's up to there, so it
		// holds what the snapshot holds; keep the entries that follow.
		r.log.commitTo(md.Index)
		return false
	}
	r.log.restore(s)
	r.switchTo(cfg)
	return true
}

// checkConfChange decides whether a leader accepts a proposed membership
// change now.
func (r *raft) checkConfChange(data []byte, another bool) error {
	cc := &raftpb.ConfChange{}
	if err := proto.Unmarshal(data, cc); err != nil {
		return fmt.Errorf("%w: conf change entry: %v", ErrInvalidMessage, err)
	}
	if another {
		return fmt.Errorf("%w: one proposal carries two membership changes", ErrInvalidConfChange)
	}
	if r.pendingConfIndex > r.log.applied {
		return ErrConfChangePending
	}
	if _, err := r.cfg.apply(cc); err != nil {
		return err
	}
	return nil
}

// applyConfChange makes a committed membership change take effect.
func (r *raft) applyConfChange(cc *raftpb.ConfChange) (*raftpb.ConfState, error) {
	cfg, err := r.cfg.apply(cc)
	if err != nil {
		return r.cfg.confState(), err
	}
	r.switchTo(cfg)
	return cfg.confState(), nil
}

// switchTo installs a new configuration: Progress for new members, none
// for removed ones, and on a leader the consequences for commitment,
// leadership transfer and its own leadership.
func (r *raft) switchTo(cfg membership) {
	old := r.prs
	r.cfg, r.members, r.voters = cfg, cfg.ids(), cfg.voterIDs()
	last := r.log.lastIndex()
	r.prs = make(map[uint64]*Progress, len(old))
	var added []uint64
	for _, id := range r.members {
		if pr, ok := old[id]; ok {
			pr.IsLearner = !cfg.isVoter(id)
			r.prs[id] = pr
			continue
		}
		pr := r.newProgress(id, last)
		if r.role == Leader && id != r.id {
			pr.becomeProbe()
		}
		r.prs[id] = pr
		added = append(added, id)
	}
	if r.role != Leader {
		return
	}
	if r.transferee != None && !cfg.isVoter(r.transferee) {
		r.transferee = None
	}
	if !cfg.isVoter(r.id) {
		// A leader removed from the configuration (or made a learner)
		// steps down once the change is committed (thesis §4.2.2). The
		// remaining voters may not know yet that it is committed, and
		// until they apply it they need the old majority, this node
		// included, to elect a leader; so it hands leadership over
		// (§3.10) instead of just leaving: it brings the most advanced
		// new voter up to date, commit index included, and tells it to
		// campaign. It steps down when that voter's election reaches it.
		r.logger.Infof("raft %d: no longer a voter in %v at term %d: handing leadership over", r.id, cfg, r.term)
		r.handOver()
	}
	if r.maybeCommit() {
		r.bcastAppend()
	} else {
		for _, id := range added {
			if id != r.id {
				r.sendAppend(id, true)
			}
		}
	}
}

// handOver starts transferring the leadership of a leader that is no
// longer a voter to the voter that matches the most of its log.
func (r *raft) handOver() {
	if r.transferee != None {
		return
	}
	var to uint64
	for _, id := range r.voters {
		if pr := r.prs[id]; to == None || pr.Match > r.prs[to].Match {
			to = id
		}
	}
	if to == None {
		return
	}
	r.transferee = to
	r.electionElapsed = 0
	if r.prs[to].Match == r.log.lastIndex() {
		r.sendTimeoutNow(to)
	} else {
		r.sendAppend(to, true)
	}
}

// maybeAutoLeave proposes leaving a joint configuration entered with
// auto-leave, once the entering change is applied (called on Advance).
func (r *raft) maybeAutoLeave() {
	if r.role != Leader || !r.cfg.joint() || !r.cfg.autoLeave || r.pendingConfIndex > r.log.applied {
		return
	}
	data, err := proto.Marshal(&raftpb.ConfChange{})
	if err != nil {
		panic(err)
	}
	r.logger.Infof("raft %d: leaving joint configuration %v", r.id, r.cfg)
	r.appendEntries(&raftpb.Entry{Type: raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE, Data: data})
	r.pendingConfIndex = r.log.lastIndex()
	r.bcastAppend()
}
