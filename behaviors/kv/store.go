// Package kv is a replicated key-value store: a deterministic state machine
// (Store) with put, get, delete and compare-and-swap, and a typed Client. It
// is written against behaviors/replog, so any replicated log — Raft today —
// can serve it, and the same linearizability checks (kvcheck) apply to each.
//
// Writes carry a client session (client id and sequence number, Raft thesis
// §6.3): the Store remembers each session's recent results, so a command that
// a client retries after a timeout or a leader change is applied once and
// the retry gets the first result. Reads are queries evaluated by the
// replicated log's linearizable read path (for Raft, ReadIndex).
package kv

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/behaviors/kv/kvpb"
	"github.com/distributed-go/distributed/behaviors/replog"
)

// Limits on what the Store accepts and remembers.
const (
	// MaxKeySize is the longest key, in bytes.
	MaxKeySize = 4 << 10
	// MaxValueSize is the largest value, in bytes.
	MaxValueSize = 1 << 20
	// DefaultMaxSessions is how many client sessions a Store remembers; when
	// a new client would exceed it, the least recently active session is
	// forgotten (its retries can then no longer be deduplicated).
	DefaultMaxSessions = 10000
	// MaxResultsPerSession bounds the results kept for one client's
	// unacknowledged commands (the oldest go first).
	MaxResultsPerSession = 1024
)

// Store is the key-value state machine. It implements replog.StateMachine.
// Like every state machine it is used from one goroutine at a time.
type Store struct {
	// data holds a pointer to each value so that a write to a present key
	// neither allocates the key again nor, when it fits, the value: values
	// are overwritten in place, so none may leave the store uncopied.
	data     map[string]*[]byte
	sessions map[uint64]*session
	applied  uint64
	// MaxSessions overrides DefaultMaxSessions when positive. It must be
	// the same on every member.
	MaxSessions int
}

// session is what the store remembers of one client (kvpb.Session in
// snapshots).
type session struct {
	clientID   uint64
	ackedBelow uint64
	lastIndex  uint64
	// results of seqs >= ackedBelow, sorted by seq. A client has few
	// commands in flight, and their seqs arrive nearly in order.
	results []seqResult
}

type seqResult struct {
	seq uint64
	res result
}

// find returns the position of seq in results and whether it is there.
func (x *session) find(seq uint64) (int, bool) {
	r := x.results
	if len(r) > 8 {
		return slices.BinarySearchFunc(r, seq, func(r seqResult, seq uint64) int { return cmp.Compare(r.seq, seq) })
	}
	i := len(r) // usually a client has one command in flight: look from the end
	for i > 0 && r[i-1].seq >= seq {
		i--
	}
	return i, i < len(r) && r[i].seq == seq
}

var _ replog.StateMachine = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{data: map[string]*[]byte{}, sessions: map[uint64]*session{}}
}

// Len returns the number of keys.
func (s *Store) Len() int { return len(s.data) }

// Sessions returns the number of client sessions remembered.
func (s *Store) Sessions() int { return len(s.sessions) }

// Applied returns the index of the last command applied.
func (s *Store) Applied() uint64 { return s.applied }

// Apply applies one encoded kvpb.Command and returns an encoded kvpb.Result.
// A malformed command, or a retry of a command whose result the client has
// already acknowledged, leaves the store unchanged and returns a Result with
// Error set.
func (s *Store) Apply(index uint64, b []byte) []byte {
	if index > s.applied {
		s.applied = index
	}
	var cmd command
	if err := decodeCommand(b, &cmd); err != nil {
		return encodeResult(&result{err: "malformed command: " + err.Error(), index: index})
	}
	if err := validate(&cmd); err != nil {
		return encodeResult(&result{err: err.Error(), index: index})
	}
	sess := s.session(cmd.clientID)
	if cmd.seq < sess.ackedBelow {
		return encodeResult(&result{err: fmt.Sprintf("command %d of client %x was already acknowledged", cmd.seq, cmd.clientID), index: index})
	}
	at, ok := sess.find(cmd.seq)
	if ok {
		return encodeResult(&sess.results[at].res) // a retry: the first result, not a second application
	}
	res := s.apply(&cmd)
	res.index = index
	sess.results = slices.Insert(sess.results, at, seqResult{seq: cmd.seq, res: res})
	sess.lastIndex = index
	if cmd.ackedBelow > sess.ackedBelow {
		sess.ackedBelow = cmd.ackedBelow
		drop, _ := sess.find(cmd.ackedBelow)
		sess.results = slices.Delete(sess.results, 0, drop)
	}
	if over := len(sess.results) - MaxResultsPerSession; over > 0 {
		sess.results = slices.Delete(sess.results, 0, over) // the oldest
	}
	return encodeResult(&res)
}

func (s *Store) apply(cmd *command) result {
	switch cmd.op {
	case opPut:
		s.set(cmd.key, cmd.value)
		return result{found: true}
	case opDelete:
		_, ok := s.data[string(cmd.key)]
		delete(s.data, string(cmd.key))
		return result{found: ok}
	case opCas:
		p, ok := s.data[string(cmd.key)]
		var cur []byte
		if ok {
			cur = *p
		}
		res := result{found: ok, value: clone(cur)}
		if (cmd.expectAbsent && !ok) || (!cmd.expectAbsent && ok && string(cur) == string(cmd.expected)) {
			s.set(cmd.key, cmd.value)
			res.swapped = true
		}
		return res
	}
	return result{err: "command has no operation"}
}

// set sets key to a copy of value.
func (s *Store) set(key, value []byte) {
	if p, ok := s.data[string(key)]; ok {
		*p = append((*p)[:0], value...)
		return
	}
	v := clone(value)
	s.data[string(key)] = &v
}

// session returns the session of client, creating it (and forgetting the
// least recently active session if there are too many).
func (s *Store) session(client uint64) *session {
	if sess, ok := s.sessions[client]; ok {
		return sess
	}
	limit := s.MaxSessions
	if limit <= 0 {
		limit = DefaultMaxSessions
	}
	for len(s.sessions) >= limit {
		var oldest *session
		for _, x := range s.sessions {
			if oldest == nil || x.lastIndex < oldest.lastIndex ||
				(x.lastIndex == oldest.lastIndex && x.clientID < oldest.clientID) {
				oldest = x
			}
		}
		delete(s.sessions, oldest.clientID)
	}
	sess := &session{clientID: client}
	s.sessions[client] = sess
	return sess
}

func validate(cmd *command) error {
	if cmd.clientID == 0 || cmd.seq == 0 {
		return errors.New("command without client session (client id and seq must be non-zero)")
	}
	if cmd.op == opNone {
		return errors.New("command has no operation")
	}
	return validateOp(cmd)
}

// validateOp checks the key and values of cmd's operation.
func validateOp(cmd *command) error {
	if err := checkKeyBytes(cmd.key); err != nil {
		return err
	}
	for _, v := range [...][]byte{cmd.value, cmd.expected} {
		if len(v) > MaxValueSize {
			return fmt.Errorf("value of %d bytes exceeds the limit of %d", len(v), MaxValueSize)
		}
	}
	return nil
}

func checkKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("key of %d bytes exceeds the limit of %d", len(key), MaxKeySize)
	}
	return nil
}

func checkKeyBytes(key []byte) error {
	if len(key) == 0 {
		return errors.New("empty key")
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("key of %d bytes exceeds the limit of %d", len(key), MaxKeySize)
	}
	return nil
}

// Query evaluates an encoded kvpb.Query (a get) and returns an encoded
// kvpb.Result.
func (s *Store) Query(query []byte) ([]byte, error) {
	var q kvpb.Query
	if err := proto.Unmarshal(query, &q); err != nil {
		return nil, fmt.Errorf("kv: malformed query: %w", err)
	}
	if err := checkKey(q.Key); err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	var v []byte
	p, ok := s.data[q.Key]
	if ok {
		v = *p
	}
	return encodeResult(&result{found: ok, value: clone(v)}), nil
}

// Snapshot encodes the data and the sessions, sorted so that equal stores
// give equal bytes.
func (s *Store) Snapshot() ([]byte, error) {
	snap := &kvpb.Snapshot{Applied: s.applied}
	for _, k := range slices.Sorted(maps.Keys(s.data)) {
		snap.Pairs = append(snap.Pairs, &kvpb.Pair{Key: k, Value: *s.data[k]})
	}
	for _, id := range slices.Sorted(maps.Keys(s.sessions)) {
		x := s.sessions[id]
		ps := &kvpb.Session{ClientId: x.clientID, AckedBelow: x.ackedBelow, LastIndex: x.lastIndex,
			Results: make(map[uint64]*kvpb.Result, len(x.results))}
		for _, r := range x.results {
			ps.Results[r.seq] = r.res.proto()
		}
		snap.Sessions = append(snap.Sessions, ps)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(snap)
}

// Restore replaces the store's state by a snapshot.
func (s *Store) Restore(snapshot []byte) error {
	var snap kvpb.Snapshot
	if err := proto.Unmarshal(snapshot, &snap); err != nil {
		return fmt.Errorf("kv: malformed snapshot: %w", err)
	}
	data := make(map[string]*[]byte, len(snap.Pairs))
	for _, p := range snap.Pairs {
		data[p.Key] = &p.Value
	}
	sessions := make(map[uint64]*session, len(snap.Sessions))
	for _, x := range snap.Sessions {
		sess := &session{clientID: x.ClientId, ackedBelow: x.AckedBelow, lastIndex: x.LastIndex,
			results: make([]seqResult, 0, len(x.Results))}
		for _, seq := range slices.Sorted(maps.Keys(x.Results)) {
			sess.results = append(sess.results, seqResult{seq: seq, res: resultOf(x.Results[seq])})
		}
		sessions[x.ClientId] = sess
	}
	s.data, s.sessions, s.applied = data, sessions, snap.Applied
	return nil
}

// Equal reports whether two stores hold the same data (sessions aside).
func (s *Store) Equal(o *Store) bool {
	return maps.EqualFunc(s.data, o.data, func(a, b *[]byte) bool { return string(*a) == string(*b) })
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
