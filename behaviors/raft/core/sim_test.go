package core

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

var (
	flagSeeds = flag.Int("raft.seeds", 200, "number of seeds the Raft simulator runs")
	flagSteps = flag.Int("raft.steps", 300, "steps per seed in the Raft simulator")
	flagSeed  = flag.Int64("raft.seed", -1, "run only this simulator seed (replay a failure)")
	flagTrace = flag.Int("raft.trace", 40, "simulator steps shown when a check fails")
)

// simFaults are the per-seed fault rates.
type simFaults struct {
	drop, dup  float64 // per message
	maxDelay   int     // ticks
	crash      float64 // per step
	partition  float64 // per step
	noFaultsAt bool
}

type simNode struct {
	id       uint64
	rn       *RawNode // nil while crashed
	st       *MemoryStorage
	applied  uint64 // last index applied since the last restart
	restarts int
	// digest is the state machine: a hash chained over every entry
	// applied, restored from snapshots. cs is the configuration the
	// application last learned (ApplyConfChange or a snapshot).
	digest uint64
	cs     *raftpb.ConfState
	// commit is the persisted commit index.
	commit uint64
}

type simMsg struct {
	m  *raftpb.Message
	at int // first tick at which it may be delivered
}

type simRead struct {
	minIndex uint64 // highest commit index known anywhere when requested
}

// sim is a seeded simulation of a Raft cluster over a faulty network. It
// checks the safety properties of Figure 3 after every step.
type sim struct {
	t      testing.TB
	seed   int64
	rng    *rand.Rand
	f      simFaults
	nodes  []*simNode
	peers  []uint64
	opts   []option
	now    int
	flight []simMsg
	// side is the partition: nodes on different sides cannot talk. nil: no
	// partition.
	side map[uint64]int

	// Observations for the safety checks.
	leaders   map[uint64]uint64 // term -> leader id (Election Safety)
	applied   map[uint64]*raftpb.Entry
	committed []committedAt // entry i+1 and the earliest term it was seen committed
	// matching maps (index, term) to the entry's data and the previous
	// entry's term, for Log Matching.
	matching map[logKey]logVal
	// checked caches, per node, the log as of the last check (entries are
	// immutable, so an unchanged pointer is an unchanged entry).
	checked [][]*raftpb.Entry
	// logs caches, per node, the log as of the last check and what it was
	// computed from, so that an unchanged log is neither copied nor
	// checked again.
	logs    []simLog
	logKeys []simLogKey
	// verified is, per node, the leader term and the committed prefix
	// already found in that leader's log.
	verified []leaderCheck
	reads    map[string]simRead
	// digests maps an index to the state machine digest after applying
	// the log up to it (State Machine Safety through snapshots).
	digests map[uint64]uint64
	// compact is the per-step probability that a node snapshots and
	// compacts; confChange that a node proposes a membership change.
	compact, confChange float64
	// universe is every node id; peers the bootstrap voters among them.
	universe                         []uint64
	snapshots, restores, confChanges int
	// props are the client proposals applied, in the order first applied.
	props    []appliedProp
	quiet    bool // no client requests
	nextProp int
	nextRead int
	step     int
	trace    []traceLine
}

// traceLine is formatted only when a failure is reported.
type traceLine struct {
	step   int
	format string
	args   []any
}

type logKey struct{ index, term uint64 }

type appliedProp struct {
	k     int // the proposal's number: data "p<k>"
	index uint64
}

type logVal struct {
	data     []byte
	prevTerm uint64
}

type leaderCheck struct{ term, upTo uint64 }

type committedAt struct {
	e    *raftpb.Entry
	term uint64
}

// simOpts are what a simulation exercises beyond the core's options.
type simOpts struct {
	// compact: nodes snapshot and compact their logs at random, so that
	// lagging and restarted nodes catch up by chunked InstallSnapshot.
	compact bool
	// spares nodes start outside the cluster; with confChange, random
	// membership changes (voters, learners, joint consensus) add and
	// remove nodes.
	spares     int
	confChange bool
}

func newSim(t testing.TB, seed int64, n int, f simFaults, opts ...option) *sim {
	return newSimWith(t, seed, n, f, simOpts{}, opts...)
}

func newSimWith(t testing.TB, seed int64, n int, f simFaults, so simOpts, opts ...option) *sim {
	s := &sim{
		t: t, seed: seed, f: f, opts: opts,
		rng:      rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
		leaders:  map[uint64]uint64{},
		applied:  map[uint64]*raftpb.Entry{},
		matching: map[logKey]logVal{},
		reads:    map[string]simRead{},
		digests:  map[uint64]uint64{},
	}
	if so.compact {
		s.compact = []float64{0.01, 0.05, 0.2}[seed%3]
	}
	if so.confChange {
		s.confChange = []float64{0.01, 0.03, 0.1}[(seed/3)%3]
	}
	for i := 1; i <= n+so.spares; i++ {
		if i <= n {
			s.peers = append(s.peers, uint64(i))
		}
		s.universe = append(s.universe, uint64(i))
	}
	for _, id := range s.universe {
		nd := &simNode{id: id, st: NewMemoryStorage()}
		s.start(nd)
		s.nodes = append(s.nodes, nd)
	}
	s.checked = make([][]*raftpb.Entry, len(s.nodes))
	s.logs = make([]simLog, len(s.nodes))
	s.logKeys = make([]simLogKey, len(s.nodes))
	s.verified = make([]leaderCheck, len(s.nodes))
	return s
}

func (s *sim) start(nd *simNode) {
	c := &Config{
		ID: nd.id, Peers: s.peers, Storage: nd.st, ElectionTick: 10, HeartbeatTick: 1,
		MaxSizePerMsg: 256, MaxInflightMsgs: 4, MaxSnapshotChunkSize: 64,
		RandSeed: uint64(s.seed)<<8 + nd.id<<4 + uint64(nd.restarts),
	}
	for _, o := range s.opts {
		o(c)
	}
	rn, err := NewRawNode(c)
	if err != nil {
		s.fail("restart %d: %v", nd.id, err)
	}
	nd.rn = rn
	nd.applied, nd.digest, nd.cs = 0, 0, nil
	nd.commit = nd.st.HardState().Commit
	if snap, _ := nd.st.Snapshot(); snap.Metadata.Index > 0 {
		nd.applied, nd.digest = s.restoreState(nd, snap)
		nd.cs = snap.Metadata.ConfState
	}
}

// snapData encodes a state machine for a snapshot: the digest, padded in
// proportion to the index so that snapshots span several chunks.
func snapData(index, digest uint64) []byte {
	b := fmt.Appendf(nil, "%d:%x:", index, digest)
	return append(b, bytes.Repeat([]byte{'.'}, int(index%97)+int(index))...)
}

// restoreState decodes a snapshot's state machine and checks it against
// what every node that applied the log up to there computed.
func (s *sim) restoreState(nd *simNode, snap *raftpb.Snapshot) (uint64, uint64) {
	var index, digest uint64
	if _, err := fmt.Sscanf(string(snap.Data), "%d:%x:", &index, &digest); err != nil || index != snap.Metadata.Index {
		s.fail("node %d: snapshot %d has bad data %q: %v", nd.id, snap.Metadata.Index, snap.Data, err)
	}
	if !bytes.Equal(snap.Data, snapData(index, digest)) {
		s.fail("node %d: snapshot %d data damaged (%d bytes)", nd.id, index, len(snap.Data))
	}
	if d, ok := s.digests[index]; ok && d != digest {
		s.fail("State Machine Safety: node %d restored a snapshot at %d whose state differs from the one applied there", nd.id, index)
	}
	if index > uint64(len(s.committed)) {
		s.fail("node %d: snapshot at %d beyond anything seen committed (%d)", nd.id, index, len(s.committed))
	}
	if c := s.committed[index-1]; c.e.Term != snap.Metadata.Term {
		s.fail("node %d: snapshot at %d@%d, but %d@%d was committed", nd.id, index, snap.Metadata.Term, index, c.e.Term)
	}
	return index, digest
}

// chain extends a state machine digest (FNV-1a) with one entry.
func chain(digest uint64, e *raftpb.Entry) uint64 {
	h := digest ^ 0xcbf29ce484222325
	mix := func(b byte) {
		h ^= uint64(b)
		h *= 0x100000001b3
	}
	for _, v := range []uint64{e.Index, e.Term, uint64(e.Type), uint64(len(e.Data))} {
		for range 8 {
			mix(byte(v))
			v >>= 8
		}
	}
	for _, b := range e.Data {
		mix(b)
	}
	return h
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	var tail []string
	for _, l := range s.trace[max(0, len(s.trace)-*flagTrace):] {
		tail = append(tail, fmt.Sprintf("%d: ", l.step)+fmt.Sprintf(l.format, l.args...))
	}
	s.t.Fatalf("seed %d, step %d: %s\nreplay: go test ./behaviors/raft/core -run %s -raft.seed %d\nlast steps:\n  %s",
		s.seed, s.step, fmt.Sprintf(format, args...), s.t.Name(), s.seed, strings.Join(tail, "\n  "))
}

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, traceLine{s.step, format, args})
	if len(s.trace) > 2*max(100, *flagTrace) {
		s.trace = s.trace[len(s.trace)-max(100, *flagTrace):]
	}
}

func (s *sim) up() []*simNode {
	var out []*simNode
	for _, nd := range s.nodes {
		if nd.rn != nil {
			out = append(out, nd)
		}
	}
	return out
}

func (s *sim) connected(a, b uint64) bool {
	return s.side == nil || s.side[a] == s.side[b]
}

// send puts m on the wire with the seed's faults.
func (s *sim) send(m *raftpb.Message) {
	if !s.connected(m.From, m.To) || s.rng.Float64() < s.f.drop {
		return
	}
	copies := 1
	if s.rng.Float64() < s.f.dup {
		copies = 2
	}
	for range copies {
		delay := 0
		if s.f.maxDelay > 0 {
			delay = s.rng.IntN(s.f.maxDelay + 1)
		}
		s.flight = append(s.flight, simMsg{m: m, at: s.now + delay})
	}
}

// ready handles one node's Ready as the actor shell will: persist, send,
// apply, advance.
func (s *sim) ready(nd *simNode) {
	if !nd.rn.HasReady() {
		return
	}
	rd := nd.rn.Ready()
	if rd.Snapshot != nil {
		if err := nd.st.ApplySnapshot(rd.Snapshot); err != nil {
			s.fail("node %d: persist snapshot: %v", nd.id, err)
		}
	}
	if rd.HardState != nil {
		nd.st.SetHardState(rd.HardState)
		nd.commit = rd.HardState.Commit
	}
	if err := nd.st.Append(rd.Entries); err != nil {
		s.fail("node %d: persist: %v", nd.id, err)
	}
	for _, m := range rd.Messages {
		s.send(m)
	}
	if rd.Snapshot != nil {
		md := rd.Snapshot.Metadata
		if md.Index <= nd.applied {
			s.fail("node %d: snapshot %d does not advance applied %d", nd.id, md.Index, nd.applied)
		}
		nd.applied, nd.digest = s.restoreState(nd, rd.Snapshot)
		nd.cs = md.ConfState
		s.restores++
		s.logf("node %d restored snapshot %d@%d %v", nd.id, md.Index, md.Term, md.ConfState)
	}
	for _, e := range rd.CommittedEntries {
		if e.Index != nd.applied+1 {
			s.fail("node %d applied index %d after %d", nd.id, e.Index, nd.applied)
		}
		nd.applied = e.Index
		nd.digest = chain(nd.digest, e)
		if d, ok := s.digests[e.Index]; ok && d != nd.digest {
			s.fail("State Machine Safety: node %d's state after applying %d differs from another node's", nd.id, e.Index)
		}
		s.digests[e.Index] = nd.digest
		if e.Type == raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE {
			cc := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.Data, cc); err != nil {
				s.fail("node %d: conf change %d: %v", nd.id, e.Index, err)
			}
			cs, err := nd.rn.ApplyConfChange(cc)
			if err != nil {
				s.fail("node %d: committed conf change %d (%v) does not apply to %v: %v", nd.id, e.Index, cc, nd.rn.r.cfg, err)
			}
			nd.cs = cs
			s.logf("node %d applied conf change %d: %v -> %v", nd.id, e.Index, cc.Changes, cs)
		}
		// State Machine Safety: no two nodes apply different entries at
		// the same index.
		if prev, ok := s.applied[e.Index]; ok {
			if prev.Term != e.Term || !bytes.Equal(prev.Data, e.Data) {
				s.fail("State Machine Safety: node %d applied %d@%d %q, another applied %d@%d %q",
					nd.id, e.Index, e.Term, e.Data, prev.Index, prev.Term, prev.Data)
			}
		} else {
			s.applied[e.Index] = e
			if k, err := strconv.Atoi(strings.TrimPrefix(string(e.Data), "p")); err == nil && len(e.Data) > 1 && e.Data[0] == 'p' {
				s.props = append(s.props, appliedProp{k: k, index: e.Index})
			}
		}
	}
	for _, rs := range rd.ReadStates {
		r, ok := s.reads[string(rs.RequestCtx)]
		if !ok {
			s.fail("node %d: read state for unknown request %q", nd.id, rs.RequestCtx)
		}
		// Linearizable reads: the read index covers every write committed
		// before the read was requested, and the node has applied it.
		if rs.Index < r.minIndex {
			s.fail("read %q: read index %d is below the commit index %d known when it was requested", rs.RequestCtx, rs.Index, r.minIndex)
		}
		if nd.applied < rs.Index {
			s.fail("read %q on node %d: read index %d not applied (applied %d)", rs.RequestCtx, nd.id, rs.Index, nd.applied)
		}
	}
	nd.rn.Advance(rd)
}

// simLog is a node's log as the core sees it: the entries from first on,
// with the term of the entry before them (prevTerm).
type simLog struct {
	first, prevTerm uint64
	ents            []*raftpb.Entry
}

func (l simLog) last() uint64 { return l.first + uint64(len(l.ents)) - 1 }

// simLogKey identifies a node's log without copying it: the storage's
// change count and the core's unstable part. Entries are immutable, and
// every change to either part changes the key.
type simLogKey struct {
	crashed  bool
	gen      uint64
	unstable *raftpb.Entry
	n        int
	offset   uint64
	snap     *raftpb.Snapshot
}

func logKeyOf(nd *simNode) simLogKey {
	k := simLogKey{crashed: nd.rn == nil, gen: nd.st.gen}
	if nd.rn != nil {
		l := nd.rn.r.log
		k.n, k.offset, k.snap = len(l.unstable), l.offset, l.snap
		if k.n > 0 {
			k.unstable = l.unstable[0]
		}
	}
	return k
}

// at returns the entry at i, or nil if it is compacted or past the end.
func (l simLog) at(i uint64) *raftpb.Entry {
	if i < l.first || i > l.last() {
		return nil
	}
	return l.ents[i-l.first]
}

// logOf returns the node's log as the core sees it (persisted entries plus
// unstable ones), or the persisted log of a crashed node.
func logOf(nd *simNode) simLog {
	if nd.rn == nil {
		first, _ := nd.st.FirstIndex()
		last, _ := nd.st.LastIndex()
		prev, _ := nd.st.Term(first - 1)
		es, _ := nd.st.Entries(first, last+1, noLimit)
		return simLog{first, prev, es}
	}
	l := nd.rn.r.log
	first := l.firstIndex()
	es, err := l.slice(first, l.lastIndex()+1, noLimit)
	if err != nil {
		panic(err)
	}
	return simLog{first, l.mustTerm(first - 1), es}
}

// checkElectionSafety: at most one leader per term.
func (s *sim) checkElectionSafety() {
	for _, nd := range s.nodes {
		if nd.rn == nil || nd.rn.r.role != Leader {
			continue
		}
		r := nd.rn.r
		if other, ok := s.leaders[r.term]; ok && other != nd.id {
			s.fail("Election Safety: nodes %d and %d are both leaders of term %d", other, nd.id, r.term)
		}
		s.leaders[r.term] = nd.id
	}
}

// check verifies the safety properties. Compacted prefixes are checked
// through the snapshots that replace them: a snapshot's (index, term) must
// be the committed entry's, and its state the one every node computed by
// applying the log up to there.
func (s *sim) check() {
	logs := s.logs
	changed := make([]bool, len(s.nodes))
	for i, nd := range s.nodes {
		if k := logKeyOf(nd); k != s.logKeys[i] || s.step <= 1 {
			logs[i], s.logKeys[i], changed[i] = logOf(nd), k, true
		}
	}
	// Log Matching: an (index, term) pair determines the entry and its
	// predecessor's term, so by induction two logs with an entry of the same
	// index and term are identical up to it.
	for i, lg := range logs {
		if !changed[i] {
			continue // checked as it is
		}
		old := s.checked[i]
		j := 0
		if len(old) > 0 && len(lg.ents) > 0 && old[0].Index <= lg.first {
			k := int(lg.first - old[0].Index)
			for j < len(lg.ents) && k+j < len(old) && lg.ents[j] == old[k+j] {
				j++
			}
		}
		prevTerm := lg.prevTerm
		if j > 0 {
			prevTerm = lg.ents[j-1].Term
		}
		for ; j < len(lg.ents); j++ {
			e := lg.ents[j]
			if e.Index != lg.first+uint64(j) {
				s.fail("node %d: entry at position %d has index %d", s.nodes[i].id, lg.first+uint64(j), e.Index)
			}
			if e.Term < prevTerm {
				s.fail("node %d: term decreases at index %d", s.nodes[i].id, e.Index)
			}
			k := logKey{e.Index, e.Term}
			v := logVal{e.Data, prevTerm}
			if old, ok := s.matching[k]; ok {
				if !bytes.Equal(old.data, v.data) || old.prevTerm != v.prevTerm {
					s.fail("Log Matching: two logs hold index %d term %d with different contents or prefixes", e.Index, e.Term)
				}
			} else {
				s.matching[k] = v
			}
			prevTerm = e.Term
		}
		s.checked[i] = lg.ents
	}
	s.checkElectionSafety()
	for i, nd := range s.nodes {
		if nd.rn == nil {
			continue
		}
		r := nd.rn.r
		lg := logs[i]
		// Record what this node knows to be committed. A leader counts
		// its own entries towards a quorum before it has persisted them,
		// but the commit index leaves the node (in messages, or as applied
		// entries) only once the Ready that holds both is persisted: a
		// crash before that loses the commit with the entries. So the
		// commit index that counts is the persisted one.
		committed := nd.commit
		for idx := uint64(len(s.committed)) + 1; idx <= committed; idx++ {
			e := lg.at(idx)
			if e == nil {
				break // compacted here; its leader recorded it
			}
			s.committed = append(s.committed, committedAt{e: e, term: r.term})
		}
		if lg.first > 1 && lg.first-1 <= uint64(len(s.committed)) {
			if c := s.committed[lg.first-2]; c.e.Term != lg.prevTerm {
				s.fail("node %d compacted up to %d@%d but %d@%d was committed", nd.id, lg.first-1, lg.prevTerm, lg.first-1, c.e.Term)
			}
		}
		for idx := min(committed, uint64(len(s.committed))); idx >= lg.first && idx > 0; idx-- {
			e, c := lg.at(idx), &s.committed[idx-1]
			if c.e.Term != e.Term || !bytes.Equal(c.e.Data, e.Data) {
				s.fail("node %d commits %d@%d but %d@%d was committed before", nd.id, idx, e.Term, idx, c.e.Term)
			}
			if c.term <= r.term {
				break // and so is everything below
			}
			c.term = r.term
		}
	}
	// Leader Completeness: a leader of a term later than the one in which
	// an entry was known committed holds that entry (or a snapshot of it).
	for i, nd := range s.nodes {
		if nd.rn == nil || nd.rn.r.role != Leader {
			continue
		}
		lt := nd.rn.r.term
		v := &s.verified[i]
		if v.term != lt {
			*v = leaderCheck{term: lt}
		}
		lg := logs[i]
		for ; v.upTo < uint64(len(s.committed)); v.upTo++ {
			idx := v.upTo + 1
			c := s.committed[idx-1]
			if lt <= c.term {
				break // not yet required; look again next time
			}
			if idx < lg.first {
				// Compacted into this leader's snapshot, checked when the
				// snapshot was made or restored.
				continue
			}
			if e := lg.at(idx); e == nil || e.Term != c.e.Term {
				s.fail("Leader Completeness: leader %d of term %d lacks entry %d@%d committed by term %d", nd.id, lt, idx, c.e.Term, c.term)
			}
		}
	}
}

func (s *sim) maxCommit() uint64 {
	var m uint64
	for _, nd := range s.nodes {
		m = max(m, nd.commit)
	}
	return max(m, uint64(len(s.committed)))
}

// stepOnce performs one round: maybe a fault, maybe a tick, maybe a client
// request, then a random subset of the deliverable messages in random order
// (the rest wait: delay and reordering), then a random subset of the nodes
// handle their Ready (the rest keep it, and lose it if they crash).
func (s *sim) stepOnce() {
	s.step++
	if s.rng.Float64() < 0.05 {
		s.fault()
	}
	if s.rng.Float64() < 0.3 {
		s.now++
		for _, nd := range s.up() {
			nd.rn.Tick()
		}
		s.logf("tick %d", s.now)
	}
	if up := s.up(); len(up) > 0 && !s.quiet && s.rng.Float64() < 0.3 {
		nd := up[s.rng.IntN(len(up))]
		s.nextProp++
		err := nd.rn.Propose(fmt.Appendf(nil, "p%d", s.nextProp))
		s.logf("propose p%d at %d: %v", s.nextProp, nd.id, err)
	}
	if up := s.up(); len(up) > 0 && !s.quiet && s.rng.Float64() < 0.1 {
		nd := up[s.rng.IntN(len(up))]
		s.nextRead++
		ctx := fmt.Sprintf("r%d", s.nextRead)
		s.reads[ctx] = simRead{minIndex: s.maxCommit()}
		err := nd.rn.ReadIndex([]byte(ctx))
		s.logf("read %s at %d: %v", ctx, nd.id, err)
	}
	if up := s.up(); len(up) > 0 && s.rng.Float64() < s.compact {
		s.snapshotAndCompact(up[s.rng.IntN(len(up))])
	}
	if up := s.up(); len(up) > 0 && !s.quiet && s.rng.Float64() < s.confChange {
		s.proposeConfChange(up[s.rng.IntN(len(up))])
	}
	if up := s.up(); len(up) > 0 && !s.quiet && s.rng.Float64() < 0.02 {
		// Hand leadership to a random voter, if this node leads.
		nd := up[s.rng.IntN(len(up))]
		to := s.peers[s.rng.IntN(len(s.peers))]
		err := nd.rn.TransferLeader(to)
		s.logf("transfer leadership from %d to %d: %v", nd.id, to, err)
	}
	var now, later []simMsg
	for _, fm := range s.flight {
		if fm.at <= s.now && s.rng.Float64() < 0.8 {
			now = append(now, fm)
		} else {
			later = append(later, fm)
		}
	}
	s.flight = later
	s.rng.Shuffle(len(now), func(i, j int) { now[i], now[j] = now[j], now[i] })
	for _, fm := range now {
		s.deliver(fm.m)
	}
	for _, nd := range s.up() {
		if s.rng.Float64() < 0.8 {
			s.ready(nd)
		}
	}
}

// snapshotAndCompact makes nd snapshot its state machine at its applied
// index and compact its log up to there, or a few entries less.
func (s *sim) snapshotAndCompact(nd *simNode) {
	snap, _ := nd.st.Snapshot()
	if nd.applied <= snap.Metadata.Index {
		return
	}
	cs := nd.cs
	if cs == nil {
		cs = &raftpb.ConfState{Voters: s.peers}
	}
	if _, err := nd.st.CreateSnapshot(nd.applied, cs, snapData(nd.applied, nd.digest)); err != nil {
		s.fail("node %d: create snapshot at %d: %v", nd.id, nd.applied, err)
	}
	s.snapshots++
	first, _ := nd.st.FirstIndex()
	at := nd.applied - min(nd.applied-first+1, uint64(s.rng.IntN(4)))
	if at >= first {
		if err := nd.st.Compact(at); err != nil {
			s.fail("node %d: compact %d: %v", nd.id, at, err)
		}
	}
	s.logf("node %d snapshot at %d, compacted to %d", nd.id, nd.applied, at)
}

// proposeConfChange proposes a random membership change on nd, relative
// to the configuration nd has applied: add or remove a voter, add, promote
// or demote a learner, or replace voters through joint consensus.
func (s *sim) proposeConfChange(nd *simNode) {
	cfg := nd.rn.r.cfg
	pick := func(ids []uint64) uint64 { return ids[s.rng.IntN(len(ids))] }
	var outsiders, voters []uint64
	for _, id := range s.universe {
		if !cfg.isVoter(id) {
			outsiders = append(outsiders, id)
		}
	}
	voters = cfg.voters
	cc := &raftpb.ConfChange{}
	single := func(t raftpb.ConfChangeType, id uint64) {
		cc.Changes = []*raftpb.ConfChangeSingle{{Type: t, NodeId: id}}
	}
	switch k := s.rng.IntN(6); {
	case cfg.joint():
		// Leave explicitly (the leader also leaves on its own when
		// auto-leave is set).
	case k == 0 && len(outsiders) > 0:
		single(ccAddNode, pick(outsiders))
	case k == 1 && len(voters) > 1:
		single(ccRemoveNode, pick(voters))
	case k == 2 && len(outsiders) > 0:
		single(ccAddLearner, pick(outsiders))
	case k == 3 && len(voters) > 2:
		single(ccAddLearner, pick(voters)) // demote
	case k == 4 && len(cfg.learners) > 0:
		single(ccRemoveNode, pick(cfg.learners))
	case len(outsiders) > 0:
		// Replace up to all voters through a joint configuration, so
		// that the old and the new majorities can be disjoint.
		cc.Transition = []raftpb.ConfChangeTransition{ccAuto, ccJointImplicit, ccJointExplicit}[s.rng.IntN(3)]
		out := slices.Clone(voters)
		s.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		in := slices.Clone(outsiders)
		s.rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		k := 1 + s.rng.IntN(min(len(in), len(out)))
		for _, id := range in[:k] {
			cc.Changes = append(cc.Changes, &raftpb.ConfChangeSingle{Type: ccAddNode, NodeId: id})
		}
		for _, id := range out[:k] {
			typ := ccRemoveNode
			if s.rng.IntN(2) == 0 {
				typ = ccAddLearner
			}
			cc.Changes = append(cc.Changes, &raftpb.ConfChangeSingle{Type: typ, NodeId: id})
		}
	default:
		return
	}
	err := nd.rn.ProposeConfChange(cc)
	if err == nil {
		s.confChanges++
	}
	s.logf("conf change %v %v at %d (%v): %v", cc.Transition, cc.Changes, nd.id, cfg, err)
}

func (s *sim) deliver(m *raftpb.Message) {
	to := s.nodes[m.To-1]
	if to.rn == nil || !s.connected(m.From, m.To) {
		return
	}
	err := to.rn.Step(m)
	s.logf("deliver %s %d->%d t%d i%d lt%d n%d c%d rej%v hint%d ct%d snap%d off%d+%d done%v: %v",
		shortType(m.Type), m.From, m.To, m.Term, m.Index, m.LogTerm, len(m.Entries), m.Commit, m.Reject, m.RejectHint, m.ConflictTerm,
		m.Snapshot.GetMetadata().GetIndex(), m.SnapOffset, len(m.SnapData), m.SnapDone, err)
	s.checkElectionSafety()
}

type shortType raftpb.MessageType

func (t shortType) String() string {
	return strings.TrimPrefix(raftpb.MessageType(t).String(), "MESSAGE_TYPE_")
}

func (s *sim) fault() {
	y := s.rng.Float64()
	switch {
	case y < s.f.crash:
		nd := s.nodes[s.rng.IntN(len(s.nodes))]
		if nd.rn != nil {
			// Everything not yet handed over by Ready is lost.
			nd.rn = nil
			s.logf("crash %d", nd.id)
		} else {
			nd.restarts++
			s.start(nd)
			s.logf("restart %d", nd.id)
		}
	case y < s.f.crash+s.f.partition:
		if s.side == nil {
			s.side = map[uint64]int{}
			for _, id := range s.universe {
				s.side[id] = s.rng.IntN(2)
			}
			s.logf("partition %v", s.side)
		} else {
			s.side = nil
			s.logf("heal")
		}
	}
}

func (s *sim) run(steps int) {
	for range steps {
		s.stepOnce()
		s.check()
	}
}

// fewSeeds is seeds() cut to n unless -raft.seeds or -raft.seed was given:
// the membership simulations cost more per seed, and keep the package's
// default run short.
func fewSeeds(n int) []int64 {
	all := seeds()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "raft.seeds" || f.Name == "raft.seed" })
	if explicit || len(all) <= n {
		return all
	}
	return all[:n]
}

func seeds() []int64 {
	if *flagSeed >= 0 {
		return []int64{*flagSeed}
	}
	out := make([]int64, *flagSeeds)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

// faultsFor derives the fault rates from the seed, so that some runs are
// calm and some are hostile.
func faultsFor(seed int64) simFaults {
	r := rand.New(rand.NewPCG(uint64(seed), 0xfa17))
	return simFaults{
		drop:      []float64{0, 0.02, 0.1, 0.3}[r.IntN(4)],
		dup:       []float64{0, 0.05, 0.2}[r.IntN(3)],
		maxDelay:  r.IntN(4),
		crash:     []float64{0, 0.2, 0.5}[r.IntN(3)],
		partition: []float64{0, 0.2, 0.5}[r.IntN(3)],
	}
}

// TestSimSafety runs the simulator over many seeds with every combination of
// PreVote and CheckQuorum, with lease-based reads, and with tight flow
// control, and checks Election Safety, Log Matching, Leader Completeness,
// State Machine Safety and read linearizability after every step. Nodes
// snapshot and compact their logs at random, so that nodes that lag or
// restart catch up through chunked snapshots; the membership
// configurations also add and remove voters and learners (single-server
// and joint changes) among the cluster and two spare nodes.
func TestSimSafety(t *testing.T) {
	configs := []struct {
		name string
		opts []option
		so   simOpts
	}{
		{"plain", nil, simOpts{}},
		{"prevote", []option{withPreVote}, simOpts{}},
		{"checkquorum", []option{withCheckQuorum}, simOpts{}},
		{"prevote+checkquorum", []option{withPreVote, withCheckQuorum}, simOpts{}},
		{"lease-reads", []option{withPreVote, withCheckQuorum, withLeaseReads}, simOpts{}},
		// Tight flow control: one entry per message, one message in
		// flight, byte-bounded window.
		{"tight-flow", []option{withPreVote, func(c *Config) {
			c.MaxSizePerMsg, c.MaxInflightMsgs, c.MaxInflightBytes = 1, 1, 64
		}}, simOpts{}},
		{"membership", nil, simOpts{spares: 2, confChange: true}},
		{"membership+prevote+checkquorum", []option{withPreVote, withCheckQuorum}, simOpts{spares: 2, confChange: true}},
		{"membership+lease-reads", []option{withPreVote, withCheckQuorum, withLeaseReads}, simOpts{spares: 2, confChange: true}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			var snapshots, restores, changes int
			ss := seeds()
			if c.so.confChange {
				ss = fewSeeds(100)
			}
			for _, seed := range ss {
				n := 3 + 2*int(seed%2)
				so := c.so
				so.compact = true
				s := newSimWith(t, seed, n, faultsFor(seed), so, c.opts...)
				s.run(*flagSteps)
				snapshots, restores, changes = snapshots+s.snapshots, restores+s.restores, changes+s.confChanges
			}
			t.Logf("%d snapshots taken, %d restored from a leader, %d membership changes proposed", snapshots, restores, changes)
			if len(ss) >= 50 && (snapshots == 0 || restores == 0 || (c.so.confChange && changes == 0)) {
				t.Errorf("the simulation did not exercise snapshots or membership changes")
			}
		})
	}
}

// calm ends every fault: heals the partition, restarts crashed nodes and
// makes the network reliable (messages still wait and reorder within a
// round).
func (s *sim) calm() {
	s.f = simFaults{}
	s.side = nil
	for _, nd := range s.nodes {
		if nd.rn == nil {
			nd.restarts++
			s.start(nd)
		}
	}
	s.logf("calm")
}

// runUntilProgress runs until a proposal made after this call is applied on
// every node, and reports the steps it took (or -1 past limit).
func (s *sim) runUntilProgress(limit int) int {
	mark := s.nextProp
	for i := 1; i <= limit; i++ {
		s.stepOnce()
		s.check()
		for _, p := range s.props {
			if p.k <= mark {
				continue
			}
			idx := p.index
			all := true
			for _, nd := range s.members() {
				all = all && nd.applied >= idx
			}
			if all {
				return i
			}
		}
	}
	return -1
}

// members returns the nodes of the newest configuration: the one applied
// by the node that has applied the most.
func (s *sim) members() []*simNode {
	var best *simNode
	for _, nd := range s.nodes {
		if best == nil || nd.applied > best.applied {
			best = nd
		}
	}
	if best.cs == nil {
		return s.nodes[:len(s.peers)]
	}
	cfg, err := membershipFrom(best.cs)
	if err != nil {
		s.fail("node %d: %v", best.id, err)
	}
	var out []*simNode
	for _, id := range cfg.ids() {
		out = append(out, s.nodes[id-1])
	}
	return out
}

// TestSimMembershipLiveness checks that membership changes under faults
// leave a cluster that works: once faults and changes end, a new proposal
// is applied by every member of the newest configuration, and an idle
// cluster converges. Nodes removed from the configuration are left out.
//
// It runs with PreVote and CheckQuorum only: without them a removed node
// that never learned of its removal keeps campaigning at ever higher terms
// and makes the members step down again and again ("disruptive servers",
// thesis §4.2.3), which delays progress without bound.
func TestSimMembershipLiveness(t *testing.T) {
	for _, opts := range [][]option{{withPreVote, withCheckQuorum}} {
		var worst int
		for _, seed := range fewSeeds(100) {
			n := 3 + 2*int(seed%2)
			s := newSimWith(t, seed, n, faultsFor(seed), simOpts{compact: true, spares: 2, confChange: true}, opts...)
			s.run(*flagSteps)
			s.calm()
			s.confChange = 0
			steps := s.runUntilProgress(600)
			if steps < 0 {
				s.fail("faults and membership changes ended, yet no new proposal was applied by every member of %v within 600 rounds", s.members()[0].cs)
			}
			worst = max(worst, steps)
			s.quiet = true
			s.run(200)
			var last uint64
			for _, nd := range s.members() {
				last = max(last, nd.rn.r.log.lastIndex())
			}
			for _, nd := range s.members() {
				if nd.applied != last {
					s.fail("idle cluster did not converge: member %d applied %d of %d", nd.id, nd.applied, last)
				}
			}
		}
		t.Logf("options %d: worst rounds to progress after faults and membership changes: %d", len(opts), worst)
	}
}

// TestSimLiveness checks loosely that the cluster makes progress: with no
// faults from the start, and after faults end.
func TestSimLiveness(t *testing.T) {
	for _, opts := range [][]option{nil, {withPreVote, withCheckQuorum}, {withCheckQuorum, withLeaseReads}} {
		worstCalm, worstHealed := 0, 0
		for _, seed := range seeds() {
			n := 3 + 2*int(seed%2)
			s := newSim(t, seed, n, simFaults{}, opts...)
			// Election timeouts are 10-19 ticks and a round ticks with
			// probability 0.3: 200 rounds is about 60 ticks.
			steps := s.runUntilProgress(200)
			if steps < 0 {
				s.fail("no fault, yet no proposal was applied everywhere within 200 rounds")
			}
			worstCalm = max(worstCalm, steps)

			// Nodes compact their logs, so that those left behind by the
			// faults catch up through snapshots.
			s = newSimWith(t, seed, n, faultsFor(seed), simOpts{compact: true}, opts...)
			s.run(*flagSteps)
			s.calm()
			steps = s.runUntilProgress(400)
			if steps < 0 {
				s.fail("faults ended, yet no new proposal was applied everywhere within 400 rounds")
			}
			worstHealed = max(worstHealed, steps)

			// Once clients stop, every node converges on the leader's log
			// and applies all of it, without new proposals to push it.
			s.quiet = true
			s.run(200)
			var last uint64
			for _, nd := range s.nodes {
				last = max(last, nd.rn.r.log.lastIndex())
			}
			for _, nd := range s.nodes {
				if nd.applied != last {
					s.fail("idle cluster did not converge: node %d applied %d of %d", nd.id, nd.applied, last)
				}
			}
		}
		t.Logf("options %d: worst rounds to progress: %d without faults, %d after faults", len(opts), worstCalm, worstHealed)
	}
}
