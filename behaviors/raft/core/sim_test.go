package core

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

var (
	flagSeeds = flag.Int("raft.seeds", 200, "number of seeds the Raft simulator runs")
	flagSteps = flag.Int("raft.steps", 300, "steps per seed in the Raft simulator")
	flagSeed  = flag.Int64("raft.seed", -1, "run only this simulator seed (replay a failure)")
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
	// verified is, per node, the leader term and the committed prefix
	// already found in that leader's log.
	verified []leaderCheck
	reads    map[string]simRead
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

type logVal struct {
	data     []byte
	prevTerm uint64
}

type leaderCheck struct{ term, upTo uint64 }

type committedAt struct {
	e    *raftpb.Entry
	term uint64
}

func newSim(t testing.TB, seed int64, n int, f simFaults, opts ...option) *sim {
	s := &sim{
		t: t, seed: seed, f: f, opts: opts,
		rng:      rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
		leaders:  map[uint64]uint64{},
		applied:  map[uint64]*raftpb.Entry{},
		matching: map[logKey]logVal{},
		reads:    map[string]simRead{},
	}
	for i := 1; i <= n; i++ {
		s.peers = append(s.peers, uint64(i))
	}
	for _, id := range s.peers {
		nd := &simNode{id: id, st: NewMemoryStorage()}
		s.start(nd)
		s.nodes = append(s.nodes, nd)
	}
	s.checked = make([][]*raftpb.Entry, n)
	s.verified = make([]leaderCheck, n)
	return s
}

func (s *sim) start(nd *simNode) {
	c := &Config{
		ID: nd.id, Peers: s.peers, Storage: nd.st, ElectionTick: 10, HeartbeatTick: 1,
		MaxSizePerMsg: 256, MaxInflightMsgs: 4,
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
	nd.applied = 0
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	var tail []string
	for _, l := range s.trace[max(0, len(s.trace)-40):] {
		tail = append(tail, fmt.Sprintf("%d: ", l.step)+fmt.Sprintf(l.format, l.args...))
	}
	s.t.Fatalf("seed %d, step %d: %s\nreplay: go test ./behaviors/raft/core -run %s -raft.seed %d\nlast steps:\n  %s",
		s.seed, s.step, fmt.Sprintf(format, args...), s.t.Name(), s.seed, strings.Join(tail, "\n  "))
}

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, traceLine{s.step, format, args})
	if len(s.trace) > 200 {
		s.trace = s.trace[100:]
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
	if rd.HardState != nil {
		nd.st.SetHardState(rd.HardState)
	}
	if err := nd.st.Append(rd.Entries); err != nil {
		s.fail("node %d: persist: %v", nd.id, err)
	}
	for _, m := range rd.Messages {
		s.send(m)
	}
	for _, e := range rd.CommittedEntries {
		if e.Index != nd.applied+1 {
			s.fail("node %d applied index %d after %d", nd.id, e.Index, nd.applied)
		}
		nd.applied = e.Index
		// State Machine Safety: no two nodes apply different entries at
		// the same index.
		if prev, ok := s.applied[e.Index]; ok {
			if prev.Term != e.Term || !bytes.Equal(prev.Data, e.Data) {
				s.fail("State Machine Safety: node %d applied %d@%d %q, another applied %d@%d %q",
					nd.id, e.Index, e.Term, e.Data, prev.Index, prev.Term, prev.Data)
			}
		} else {
			s.applied[e.Index] = e
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

// logOf returns the node's log as the core sees it (persisted entries plus
// unstable ones), or the persisted log of a crashed node.
func logOf(nd *simNode) []*raftpb.Entry {
	if nd.rn == nil {
		last, _ := nd.st.LastIndex()
		es, _ := nd.st.Entries(1, last+1, noLimit)
		return es
	}
	l := nd.rn.r.log
	es, err := l.slice(1, l.lastIndex()+1, noLimit)
	if err != nil {
		panic(err)
	}
	return es
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

// check verifies the safety properties.
func (s *sim) check() {
	logs := make([][]*raftpb.Entry, len(s.nodes))
	for i, nd := range s.nodes {
		logs[i] = logOf(nd)
	}
	// Log Matching: an (index, term) pair determines the entry and its
	// predecessor's term, so by induction two logs with an entry of the same
	// index and term are identical up to it.
	for i, lg := range logs {
		old := s.checked[i]
		j := 0
		for j < len(lg) && j < len(old) && lg[j] == old[j] {
			j++
		}
		var prevTerm uint64
		if j > 0 {
			prevTerm = lg[j-1].Term
		}
		for ; j < len(lg); j++ {
			e := lg[j]
			if e.Index != uint64(j+1) {
				s.fail("node %d: entry at position %d has index %d", s.nodes[i].id, j+1, e.Index)
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
		s.checked[i] = lg
	}
	s.checkElectionSafety()
	for i, nd := range s.nodes {
		if nd.rn == nil {
			continue
		}
		r := nd.rn.r
		// Record what this node knows to be committed.
		for idx := uint64(len(s.committed)) + 1; idx <= r.log.committed; idx++ {
			s.committed = append(s.committed, committedAt{e: logs[i][idx-1], term: r.term})
		}
		for idx := r.log.committed; idx > 0; idx-- {
			e, c := logs[i][idx-1], &s.committed[idx-1]
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
	// an entry was known committed holds that entry.
	for i, nd := range s.nodes {
		if nd.rn == nil || nd.rn.r.role != Leader {
			continue
		}
		lt := nd.rn.r.term
		v := &s.verified[i]
		if v.term != lt {
			*v = leaderCheck{term: lt}
		}
		for ; v.upTo < uint64(len(s.committed)); v.upTo++ {
			idx := v.upTo + 1
			c := s.committed[idx-1]
			if lt <= c.term {
				break // not yet required; look again next time
			}
			if idx > uint64(len(logs[i])) || logs[i][idx-1].Term != c.e.Term {
				s.fail("Leader Completeness: leader %d of term %d lacks entry %d@%d committed by term %d", nd.id, lt, idx, c.e.Term, c.term)
			}
		}
	}
}

func (s *sim) maxCommit() uint64 {
	var m uint64
	for _, nd := range s.nodes {
		if nd.rn != nil {
			m = max(m, nd.rn.r.log.committed)
		}
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

func (s *sim) deliver(m *raftpb.Message) {
	to := s.nodes[m.To-1]
	if to.rn == nil || !s.connected(m.From, m.To) {
		return
	}
	err := to.rn.Step(m)
	s.logf("deliver %s %d->%d t%d i%d lt%d n%d c%d rej%v hint%d ct%d: %v",
		shortType(m.Type), m.From, m.To, m.Term, m.Index, m.LogTerm, len(m.Entries), m.Commit, m.Reject, m.RejectHint, m.ConflictTerm, err)
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
			for _, id := range s.peers {
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
// control, and checks Election
// Safety, Log Matching, Leader Completeness, State Machine Safety and read
// linearizability after every step.
func TestSimSafety(t *testing.T) {
	configs := []struct {
		name string
		opts []option
	}{
		{"plain", nil},
		{"prevote", []option{withPreVote}},
		{"checkquorum", []option{withCheckQuorum}},
		{"prevote+checkquorum", []option{withPreVote, withCheckQuorum}},
		{"lease-reads", []option{withPreVote, withCheckQuorum, withLeaseReads}},
		// Tight flow control: one entry per message, one message in
		// flight, byte-bounded window.
		{"tight-flow", []option{withPreVote, func(c *Config) {
			c.MaxSizePerMsg, c.MaxInflightMsgs, c.MaxInflightBytes = 1, 1, 64
		}}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			for _, seed := range seeds() {
				n := 3 + 2*int(seed%2)
				s := newSim(t, seed, n, faultsFor(seed), c.opts...)
				s.run(*flagSteps)
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
		for idx, e := range s.applied {
			var k int
			if _, err := fmt.Sscanf(string(e.Data), "p%d", &k); err != nil || k <= mark {
				continue
			}
			all := true
			for _, nd := range s.nodes {
				all = all && nd.applied >= idx
			}
			if all {
				return i
			}
		}
	}
	return -1
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

			s = newSim(t, seed, n, faultsFor(seed), opts...)
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
