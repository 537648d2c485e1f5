package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

// Message type names for tests.
const (
	MsgVote          = msgVote
	MsgVoteResp      = msgVoteResp
	MsgPreVote       = msgPreVote
	MsgPreVoteResp   = msgPreVoteResp
	MsgApp           = msgApp
	MsgAppResp       = msgAppResp
	MsgHeartbeat     = msgHeartbeat
	MsgHeartbeatResp = msgHeartbeatResp
)

// node is a RawNode with its storage and applied entries, for tests.
type node struct {
	id      uint64
	rn      *RawNode
	st      *MemoryStorage
	peers   []uint64 // the bootstrap voters it was started with
	applied []*raftpb.Entry
	// confs are the configurations ApplyConfChange returned, in order.
	confs []*raftpb.ConfState
	// snaps are the snapshots it restored from its leader.
	snaps []*raftpb.Snapshot
	reads []ReadState
}

type option func(*Config)

func withPreVote(c *Config)     { c.PreVote = true }
func withCheckQuorum(c *Config) { c.CheckQuorum = true }
func withLeaseReads(c *Config)  { c.ReadOnlyLeaseBased = true }

// ents builds a log whose entry i+1 has term terms[i].
func ents(terms ...uint64) []*raftpb.Entry {
	out := make([]*raftpb.Entry, len(terms))
	for i, t := range terms {
		out[i] = &raftpb.Entry{Index: uint64(i + 1), Term: t, Data: fmt.Appendf(nil, "%d@%d", i+1, t)}
	}
	return out
}

// newNode creates node id among peers whose persisted log has the given
// terms and whose persisted term is term.
func newNode(t testing.TB, id uint64, peers []uint64, term uint64, logTerms []uint64, opts ...option) *node {
	t.Helper()
	st := NewMemoryStorage()
	if err := st.Append(ents(logTerms...)); err != nil {
		t.Fatal(err)
	}
	st.SetHardState(&raftpb.HardState{Term: term})
	return startNode(t, id, peers, st, opts...)
}

func startNode(t testing.TB, id uint64, peers []uint64, st *MemoryStorage, opts ...option) *node {
	t.Helper()
	c := &Config{ID: id, Peers: peers, Storage: st, ElectionTick: 10, HeartbeatTick: 1, RandSeed: id}
	for _, o := range opts {
		o(c)
	}
	rn, err := NewRawNode(c)
	if err != nil {
		t.Fatal(err)
	}
	return &node{id: id, rn: rn, st: st, peers: peers}
}

// handle processes every pending Ready as a careful caller would and
// returns the messages to send.
func (n *node) handle(t testing.TB) []*raftpb.Message {
	t.Helper()
	var msgs []*raftpb.Message
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		if rd.Snapshot != nil {
			if err := n.st.ApplySnapshot(rd.Snapshot); err != nil {
				t.Fatalf("node %d: apply snapshot: %v", n.id, err)
			}
			n.snaps = append(n.snaps, rd.Snapshot)
		}
		if rd.HardState != nil {
			n.st.SetHardState(rd.HardState)
		}
		if err := n.st.Append(rd.Entries); err != nil {
			t.Fatalf("node %d: append: %v", n.id, err)
		}
		msgs = append(msgs, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			if e.Type == raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE {
				cc := &raftpb.ConfChange{}
				if err := proto.Unmarshal(e.Data, cc); err != nil {
					t.Fatalf("node %d: conf change at %d: %v", n.id, e.Index, err)
				}
				cs, err := n.rn.ApplyConfChange(cc)
				if err != nil {
					t.Fatalf("node %d: apply conf change at %d: %v", n.id, e.Index, err)
				}
				n.confs = append(n.confs, cs)
			}
		}
		n.applied = append(n.applied, rd.CommittedEntries...)
		n.reads = append(n.reads, rd.ReadStates...)
		n.rn.Advance(rd)
	}
	return msgs
}

func (n *node) step(t testing.TB, m *raftpb.Message) {
	t.Helper()
	if err := n.rn.Step(m); err != nil {
		t.Fatalf("node %d: step %v: %v", n.id, m, err)
	}
}

func (n *node) tick(k int) {
	for range k {
		n.rn.Tick()
	}
}

func (n *node) status() Status { return n.rn.Status() }

func (n *node) logTerms() []uint64 {
	last, _ := n.st.LastIndex()
	var out []uint64
	for i := uint64(1); i <= last; i++ {
		tt, _ := n.st.Term(i)
		out = append(out, tt)
	}
	return out
}

// network delivers messages between nodes synchronously until quiet,
// dropping those its filter rejects.
type network struct {
	t     testing.TB
	nodes map[uint64]*node
	ids   []uint64
	drop  func(m *raftpb.Message) bool
	// trace, if set, sees every message and whether it was dropped.
	trace func(m *raftpb.Message, dropped bool)
}

func newNetwork(t testing.TB, nodes ...*node) *network {
	nw := &network{t: t, nodes: map[uint64]*node{}}
	for _, n := range nodes {
		nw.nodes[n.id] = n
		nw.ids = append(nw.ids, n.id)
	}
	slices.Sort(nw.ids)
	return nw
}

// newCluster creates n fresh nodes with ids 1..n.
func newCluster(t testing.TB, n int, opts ...option) *network {
	var peers []uint64
	for i := 1; i <= n; i++ {
		peers = append(peers, uint64(i))
	}
	var nodes []*node
	for _, id := range peers {
		nodes = append(nodes, newNode(t, id, peers, 0, nil, opts...))
	}
	return newNetwork(t, nodes...)
}

// isolate drops all traffic to and from id.
func (nw *network) isolate(id uint64) {
	nw.drop = func(m *raftpb.Message) bool { return m.From == id || m.To == id }
}

func (nw *network) heal() { nw.drop = nil }

// settle delivers messages until none are left.
func (nw *network) settle() {
	for {
		var q []*raftpb.Message
		for _, id := range nw.ids {
			q = append(q, nw.nodes[id].handle(nw.t)...)
		}
		if len(q) == 0 {
			return
		}
		for _, m := range q {
			dropped := nw.drop != nil && nw.drop(m)
			if nw.trace != nil {
				nw.trace(m, dropped)
			}
			if dropped {
				continue
			}
			if to, ok := nw.nodes[m.To]; ok {
				_ = to.rn.Step(m)
			}
		}
	}
}

// campaign makes id start an election and delivers everything.
func (nw *network) campaign(id uint64) {
	nw.nodes[id].rn.Campaign()
	nw.settle()
}

func (nw *network) propose(id uint64, data string) error {
	err := nw.nodes[id].rn.Propose([]byte(data))
	nw.settle()
	return err
}

// tickAll ticks every node k times, delivering messages after each tick.
func (nw *network) tickAll(k int) {
	for range k {
		for _, id := range nw.ids {
			nw.nodes[id].rn.Tick()
		}
		nw.settle()
	}
}

func withSeed(seed uint64) option { return func(c *Config) { c.RandSeed = seed } }

func withMaxSizePerMsg(n uint64) option { return func(c *Config) { c.MaxSizePerMsg = n } }

func withSnapChunk(n uint64) option { return func(c *Config) { c.MaxSnapshotChunkSize = n } }

// snapshotAndCompact snapshots n's state at its applied index, with the
// configuration it last applied, and compacts its log up to index at.
// The snapshot's data is the applied commands joined by commas.
func (n *node) snapshotAndCompact(t testing.TB, at uint64) *raftpb.Snapshot {
	t.Helper()
	applied := n.status().Applied
	cs := n.status().Config
	snap, err := n.st.CreateSnapshot(applied, cs, n.stateData())
	if err != nil {
		t.Fatalf("node %d: snapshot at %d: %v", n.id, applied, err)
	}
	if at > 0 {
		if err := n.st.Compact(at); err != nil {
			t.Fatalf("node %d: compact %d: %v", n.id, at, err)
		}
	}
	return snap
}

// stateData is the node's state machine: the commands applied (including
// those restored from snapshots), joined by commas.
func (n *node) stateData() []byte {
	var b []byte
	for _, s := range n.state() {
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	return b
}

// state returns the commands applied, those of a restored snapshot first.
func (n *node) state() []string {
	var out []string
	var from uint64
	if k := len(n.snaps); k > 0 {
		last := n.snaps[k-1]
		if len(last.Data) > 0 {
			out = strings.Split(string(last.Data), ",")
		}
		from = last.Metadata.Index
	}
	for _, e := range n.applied {
		if e.Index > from && e.Type == raftpb.EntryType_ENTRY_TYPE_NORMAL && len(e.Data) > 0 {
			out = append(out, string(e.Data))
		}
	}
	return out
}

// addNode starts a node that joins the cluster: it knows the bootstrap
// voters, and nothing else until the leader replicates to it.
func (nw *network) addNode(id uint64, opts ...option) *node {
	peers := nw.nodes[nw.ids[0]].peers
	n := startNode(nw.t, id, peers, NewMemoryStorage(), opts...)
	nw.nodes[id] = n
	nw.ids = append(nw.ids, id)
	slices.Sort(nw.ids)
	return n
}

// elect makes n leader by campaigning and feeding it granted votes from
// every other voter; with acked, the followers then acknowledge the whole
// log, so their progress is in replicate state. It returns the messages
// sent after the election.
func (n *node) elect(t testing.TB, acked bool) []*raftpb.Message {
	t.Helper()
	n.rn.Campaign()
	n.handle(t)
	term := n.status().Term
	for _, v := range n.rn.r.cfg.voterIDs() {
		if v != n.id && n.status().Role != Leader {
			n.step(t, &raftpb.Message{Type: MsgVoteResp, From: v, To: n.id, Term: term})
		}
	}
	if n.status().Role != Leader {
		t.Fatalf("node %d did not become leader: %+v", n.id, n.status())
	}
	msgs := n.handle(t)
	if acked {
		last := n.status().LastIndex
		for _, v := range n.rn.r.cfg.voterIDs() {
			if v != n.id {
				n.step(t, &raftpb.Message{Type: MsgAppResp, From: v, To: n.id, Term: term, Index: last})
			}
		}
		msgs = n.handle(t)
	}
	return msgs
}

// entries returns n's log from its first index, unstable entries included.
func (n *node) entries() []*raftpb.Entry {
	l := n.rn.r.log
	es, err := l.slice(l.firstIndex(), l.lastIndex()+1, noLimit)
	if err != nil {
		panic(err)
	}
	return es
}

func termsOf(es []*raftpb.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Term
	}
	return out
}

func ofType(msgs []*raftpb.Message, typ raftpb.MessageType) []*raftpb.Message {
	var out []*raftpb.Message
	for _, m := range msgs {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

func ids(n int) []uint64 {
	var out []uint64
	for i := 1; i <= n; i++ {
		out = append(out, uint64(i))
	}
	return out
}

// restart rebuilds node id from what it persisted, as after a crash.
func (nw *network) restart(id uint64, opts ...option) {
	old := nw.nodes[id]
	n := startNode(nw.t, id, old.peers, old.st, opts...)
	nw.nodes[id] = n
}
