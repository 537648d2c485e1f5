package core

import (
	"errors"
	"sync"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrCompacted is returned by Storage when the requested index precedes the
// first available entry. (Compaction is not implemented yet; the sentinel is
// part of the interface so storages can already report it.)
var ErrCompacted = errors.New("raft: requested index is compacted")

// ErrUnavailable is returned by Storage when the requested entries are past
// the last index.
var ErrUnavailable = errors.New("raft: requested entry is unavailable")

// Storage is the core's read-only view of what has been persisted. The
// caller writes to its durable store (and keeps this view in step) after each
// Ready, before calling Advance; the core never writes through it.
//
// Entries before FirstIndex are gone (compacted); the entry at
// FirstIndex()-1 still has a known Term (index 0 has term 0).
type Storage interface {
	// InitialState returns the persisted hard state (zero for a new node).
	InitialState() (*raftpb.HardState, error)
	// Entries returns the entries in [lo, hi), at least one if lo < hi and
	// then as many more as fit in maxSize bytes.
	Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error)
	// Term returns the term of the entry at index i, for i in
	// [FirstIndex()-1, LastIndex()].
	Term(i uint64) (uint64, error)
	// LastIndex returns the index of the last persisted entry (0 if none).
	LastIndex() (uint64, error)
	// FirstIndex returns the index of the first available entry (1 until
	// compaction exists).
	FirstIndex() (uint64, error)
}

// MemoryStorage is a Storage held in memory: the in-memory twin of a durable
// store, used by tests and simulations. Safe for concurrent use.
type MemoryStorage struct {
	mu sync.Mutex
	hs *raftpb.HardState
	// ents[0] is a dummy standing for the entry at FirstIndex()-1; its
	// Index and Term are those of that entry (0 and 0 before compaction).
	ents []*raftpb.Entry
}

// NewMemoryStorage returns an empty storage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{hs: &raftpb.HardState{}, ents: []*raftpb.Entry{{}}}
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
