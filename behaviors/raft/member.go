package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/raft/core"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"github.com/distributed-go/distributed/behaviors/raft/rpcpb"
	"github.com/distributed-go/distributed/behaviors/raft/wal"
	"github.com/distributed-go/distributed/behaviors/replog"
)

// Props returns the Props of a member actor for cfg. Run it under a
// supervisor (see ChildSpec) and register it under ActorName(cfg.Group, cfg.ID):
// peers address it by that name.
func Props(cfg Config) (*actor.Props, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	mx, err := newMetrics(cfg.Registerer, cfg.Group, cfg.ID)
	if err != nil {
		return nil, err
	}
	return actor.ServerProps(func() actor.Server { return &member{cfg: cfg, mx: mx} }, actor.WithKind("raft")), nil
}

// Messages the member sends itself.
type (
	tickMsg  struct{}
	flushMsg struct{}
)

// member is one Raft member: the actor shell around core.RawNode. It feeds
// the core with ticks, peer messages and client requests; after each batch
// of messages it persists the Ready (one fsync for the batch: group commit),
// then sends its messages, applies committed entries and answers clients.
type member struct {
	actor.ServerBase
	cfg   Config
	mx    *metrics
	log   *zap.Logger
	w     logStore
	rn    *core.RawNode
	sm    replog.StateMachine
	addrs map[uint64]string     // node address of every member known
	pids  map[uint64]*actor.PID // NamedPIDs built from addrs, cached

	scheduled bool // a flushMsg is in the mailbox
	// summary is what info reports: published after each Ready, since
	// inspection calls info from other goroutines.
	summary   atomic.Pointer[summary]
	role      core.Role
	lead      uint64
	term      uint64
	applied   uint64
	commit    uint64
	snapIndex uint64 // index of the latest snapshot

	nextProp  uint64
	proposals map[uint64]proposal
	// batch holds the commands received since the last Ready, encoded as
	// an rpcpb.Proposals: they go into the log as one entry. batchIDs are
	// their proposal ids.
	batch    []byte
	batchIDs []uint64
	// entryProps is reused to decode the proposals of an entry.
	entryProps []entryProposal
	nextRead   uint64
	reads      map[string]*pendingRead
	readQueue  []*pendingRead // read index known, waiting for applied >= index
	// pendingConf waits for the membership change being committed (one at a
	// time).
	pendingConf *confWait

	// marks are (last index, time) of the leader's recent appends, to
	// measure how far behind in time each follower is.
	marks   []appendMark
	ticks   int
	lagging map[uint64]bool // replicas with a replication_lag_seconds series
}

// summary is the state info reports.
type summary struct {
	role                        core.Role
	term, lead, commit, applied uint64
}

type appendMark struct {
	index uint64
	at    time.Time
}

// lagEvery is how often, in ticks, a leader updates replication_lag_seconds.
const lagEvery = 5

type confWait struct {
	from actor.From
	node uint64
}

type proposal struct {
	from  actor.From
	start time.Time
}

type pendingRead struct {
	from  actor.From
	query []byte
	index uint64
}

// logStore is the member's durable log: the WAL, or an in-memory log
// (Config.InMemory).
type logStore interface {
	core.Storage
	Save(hs *raftpb.HardState, entries []*raftpb.Entry) error
	Sync() error
	ApplySnapshot(snap *raftpb.Snapshot) error
	CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error)
	Compact(i uint64) error
	Close() error
}

// memLog is a log kept in process memory (Config.InMemory).
type memLog struct{ *core.MemoryStorage }

func (l memLog) Save(hs *raftpb.HardState, entries []*raftpb.Entry) error {
	if hs != nil {
		l.SetHardState(hs)
	}
	if len(entries) > 0 {
		return l.Append(entries)
	}
	return nil
}

func (memLog) Sync() error  { return nil }
func (memLog) Close() error { return nil }

// openWALs holds the WAL each data directory has open, so that a member
// restarted after being killed (which runs no cleanup) closes its
// predecessor's files before opening them again. memLogs holds the
// in-memory logs, which outlive their members (a restarted member must find
// its votes and entries again) for as long as the process runs.
var openWALs = struct {
	sync.Mutex
	m   map[string]*wal.WAL
	mem map[string]memLog
}{m: map[string]*wal.WAL{}, mem: map[string]memLog{}}

func (m *member) openLog(ctx *actor.Context) (logStore, error) {
	openWALs.Lock()
	defer openWALs.Unlock()
	if m.cfg.InMemory {
		key := fmt.Sprintf("%p/%s/%d", ctx.System(), m.cfg.Group, m.cfg.ID)
		l, ok := openWALs.mem[key]
		if !ok {
			l = memLog{core.NewMemoryStorage()}
			openWALs.mem[key] = l
		}
		return l, nil
	}
	if old := openWALs.m[m.cfg.Dir]; old != nil {
		old.Close()
		delete(openWALs.m, m.cfg.Dir)
	}
	w, err := wal.Open(m.cfg.Dir, wal.Options{})
	if err != nil {
		return nil, fmt.Errorf("raft: open log: %w", err)
	}
	openWALs.m[m.cfg.Dir] = w
	if r := w.Recovery(); r.DroppedBytes > 0 {
		m.log.Warn("write-ahead log had a torn tail; cut it", zap.Int64("bytes", r.DroppedBytes))
	}
	return w, nil
}

func (m *member) Init(ctx *actor.Context) error {
	m.log = ctx.Logger().With(zap.String("raft_group", m.cfg.Group), zap.Uint64("raft_id", m.cfg.ID))
	w, err := m.openLog(ctx)
	if err != nil {
		return err
	}
	m.w = w
	m.sm = m.cfg.NewStateMachine()
	m.addrs = make(map[uint64]string, len(m.cfg.Peers)+1)
	for id, addr := range m.cfg.Peers {
		m.addrs[id] = addr
	}
	m.addrs[m.cfg.ID] = ctx.System().Address()
	snap, err := w.Snapshot()
	if err != nil {
		return fmt.Errorf("raft: read snapshot: %w", err)
	}
	if err := m.restore(snap); err != nil {
		return err
	}
	var bootstrap []uint64
	for _, id := range m.cfg.peerIDs() {
		if id != m.cfg.ID || !m.cfg.Join {
			bootstrap = append(bootstrap, id)
		}
	}
	rn, err := core.NewRawNode(&core.Config{
		ID:            m.cfg.ID,
		Peers:         bootstrap,
		Storage:       w,
		Applied:       m.applied,
		ElectionTick:  m.cfg.ElectionTicks,
		HeartbeatTick: m.cfg.HeartbeatTicks,
		PreVote:       !m.cfg.DisablePreVote,
		CheckQuorum:   !m.cfg.DisableCheckQuorum,
		RandSeed:      rand.Uint64() | 1,
	})
	if err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	m.rn = rn
	m.proposals = map[uint64]proposal{}
	m.reads = map[string]*pendingRead{}
	m.nextProp = rand.Uint64()
	st := rn.Status()
	m.term, m.commit = st.Term, st.Commit
	m.publish()
	ctx.Tick(m.cfg.TickInterval, tickMsg{})
	ctx.SetInfo(m.info)
	m.log.Info("raft member started", zap.Uint64("term", st.Term), zap.Uint64("commit", st.Commit),
		zap.Uint64("last_index", st.LastIndex))
	m.schedule(ctx)
	return nil
}

// info reports the state published by publish; safe from any goroutine.
func (m *member) info() string {
	s := m.summary.Load()
	if s == nil {
		return ""
	}
	return fmt.Sprintf("raft %s id=%d role=%s term=%d leader=%d commit=%d applied=%d",
		m.cfg.Group, m.cfg.ID, s.role, s.term, s.lead, s.commit, s.applied)
}

// publish refreshes the summary info reports, when it changed.
func (m *member) publish() {
	s := summary{role: m.role, term: m.term, lead: m.lead, commit: m.commit, applied: m.applied}
	if old := m.summary.Load(); old == nil || *old != s {
		m.summary.Store(&s)
	}
}

func (m *member) Terminate(ctx *actor.Context, reason actor.Reason) {
	defer m.clearLag()
	if m.rn != nil && m.role == core.Leader {
		m.handOff(ctx)
	}
	m.failPending(&rpcpb.Retry{Reason: "member stopped: " + reason.String(), UnknownOutcome: true})
	if w, ok := m.w.(*wal.WAL); ok {
		openWALs.Lock()
		if openWALs.m[m.cfg.Dir] == w {
			delete(openWALs.m, m.cfg.Dir)
		}
		openWALs.Unlock()
		w.Close()
	}
}

// handOff, on a leader that is stopping (not killed), transfers leadership
// to the most up-to-date voter, so that the group elects it at once instead
// of waiting for an election timeout.
func (m *member) handOff(ctx *actor.Context) {
	st := m.rn.Status()
	var best uint64
	var bestMatch uint64
	for id, pr := range st.Progress {
		if id != m.cfg.ID && !pr.IsLearner && pr.Match > bestMatch {
			best, bestMatch = id, pr.Match
		}
	}
	if best == core.None {
		return
	}
	if err := m.rn.TransferLeader(best); err != nil {
		return
	}
	if err := m.handleReady(ctx); err == nil {
		m.log.Info("leadership handed off on stop", zap.Uint64("to", best), zap.Uint64("match", bestMatch))
	}
}

func (m *member) HandleInfo(ctx *actor.Context, msg any) error {
	switch x := msg.(type) {
	case tickMsg:
		m.rn.Tick()
		if m.ticks++; m.ticks%lagEvery == 0 {
			m.updateLag()
		}
	case *raftpb.Message:
		// The core refuses malformed messages (wrong recipient, no sender,
		// missing entries, ...) with ErrInvalidMessage.
		if err := m.rn.Step(x); err != nil && !errors.Is(err, core.ErrProposalDropped) {
			m.mx.invalid.Inc()
			m.log.Debug("message refused", zap.Stringer("type", x.Type), zap.Uint64("from", x.From), zap.Error(err))
		}
	case flushMsg:
		m.scheduled = false
		if err := m.handleReady(ctx); err != nil {
			return err // crash: the supervisor restarts the member from its log
		}
		return nil
	}
	m.schedule(ctx)
	return nil
}

// peerPID returns the PID member id is reached at (nil if its address is
// unknown).
func (m *member) peerPID(id uint64) *actor.PID {
	if p, ok := m.pids[id]; ok {
		return p
	}
	addr, ok := m.addrs[id]
	if !ok {
		return nil
	}
	if m.pids == nil {
		m.pids = map[uint64]*actor.PID{}
	}
	p := actor.NamedPID(addr, ActorName(m.cfg.Group, id))
	m.pids[id] = p
	return p
}

// setAddr records member id's address.
func (m *member) setAddr(id uint64, addr string) {
	if m.addrs[id] != addr {
		m.addrs[id] = addr
		delete(m.pids, id)
	}
}

func (m *member) HandleCall(ctx *actor.Context, req any, from actor.From) (any, error) {
	defer m.schedule(ctx)
	switch r := req.(type) {
	case *rpcpb.ProposeRequest:
		if m.role != core.Leader {
			return m.redirect(), nil
		}
		m.nextProp++
		id := m.nextProp
		m.proposals[id] = proposal{from: from, start: time.Now()}
		m.batch = appendProposal(m.batch, id, r.Command)
		m.batchIDs = append(m.batchIDs, id)
		if len(m.batch) >= maxBatchBytes {
			m.proposeBatch()
		}
		return nil, actor.ErrNoReply
	case *rpcpb.ReadRequest:
		if r.Stale {
			res, err := m.sm.Query(r.Query)
			if err != nil {
				return nil, err
			}
			return &rpcpb.ReadResponse{Result: res, Index: m.applied}, nil
		}
		if m.role != core.Leader {
			return m.redirect(), nil
		}
		m.nextRead++
		rctx := make([]byte, 16)
		binary.BigEndian.PutUint64(rctx, m.cfg.ID)
		binary.BigEndian.PutUint64(rctx[8:], m.nextRead)
		if err := m.rn.ReadIndex(rctx); err != nil {
			return &rpcpb.Retry{Reason: err.Error()}, nil
		}
		m.reads[string(rctx)] = &pendingRead{from: from, query: r.Query}
		return nil, actor.ErrNoReply
	case *rpcpb.StatusRequest:
		return m.status(ctx), nil
	case *rpcpb.MembershipRequest:
		if m.role != core.Leader {
			return m.redirect(), nil
		}
		if m.pendingConf != nil {
			return &rpcpb.Retry{Reason: "another membership change is in progress"}, nil
		}
		if r.NodeId == 0 || (r.Type != raftpb.ConfChangeType_CONF_CHANGE_TYPE_REMOVE_NODE && r.Address == "") {
			return nil, fmt.Errorf("raft: membership change needs a node id and, to add, its address")
		}
		cc := &raftpb.ConfChange{Changes: []*raftpb.ConfChangeSingle{{Type: r.Type, NodeId: r.NodeId}},
			Context: []byte(r.Address)}
		if err := m.rn.ProposeConfChange(cc); err != nil {
			if errors.Is(err, core.ErrInvalidConfChange) {
				return nil, err
			}
			return &rpcpb.Retry{Reason: err.Error()}, nil
		}
		m.pendingConf = &confWait{from: from, node: r.NodeId}
		return nil, actor.ErrNoReply
	}
	return nil, fmt.Errorf("raft: unexpected request %T", req)
}

func (m *member) status(ctx *actor.Context) *rpcpb.Status {
	st := m.rn.Status()
	first, _ := m.w.FirstIndex()
	return &rpcpb.Status{Id: m.cfg.ID, Role: st.Role.String(), Term: st.Term, LeaderId: st.Lead,
		Commit: st.Commit, Applied: m.applied, LastIndex: st.LastIndex, Address: ctx.System().Address(),
		Voters: st.Config.GetVoters(), Learners: st.Config.GetLearners(), SnapshotIndex: m.snapIndex,
		FirstIndex: first, Pid: ctx.Self().ToProto()}
}

func (m *member) redirect() *rpcpb.Redirect {
	r := &rpcpb.Redirect{LeaderId: m.lead}
	if m.lead != core.None {
		r.LeaderAddress = m.addrs[m.lead]
	}
	return r
}

// maxBatchBytes bounds the commands batched into one log entry.
const maxBatchBytes = 256 << 10

// proposeBatch appends the batched commands to the log as one entry.
func (m *member) proposeBatch() {
	if len(m.batch) == 0 {
		return
	}
	// The log keeps data, so it gets an exact copy; the batch buffer is
	// reused.
	data, ids := slices.Clone(m.batch), m.batchIDs
	m.batch, m.batchIDs = m.batch[:0], ids[:0]
	if err := m.rn.Propose(data); err != nil {
		// Not in the log: the clients may retry at once.
		why := &rpcpb.Retry{Reason: err.Error()}
		for _, id := range ids {
			if w, ok := m.proposals[id]; ok {
				delete(m.proposals, id)
				w.from.Reply(why)
			}
		}
	}
}

// schedule makes sure a flushMsg follows the messages already queued, so
// that one Ready (one fsync) covers all of them.
func (m *member) schedule(ctx *actor.Context) {
	if !m.scheduled && (len(m.batch) > 0 || m.rn.HasReady()) {
		m.scheduled = true
		ctx.Send(ctx.Self(), flushMsg{})
	}
}

func (m *member) handleReady(ctx *actor.Context) error {
	m.proposeBatch()
	for m.rn.HasReady() {
		rd := m.rn.Ready()
		if rd.SoftState != nil {
			m.softState(rd.SoftState)
		}
		if rd.Snapshot != nil {
			if err := m.w.ApplySnapshot(rd.Snapshot); err != nil {
				return fmt.Errorf("raft: persist snapshot: %w", err)
			}
		}
		if rd.HardState != nil || len(rd.Entries) > 0 || rd.Snapshot != nil {
			if err := m.w.Save(rd.HardState, rd.Entries); err != nil {
				return fmt.Errorf("raft: write log: %w", err)
			}
			if rd.MustSync && !m.cfg.NoSync {
				start := time.Now()
				if err := m.w.Sync(); err != nil {
					return fmt.Errorf("raft: sync log: %w", err)
				}
				m.mx.fsync.Observe(time.Since(start).Seconds())
			}
			m.mx.entries.Add(float64(len(rd.Entries)))
			if n := len(rd.Entries); n > 0 && m.role == core.Leader {
				m.marks = append(m.marks, appendMark{index: rd.Entries[n-1].Index, at: time.Now()})
			}
		}
		if rd.HardState != nil {
			m.term, m.commit = rd.HardState.Term, rd.HardState.Commit
			m.mx.term.Set(float64(m.term))
			m.mx.commit.Set(float64(m.commit))
		}
		for _, msg := range rd.Messages {
			if to := m.peerPID(msg.To); to != nil {
				ctx.Send(to, msg)
			} else {
				m.mx.unroutable.Inc()
			}
		}
		if rd.Snapshot != nil {
			if err := m.restore(rd.Snapshot); err != nil {
				return err
			}
		}
		for _, e := range rd.CommittedEntries {
			m.apply(e)
		}
		for _, rs := range rd.ReadStates {
			if r := m.reads[string(rs.RequestCtx)]; r != nil {
				delete(m.reads, string(rs.RequestCtx))
				r.index = rs.Index
				m.readQueue = append(m.readQueue, r)
			}
		}
		m.rn.Advance(rd)
		m.serveReads()
	}
	m.publish()
	return m.maybeSnapshot()
}

// restore makes the state machine and the member addresses those of snap
// (nothing to do for the empty snapshot).
func (m *member) restore(snap *raftpb.Snapshot) error {
	idx := snap.GetMetadata().GetIndex()
	if idx == 0 {
		return nil
	}
	var data rpcpb.SnapshotData
	if err := proto.Unmarshal(snap.Data, &data); err != nil {
		return fmt.Errorf("raft: snapshot at %d: %w", idx, err)
	}
	if err := m.sm.Restore(data.State); err != nil {
		return fmt.Errorf("raft: restore snapshot at %d: %w", idx, err)
	}
	for id, addr := range data.Addresses {
		if id != m.cfg.ID {
			m.setAddr(id, addr)
		}
	}
	m.applied, m.snapIndex = idx, idx
	m.mx.applied.Set(float64(idx))
	m.log.Info("state restored from snapshot", zap.Uint64("index", idx))
	return nil
}

// maybeSnapshot snapshots the state machine once SnapshotEntries entries
// were applied since the last snapshot, and compacts the log, keeping
// CompactKeep entries for followers that lag a little.
func (m *member) maybeSnapshot() error {
	if m.cfg.SnapshotEntries <= 0 || m.applied-m.snapIndex < uint64(m.cfg.SnapshotEntries) {
		return nil
	}
	state, err := m.sm.Snapshot()
	if err != nil {
		return fmt.Errorf("raft: snapshot state machine: %w", err)
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(&rpcpb.SnapshotData{State: state, Addresses: m.addrs})
	if err != nil {
		return fmt.Errorf("raft: encode snapshot: %w", err)
	}
	start := time.Now()
	if _, err := m.w.CreateSnapshot(m.applied, m.rn.Status().Config, data); err != nil {
		return fmt.Errorf("raft: write snapshot: %w", err)
	}
	m.snapIndex = m.applied
	if keep := uint64(m.cfg.CompactKeep); m.applied > keep {
		first, _ := m.w.FirstIndex()
		if upto := m.applied - keep; upto >= first {
			if err := m.w.Compact(upto); err != nil {
				return fmt.Errorf("raft: compact log: %w", err)
			}
		}
	}
	m.mx.snapshots.Inc()
	m.log.Debug("snapshot taken", zap.Uint64("index", m.applied), zap.Int("bytes", len(data)),
		zap.Duration("took", time.Since(start)))
	return nil
}

// updateLag sets replication_lag_seconds for each follower, on the leader:
// the age of the oldest entry the follower does not have yet (0 when it
// has everything).
func (m *member) updateLag() {
	if m.role != core.Leader {
		m.clearLag()
		return
	}
	st := m.rn.Status()
	now := time.Now()
	minMatch := st.LastIndex
	for id, pr := range st.Progress {
		if id == m.cfg.ID {
			continue
		}
		minMatch = min(minMatch, pr.Match)
		lag := 0.0
		if pr.Match < st.LastIndex {
			for _, mk := range m.marks {
				if mk.index > pr.Match {
					lag = now.Sub(mk.at).Seconds()
					break
				}
			}
		}
		if m.lagging == nil {
			m.lagging = map[uint64]bool{}
		}
		m.lagging[id] = true
		m.mx.lag.WithLabelValues(m.cfg.Group, strconv.FormatUint(id, 10)).Set(lag)
	}
	// Marks every follower has passed are no longer needed; keep a bounded
	// number in any case.
	i := 0
	for i < len(m.marks) && m.marks[i].index <= minMatch {
		i++
	}
	if over := len(m.marks) - i - 4096; over > 0 {
		i += over
	}
	m.marks = append(m.marks[:0], m.marks[i:]...)
}

// clearLag removes this member's replication_lag_seconds series: only the
// leader reports them.
func (m *member) clearLag() {
	for id := range m.lagging {
		m.mx.lag.DeleteLabelValues(m.cfg.Group, strconv.FormatUint(id, 10))
		delete(m.lagging, id)
	}
	m.marks = m.marks[:0]
}

func (m *member) softState(ss *core.SoftState) {
	wasLeader := m.role == core.Leader
	if ss.Lead != m.lead {
		m.mx.leaderChanges.Inc()
		m.log.Info("leader changed", zap.Uint64("leader", ss.Lead), zap.Stringer("role", ss.Role))
	}
	m.role, m.lead = ss.Role, ss.Lead
	if wasLeader && ss.Role != core.Leader {
		// Entries proposed here may still be committed by the next leader,
		// or lost: the clients cannot know, and retry (sessions make that
		// safe).
		m.failPending(&rpcpb.Retry{Reason: "leadership lost", UnknownOutcome: true})
	}
	if ss.Role == core.Leader {
		m.mx.isLeader.Set(1)
	} else {
		m.mx.isLeader.Set(0)
		m.clearLag()
	}
}

func (m *member) failPending(why *rpcpb.Retry) {
	m.batch, m.batchIDs = m.batch[:0], m.batchIDs[:0]
	for id, p := range m.proposals {
		p.from.Reply(why)
		delete(m.proposals, id)
	}
	notApplied := &rpcpb.Retry{Reason: why.Reason}
	for k, r := range m.reads {
		r.from.Reply(notApplied)
		delete(m.reads, k)
	}
	for _, r := range m.readQueue {
		r.from.Reply(notApplied)
	}
	m.readQueue = nil
	if m.pendingConf != nil {
		m.pendingConf.from.Reply(why)
		m.pendingConf = nil
	}
}

func (m *member) apply(e *raftpb.Entry) {
	if e.Index <= m.applied {
		return
	}
	m.applied = e.Index
	m.mx.applied.Set(float64(e.Index))
	if e.Type == raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE {
		m.applyConfChange(e)
		return
	}
	if len(e.Data) == 0 {
		return // a leader's no-op
	}
	props, err := decodeProposals(e.Data, m.entryProps[:0])
	m.entryProps = props
	if err != nil {
		m.log.Error("malformed log entry skipped", zap.Uint64("index", e.Index), zap.Error(err))
		return
	}
	var now time.Time // read once per entry, when a client here waits
	for _, pr := range props {
		res := m.sm.Apply(e.Index, pr.command)
		if p, ok := m.proposals[pr.id]; ok {
			delete(m.proposals, pr.id)
			if now.IsZero() {
				now = time.Now()
			}
			m.mx.round.Observe(now.Sub(p.start).Seconds())
			p.from.Reply(&rpcpb.ProposeResponse{Result: res, Index: e.Index})
		}
	}
	clear(props) // no references to the entry's data
}

func (m *member) applyConfChange(e *raftpb.Entry) {
	var cc raftpb.ConfChange
	if err := proto.Unmarshal(e.Data, &cc); err != nil {
		m.log.Error("malformed membership change skipped", zap.Uint64("index", e.Index), zap.Error(err))
		return
	}
	cs, err := m.rn.ApplyConfChange(&cc)
	if err != nil {
		m.log.Warn("membership change refused", zap.Uint64("index", e.Index), zap.Error(err))
	} else {
		for _, ch := range cc.Changes {
			if ch.Type != raftpb.ConfChangeType_CONF_CHANGE_TYPE_REMOVE_NODE && len(cc.Context) > 0 && ch.NodeId != m.cfg.ID {
				m.setAddr(ch.NodeId, string(cc.Context))
			}
		}
		m.log.Info("membership changed", zap.Uint64("index", e.Index), zap.Uint64s("voters", cs.GetVoters()),
			zap.Uint64s("learners", cs.GetLearners()))
	}
	if p := m.pendingConf; p != nil && len(cc.Changes) > 0 && cc.Changes[0].NodeId == p.node {
		m.pendingConf = nil
		if err != nil {
			p.from.Reply(err)
		} else {
			p.from.Reply(&rpcpb.MembershipResponse{ConfState: cs, Index: e.Index})
		}
	}
}

func (m *member) serveReads() {
	keep := m.readQueue[:0]
	for _, r := range m.readQueue {
		if r.index > m.applied {
			keep = append(keep, r)
			continue
		}
		res, err := m.sm.Query(r.query)
		if err != nil {
			r.from.Reply(err)
			continue
		}
		r.from.Reply(&rpcpb.ReadResponse{Result: res, Index: r.index})
	}
	clear(m.readQueue[len(keep):])
	m.readQueue = keep
}
