package core

import (
	"errors"
	"fmt"
	"sync"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrCompacted is returned by Storage when the requested index precedes the
// first available entry: the log up to there was compacted into a snapshot.
var ErrCompacted = errors.New("raft: requested index is compacted")

// ErrSnapOutOfDate is returned when a snapshot to apply or create is not
// newer than the storage's current snapshot.
var ErrSnapOutOfDate = errors.New("raft: requested snapshot is older than the existing snapshot")

// ErrSnapshotTemporarilyUnavailable may be returned by Storage.Snapshot when
// a snapshot is being prepared; the leader tries again later.
var ErrSnapshotTemporarilyUnavailable = errors.New("raft: snapshot is temporarily unavailable")

// ErrUnavailable is returned by Storage when the requested entries are past
// the last index.
var ErrUnavailable = errors.New("raft: requested entry is unavailable")

// Storage is the core's read-only view of what has been persisted. The
// caller writes to its durable store (and keeps this view in step) after each
// Ready, before calling Advance; the core never writes through it.
//
// Entries before FirstIndex are gone (compacted into the snapshot); the
// entry at FirstIndex()-1 still has a known Term (index 0 has term 0).
//
// On start the core takes its configuration from Snapshot's
// metadata.conf_state when that lists voters, and from Config.Peers
// otherwise.
type Storage interface {
	// InitialState returns the persisted hard state (zero for a new node).
	InitialState() (*raftpb.HardState, error)
	// Snapshot returns the most recent snapshot: an empty one (index 0, no
	// data, empty conf state) if there is none. A leader sends it to a
	// follower that needs compacted entries. It may return
	// ErrSnapshotTemporarilyUnavailable; the leader then tries again later.
	// The core never modifies the returned snapshot.
	Snapshot() (*raftpb.Snapshot, error)
	// Entries returns the entries in [lo, hi), at least one if lo < hi and
	// then as many more as fit in maxSize bytes.
	Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error)
	// Term returns the term of the entry at index i, for i in
	// [FirstIndex()-1, LastIndex()].
	Term(i uint64) (uint64, error)
	// LastIndex returns the index of the last persisted entry (0 if none).
	LastIndex() (uint64, error)
	// FirstIndex returns the index of the first available entry: 1, or the
	// index after the last compaction or applied snapshot.
	FirstIndex() (uint64, error)
}

// MemoryStorage is a Storage held in memory: the in-memory twin of a durable
// store, used by tests and simulations. Safe for concurrent use.
type MemoryStorage struct {
	mu   sync.Mutex
	hs   *raftpb.HardState
	snap *raftpb.Snapshot
	// ents[0] is a dummy standing for the entry at FirstIndex()-1; its
	// Index and Term are those of that entry (0 and 0 before compaction).
	ents []*raftpb.Entry
	// gen counts the changes to ents, so that tests can tell cheaply
	// whether the log changed.
	gen uint64
}

// NewMemoryStorage returns an empty storage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{hs: &raftpb.HardState{}, ents: []*raftpb.Entry{{}}, snap: emptySnapshot()}
}

func emptySnapshot() *raftpb.Snapshot {
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{ConfState: &raftpb.ConfState{}}}
}

// Snapshot implements Storage. The returned snapshot is shared and must not
// be modified.
func (s *MemoryStorage) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, nil
}

// ApplySnapshot replaces the whole log with snap, as a follower does with a
// snapshot from its leader (Ready.Snapshot): afterwards FirstIndex is
// snap's index+1 and LastIndex its index. It returns ErrSnapOutOfDate if
// snap is not newer than the current snapshot. snap is kept by reference.
func (s *MemoryStorage) ApplySnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	if md == nil {
		return errors.New("raft: snapshot without metadata")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if md.Index <= s.snap.Metadata.Index {
		return ErrSnapOutOfDate
	}
	s.snap = snap
	s.ents = []*raftpb.Entry{{Index: md.Index, Term: md.Term}}
	s.gen++
	return nil
}

// CreateSnapshot records a snapshot of the state machine after applying the
// log up to index i, whose configuration then was cs, and returns it. i
// must be in (current snapshot index, LastIndex()] and still in the log
// (not compacted). It does not compact: call Compact for that. data is kept
// by reference.
func (s *MemoryStorage) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i <= s.snap.Metadata.Index {
		return nil, ErrSnapOutOfDate
	}
	if i > s.last() {
		return nil, fmt.Errorf("raft: snapshot index %d is past the last index %d: %w", i, s.last(), ErrUnavailable)
	}
	if i < s.offset() {
		return nil, ErrCompacted
	}
	if cs == nil {
		cs = &raftpb.ConfState{}
	}
	s.snap = &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
		Index: i, Term: s.ents[i-s.offset()].Term, ConfState: proto.Clone(cs).(*raftpb.ConfState),
	}}
	return s.snap, nil
}

// Compact discards the entries up to and including i, which must be in
// [FirstIndex(), LastIndex()]. The caller compacts only what a durable
// snapshot covers; afterwards Term(i) still answers.
func (s *MemoryStorage) Compact(i uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	off := s.offset()
	if i <= off {
		return ErrCompacted
	}
	if i > s.last() {
		return fmt.Errorf("raft: compact %d past the last index %d: %w", i, s.last(), ErrUnavailable)
	}
	kept := make([]*raftpb.Entry, 1, 1+s.last()-i)
	kept[0] = &raftpb.Entry{Index: i, Term: s.ents[i-off].Term}
	s.ents = append(kept, s.ents[i-off+1:]...)
	s.gen++
	return nil
}

// InitialState implements Storage.
func (s *MemoryStorage) InitialState() (*raftpb.HardState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return proto.Clone(s.hs).(*raftpb.HardState), nil
}

// SetHardState persists hs.
func (s *MemoryStorage) SetHardState(hs *raftpb.HardState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hs = proto.Clone(hs).(*raftpb.HardState)
}

// HardState returns a copy of the persisted hard state.
func (s *MemoryStorage) HardState() *raftpb.HardState {
	hs, _ := s.InitialState()
	return hs
}

func (s *MemoryStorage) offset() uint64 { return s.ents[0].Index }
func (s *MemoryStorage) last() uint64   { return s.offset() + uint64(len(s.ents)) - 1 }

// Entries implements Storage.
func (s *MemoryStorage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off := s.offset()
	if lo <= off {
		return nil, ErrCompacted
	}
	if hi > s.last()+1 {
		return nil, ErrUnavailable
	}
	if lo >= hi {
		return nil, nil
	}
	ents := s.ents[lo-off : hi-off]
	return limitSize(append([]*raftpb.Entry(nil), ents...), maxSize), nil
}

// Term implements Storage.
func (s *MemoryStorage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off := s.offset()
	if i < off {
		return 0, ErrCompacted
	}
	if i > s.last() {
		return 0, ErrUnavailable
	}
	return s.ents[i-off].Term, nil
}

// LastIndex implements Storage.
func (s *MemoryStorage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last(), nil
}

// FirstIndex implements Storage.
func (s *MemoryStorage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset() + 1, nil
}

// Append persists ents, which must be contiguous and start no later than
// LastIndex()+1. Persisted entries from ents[0].Index on are replaced, as a
// follower's log is when a leader overwrites a conflicting suffix. Entries
// are stored by reference and must not be modified afterwards.
func (s *MemoryStorage) Append(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := ents[0].Index
	if first <= s.offset() {
		return ErrCompacted
	}
	if first > s.last()+1 {
		return ErrUnavailable
	}
	s.ents = append(s.ents[:first-s.offset()], ents...)
	s.gen++
	return nil
}

// limitSize returns the longest prefix of ents, at least one entry, whose
// total size is within maxSize.
func limitSize(ents []*raftpb.Entry, maxSize uint64) []*raftpb.Entry {
	if len(ents) == 0 || maxSize == noLimit {
		return ents
	}
	size := entSize(ents[0])
	for i := 1; i < len(ents); i++ {
		size += entSize(ents[i])
		if size > maxSize {
			return ents[:i]
		}
	}
	return ents
}

// noLimit is a maxSize that bounds nothing.
const noLimit = ^uint64(0)

// entSize is the size of an entry for flow control: its data plus a fixed
// allowance for the framing (term, index, type), which is cheaper than
// computing the exact encoded size and close enough for a budget.
func entSize(e *raftpb.Entry) uint64 { return uint64(len(e.Data)) + 24 }

func entsSize(ents []*raftpb.Entry) uint64 {
	var n uint64
	for _, e := range ents {
		n += entSize(e)
	}
	return n
}
