package core

import (
	"fmt"
	"slices"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// ProgressState is how a leader replicates to one follower.
type ProgressState uint8

const (
	// ProgressProbe: the leader does not know where the follower's log
	// matches; it sends one append at a time and waits for the answer (or a
	// heartbeat answer) before sending another.
	ProgressProbe ProgressState = iota
	// ProgressReplicate: the follower's log matches up to Match; the leader
	// streams appends optimistically, bounded by the inflight window.
	ProgressReplicate
	// ProgressSnapshot: the follower needs entries the leader has
	// compacted; the leader sends it a snapshot in chunks and no appends
	// until the follower has restored it.
	ProgressSnapshot
)

func (s ProgressState) String() string {
	switch s {
	case ProgressProbe:
		return "probe"
	case ProgressReplicate:
		return "replicate"
	case ProgressSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("ProgressState(%d)", uint8(s))
}

// Progress is the leader's view of one follower (§5.3: nextIndex and
// matchIndex, plus flow control).
type Progress struct {
	// Match is the highest index known to be replicated on the follower.
	Match uint64
	// Next is the index of the next entry to send.
	Next uint64
	// State is probe or replicate.
	State ProgressState
	// ProbeSent is set in probe state after an append is sent, until the
	// follower answers.
	ProbeSent bool
	// RecentActive records whether the follower was heard from since the
	// last CheckQuorum round.
	RecentActive bool
	// LeaseAck is the send time, on the leader's clock, of the latest
	// heartbeat the follower acknowledged (0: none this term).
	LeaseAck uint64
	// Inflight is the window of appends sent but not yet acknowledged.
	Inflight inflights
	// IsLearner is set for a learner: it receives the log but does not
	// vote or count towards a quorum.
	IsLearner bool
	// PendingSnapshot is the index of the snapshot being sent, in snapshot
	// state.
	PendingSnapshot uint64
	// SnapshotAcked is the number of bytes of the snapshot's data the
	// follower has acknowledged, in snapshot state.
	SnapshotAcked uint64

	// snap is the snapshot being sent; snapSent the offset up to which
	// chunks were sent; snapAt the tick of the last chunk sent or
	// acknowledged (for the retry timeout).
	snap     *raftpb.Snapshot
	snapSent uint64
	snapAt   uint64
}

func (pr *Progress) String() string {
	if pr.State == ProgressSnapshot {
		return fmt.Sprintf("match=%d next=%d snapshot=%d acked=%d", pr.Match, pr.Next, pr.PendingSnapshot, pr.SnapshotAcked)
	}
	return fmt.Sprintf("match=%d next=%d %s inflight=%d", pr.Match, pr.Next, pr.State, pr.Inflight.count())
}

func (pr *Progress) becomeProbe() {
	if pr.State == ProgressSnapshot {
		// After a snapshot, probe from its end.
		pr.Next = max(pr.Next, pr.PendingSnapshot+1)
	}
	pr.clearSnapshot()
	pr.State = ProgressProbe
	pr.ProbeSent = false
	pr.Inflight.reset()
	pr.Next = max(pr.Next, pr.Match+1)
}

func (pr *Progress) clearSnapshot() {
	pr.PendingSnapshot, pr.SnapshotAcked, pr.snap, pr.snapSent, pr.snapAt = 0, 0, nil, 0, 0
}

// becomeSnapshot starts sending snap, at tick now.
func (pr *Progress) becomeSnapshot(snap *raftpb.Snapshot, now uint64) {
	pr.State = ProgressSnapshot
	pr.ProbeSent = false
	pr.Inflight.reset()
	pr.clearSnapshot()
	pr.PendingSnapshot = snap.Metadata.Index
	pr.snap = snap
	pr.snapAt = now
}

func (pr *Progress) becomeReplicate() {
	pr.clearSnapshot()
	pr.State = ProgressReplicate
	pr.ProbeSent = false
	pr.Inflight.reset()
	pr.Next = pr.Match + 1
}

// maybeUpdate records that the follower matches up to n; it reports whether
// that is news.
func (pr *Progress) maybeUpdate(n uint64) bool {
	updated := false
	if n > pr.Match {
		pr.Match = n
		pr.ProbeSent = false
		updated = true
	}
	pr.Next = max(pr.Next, n+1)
	return updated
}

// maybeDecrTo handles a rejection of the append whose previous index was
// rejected; next is where the leader's backtracking suggests probing. It
// reports false for a stale rejection, which is ignored.
func (pr *Progress) maybeDecrTo(rejected, next uint64) bool {
	if pr.State == ProgressSnapshot {
		return false // the snapshot decides where the follower resumes
	}
	if pr.State == ProgressReplicate {
		if rejected <= pr.Match {
			return false
		}
		pr.Next = max(pr.Match+1, min(rejected, next))
		pr.becomeProbe()
		return true
	}
	if pr.Next-1 != rejected {
		return false
	}
	pr.Next = max(pr.Match+1, min(rejected, next), 1)
	pr.ProbeSent = false
	return true
}

// isPaused reports whether the leader must hold further appends.
func (pr *Progress) isPaused() bool {
	switch pr.State {
	case ProgressProbe:
		return pr.ProbeSent
	case ProgressSnapshot:
		return true
	}
	return pr.Inflight.full()
}

// inflights is the sliding window of unacknowledged appends to one follower,
// bounded by count and by bytes.
type inflights struct {
	maxCount int
	maxBytes uint64 // 0: unbounded
	last     []uint64
	sizes    []uint64
	bytes    uint64
}

func (in *inflights) count() int { return len(in.last) }

func (in *inflights) full() bool {
	return len(in.last) >= in.maxCount || (in.maxBytes > 0 && in.bytes >= in.maxBytes)
}

func (in *inflights) add(last, size uint64) {
	in.last = append(in.last, last)
	in.sizes = append(in.sizes, size)
	in.bytes += size
}

// freeLE drops the appends whose last index is at most to.
func (in *inflights) freeLE(to uint64) {
	n := 0
	for n < len(in.last) && in.last[n] <= to {
		in.bytes -= in.sizes[n]
		n++
	}
	in.last = in.last[n:]
	in.sizes = in.sizes[n:]
}

func (in *inflights) freeFirst() {
	if len(in.last) > 0 {
		in.freeLE(in.last[0])
	}
}

func (in *inflights) reset() {
	in.last, in.sizes, in.bytes = nil, nil, 0
}

// quorumIndex returns the largest index that a majority of voters have
// matched: with the matches sorted in decreasing order, the one at position
// n/2 (0-based) is held by at least n/2+1 voters.
func quorumIndex(matches []uint64) uint64 {
	if len(matches) == 0 {
		return 0
	}
	s := slices.Clone(matches)
	slices.Sort(s)
	slices.Reverse(s)
	return s[len(s)/2]
}

// voteResult is the outcome of an election so far.
type voteResult uint8

const (
	votePending voteResult = iota
	voteWon
	voteLost
)

// tallyVotes counts the answers among voters: a majority of grants wins, a
// majority of rejections loses.
func tallyVotes(voters []uint64, votes map[uint64]bool) voteResult {
	granted, rejected := 0, 0
	for _, id := range voters {
		v, ok := votes[id]
		if !ok {
			continue
		}
		if v {
			granted++
		} else {
			rejected++
		}
	}
	q := len(voters)/2 + 1
	switch {
	case granted >= q:
		return voteWon
	case rejected >= q:
		return voteLost
	}
	return votePending
}
