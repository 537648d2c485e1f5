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
	data     map[string][]byte
	sessions map[uint64]*kvpb.Session
	applied  uint64
	// MaxSessions overrides DefaultMaxSessions when positive. It must be
	// the same on every member.
	MaxSessions int
}

var _ replog.StateMachine = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{data: map[string][]byte{}, sessions: map[uint64]*kvpb.Session{}}
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
func (s *Store) Apply(index uint64, command []byte) []byte {
	if index > s.applied {
		s.applied = index
	}
	var cmd kvpb.Command
	if err := proto.Unmarshal(command, &cmd); err != nil {
		return encode(&kvpb.Result{Error: "malformed command: " + err.Error(), Index: index})
	}
	if err := validate(&cmd); err != nil {
		return encode(&kvpb.Result{Error: err.Error(), Index: index})
	}
	sess := s.session(cmd.ClientId)
	if cmd.Seq < sess.AckedBelow {
		return encode(&kvpb.Result{Error: fmt.Sprintf("command %d of client %x was already acknowledged", cmd.Seq, cmd.ClientId), Index: index})
	}
	if r, ok := sess.Results[cmd.Seq]; ok {
		return encode(r) // a retry: the first result, not a second application
	}
	res := s.apply(&cmd)
	res.Index = index
	sess.Results[cmd.Seq] = res
	sess.LastIndex = index
	if old := sess.AckedBelow; cmd.AckedBelow > old {
		sess.AckedBelow = cmd.AckedBelow
		if cmd.AckedBelow-old <= uint64(len(sess.Results)) {
			for seq := old; seq < cmd.AckedBelow; seq++ {
				delete(sess.Results, seq)
			}
		} else {
			maps.DeleteFunc(sess.Results, func(seq uint64, _ *kvpb.Result) bool { return seq < sess.AckedBelow })
		}
	}
	for len(sess.Results) > MaxResultsPerSession {
		delete(sess.Results, slices.Min(slices.Collect(maps.Keys(sess.Results))))
	}
	return encode(res)
}

func (s *Store) apply(cmd *kvpb.Command) *kvpb.Result {
	switch op := cmd.Op.(type) {
	case *kvpb.Command_Put:
		s.data[op.Put.Key] = clone(op.Put.Value)
		return &kvpb.Result{Found: true}
	case *kvpb.Command_Delete:
		_, ok := s.data[op.Delete.Key]
		delete(s.data, op.Delete.Key)
		return &kvpb.Result{Found: ok}
	case *kvpb.Command_Cas:
		c := op.Cas
		cur, ok := s.data[c.Key]
		res := &kvpb.Result{Found: ok, Value: clone(cur)}
		if (c.ExpectAbsent && !ok) || (!c.ExpectAbsent && ok && string(cur) == string(c.Expected)) {
			s.data[c.Key] = clone(c.Value)
			res.Swapped = true
		}
		return res
	}
	return &kvpb.Result{Error: "command has no operation"}
}

// session returns the session of client, creating it (and forgetting the
// least recently active session if there are too many).
func (s *Store) session(client uint64) *kvpb.Session {
	if sess, ok := s.sessions[client]; ok {
		return sess
	}
	limit := s.MaxSessions
	if limit <= 0 {
		limit = DefaultMaxSessions
	}
	for len(s.sessions) >= limit {
		var oldest *kvpb.Session
		for _, x := range s.sessions {
			if oldest == nil || x.LastIndex < oldest.LastIndex ||
				(x.LastIndex == oldest.LastIndex && x.ClientId < oldest.ClientId) {
				oldest = x
			}
		}
		delete(s.sessions, oldest.ClientId)
	}
	sess := &kvpb.Session{ClientId: client, Results: map[uint64]*kvpb.Result{}}
	s.sessions[client] = sess
	return sess
}

func validate(cmd *kvpb.Command) error {
	if cmd.ClientId == 0 || cmd.Seq == 0 {
		return errors.New("command without client session (client id and seq must be non-zero)")
	}
	var key string
	var values [][]byte
	switch op := cmd.Op.(type) {
	case *kvpb.Command_Put:
		key, values = op.Put.GetKey(), [][]byte{op.Put.GetValue()}
	case *kvpb.Command_Delete:
		key = op.Delete.GetKey()
	case *kvpb.Command_Cas:
		key, values = op.Cas.GetKey(), [][]byte{op.Cas.GetExpected(), op.Cas.GetValue()}
	default:
		return errors.New("command has no operation")
	}
	if err := checkKey(key); err != nil {
		return err
	}
	for _, v := range values {
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
	v, ok := s.data[q.Key]
	return encode(&kvpb.Result{Found: ok, Value: clone(v)}), nil
}

// Snapshot encodes the data and the sessions, sorted so that equal stores
// give equal bytes.
func (s *Store) Snapshot() ([]byte, error) {
	snap := &kvpb.Snapshot{Applied: s.applied}
	for _, k := range slices.Sorted(maps.Keys(s.data)) {
		snap.Pairs = append(snap.Pairs, &kvpb.Pair{Key: k, Value: s.data[k]})
	}
	for _, id := range slices.Sorted(maps.Keys(s.sessions)) {
		snap.Sessions = append(snap.Sessions, s.sessions[id])
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(snap)
}

// Restore replaces the store's state by a snapshot.
func (s *Store) Restore(snapshot []byte) error {
	var snap kvpb.Snapshot
	if err := proto.Unmarshal(snapshot, &snap); err != nil {
		return fmt.Errorf("kv: malformed snapshot: %w", err)
	}
	data := make(map[string][]byte, len(snap.Pairs))
	for _, p := range snap.Pairs {
		data[p.Key] = p.Value
	}
	sessions := make(map[uint64]*kvpb.Session, len(snap.Sessions))
	for _, x := range snap.Sessions {
		if x.Results == nil {
			x.Results = map[uint64]*kvpb.Result{}
		}
		sessions[x.ClientId] = x
	}
	s.data, s.sessions, s.applied = data, sessions, snap.Applied
	return nil
}

// Equal reports whether two stores hold the same data (sessions aside).
func (s *Store) Equal(o *Store) bool {
	return maps.EqualFunc(s.data, o.data, func(a, b []byte) bool { return string(a) == string(b) })
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func encode(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("kv: encoding %T: %v", m, err)) // only for invalid UTF-8 in strings, which decoding rejects
	}
	return b
}
