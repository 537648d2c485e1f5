package cluster

// Global names and process groups: Erlang's global and pg, replicated by
// gossip.
//
// Ownership. Every record (a name registration or a group membership) is
// owned by the node that hosts its actor, and only the owner changes it.
// The owner numbers its changes with a version that grows by one per change,
// so replicas need no consensus: of two copies of one record, the one with
// the higher version is newer. Deleting a record (unregister, leave, death
// of the actor) is a change too, sent as a tombstone.
//
// Propagation. A change is broadcast at once through memberlist's gossip
// (one record per message), and every node that learns something new from
// a broadcast broadcasts it again, so news spreads epidemically. Push/pull
// exchanges carry everything a node knows, each owner's part marked
// complete through a version: a record of that owner at or below that
// version which is missing from the part no longer exists. That is how
// deletions missed by broadcasts are repaired, and why tombstones can be
// forgotten once a complete part covers them. When a node sees another
// join or come back, the two send each other what they own directly.
//
// Failures. When membership declares a node dead or left, every other node
// drops all of its records at once and ignores copies of them relayed by
// others until the node is back. A node picks a new epoch (its start time)
// each time it starts, so records of a node's earlier life are void.
//
// Conflicts. During a partition both sides may register one name for
// different actors. Of the registrations of one name, the one with the
// smallest (time, owner node name, PID id, PID address) wins on every node;
// the time is the owner's hybrid clock at registration (wall clock in
// nanoseconds, raised above every registration time the owner has seen, so
// a registration made after seeing another is later than it). Every node
// answers WhereIsGlobal with the winner as soon as it knows both; the
// loser's owner removes its registration and sends the losing actor a
// *NameConflict.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster/clusterpb"
)

// Errors of the global registry and process groups. Callers branch on them
// with errors.Is.
var (
	// ErrGlobalNameTaken: the name is registered to another actor.
	ErrGlobalNameTaken = errors.New("cluster: global name is taken")
	// ErrNotOwner: the actor, or the registration, belongs to another node;
	// only the node that hosts an actor registers it, unregisters it, or
	// adds it to and removes it from groups.
	ErrNotOwner = errors.New("cluster: not owned by this node")
	// ErrNodeNotRunning: the node has not been started, or has stopped.
	ErrNodeNotRunning = errors.New("cluster: node is not running")
)

// NameConflict is delivered to an actor whose global name was registered
// for another actor as well during a partition, and whose registration lost
// (see Node.RegisterGlobal for the rule). The name no longer refers to it.
//
// Erlang's global resolves such a clash with a resolve function that by
// default kills one of the two processes; here the loser is told instead and
// decides itself: stop, hand over, or carry on without the name.
type NameConflict struct {
	// Name is the global name that was lost.
	Name string
	// Winner is the actor the name refers to now (as the owner node saw it
	// when it resolved the conflict).
	Winner *actor.PID
}

// Limits on what the registry accepts, from users and from the network.
const (
	// maxGlobalKey bounds global names and group names, in bytes: a record
	// must fit into one gossip packet.
	maxGlobalKey = 255
	// maxGlobalOwnerName bounds node names in received state.
	maxGlobalOwnerName = 1024
	// maxGlobalStateBytes bounds a received state (memberlist's own limit
	// on push/pull state is 20 MB).
	maxGlobalStateBytes = 16 << 20
	// maxGlobalOwners bounds the owners in one received state.
	maxGlobalOwners = 1 << 12
	// maxGlobalRecords bounds the records in one received state.
	maxGlobalRecords = 1 << 20
	// globalRetransmitMult is the broadcast queue's retransmit multiplier:
	// a message goes out RetransmitMult*log10(N+1) times (memberlist's LAN
	// value).
	globalRetransmitMult = 4
)

// globalMsgState is the type byte in front of every gossip payload of the
// registry: a clusterpb.GlobalState follows.
const globalMsgState byte = 1

// Node methods: the public API.

// RegisterGlobal registers a cluster-wide unique name for an actor of this
// node, as Erlang's global:register_name. The registration is broadcast at
// once (with the Local preset every node of a small cluster sees it within
// tens of milliseconds); it ends when UnregisterGlobal is called, when the
// actor dies, or when this node is declared dead or leaves.
//
// It fails with ErrGlobalNameTaken if the name is known to be registered to
// another actor; registering the same actor again under its name is a no-op.
// It fails with ErrNotOwner for an actor of another node, and with an error
// matching actor.ErrDeadActor for a dead one.
//
// Two nodes cut off from each other may both register a name. When they
// meet again, every node settles on the registration with the smallest
// (registration time, owner node name, PID id, PID address); the losing
// actor receives a *NameConflict and the name is removed from it. ctx is
// checked before anything is changed; the call itself does not wait for
// the network.
func (n *Node) RegisterGlobal(ctx context.Context, name string, pid *actor.PID) error {
	op := fmt.Sprintf("register global name %q", name)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cluster: %s: %w", op, err)
	}
	if err := validGlobalKey("global name", name); err != nil {
		return err
	}
	g := n.global
	if err := g.checkOwnActor(op, pid); err != nil {
		return err
	}
	g.mu.Lock()
	rec, err := g.t.register(name, pid, time.Now().UnixNano())
	if rec != nil {
		g.queueOwn(rec)
	}
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: %s: %w", op, err)
	}
	if rec != nil {
		g.watch(pid)
	}
	return nil
}

// UnregisterGlobal removes a global name registered by this node, as
// Erlang's global:unregister_name. A name that is not registered is not an
// error; a name registered by another node fails with ErrNotOwner.
func (n *Node) UnregisterGlobal(name string) error {
	if err := validGlobalKey("global name", name); err != nil {
		return err
	}
	g := n.global
	g.mu.Lock()
	rec, err := g.t.unregister(name)
	if rec != nil {
		g.queueOwn(rec)
	}
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: unregister global name %q: %w", name, err)
	}
	if rec != nil {
		g.unwatch(rec.pid)
	}
	return nil
}

// WhereIsGlobal returns the actor registered under a global name, as this
// node knows it (Erlang's global:whereis_name).
func (n *Node) WhereIsGlobal(name string) (*actor.PID, bool) {
	g := n.global
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := g.t.winner(name); w != nil {
		return w.pid, true
	}
	return nil, false
}

// GlobalNames lists the registered global names, sorted, as this node knows
// them (Erlang's global:registered_names).
func (n *Node) GlobalNames() []string {
	g := n.global
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.t.names()
}

// JoinGroup adds an actor of this node to a process group, as Erlang's
// pg:join. Groups need not be created; a group exists while it has members.
// An actor is a member at most once: joining again is a no-op (unlike pg,
// which counts joins). The actor leaves its groups when it dies or when
// this node is declared dead or leaves. It fails with ErrNotOwner for an
// actor of another node and with an error matching actor.ErrDeadActor for
// a dead one.
func (n *Node) JoinGroup(group string, pid *actor.PID) error {
	op := fmt.Sprintf("join group %q", group)
	if err := validGlobalKey("group name", group); err != nil {
		return err
	}
	g := n.global
	if err := g.checkOwnActor(op, pid); err != nil {
		return err
	}
	g.mu.Lock()
	rec := g.t.join(group, pid)
	if rec != nil {
		g.queueOwn(rec)
	}
	g.mu.Unlock()
	if rec != nil {
		g.watch(pid)
	}
	return nil
}

// LeaveGroup removes an actor of this node from a process group, as
// Erlang's pg:leave. Leaving a group the actor is not in is not an error.
// It fails with ErrNotOwner for an actor of another node.
func (n *Node) LeaveGroup(group string, pid *actor.PID) error {
	if err := validGlobalKey("group name", group); err != nil {
		return err
	}
	if pid == nil {
		return fmt.Errorf("cluster: leave group %q: pid is nil", group)
	}
	g := n.global
	if pid.Address() != n.addr {
		return fmt.Errorf("cluster: leave group %q: %s is not an actor of node %s: %w", group, pid, n.cfg.Name, ErrNotOwner)
	}
	g.mu.Lock()
	rec := g.t.leave(group, pid)
	if rec != nil {
		g.queueOwn(rec)
	}
	g.mu.Unlock()
	if rec != nil {
		g.unwatch(pid)
	}
	return nil
}

// GroupMembers returns the members of a process group on all nodes, as this
// node knows them (Erlang's pg:get_members), sorted by PID id and then
// address.
func (n *Node) GroupMembers(group string) []*actor.PID {
	g := n.global
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.t.members(group, false)
}

// LocalGroupMembers returns the members of a process group that run on this
// node (Erlang's pg:get_local_members), sorted like GroupMembers.
func (n *Node) LocalGroupMembers(group string) []*actor.PID {
	g := n.global
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.t.members(group, true)
}

// Groups lists the process groups that have members, sorted (Erlang's
// pg:which_groups).
func (n *Node) Groups() []string {
	g := n.global
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.t.groups()
}

// globalRegistry connects the replicated table to the node: gossip hooks,
// broadcasts, the actor that watches registered actors, and conflict
// notices.
type globalRegistry struct {
	n     *Node
	queue *memberlist.TransmitLimitedQueue

	mu      sync.Mutex
	t       *globalTable
	watcher *actor.PID
}

func newGlobalRegistry(n *Node) *globalRegistry {
	g := &globalRegistry{n: n, t: newGlobalTable(n.cfg.Name, uint64(time.Now().UnixNano()))}
	// The node's member list, not memberlist's, counts the nodes: the
	// queue exists before memberlist does.
	g.queue = &memberlist.TransmitLimitedQueue{RetransmitMult: globalRetransmitMult, NumNodes: func() int {
		n.mu.RLock()
		defer n.mu.RUnlock()
		c := 0
		for _, m := range n.members {
			if m.State == Alive {
				c++
			}
		}
		return max(c, 1)
	}}
	return g
}

// notifyMsg receives a gossip message from another node: a broadcast, or a
// direct exchange with a node that has just joined or come back.
func (g *globalRegistry) notifyMsg(b []byte) {
	st, err := decodeGlobalState(b)
	if err != nil {
		g.n.log.Warn("bad global registry message", zap.Error(err))
		return
	}
	g.apply(st, true)
	if to := st.GetReplyTo(); to != "" && to != g.n.cfg.Name {
		go g.sendOwnState(to, false)
	}
}

// broadcasts returns queued gossip messages (memberlist's GetBroadcasts).
func (g *globalRegistry) broadcasts(overhead, limit int) [][]byte {
	return g.queue.GetBroadcasts(overhead, limit)
}

// localState is everything this node knows, for a push/pull exchange.
func (g *globalRegistry) localState(bool) []byte {
	g.mu.Lock()
	st := g.t.snapshot()
	g.mu.Unlock()
	b, err := encodeGlobalState(st)
	if err != nil {
		g.n.log.Error("global registry state", zap.Error(err))
		return nil
	}
	return b
}

// mergeRemoteState merges another node's push/pull state.
func (g *globalRegistry) mergeRemoteState(buf []byte, _ bool) {
	if len(buf) == 0 {
		return // a node that sent no state (one that is still starting)
	}
	st, err := decodeGlobalState(buf)
	if err != nil {
		g.n.log.Warn("bad global registry state", zap.Error(err))
		return
	}
	g.apply(st, false)
}

// nodeGone drops what a dead or departed node owned.
func (g *globalRegistry) nodeGone(name string) {
	g.mu.Lock()
	g.t.dropOwner(name)
	g.mu.Unlock()
}

// nodeUp is called when a node joins or comes back: accept its records
// again, and exchange what each of the two owns directly.
func (g *globalRegistry) nodeUp(name string) {
	g.mu.Lock()
	g.t.ownerUp(name)
	g.mu.Unlock()
	// memberlist calls this with its member lock held: look the node up
	// and send from another goroutine.
	go g.sendOwnState(name, true)
}

// apply merges a received state and acts on the result: broadcast what
// changed, tell actors that lost a name.
func (g *globalRegistry) apply(st *clusterpb.GlobalState, rebroadcast bool) {
	parts, err := parseGlobalState(st)
	if err != nil {
		g.n.log.Warn("bad global registry state", zap.Error(err))
		return
	}
	g.mu.Lock()
	res := g.t.merge(parts)
	for _, r := range res.own {
		g.queueOwn(r)
	}
	if rebroadcast {
		for _, c := range res.changed {
			g.queueRecord(c.epoch, c.r)
		}
	}
	if res.reannounce {
		for _, r := range g.t.ownRecords() {
			g.queueOwn(r)
		}
	}
	g.mu.Unlock()
	for _, c := range res.conflicts {
		g.n.log.Info("global name conflict resolved", zap.String("name", c.name),
			zap.Stringer("loser", c.loser), zap.Stringer("winner", c.winner))
		if g.n.sys != nil {
			g.n.sys.Send(c.loser, &NameConflict{Name: c.name, Winner: c.winner})
		}
		g.unwatch(c.loser)
	}
}

// queueOwn broadcasts a change of this node's own records. g.mu is held.
func (g *globalRegistry) queueOwn(r *globalRecord) { g.queueRecord(g.t.epoch, r) }

// queueRecord broadcasts one record. g.mu is held, so records of one key
// are queued in version order and a newer one replaces an older one in the
// queue.
func (g *globalRegistry) queueRecord(epoch uint64, r *globalRecord) {
	st := &clusterpb.GlobalState{Owners: []*clusterpb.OwnerState{{
		Owner: r.owner, Epoch: epoch, Records: []*clusterpb.GlobalRecord{r.toProto()}}}}
	b, err := encodeGlobalState(st)
	if err != nil {
		g.n.log.Error("global registry broadcast", zap.Error(err))
		return
	}
	id := r.id()
	g.queue.QueueBroadcast(&globalBroadcast{name: r.owner + "\x00" + id.String(), msg: b})
}

// sendOwnState sends this node's own records directly to a node, asking for
// its own in return when request is set.
func (g *globalRegistry) sendOwnState(to string, request bool) {
	n := g.n
	ml := n.ml
	if ml == nil || n.crashed.Load() {
		return
	}
	target, ok := n.gossipTarget(to)
	if !ok {
		return
	}
	g.mu.Lock()
	st := &clusterpb.GlobalState{Owners: []*clusterpb.OwnerState{g.t.ownerSnapshot(g.t.self)}}
	g.mu.Unlock()
	if request {
		st.ReplyTo = n.cfg.Name
	}
	b, err := encodeGlobalState(st)
	if err != nil {
		n.log.Error("global registry exchange", zap.Error(err))
		return
	}
	if err := ml.SendReliable(target, b); err != nil {
		n.log.Debug("global registry exchange", zap.String("to", to), zap.Error(err))
	}
}

// checkOwnActor checks that pid is a live actor of this running node and
// that the watcher actor runs.
func (g *globalRegistry) checkOwnActor(op string, pid *actor.PID) error {
	n := g.n
	if pid == nil {
		return fmt.Errorf("cluster: %s: pid is nil", op)
	}
	n.mu.RLock()
	running := n.state == 1 && n.sys != nil && n.ml != nil
	n.mu.RUnlock()
	if !running {
		return fmt.Errorf("cluster: %s: node %s: %w", op, n.cfg.Name, ErrNodeNotRunning)
	}
	if pid.Address() != n.addr {
		return fmt.Errorf("cluster: %s: %s is not an actor of node %s: %w", op, pid, n.cfg.Name, ErrNotOwner)
	}
	if !n.sys.Alive(pid) {
		return fmt.Errorf("cluster: %s: %w", op, &actor.DeadActorError{PID: pid})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.watcher == nil {
		w, err := n.sys.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &globalWatcher{g: g, refs: map[string]actor.MonitorRef{}}
		}, actor.WithKind("global_registry")))
		if err != nil {
			return fmt.Errorf("cluster: %s: start the registry's watcher: %w", op, err)
		}
		g.watcher = w
	}
	return nil
}

// watch makes the watcher monitor an actor of this node, so that its
// records go when it dies. Monitoring an actor that is already dead
// delivers Down at once, so there is no window in which a death is missed.
func (g *globalRegistry) watch(pid *actor.PID) {
	g.mu.Lock()
	w := g.watcher
	g.mu.Unlock()
	if w != nil {
		g.n.sys.Send(w, &watchPID{pid: pid})
	}
}

// unwatch lets the watcher drop its monitor of an actor that may no longer
// have records.
func (g *globalRegistry) unwatch(pid *actor.PID) {
	g.mu.Lock()
	w := g.watcher
	g.mu.Unlock()
	if w != nil {
		g.n.sys.Send(w, &unwatchPID{pid: pid})
	}
}

// referenced reports whether an actor of this node has records.
func (g *globalRegistry) referenced(pid *actor.PID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.t.referenced(pid)
}

// actorDown removes the records of an actor of this node that died.
func (g *globalRegistry) actorDown(pid *actor.PID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.t.dropPID(pid) {
		g.queueOwn(r)
	}
}

type watchPID struct{ pid *actor.PID }
type unwatchPID struct{ pid *actor.PID }

// globalWatcher monitors the actors of this node that have records.
type globalWatcher struct {
	g    *globalRegistry
	refs map[string]actor.MonitorRef // by pidKey
}

func (w *globalWatcher) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case *watchPID:
		k := pidKey(m.pid)
		if _, ok := w.refs[k]; !ok {
			w.refs[k] = c.Monitor(m.pid)
		}
	case *unwatchPID:
		// A watch may have raced ahead of this message: ask the table.
		k := pidKey(m.pid)
		if ref, ok := w.refs[k]; ok && !w.g.referenced(m.pid) {
			c.Demonitor(ref)
			delete(w.refs, k)
		}
	case *actor.Down:
		delete(w.refs, pidKey(m.PID))
		w.g.actorDown(m.PID)
	}
}

// globalBroadcast is one queued gossip message. Named by owner and record,
// so that a newer change of a record replaces an older one in the queue.
type globalBroadcast struct {
	name string
	msg  []byte
}

func (b *globalBroadcast) Invalidates(o memberlist.Broadcast) bool {
	nb, ok := o.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.name
}
func (b *globalBroadcast) Name() string    { return b.name }
func (b *globalBroadcast) Message() []byte { return b.msg }
func (b *globalBroadcast) Finished()       {}

// Wire format.

func encodeGlobalState(st *clusterpb.GlobalState) ([]byte, error) {
	b, err := proto.MarshalOptions{}.MarshalAppend([]byte{globalMsgState}, st)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode global state: %w", err)
	}
	return b, nil
}

// decodeGlobalState decodes a gossip payload of the registry. It bounds
// sizes and never panics; parseGlobalState validates the contents.
func decodeGlobalState(b []byte) (*clusterpb.GlobalState, error) {
	switch {
	case len(b) == 0:
		return nil, errors.New("cluster: global state: empty message")
	case b[0] != globalMsgState:
		return nil, fmt.Errorf("cluster: global state: unknown message type %d", b[0])
	case len(b)-1 > maxGlobalStateBytes:
		return nil, fmt.Errorf("cluster: global state: %d bytes, more than %d", len(b)-1, maxGlobalStateBytes)
	}
	st := &clusterpb.GlobalState{}
	if err := proto.Unmarshal(b[1:], st); err != nil {
		return nil, fmt.Errorf("cluster: global state: %w", err)
	}
	return st, nil
}

// ownerPart is one owner's part of a received state, validated.
type ownerPart struct {
	owner    string
	epoch    uint64
	complete uint64
	recs     []*globalRecord
}

// parseGlobalState validates a received state completely, so that a bad
// message changes nothing.
func parseGlobalState(st *clusterpb.GlobalState) ([]ownerPart, error) {
	if len(st.GetOwners()) > maxGlobalOwners {
		return nil, fmt.Errorf("cluster: global state: %d owners, more than %d", len(st.GetOwners()), maxGlobalOwners)
	}
	if len(st.GetReplyTo()) > maxGlobalOwnerName {
		return nil, fmt.Errorf("cluster: global state: reply_to is %d bytes, more than %d", len(st.GetReplyTo()), maxGlobalOwnerName)
	}
	total := 0
	parts := make([]ownerPart, 0, len(st.GetOwners()))
	for i, o := range st.GetOwners() {
		switch {
		case o.GetOwner() == "":
			return nil, fmt.Errorf("cluster: global state: owner %d has no name", i)
		case len(o.GetOwner()) > maxGlobalOwnerName:
			return nil, fmt.Errorf("cluster: global state: owner %d: name is %d bytes, more than %d", i, len(o.GetOwner()), maxGlobalOwnerName)
		case o.GetEpoch() == 0:
			return nil, fmt.Errorf("cluster: global state: owner %q has epoch 0", o.GetOwner())
		}
		total += len(o.GetRecords())
		if total > maxGlobalRecords {
			return nil, fmt.Errorf("cluster: global state: more than %d records", maxGlobalRecords)
		}
		p := ownerPart{owner: o.GetOwner(), epoch: o.GetEpoch(), complete: o.GetCompleteThrough(),
			recs: make([]*globalRecord, 0, len(o.GetRecords()))}
		for j, m := range o.GetRecords() {
			r, err := parseRecord(p.owner, m)
			if err != nil {
				return nil, fmt.Errorf("cluster: global state: owner %q record %d: %w", p.owner, j, err)
			}
			p.recs = append(p.recs, r)
		}
		parts = append(parts, p)
	}
	return parts, nil
}

func parseRecord(owner string, m *clusterpb.GlobalRecord) (*globalRecord, error) {
	what := "global name"
	switch m.GetKind() {
	case clusterpb.GlobalRecord_KIND_NAME:
	case clusterpb.GlobalRecord_KIND_GROUP_MEMBER:
		what = "group name"
	default:
		return nil, fmt.Errorf("unknown kind %d", m.GetKind())
	}
	if err := validGlobalKey(what, m.GetKey()); err != nil {
		return nil, err
	}
	if m.GetVersion() == 0 {
		return nil, fmt.Errorf("%s %q: version 0", what, m.GetKey())
	}
	pid, err := actor.PIDFromProto(m.GetPid())
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, m.GetKey(), err)
	}
	return &globalRecord{owner: owner, kind: m.GetKind(), key: m.GetKey(), pid: pid,
		time: m.GetTime(), version: m.GetVersion(), deleted: m.GetDeleted()}, nil
}

// validGlobalKey checks a global name or a group name: 1 to 255 bytes of
// UTF-8 without control characters.
func validGlobalKey(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("cluster: %s is empty", what)
	case len(s) > maxGlobalKey:
		return fmt.Errorf("cluster: %s is %d bytes, more than %d", what, len(s), maxGlobalKey)
	case !utf8.ValidString(s):
		return fmt.Errorf("cluster: %s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("cluster: %s %q contains the control character %U", what, s, r)
		}
	}
	return nil
}

// The replicated table: pure state, no goroutines, clocks or I/O (the
// caller passes the time), so that tests drive it directly.

// globalRecord is one registration or membership, or its tombstone.
type globalRecord struct {
	owner   string
	kind    clusterpb.GlobalRecord_Kind
	key     string // the name or the group
	pid     *actor.PID
	time    int64 // names: registration time on the owner's hybrid clock
	version uint64
	deleted bool
}

// recID identifies a record within its owner's records.
type recID struct {
	kind clusterpb.GlobalRecord_Kind
	key  string
	pid  string // group members: pidKey of the member
}

func (i recID) String() string {
	if i.kind == clusterpb.GlobalRecord_KIND_NAME {
		return "n\x00" + i.key
	}
	return "g\x00" + i.key + "\x00" + i.pid
}

func nameID(name string) recID { return recID{kind: clusterpb.GlobalRecord_KIND_NAME, key: name} }

func memberID(group string, pid *actor.PID) recID {
	return recID{kind: clusterpb.GlobalRecord_KIND_GROUP_MEMBER, key: group, pid: pidKey(pid)}
}

func (r *globalRecord) id() recID {
	if r.kind == clusterpb.GlobalRecord_KIND_NAME {
		return nameID(r.key)
	}
	return memberID(r.key, r.pid)
}

func (r *globalRecord) toProto() *clusterpb.GlobalRecord {
	return &clusterpb.GlobalRecord{Kind: r.kind, Key: r.key, Pid: r.pid.ToProto(), Time: r.time,
		Version: r.version, Deleted: r.deleted}
}

func pidKey(p *actor.PID) string { return p.Address() + "/" + p.ID() }

// cmpPID orders PIDs by id, then address.
func cmpPID(a, b *actor.PID) int {
	if c := cmp.Compare(a.ID(), b.ID()); c != 0 {
		return c
	}
	return cmp.Compare(a.Address(), b.Address())
}

// wins reports whether name registration a beats b: the smaller
// (time, owner, PID) wins.
func wins(a, b *globalRecord) bool {
	if a.time != b.time {
		return a.time < b.time
	}
	if a.owner != b.owner {
		return a.owner < b.owner
	}
	return cmpPID(a.pid, b.pid) < 0
}

// ownerTable is what this node knows of one owner's records.
type ownerTable struct {
	epoch    uint64
	complete uint64 // the records are complete through this version
	recs     map[recID]*globalRecord
	groups   map[string]map[string]*globalRecord // live members: group → pidKey → record
}

func newOwnerTable(epoch uint64) *ownerTable {
	return &ownerTable{epoch: epoch, recs: map[recID]*globalRecord{}, groups: map[string]map[string]*globalRecord{}}
}

func (o *ownerTable) put(r *globalRecord) {
	id := r.id()
	o.remove(id)
	o.recs[id] = r
	if r.kind == clusterpb.GlobalRecord_KIND_GROUP_MEMBER && !r.deleted {
		m := o.groups[r.key]
		if m == nil {
			m = map[string]*globalRecord{}
			o.groups[r.key] = m
		}
		m[id.pid] = r
	}
}

func (o *ownerTable) remove(id recID) {
	delete(o.recs, id)
	if id.kind == clusterpb.GlobalRecord_KIND_GROUP_MEMBER {
		if m := o.groups[id.key]; m != nil {
			delete(m, id.pid)
			if len(m) == 0 {
				delete(o.groups, id.key)
			}
		}
	}
}

// liveName returns the owner's live registration of a name.
func (o *ownerTable) liveName(name string) *globalRecord {
	if r := o.recs[nameID(name)]; r != nil && !r.deleted {
		return r
	}
	return nil
}

// globalTable is one node's replica of the registry and the groups.
type globalTable struct {
	self    string
	epoch   uint64 // this node's epoch
	version uint64 // this node's last change
	clock   int64  // hybrid clock: the latest registration time made or seen
	owners  map[string]*ownerTable
	gone    map[string]bool // owners declared dead or left, until they are back
}

func newGlobalTable(self string, epoch uint64) *globalTable {
	t := &globalTable{self: self, epoch: max(epoch, 1), owners: map[string]*ownerTable{}, gone: map[string]bool{}}
	t.owners[self] = newOwnerTable(t.epoch)
	return t
}

func (t *globalTable) own() *ownerTable { return t.owners[t.self] }

// ownChange applies a change of an own record and returns it, numbered.
// Own records keep no tombstones: the own part is always complete.
func (t *globalTable) ownChange(r *globalRecord) *globalRecord {
	t.version++
	r.owner, r.version = t.self, t.version
	o := t.own()
	if r.deleted {
		o.remove(r.id())
	} else {
		o.put(r)
	}
	o.complete = t.version
	return r
}

// winner is the live registration of a name that wins, or nil.
func (t *globalTable) winner(name string) *globalRecord {
	var w *globalRecord
	for _, o := range t.owners {
		if r := o.liveName(name); r != nil && (w == nil || wins(r, w)) {
			w = r
		}
	}
	return w
}

func (t *globalTable) register(name string, pid *actor.PID, now int64) (*globalRecord, error) {
	if w := t.winner(name); w != nil {
		if w.owner == t.self && w.pid.Equal(pid) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: registered to %s on node %s", ErrGlobalNameTaken, w.pid, w.owner)
	}
	t.clock = max(now, t.clock+1)
	return t.ownChange(&globalRecord{kind: clusterpb.GlobalRecord_KIND_NAME, key: name, pid: pid, time: t.clock}), nil
}

func (t *globalTable) unregister(name string) (*globalRecord, error) {
	if r := t.own().liveName(name); r != nil {
		return t.ownChange(&globalRecord{kind: r.kind, key: name, pid: r.pid, time: r.time, deleted: true}), nil
	}
	if w := t.winner(name); w != nil {
		return nil, fmt.Errorf("%w: registered to %s by node %s", ErrNotOwner, w.pid, w.owner)
	}
	return nil, nil
}

func (t *globalTable) join(group string, pid *actor.PID) *globalRecord {
	if r := t.own().recs[memberID(group, pid)]; r != nil {
		return nil
	}
	return t.ownChange(&globalRecord{kind: clusterpb.GlobalRecord_KIND_GROUP_MEMBER, key: group, pid: pid})
}

func (t *globalTable) leave(group string, pid *actor.PID) *globalRecord {
	r := t.own().recs[memberID(group, pid)]
	if r == nil {
		return nil
	}
	return t.ownChange(&globalRecord{kind: r.kind, key: group, pid: r.pid, deleted: true})
}

// dropPID removes every own record of an actor and returns the tombstones,
// in a deterministic order.
func (t *globalTable) dropPID(pid *actor.PID) []*globalRecord {
	var ids []recID
	for id, r := range t.own().recs {
		if r.pid.Equal(pid) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b recID) int { return cmp.Compare(a.String(), b.String()) })
	out := make([]*globalRecord, 0, len(ids))
	for _, id := range ids {
		r := t.own().recs[id]
		out = append(out, t.ownChange(&globalRecord{kind: r.kind, key: r.key, pid: r.pid, time: r.time, deleted: true}))
	}
	return out
}

func (t *globalTable) referenced(pid *actor.PID) bool {
	for _, r := range t.own().recs {
		if r.pid.Equal(pid) {
			return true
		}
	}
	return false
}

// ownRecords are this node's live records, in a deterministic order.
func (t *globalTable) ownRecords() []*globalRecord {
	out := make([]*globalRecord, 0, len(t.own().recs))
	for _, r := range t.own().recs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *globalRecord) int { return cmp.Compare(a.id().String(), b.id().String()) })
	return out
}

// dropOwner forgets a dead or departed owner and ignores its records until
// ownerUp.
func (t *globalTable) dropOwner(owner string) {
	if owner == t.self {
		return
	}
	delete(t.owners, owner)
	t.gone[owner] = true
}

func (t *globalTable) ownerUp(owner string) { delete(t.gone, owner) }

// changedRec is a foreign record that a merge changed.
type changedRec struct {
	epoch uint64
	r     *globalRecord
}

// lostName is an own registration that lost a conflict.
type lostName struct {
	name          string
	loser, winner *actor.PID
}

// mergeResult says what a merge changed and what the node must do.
type mergeResult struct {
	// changed are the foreign records of deltas (parts not complete through
	// any version) that changed this table: news to pass on. Complete parts
	// (push/pull, direct exchanges) are not passed on; they are exchanged
	// again anyway.
	changed    []changedRec
	own        []*globalRecord // own changes to broadcast (lost names)
	conflicts  []lostName      // actors of this node that lost their name
	reannounce bool            // this node's epoch moved: broadcast all own records
}

// merge applies received owner parts. Per owner: a newer epoch voids what
// was known; of two copies of a record, the higher version wins; a record
// at or below the known complete version that is not known is already
// deleted; a part complete through a version deletes the known records at
// or below it that it lacks. Parts of this node itself are ignored (it
// knows its own records best) except to move past a newer epoch of its own
// name. Then every own name registration that now loses a conflict is
// removed.
func (t *globalTable) merge(parts []ownerPart) mergeResult {
	var res mergeResult
	touched := map[string]bool{}
	for _, p := range parts {
		if p.owner == t.self {
			// Our own records from an earlier life, with an epoch from a
			// clock that has since gone backwards: outlive them.
			if p.epoch > t.epoch {
				t.epoch = p.epoch + 1
				t.own().epoch = t.epoch
				res.reannounce = true
			}
			continue
		}
		if t.gone[p.owner] {
			continue
		}
		o := t.owners[p.owner]
		switch {
		case o == nil || p.epoch > o.epoch:
			o = newOwnerTable(p.epoch)
			t.owners[p.owner] = o
		case p.epoch < o.epoch:
			continue
		}
		var seen map[recID]bool
		if p.complete > o.complete {
			seen = make(map[recID]bool, len(p.recs))
		}
		for _, r := range p.recs {
			if r.kind == clusterpb.GlobalRecord_KIND_NAME {
				t.clock = max(t.clock, r.time)
			}
			id := r.id()
			if seen != nil {
				seen[id] = true
			}
			cur := o.recs[id]
			if (cur == nil && r.version <= o.complete) || (cur != nil && cur.version >= r.version) {
				continue
			}
			o.put(r)
			if p.complete == 0 {
				res.changed = append(res.changed, changedRec{epoch: o.epoch, r: r})
			}
			if r.kind == clusterpb.GlobalRecord_KIND_NAME && !r.deleted {
				touched[r.key] = true
			}
		}
		if seen != nil {
			o.complete = p.complete
			for id, r := range o.recs {
				if r.version <= o.complete && (!seen[id] || r.deleted) {
					o.remove(id)
				}
			}
		}
	}
	names := make([]string, 0, len(touched))
	for name := range touched {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		mine := t.own().liveName(name)
		if mine == nil {
			continue
		}
		if w := t.winner(name); w != mine {
			res.own = append(res.own, t.ownChange(&globalRecord{kind: mine.kind, key: name, pid: mine.pid,
				time: mine.time, deleted: true}))
			res.conflicts = append(res.conflicts, lostName{name: name, loser: mine.pid, winner: w.pid})
		}
	}
	return res
}

// snapshot is everything this table knows, for push/pull: each owner's
// records complete through its known complete version, with the
// tombstones above it.
func (t *globalTable) snapshot() *clusterpb.GlobalState {
	owners := make([]string, 0, len(t.owners))
	for name := range t.owners {
		owners = append(owners, name)
	}
	slices.Sort(owners)
	st := &clusterpb.GlobalState{Owners: make([]*clusterpb.OwnerState, 0, len(owners))}
	for _, name := range owners {
		st.Owners = append(st.Owners, t.ownerSnapshot(name))
	}
	return st
}

func (t *globalTable) ownerSnapshot(owner string) *clusterpb.OwnerState {
	o := t.owners[owner]
	recs := make([]*globalRecord, 0, len(o.recs))
	for _, r := range o.recs {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b *globalRecord) int { return cmp.Compare(a.id().String(), b.id().String()) })
	os := &clusterpb.OwnerState{Owner: owner, Epoch: o.epoch, CompleteThrough: o.complete,
		Records: make([]*clusterpb.GlobalRecord, 0, len(recs))}
	for _, r := range recs {
		os.Records = append(os.Records, r.toProto())
	}
	return os
}

func (t *globalTable) names() []string {
	set := map[string]bool{}
	for _, o := range t.owners {
		for id, r := range o.recs {
			if id.kind == clusterpb.GlobalRecord_KIND_NAME && !r.deleted {
				set[id.key] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for name := range set {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func (t *globalTable) members(group string, localOnly bool) []*actor.PID {
	seen := map[string]bool{}
	var out []*actor.PID
	for owner, o := range t.owners {
		if localOnly && owner != t.self {
			continue
		}
		for k, r := range o.groups[group] {
			if !seen[k] {
				seen[k] = true
				out = append(out, r.pid)
			}
		}
	}
	slices.SortFunc(out, cmpPID)
	return out
}

func (t *globalTable) groups() []string {
	set := map[string]bool{}
	for _, o := range t.owners {
		for g := range o.groups {
			set[g] = true
		}
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}
