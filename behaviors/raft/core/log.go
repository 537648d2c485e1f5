package core

import (
	"fmt"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// raftLog is the log as the core sees it: the persisted prefix (read through
// Storage) followed by unstable entries not yet handed back through Advance.
//
//	storage: [first ........ stableLast]
//	unstable:                 [offset ..... lastIndex]
//
// The unstable part may start at or below the storage's last index: a
// follower that must replace a conflicting suffix keeps the replacement in
// unstable until the caller has overwritten it in storage.
//
// A follower that restores a snapshot from its leader keeps it in snap
// until the caller has persisted it; meanwhile the storage is stale, the
// log starts after the snapshot and every entry is unstable.
type raftLog struct {
	storage Storage
	// snap is a snapshot received from the leader and not yet persisted.
	snap *raftpb.Snapshot
	// unstable holds entries from offset on that are not yet persisted.
	unstable []*raftpb.Entry
	offset   uint64
	// committed is the highest index known to be committed.
	committed uint64
	// applied is the highest index handed to the application and
	// acknowledged through Advance.
	applied uint64
	logger  Logger
}

func newLog(s Storage, logger Logger) (*raftLog, error) {
	last, err := s.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("raft: storage LastIndex: %w", err)
	}
	first, err := s.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("raft: storage FirstIndex: %w", err)
	}
	return &raftLog{storage: s, offset: last + 1, committed: first - 1, applied: first - 1, logger: logger}, nil
}

func (l *raftLog) firstIndex() uint64 {
	if l.snap != nil {
		return l.snap.Metadata.Index + 1
	}
	i, err := l.storage.FirstIndex()
	if err != nil {
		panic(fmt.Sprintf("raft: storage FirstIndex: %v", err))
	}
	return i
}

func (l *raftLog) lastIndex() uint64 {
	if n := len(l.unstable); n > 0 {
		return l.offset + uint64(n) - 1
	}
	if l.snap != nil {
		return l.snap.Metadata.Index
	}
	i, err := l.storage.LastIndex()
	if err != nil {
		panic(fmt.Sprintf("raft: storage LastIndex: %v", err))
	}
	return i
}

// term returns the term of the entry at i, or an error if i is compacted or
// beyond the last index.
func (l *raftLog) term(i uint64) (uint64, error) {
	if len(l.unstable) > 0 && i >= l.offset {
		if i > l.lastIndex() {
			return 0, ErrUnavailable
		}
		return l.unstable[i-l.offset].Term, nil
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	if l.snap != nil {
		switch md := l.snap.Metadata; {
		case i == md.Index:
			return md.Term, nil
		case i < md.Index:
			return 0, ErrCompacted
		}
	}
	return l.storage.Term(i)
}

// snapshot returns the snapshot a leader sends to a follower that needs
// compacted entries.
func (l *raftLog) snapshot() (*raftpb.Snapshot, error) {
	if l.snap != nil {
		return l.snap, nil
	}
	return l.storage.Snapshot()
}

// restore replaces the log with the snapshot s, which covers committed
// entries beyond the commit index.
func (l *raftLog) restore(s *raftpb.Snapshot) {
	l.committed = s.Metadata.Index
	l.snap = s
	l.unstable = nil
	l.offset = s.Metadata.Index + 1
}

// stableSnapTo forgets the pending snapshot once the caller has persisted
// it.
func (l *raftLog) stableSnapTo(i uint64) {
	if l.snap != nil && l.snap.Metadata.Index == i {
		l.snap = nil
	}
}

// mustTerm is term for indices known to exist; a failure there is a broken
// invariant (or a broken storage), not a network input.
func (l *raftLog) mustTerm(i uint64) uint64 {
	t, err := l.term(i)
	if err != nil {
		panic(fmt.Sprintf("raft: term(%d): %v", i, err))
	}
	return t
}

func (l *raftLog) lastTerm() uint64 { return l.mustTerm(l.lastIndex()) }

func (l *raftLog) matchTerm(i, t uint64) bool {
	tt, err := l.term(i)
	return err == nil && tt == t
}

// isUpToDate reports whether a log ending at (lasti, term) is at least as
// up-to-date as this one (§5.4.1): a later last term wins; with equal last
// terms the longer log wins.
func (l *raftLog) isUpToDate(lasti, term uint64) bool {
	lt := l.lastTerm()
	return term > lt || (term == lt && lasti >= l.lastIndex())
}

// append adds entries after the current last index, or replaces the suffix
// from ents[0].Index on. It never touches committed entries.
func (l *raftLog) append(ents ...*raftpb.Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	after := ents[0].Index - 1
	if after < l.committed {
		panic(fmt.Sprintf("raft: append after %d would overwrite committed index %d", after, l.committed))
	}
	switch {
	case len(l.unstable) > 0 && after+1 == l.offset+uint64(len(l.unstable)):
		l.unstable = append(l.unstable, ents...)
	case len(l.unstable) > 0 && after+1 > l.offset:
		// Replace part of the unstable suffix; copy so that a slice handed
		// out earlier (a Ready) is not overwritten.
		kept := append([]*raftpb.Entry(nil), l.unstable[:after+1-l.offset]...)
		l.unstable = append(kept, ents...)
	default:
		// Start (or restart) unstable at ents[0].Index: persisted entries
		// from there on will be replaced by the caller.
		l.offset = after + 1
		l.unstable = append([]*raftpb.Entry(nil), ents...)
	}
	return l.lastIndex()
}

// findConflict returns the index of the first entry of ents that is not in
// the log (absent, or present with a different term), or 0 if all are.
func (l *raftLog) findConflict(ents []*raftpb.Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// maybeAppend applies an AppendEntries whose entries follow (index, logTerm).
// It returns the last index now known to match the leader, and false if the
// log does not contain (index, logTerm).
//
// An append that would replace a committed entry is refused with an error:
// a correct leader never sends one, so it is a bug or a forgery, and the
// log must not be damaged by it.
func (l *raftLog) maybeAppend(index, logTerm, committed uint64, ents []*raftpb.Entry) (uint64, bool, error) {
	if !l.matchTerm(index, logTerm) {
		return 0, false, nil
	}
	lastNew := index + uint64(len(ents))
	// Figure 2, AppendEntries rule 3: delete only what conflicts; entries
	// already present are kept, so a stale, shorter AppendEntries never
	// truncates what a newer one appended.
	if ci := l.findConflict(ents); ci != 0 {
		if ci <= l.committed {
			return 0, false, fmt.Errorf("entry %d conflicts with a committed entry (commit index %d)", ci, l.committed)
		}
		l.append(ents[ci-index-1:]...)
	}
	l.commitTo(min(committed, lastNew))
	return lastNew, true, nil
}

func (l *raftLog) commitTo(i uint64) {
	if i > l.committed {
		if last := l.lastIndex(); i > last {
			panic(fmt.Sprintf("raft: commit %d is past the last index %d", i, last))
		}
		l.committed = i
	}
}

// slice returns entries in [lo, hi) bounded by maxSize (at least one).
func (l *raftLog) slice(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	if lo >= hi {
		return nil, nil
	}
	if lo < l.firstIndex() {
		return nil, ErrCompacted
	}
	if hi > l.lastIndex()+1 {
		return nil, ErrUnavailable
	}
	var ents []*raftpb.Entry
	if len(l.unstable) == 0 || lo < l.offset {
		shi := hi
		if len(l.unstable) > 0 {
			shi = min(hi, l.offset)
		}
		stored, err := l.storage.Entries(lo, shi, maxSize)
		if err != nil {
			return nil, err
		}
		if uint64(len(stored)) < shi-lo {
			return stored, nil // size limit reached
		}
		ents = stored
	}
	if len(l.unstable) > 0 && hi > l.offset {
		ulo := max(lo, l.offset)
		ents = append(ents, l.unstable[ulo-l.offset:hi-l.offset]...)
	}
	return limitSize(ents, maxSize), nil
}

// unstableEntries returns the entries the caller must persist.
func (l *raftLog) unstableEntries() []*raftpb.Entry { return l.unstable }

// stableTo forgets unstable entries up to (i, t) once the caller has
// persisted them. A mismatch means the entries were replaced meanwhile and
// must still be persisted.
func (l *raftLog) stableTo(i, t uint64) {
	if len(l.unstable) == 0 || i < l.offset || i > l.lastIndex() {
		return
	}
	if l.unstable[i-l.offset].Term != t {
		return
	}
	l.unstable = l.unstable[i+1-l.offset:]
	l.offset = i + 1
	if len(l.unstable) == 0 {
		l.unstable = nil
	}
}

// nextCommitted returns the committed entries not yet applied.
func (l *raftLog) nextCommitted(maxSize uint64) []*raftpb.Entry {
	if l.committed <= l.applied || l.snap != nil {
		// A pending snapshot is applied first.
		return nil
	}
	ents, err := l.slice(l.applied+1, l.committed+1, maxSize)
	if err != nil {
		panic(fmt.Sprintf("raft: committed entries (%d, %d]: %v", l.applied, l.committed, err))
	}
	return ents
}

func (l *raftLog) appliedTo(i uint64) {
	if i == 0 {
		return
	}
	if i > l.committed || i < l.applied {
		panic(fmt.Sprintf("raft: applied %d out of range [%d, %d]", i, l.applied, l.committed))
	}
	l.applied = i
}
