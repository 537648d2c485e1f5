package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster/clusterpb"
)

// spawnerID is the protoactor id of every node's remote-spawn service.
const spawnerID = "$distributed.spawner"

// MemberState is a member's state as this node sees it.
type MemberState uint8

const (
	// Alive: the member answers gossip.
	Alive MemberState = iota
	// Dead: the member stopped answering (crash or partition).
	Dead
	// Left: the member left the cluster gracefully.
	Left
)

func (s MemberState) String() string {
	switch s {
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	case Left:
		return "left"
	}
	return "MemberState(" + strconv.Itoa(int(s)) + ")"
}

// Member is one node of the cluster as this node sees it.
type Member struct {
	Name          string
	RemoteAddress string // actor transport address: the Address of its PIDs
	GossipAddress string
	State         MemberState
	Since         time.Time // when it entered State
}

// NodeEventKind tells what happened to a node.
type NodeEventKind uint8

const (
	// NodeUp: a node joined, or came back after being dead.
	NodeUp NodeEventKind = iota
	// NodeDown: a node stopped answering (crash, partition).
	NodeDown
	// NodeLeft: a node left gracefully.
	NodeLeft
)

func (k NodeEventKind) String() string {
	switch k {
	case NodeUp:
		return "nodeup"
	case NodeDown:
		return "nodedown"
	case NodeLeft:
		return "nodeleft"
	}
	return "NodeEventKind(" + strconv.Itoa(int(k)) + ")"
}

// NodeEvent is delivered to actors subscribed with Node.MonitorNodes, as
// Erlang's monitor_node delivers nodeup/nodedown.
type NodeEvent struct {
	Kind   NodeEventKind
	Member Member
	Reason string // for NodeDown and NodeLeft: why, in words
}

// KindFunc makes the Props for a remote spawn of a kind from the request's
// arguments.
type KindFunc func(args []byte) (*actor.Props, error)

// ErrUnknownNode is returned for a node name that is not an alive member.
var ErrUnknownNode = errors.New("cluster: unknown or unreachable node")

// Node is one member of a cluster: an actor system, the actor transport
// (link.go: framed protobuf over TCP, one connection per peer) and gossip
// membership (memberlist).
type Node struct {
	cfg     Config
	sys     *actor.System
	tr      *transport
	ml      *memberlist.Memberlist
	log     *zap.Logger
	faults  *Faults
	metrics *nodeMetrics
	addr    string // own remote address

	mu       sync.RWMutex
	members  map[string]*Member // by name
	byRemote map[string]string  // remote address → name
	byGossip map[string]string  // gossip address → name
	subs     map[string]*actor.PID
	leaving  map[string]bool // members that announced a graceful leave
	kinds    map[string]KindFunc
	state    int // 0 new, 1 started, 2 stopped
	crashed  atomic.Bool
	routes   sync.Map // remote address → *faultProcess

	reconnectStop, reconnectDone chan struct{}
	global                       *globalRegistry
}

// NewNode validates cfg and makes a node; Start starts it.
func NewNode(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("cluster: data directory: %w", err)
		}
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger.With(zap.String("node", cfg.Name)), faults: cfg.Faults,
		members: map[string]*Member{}, byRemote: map[string]string{}, byGossip: map[string]string{},
		subs: map[string]*actor.PID{}, kinds: map[string]KindFunc{}, leaving: map[string]bool{},
	}
	n.global = newGlobalRegistry(n)
	return n, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// System is the node's actor system.
func (n *Node) System() *actor.System { return n.sys }

// Faults are the node's fault-injection rules.
func (n *Node) Faults() *Faults { return n.faults }

// DataDir is the node's data directory ("" if none).
func (n *Node) DataDir() string { return n.cfg.DataDir }

// Address is the node's actor transport address: the Address of its PIDs.
func (n *Node) Address() string { return n.addr }

// Gatherer exposes the node's metrics, when its registry can be gathered.
func (n *Node) Gatherer() prometheus.Gatherer { return n.sys.Gatherer() }

// Start starts the actor system, the transport and gossip, and joins the
// seeds (retrying until Config.JoinTimeout or ctx ends).
func (n *Node) Start(ctx context.Context) (err error) {
	n.mu.Lock()
	if n.state != 0 {
		n.mu.Unlock()
		return fmt.Errorf("cluster: node %s: Start called twice", n.cfg.Name)
	}
	n.state = 1
	n.mu.Unlock()
	defer func() {
		if err != nil {
			n.teardown(false)
		}
	}()
	reg := n.cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	n.sys, err = actor.NewSystem(actor.Config{Name: n.cfg.Name, Logger: n.cfg.Logger, Registerer: reg})
	if err != nil {
		return err
	}
	if n.metrics, err = newNodeMetrics(n, reg); err != nil {
		return err
	}
	if err := n.startRemote(); err != nil {
		return err
	}
	if err := n.startGossip(); err != nil {
		return err
	}
	if len(n.cfg.Seeds) > 0 {
		if err := n.join(ctx); err != nil {
			return err
		}
	}
	if n.cfg.Gossip.ReconnectInterval > 0 {
		n.reconnectStop = make(chan struct{})
		n.reconnectDone = make(chan struct{})
		go n.reconnectLoop()
	}
	n.log.Info("node started", zap.String("remote", n.addr), zap.String("gossip", n.gossipAddr()),
		zap.Int("members", n.ml.NumMembers()))
	return nil
}

func (n *Node) startRemote() error {
	tr, err := newTransport(transportConfig{
		bind: n.cfg.RemoteBind, advertise: n.cfg.RemoteAdvertise, name: n.cfg.Name,
		secret: n.cfg.Secret, tls: n.cfg.TLS, log: n.log,
		peerName: n.nameOfRemote, deliver: n.deliverFrame, maxQueue: n.cfg.SendQueueSize, busyPoll: n.cfg.BusyPoll,
		metrics: transportMetrics{
			dropped:   n.metrics.dropped,
			throttled: n.metrics.throttled,
			detached:  n.metrics.detached,
			received:  func(peer string) prometheus.Counter { return n.metrics.received.WithLabelValues(peer) },
		},
	})
	if err != nil {
		return fmt.Errorf("cluster: actor transport on %s: %w", n.cfg.RemoteBind, err)
	}
	n.tr = tr
	n.addr = tr.Address()
	pr := n.sys.Protoactor().ProcessRegistry
	pr.Address = n.addr
	// Every PID of another node resolves to that peer's route: its fault
	// rules, counters and the transport.
	pr.RemoteHandlers = []pa.AddressResolver{func(pid *pa.PID) (pa.Process, bool) {
		return n.routeFor(pid.Address), true
	}}
	if _, ok := pr.Add(&spawner{n: n}, spawnerID); !ok {
		return fmt.Errorf("cluster: %s already registered", spawnerID)
	}
	return n.sys.SetMembership(n)
}

// deliverFrame hands a message from another node to its local target, as
// protoactor's remote did: user messages with a sender in an envelope,
// system messages to the process directly. An unknown target gets the
// message as a dead letter (a requester is answered DeadLetterResponse).
// A user message to an idle actor is processed right here, on the
// connection's reader (actor.System.DeliverRemote; the transport lets
// another goroutine take over the connection if that takes long).
func (n *Node) deliverFrame(f inFrame) actor.Activation {
	ps := n.sys.Protoactor()
	if f.system {
		sm, ok := f.msg.(pa.SystemMessage)
		if !ok {
			n.tr.drop("not_system_message", 1)
			return actor.Activation{}
		}
		ref, _ := ps.ProcessRegistry.GetLocal(f.target.Id)
		ref.SendSystemMessage(f.target, sm)
		return actor.Activation{}
	}
	if act, ok := n.sys.DeliverRemote(f.target.Id, f.msg, f.sender); ok {
		return act
	}
	if f.sender == nil {
		ps.Root.Send(f.target, f.msg)
		return actor.Activation{}
	}
	ps.Root.Send(f.target, &pa.MessageEnvelope{Message: f.msg, Sender: f.sender})
	return actor.Activation{}
}

func (n *Node) startGossip() error {
	host, port, _ := splitHostPort(n.cfg.GossipBind)
	mc := memberlist.DefaultLocalConfig()
	mc.Name = n.cfg.Name
	mc.BindAddr, mc.BindPort = host, port
	g := n.cfg.Gossip
	mc.ProbeInterval, mc.ProbeTimeout, mc.SuspicionMult = g.ProbeInterval, g.ProbeTimeout, g.SuspicionMult
	mc.GossipInterval, mc.GossipNodes, mc.PushPullInterval, mc.TCPTimeout = g.GossipInterval, g.GossipNodes, g.PushPullInterval, g.TCPTimeout
	mc.RetransmitMult = g.RetransmitMult
	// A node restarted under its name at a new gossip address (port 0)
	// takes the place of its dead predecessor at once, instead of being
	// refused until the dead entry is forgotten (GossipToTheDeadTime).
	mc.DeadNodeReclaimTime = time.Nanosecond
	mc.Logger = zap.NewStdLog(n.log.Named("memberlist").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	mc.Delegate = &gossipDelegate{n: n}
	mc.Events = &eventDelegate{n: n}
	kr, err := gossipKeyring(n.cfg.Secret)
	if err != nil {
		return err
	}
	if kr != nil {
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{host}, BindPort: port, Logger: mc.Logger})
	if err != nil {
		return fmt.Errorf("cluster: gossip on %s: %w", n.cfg.GossipBind, err)
	}
	if port == 0 {
		mc.BindPort = nt.GetAutoBindPort()
	}
	if n.cfg.GossipAdvertise != "" {
		ah, ap, err := splitHostPort(n.cfg.GossipAdvertise)
		if err != nil {
			nt.Shutdown()
			return fmt.Errorf("cluster: Config.GossipAdvertise: %w", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	} else {
		mc.AdvertiseAddr, mc.AdvertisePort = host, mc.BindPort
	}
	mc.Transport = WrapTransport(nt, n.cfg.Name, n.faults, n.nameOfGossip)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("cluster: gossip: %w", err)
	}
	n.ml = ml
	return nil
}

func (n *Node) join(ctx context.Context) error { return n.Join(ctx, n.cfg.Seeds...) }

// Join contacts seeds (gossip addresses), retrying until Config.JoinTimeout
// or ctx ends; for example to rejoin after a partition healed.
func (n *Node) Join(ctx context.Context, seeds ...string) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.JoinTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		_, err := n.ml.Join(seeds)
		if err == nil {
			return nil
		}
		err = explainJoinError(err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: node %s could not join %v: %w", n.cfg.Name, seeds, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (n *Node) gossipAddr() string {
	if n.ml == nil {
		return ""
	}
	return n.ml.LocalNode().Address()
}

// GossipAddress is the address other nodes use as a seed to join this one.
func (n *Node) GossipAddress() string { return n.gossipAddr() }

// Leave departs gracefully: local actors stop (their links and monitors fire
// with their real reasons), the other members are told that this node
// left, and everything is released.
func (n *Node) Leave(ctx context.Context) error {
	if !n.markStopped() {
		return nil
	}
	n.stopReconnect()
	n.announceLeave(ctx)
	err := n.sys.Shutdown(ctx)
	if n.ml != nil {
		// memberlist's leave notification does not tell a leave from a
		// death (the state it passes is stale), so announce it first, by
		// gossip too (for members the actor transport did not reach).
		for _, m := range n.Members() {
			if t, ok := n.gossipTarget(m.Name); ok && m.State == Alive {
				_ = n.ml.SendReliable(t, []byte(leaveMsgPrefix+n.cfg.Name))
			}
		}
		timeout := time.Second
		if d, ok := ctx.Deadline(); ok {
			timeout = max(time.Until(d), 10*time.Millisecond)
		}
		if lerr := n.ml.Leave(timeout); lerr != nil && err == nil {
			err = fmt.Errorf("cluster: leave: %w", lerr)
		}
	}
	n.teardown(true)
	return err
}

// leaveNoticeTimeout bounds the wait for each member's LeaveAck.
const leaveNoticeTimeout = time.Second

// announceLeave tells every alive member over the actor transport that
// this node is leaving and waits (at most leaveNoticeTimeout, or ctx) until
// each has recorded it, so that memberlist's leave broadcast, which may
// travel faster than a gossip message, cannot make them report a crash.
func (n *Node) announceLeave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, leaveNoticeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range n.Members() {
		if m.Name == n.cfg.Name || m.State != Alive || m.RemoteAddress == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// An old node without the notice does not answer: the gossip
			// message below still tells it.
			_, _ = actor.Ask[*clusterpb.LeaveAck](ctx, n.sys, actor.ServicePID(m.RemoteAddress, spawnerID),
				&clusterpb.LeaveNotice{Node: n.cfg.Name})
		}()
	}
	wg.Wait()
}

// markLeaving records that the member name announced a graceful leave.
func (n *Node) markLeaving(name string) {
	n.mu.Lock()
	n.leaving[name] = true
	n.mu.Unlock()
}

// Stop crashes the node, for tests and fault injection: the transport and
// gossip stop without a goodbye, so the other members detect a failure;
// local actors are killed.
func (n *Node) Stop() {
	if !n.markStopped() {
		return
	}
	n.crashed.Store(true) // from now on nothing leaves this node
	n.teardown(false)
}

// Crash is Stop under its fault-injection name.
func (n *Node) Crash() { n.Stop() }

func (n *Node) markStopped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != 1 {
		return false
	}
	n.state = 2
	return true
}

// reconnectLoop joins again, every ReconnectInterval, the members seen as
// dead for less than ReconnectTimeout (Serf's reconnect). Gossip does not
// probe dead members, so after a partition heals the two sides would
// otherwise stay apart until someone calls Join.
func (n *Node) reconnectLoop() {
	defer close(n.reconnectDone)
	t := time.NewTicker(n.cfg.Gossip.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-n.reconnectStop:
			return
		case <-t.C:
		}
		var addrs []string
		n.mu.RLock()
		for _, m := range n.members {
			if m.State == Dead && time.Since(m.Since) < n.cfg.Gossip.ReconnectTimeout {
				addrs = append(addrs, m.GossipAddress)
			}
		}
		n.mu.RUnlock()
		for _, a := range addrs {
			select {
			case <-n.reconnectStop:
				return
			default:
			}
			// A failure is expected while the member is really gone.
			_, _ = n.ml.Join([]string{a})
		}
	}
}

// stopReconnect ends the reconnect loop (a leaving node must not rejoin).
func (n *Node) stopReconnect() {
	if n.reconnectStop != nil {
		close(n.reconnectStop)
		<-n.reconnectDone
		n.reconnectStop = nil
	}
}

// teardown releases the transport, gossip and actor system.
func (n *Node) teardown(graceful bool) {
	n.stopReconnect()
	if n.tr != nil {
		n.tr.Close(graceful)
	}
	if n.ml != nil {
		_ = n.ml.Shutdown()
	}
	if n.sys != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if !graceful {
			cancel() // a crash: kill what is left at once
		}
		if err := n.sys.Shutdown(ctx); err != nil && graceful {
			n.log.Warn("actor system shutdown", zap.Error(err))
		}
		cancel()
	}
	if n.metrics != nil {
		n.metrics.unregister()
	}
}

// Members lists the members this node knows, itself included, by name.
func (n *Node) Members() []Member {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]Member, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int {
		if a.Name < b.Name {
			return -1
		} else if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Member returns the member with the given name.
func (n *Node) Member(name string) (Member, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	m, ok := n.members[name]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// Reachable implements actor.Membership: the node at a remote address is an
// alive member.
func (n *Node) Reachable(address string) bool {
	if address == n.addr {
		return true
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	name, ok := n.byRemote[address]
	return ok && n.members[name].State == Alive
}

func (n *Node) nameOfGossip(addr string) (string, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	name, ok := n.byGossip[addr]
	return name, ok
}

func (n *Node) nameOfRemote(addr string) (string, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	name, ok := n.byRemote[addr]
	return name, ok
}

// MonitorNodes subscribes an actor to node events (*NodeEvent messages), as
// Erlang's net_kernel:monitor_nodes. It first receives NodeUp for every
// member alive now.
func (n *Node) MonitorNodes(pid *actor.PID) {
	n.mu.Lock()
	n.subs[pid.ID()] = pid
	var alive []Member
	for _, m := range n.members {
		if m.State == Alive {
			alive = append(alive, *m)
		}
	}
	n.mu.Unlock()
	for _, m := range alive {
		n.sys.Send(pid, &NodeEvent{Kind: NodeUp, Member: m})
	}
}

// DemonitorNodes ends a MonitorNodes subscription.
func (n *Node) DemonitorNodes(pid *actor.PID) {
	n.mu.Lock()
	delete(n.subs, pid.ID())
	n.mu.Unlock()
}

// memberEvent records a membership change and tells everyone who cares.
func (n *Node) memberEvent(mn *memberlist.Node, kind NodeEventKind) {
	name := mn.Name
	remoteAddr := string(mn.Meta)
	m := Member{Name: name, RemoteAddress: remoteAddr, GossipAddress: mn.Address(), Since: time.Now()}
	reason := ""
	switch kind {
	case NodeUp:
		m.State = Alive
	case NodeDown:
		m.State, reason = Dead, "stopped answering gossip (crash or partition)"
	case NodeLeft:
		m.State, reason = Left, "left the cluster"
	}
	n.mu.Lock()
	if old, ok := n.members[name]; ok && old.RemoteAddress != "" && m.RemoteAddress == "" {
		m.RemoteAddress = old.RemoteAddress
	}
	n.members[name] = &m
	if kind == NodeUp {
		delete(n.leaving, name) // a notice from an earlier life does not count
	}
	if m.RemoteAddress != "" {
		n.byRemote[m.RemoteAddress] = name
		if kind == NodeUp {
			n.routes.Delete(m.RemoteAddress) // the address may now be another node's
		}
		if n.tr != nil && name != n.cfg.Name && kind != NodeUp {
			// The connection to a node that is gone (or cut off) holds
			// only messages that can no longer arrive. (A node that died
			// closed its end, which ended the connection already.)
			n.tr.closeLink(m.RemoteAddress)
		}
	}
	n.byGossip[m.GossipAddress] = name
	counts := map[MemberState]int{}
	for _, mm := range n.members {
		counts[mm.State]++
	}
	var subs []*actor.PID
	for id, p := range n.subs {
		if n.sys.Alive(p) {
			subs = append(subs, p)
		} else {
			delete(n.subs, id)
		}
	}
	n.mu.Unlock()
	if name == n.cfg.Name {
		return
	}
	if n.metrics != nil {
		n.metrics.events.WithLabelValues(kind.String()).Inc()
		for _, st := range []MemberState{Alive, Dead, Left} {
			n.metrics.members.WithLabelValues(st.String()).Set(float64(counts[st]))
		}
	}
	if kind != NodeUp && m.RemoteAddress != "" {
		n.sys.NodeDown(m.RemoteAddress)
	}
	if kind == NodeUp {
		n.global.nodeUp(name)
	} else {
		n.global.nodeGone(name)
	}
	n.log.Info("node event", zap.String("event", kind.String()), zap.String("member", name),
		zap.String("remote", m.RemoteAddress), zap.String("reason", reason))
	evt := &NodeEvent{Kind: kind, Member: m, Reason: reason}
	for _, p := range subs {
		n.sys.Send(p, evt)
	}
}

// gossipTarget returns a memberlist.Node to send to the member name, built
// from this node's own record of it. memberlist's own *Node values (from
// Members or events) are its internal state: it rewrites their address
// when a node comes back at a new one, so reading them later races.
func (n *Node) gossipTarget(name string) (*memberlist.Node, bool) {
	n.mu.Lock()
	m, ok := n.members[name]
	var addr string
	if ok {
		addr = m.GossipAddress
	}
	n.mu.Unlock()
	if !ok || name == n.cfg.Name {
		return nil, false
	}
	host, portStr, err := net.SplitHostPort(addr)
	port, perr := strconv.ParseUint(portStr, 10, 16)
	ip := net.ParseIP(host)
	if err != nil || perr != nil || ip == nil {
		return nil, false
	}
	return &memberlist.Node{Name: name, Addr: ip, Port: uint16(port)}, true
}

type eventDelegate struct{ n *Node }

func (e *eventDelegate) NotifyJoin(mn *memberlist.Node) { e.n.memberEvent(mn, NodeUp) }
func (e *eventDelegate) NotifyLeave(mn *memberlist.Node) {
	e.n.mu.Lock()
	left := e.n.leaving[mn.Name]
	delete(e.n.leaving, mn.Name)
	e.n.mu.Unlock()
	if left {
		e.n.memberEvent(mn, NodeLeft)
	} else {
		e.n.memberEvent(mn, NodeDown)
	}
}
func (e *eventDelegate) NotifyUpdate(mn *memberlist.Node) {
	e.n.mu.Lock()
	if m, ok := e.n.members[mn.Name]; ok && len(mn.Meta) > 0 {
		m.RemoteAddress = string(mn.Meta)
		e.n.byRemote[m.RemoteAddress] = mn.Name
	}
	e.n.mu.Unlock()
}

// gossipDelegate publishes the node's remote address as its gossip meta.
type gossipDelegate struct{ n *Node }

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	if len(d.n.addr) > limit {
		return nil
	}
	return []byte(d.n.addr)
}

// leaveMsgPrefix starts the message a node sends before it leaves.
const leaveMsgPrefix = "distributed.leave:"

func (d *gossipDelegate) NotifyMsg(b []byte) {
	if name, ok := strings.CutPrefix(string(b), leaveMsgPrefix); ok {
		d.n.markLeaving(name)
		return
	}
	d.n.global.notifyMsg(b)
}

func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.n.global.broadcasts(overhead, limit)
}
func (d *gossipDelegate) LocalState(join bool) []byte { return d.n.global.localState(join) }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool) {
	d.n.global.mergeRemoteState(buf, join)
}

// faultProcess is a peer's route: protoactor resolves every PID of that
// peer to it. It applies the fault rules to actor messages leaving the node
// and hands them to the transport.
type faultProcess struct {
	n    *Node
	addr string

	resolved atomic.Pointer[peerRoute] // set once the address is a known member
}

// peerRoute is what a route knows once its address is a member.
type peerRoute struct {
	peer string
	sent prometheus.Counter // cluster_messages_sent_total{peer}
}

func (f *faultProcess) SendUserMessage(pid *pa.PID, m any) {
	_, msg, sender := pa.UnwrapEnvelope(m)
	pm, ok := msg.(proto.Message)
	if !ok {
		f.n.notProto(pid, msg)
		return
	}
	f.n.sendVia(f, pid, pm, sender, false)
}

func (f *faultProcess) SendSystemMessage(pid *pa.PID, m any) {
	pm, ok := m.(proto.Message)
	if !ok {
		f.n.notProto(pid, m)
		return
	}
	f.n.sendVia(f, pid, pm, nil, true)
}

func (f *faultProcess) Stop(pid *pa.PID) { f.SendSystemMessage(pid, &pa.Stop{}) }

func (n *Node) notProto(pid *pa.PID, m any) {
	if n.tr != nil {
		n.tr.drop("not_protobuf", 1)
	}
	n.log.Warn("cluster: message not sent: only protobuf messages cross nodes",
		zap.String("to", pid.String()), zap.String("type", fmt.Sprintf("%T", m)))
}

// route returns the peer's name and sent counter, resolved once the address
// is known to be a member.
func (f *faultProcess) route() (string, prometheus.Counter) {
	if r := f.resolved.Load(); r != nil {
		return r.peer, r.sent
	}
	name, ok := f.n.nameOfRemote(f.addr)
	if !ok {
		return "", nil
	}
	r := &peerRoute{peer: name}
	if f.n.metrics != nil {
		r.sent = f.n.metrics.sent.WithLabelValues(name)
	}
	f.resolved.Store(r)
	return r.peer, r.sent
}

// routeFor returns the route of a peer address, made on first use.
func (n *Node) routeFor(addr string) *faultProcess {
	if v, ok := n.routes.Load(addr); ok {
		return v.(*faultProcess)
	}
	v, _ := n.routes.LoadOrStore(addr, &faultProcess{n: n, addr: addr})
	return v.(*faultProcess)
}

// verdict counts a message to this route's peer and decides its fate by
// the fault rules. Nothing leaves a crashed node; a peer that is not (yet)
// a member is not faulted.
func (f *faultProcess) verdict() Verdict {
	if f.n.crashed.Load() {
		return Verdict{Drop: true}
	}
	peer, counter := f.route()
	if peer == "" {
		return Verdict{}
	}
	if counter != nil {
		counter.Inc()
	}
	return f.n.faults.Decide(f.n.cfg.Name, peer)
}

// RegisterKind makes a kind of actor spawnable on this node by other nodes
// (SpawnOn).
func (n *Node) RegisterKind(kind string, f KindFunc) error {
	if kind == "" || f == nil {
		return fmt.Errorf("cluster: RegisterKind: kind and factory are required")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.kinds[kind]; ok {
		return fmt.Errorf("cluster: kind %q is already registered", kind)
	}
	n.kinds[kind] = f
	return nil
}

// SpawnOn starts an actor of a registered kind on the named node and
// returns its PID. name, if not empty, is registered for it on that node.
func (n *Node) SpawnOn(ctx context.Context, node, kind, name string, args []byte) (*actor.PID, error) {
	if node == n.cfg.Name {
		return n.spawnLocal(&clusterpb.SpawnRequest{Kind: kind, Name: name, Args: args})
	}
	m, ok := n.Member(node)
	if !ok || m.State != Alive {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNode, node)
	}
	resp, err := actor.Ask[*clusterpb.SpawnResponse](ctx, n.sys, actor.ServicePID(m.RemoteAddress, spawnerID),
		&clusterpb.SpawnRequest{Kind: kind, Name: name, Args: args})
	if err != nil {
		return nil, fmt.Errorf("cluster: spawn %s on %s: %w", kind, node, err)
	}
	if resp.GetError() != "" {
		return nil, fmt.Errorf("cluster: spawn %s on %s: %s", kind, node, resp.GetError())
	}
	return actor.PIDFromProto(resp.GetPid())
}

func (n *Node) spawnLocal(req *clusterpb.SpawnRequest) (*actor.PID, error) {
	n.mu.RLock()
	f := n.kinds[req.GetKind()]
	n.mu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("cluster: kind %q is not registered on node %s", req.GetKind(), n.cfg.Name)
	}
	props, err := safeKind(f, req.GetArgs())
	if err != nil {
		return nil, fmt.Errorf("cluster: kind %q: %w", req.GetKind(), err)
	}
	if req.GetName() != "" {
		return n.sys.SpawnNamed(props, req.GetName())
	}
	return n.sys.Spawn(props)
}

func safeKind(f KindFunc, args []byte) (p *actor.Props, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("factory panicked: %v", r)
		}
	}()
	return f(args)
}

// spawner serves SpawnRequests from other nodes.
type spawner struct{ n *Node }

func (s *spawner) SendUserMessage(_ *pa.PID, m any) {
	_, msg, sender := pa.UnwrapEnvelope(m)
	if ln, ok := msg.(*clusterpb.LeaveNotice); ok {
		if ln.GetNode() != "" && ln.GetNode() != s.n.cfg.Name {
			s.n.markLeaving(ln.GetNode())
		}
		if sender != nil {
			s.n.sys.Protoactor().Root.Send(sender, proto.Message(&clusterpb.LeaveAck{}))
		}
		return
	}
	req, ok := msg.(*clusterpb.SpawnRequest)
	if !ok || sender == nil {
		return
	}
	resp := &clusterpb.SpawnResponse{}
	if pid, err := s.n.spawnLocal(req); err != nil {
		resp.Error = err.Error()
	} else {
		resp.Pid = pid.ToProto()
	}
	s.n.sys.Protoactor().Root.Send(sender, proto.Message(resp))
}

func (s *spawner) SendSystemMessage(*pa.PID, any) {}
func (s *spawner) Stop(*pa.PID)                   {}

// nodeMetrics are the node's Prometheus metrics.
type nodeMetrics struct {
	reg       prometheus.Registerer
	members   *prometheus.GaugeVec
	events    *prometheus.CounterVec
	sent      *prometheus.CounterVec
	received  *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	throttled prometheus.Counter
	detached  prometheus.Counter
	faults    prometheus.Collector
	all       []prometheus.Collector
}

func newNodeMetrics(n *Node, reg prometheus.Registerer) (*nodeMetrics, error) {
	cl := prometheus.Labels{"node": n.cfg.Name}
	m := &nodeMetrics{reg: reg}
	m.members = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cluster_members",
		Help: "Members by state, as this node sees them.", ConstLabels: cl}, []string{"state"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cluster_node_events_total",
		Help: "Failure-detection and membership events.", ConstLabels: cl}, []string{"event"})
	m.sent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cluster_messages_sent_total",
		Help: "Actor messages sent to each peer (before fault injection).", ConstLabels: cl}, []string{"peer"})
	m.received = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cluster_messages_received_total",
		Help:        "Actor messages received from each peer (\"unknown\" until the peer's address is a known member).",
		ConstLabels: cl}, []string{"peer"})
	m.faults = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cluster_fault_drops",
		Help: "Messages dropped by fault injection so far.", ConstLabels: cl},
		func() float64 { return float64(n.faults.Stats().Dropped) })
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cluster_transport_dropped_total",
		Help: "Actor messages the transport dropped, and rejected connections, by reason.", ConstLabels: cl}, []string{"reason"})
	m.throttled = prometheus.NewCounter(prometheus.CounterOpts{Name: "cluster_transport_throttled_total",
		Help: "Sends that waited for a peer's connection to drain its queue (a producer faster than the network).", ConstLabels: cl})
	m.detached = prometheus.NewCounter(prometheus.CounterOpts{Name: "cluster_transport_reader_detached_total",
		Help: "Inbound connections handed to a new reader because an actor run on the reader took too long.", ConstLabels: cl})
	m.all = []prometheus.Collector{m.members, m.events, m.sent, m.received, m.dropped, m.throttled, m.detached, m.faults}
	for i, c := range m.all {
		if err := reg.Register(c); err != nil {
			for _, r := range m.all[:i] {
				reg.Unregister(r)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *nodeMetrics) unregister() {
	for _, c := range m.all {
		m.reg.Unregister(c)
	}
}

// SendRemote implements actor.RemoteSender: the direct path for actor
// messages to other nodes, through the peer's route (its fault rules and
// counter) to the transport, without resolving the PID in protoactor's
// registry on every send.
func (n *Node) SendRemote(target *pa.PID, msg proto.Message, sender *pa.PID) {
	n.sendVia(n.routeFor(target.Address), target, msg, sender, false)
}

// sendVia applies the route's fault verdict and hands the message to the
// transport.
func (n *Node) sendVia(f *faultProcess, target *pa.PID, msg proto.Message, sender *pa.PID, system bool) {
	v := f.verdict()
	switch {
	case v.Drop:
		return
	case v.Delay > 0:
		time.AfterFunc(v.Delay, func() { n.tr.send(target, msg, sender, system) })
	default:
		n.tr.send(target, msg, sender, system)
	}
	if v.Duplicate {
		n.tr.send(target, msg, sender, system)
	}
}
