package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster/clusterpb"
	"github.com/distributed-go/distributed/supervision"
)

// This file is the inspection service: every node that calls
// ServeInspection registers a process under inspectID that answers
// InspectRequests with a NodeReport (members, actors, supervision trees,
// fault rules) and, when control is enabled, carries out ControlRequests
// (kill an actor, crash the node, change fault rules). Any node can then
// inspect and steer any other: this is what the observer and the dist CLI
// are built on, as Erlang's observer inspects remote nodes.
//
// Requests and replies travel through protoactor's process registry
// directly rather than through actor.Ask, so that they bypass the
// membership gate: a node must be able to tell a member it sees as dead
// (because of a partition it was told to make) to heal. Fault rules still
// apply on the way, as to every actor message.

// inspectID is the protoactor id of every node's inspection service.
const inspectID = "$distributed.inspect"

var (
	// ErrControlDisabled is returned when the target node does not accept
	// control requests (it was started without InspectOptions.AllowControl).
	ErrControlDisabled = errors.New("cluster: control requests are disabled on that node")
	// ErrUnknownActor is returned by KillActor for an actor that is not
	// alive on its node (it exited, or was restarted as a new incarnation).
	ErrUnknownActor = errors.New("cluster: no such live actor")
	// ErrNoInspection is returned for a node that does not serve
	// inspection (it never called ServeInspection).
	ErrNoInspection = errors.New("cluster: node does not serve inspection")
	// ErrInvalidControl is returned for a malformed control request.
	ErrInvalidControl = errors.New("cluster: invalid control request")
)

// InspectOptions configures a node's inspection service.
type InspectOptions struct {
	// AllowControl makes the node carry out ControlRequests: kill one of
	// its actors, crash, change its fault rules. Off by default: without
	// it the node only answers InspectRequests.
	AllowControl bool
	// OnCrash is what a CrashNode request does, shortly after it has been
	// answered. Default: Node.Crash. A node run as its own OS process
	// (dist node) exits instead, so that whatever supervises the process
	// restarts it from its data directory.
	OnCrash func()
	// MaxConcurrent bounds the requests handled at once; further requests
	// are answered with an error. Default 16.
	MaxConcurrent int
	// TreeTimeout bounds the questions asked to each supervisor when a
	// report walks the supervision trees. Default 1s.
	TreeTimeout time.Duration
	// MaxProcesses caps the actors listed in a report (the first ones by
	// id; NodeReport.ProcessesOmitted counts the rest), so that a report
	// stays well under the transport's message size limit. Default 5000.
	MaxProcesses int
}

// inspector serves one node's inspection requests.
type inspector struct {
	n    *Node
	opts InspectOptions
	sem  chan struct{}

	mu    sync.Mutex
	rates map[string]rateSample // by PID key
}

type rateSample struct {
	processed uint64
	at        time.Time
	rate      float64
}

// ServeInspection starts the node's inspection service, after Start. It can
// be called once per node.
func (n *Node) ServeInspection(opts InspectOptions) error {
	if n.sys == nil || n.addr == "" {
		return fmt.Errorf("cluster: ServeInspection: node %s is not started", n.cfg.Name)
	}
	if opts.OnCrash == nil {
		opts.OnCrash = n.Crash
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 16
	}
	if opts.TreeTimeout <= 0 {
		opts.TreeTimeout = time.Second
	}
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = defaultMaxProcesses
	}
	in := &inspector{n: n, opts: opts, sem: make(chan struct{}, opts.MaxConcurrent), rates: map[string]rateSample{}}
	// The service process, in the system's process registry, is where the
	// node's inspector lives (Node has no field for it).
	if _, ok := n.sys.Protoactor().ProcessRegistry.Add(&inspectProc{in: in}, inspectID); !ok {
		return fmt.Errorf("cluster: ServeInspection called twice on node %s", n.cfg.Name)
	}
	return nil
}

// localInspector returns the node's inspector, or a read-only one when
// ServeInspection was not called (a node can always report on itself).
func (n *Node) localInspector() *inspector {
	if n.sys != nil {
		if p, ok := n.sys.Protoactor().ProcessRegistry.GetLocal(inspectID); ok {
			if ip, ok := p.(*inspectProc); ok {
				return ip.in
			}
		}
	}
	return &inspector{n: n, opts: InspectOptions{TreeTimeout: time.Second, MaxProcesses: defaultMaxProcesses}, rates: map[string]rateSample{}}
}

// Inspect returns the named node's report: its members, actors and
// supervision trees. The node itself answers without a message.
func (n *Node) Inspect(ctx context.Context, node string) (*clusterpb.NodeReport, error) {
	if n.sys == nil || n.addr == "" {
		return nil, fmt.Errorf("cluster: Inspect: node %s is not started", n.cfg.Name)
	}
	if node == n.cfg.Name {
		return n.localInspector().report(ctx), nil
	}
	m, ok := n.Member(node)
	if !ok || m.State != Alive || m.RemoteAddress == "" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNode, node)
	}
	resp, err := n.serviceAsk(ctx, node, m.RemoteAddress, &clusterpb.InspectRequest{}, true)
	if err != nil {
		return nil, err
	}
	r, ok := resp.(*clusterpb.NodeReport)
	if !ok {
		return nil, fmt.Errorf("cluster: inspect %s: unexpected reply %T", node, resp)
	}
	if r.GetError() != "" {
		return r, fmt.Errorf("cluster: inspect %s: %s", node, r.GetError())
	}
	return r, nil
}

// InspectAll returns the report of every alive member, this node first,
// asking them in parallel. A member that does not answer in time gets a
// report with only its name and Error set.
func (n *Node) InspectAll(ctx context.Context) []*clusterpb.NodeReport {
	var names []string
	names = append(names, n.cfg.Name)
	for _, m := range n.Members() {
		if m.Name != n.cfg.Name && m.State == Alive {
			names = append(names, m.Name)
		}
	}
	out := make([]*clusterpb.NodeReport, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := n.Inspect(ctx, name)
			if err != nil {
				r = &clusterpb.NodeReport{Node: name, Error: err.Error()}
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// Control sends a control request to the named node (or carries it out,
// for this node) and returns the node's answer. A fault request (partition,
// heal, delay, drop, clear) is sent even to a member this node sees as
// dead, since the fault rules may be what separates them; a kill or crash
// needs an alive member.
func (n *Node) Control(ctx context.Context, node string, req *clusterpb.ControlRequest) (*clusterpb.ControlResponse, error) {
	if req == nil || req.GetAction() == nil {
		return nil, fmt.Errorf("%w: no action", ErrInvalidControl)
	}
	if n.sys == nil || n.addr == "" {
		return nil, fmt.Errorf("cluster: Control: node %s is not started", n.cfg.Name)
	}
	var resp *clusterpb.ControlResponse
	if node == n.cfg.Name {
		var apply func()
		resp, apply = n.localInspector().control(req)
		apply()
		if resp.GetCode() == clusterpb.ControlResponse_CODE_OK {
			resp.FaultRules = n.faults.Rules()
		}
	} else {
		m, ok := n.Member(node)
		faultReq := req.GetKill() == nil && req.GetCrash() == nil
		if !ok || m.RemoteAddress == "" || (m.State != Alive && !faultReq) || m.State == Left {
			return nil, fmt.Errorf("%w: %q", ErrUnknownNode, node)
		}
		r, err := n.serviceAsk(ctx, node, m.RemoteAddress, req, m.State == Alive)
		if err != nil {
			return nil, err
		}
		var isResp bool
		if resp, isResp = r.(*clusterpb.ControlResponse); !isResp {
			return nil, fmt.Errorf("cluster: control %s: unexpected reply %T", node, r)
		}
	}
	return resp, controlError(node, resp)
}

// controlError turns a failed ControlResponse into an error that matches
// the package's sentinels.
func controlError(node string, resp *clusterpb.ControlResponse) error {
	var base error
	switch resp.GetCode() {
	case clusterpb.ControlResponse_CODE_OK:
		return nil
	case clusterpb.ControlResponse_CODE_DISABLED:
		base = ErrControlDisabled
	case clusterpb.ControlResponse_CODE_NOT_FOUND:
		base = ErrUnknownActor
	case clusterpb.ControlResponse_CODE_INVALID:
		base = ErrInvalidControl
	default:
		return fmt.Errorf("cluster: control %s: %s", node, resp.GetError())
	}
	return fmt.Errorf("%w (node %s: %s)", base, node, resp.GetError())
}

// ControlAll sends a control request to every member that has not left,
// this node included, in parallel, and returns the error of each node that
// failed (nil map entries are absent). It is how a fault rule is set on
// every node, so that each side of a link applies it.
func (n *Node) ControlAll(ctx context.Context, req *clusterpb.ControlRequest) map[string]error {
	var others []string
	for _, m := range n.Members() {
		if m.Name != n.cfg.Name && m.State != Left {
			others = append(others, m.Name)
		}
	}
	var mu sync.Mutex
	errs := map[string]error{}
	send := func(names ...string) {
		var wg sync.WaitGroup
		for _, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := n.Control(ctx, name, req); err != nil {
					mu.Lock()
					errs[name] = err
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	// A rule that cuts links is set on this node last, and one that
	// restores them first, so that this node's own rules never stop the
	// request from reaching the others.
	if restores(req) {
		send(n.cfg.Name)
		send(others...)
	} else {
		send(others...)
		send(n.cfg.Name)
	}
	return errs
}

// restores reports whether a fault request removes rules rather than adds.
func restores(req *clusterpb.ControlRequest) bool {
	switch a := req.GetAction().(type) {
	case *clusterpb.ControlRequest_Heal, *clusterpb.ControlRequest_Clear:
		return true
	case *clusterpb.ControlRequest_Drop:
		return a.Drop.GetProbability() == 0
	case *clusterpb.ControlRequest_Delay:
		return a.Delay.GetBaseNanos() == 0 && a.Delay.GetJitterNanos() == 0
	}
	return false
}

// KillActor kills an actor of any member abruptly (reason killed), through
// the inspection service of its node, which checks that it is alive: an
// actor that is not gives an error matching ErrUnknownActor.
func (n *Node) KillActor(ctx context.Context, pid *actor.PID) error {
	if pid == nil {
		return fmt.Errorf("%w: nil pid", ErrInvalidControl)
	}
	node := n.cfg.Name
	if pid.Address() != n.addr {
		name, ok := n.nameOfRemote(pid.Address())
		if !ok {
			return fmt.Errorf("%w: no member has address %s (pid %s)", ErrUnknownNode, pid.Address(), pid)
		}
		node = name
	}
	_, err := n.Control(ctx, node, &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Kill{
		Kill: &clusterpb.KillActor{Pid: pid.ToProto()}}})
	return err
}

// MemberByAddress returns the member whose actor transport address is addr.
func (n *Node) MemberByAddress(addr string) (Member, bool) {
	if addr == n.addr {
		return n.Member(n.cfg.Name)
	}
	name, ok := n.nameOfRemote(addr)
	if !ok {
		return Member{}, false
	}
	return n.Member(name)
}

var replySeq atomic.Uint64

// serviceAsk sends req to the inspection service at addr and waits for one
// reply, bypassing the membership gate (see the file comment). With
// failFast, it gives up as soon as membership declares the node no longer
// alive, rather than waiting for ctx (a crashed node never answers).
func (n *Node) serviceAsk(ctx context.Context, node, addr string, req proto.Message, failFast bool) (proto.Message, error) {
	rp := &replyProc{ch: make(chan any, 1)}
	reg := n.sys.Protoactor().ProcessRegistry
	raw, ok := reg.Add(rp, "$inspect.reply."+strconv.FormatUint(replySeq.Add(1), 36))
	if !ok {
		return nil, fmt.Errorf("cluster: inspect %s: reply id taken", node)
	}
	defer reg.Remove(raw)
	n.sys.Protoactor().Root.Send(&pa.PID{Address: addr, Id: inspectID}, &pa.MessageEnvelope{Message: req, Sender: raw})
	var check <-chan time.Time
	if failFast {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		check = t.C
	}
	for {
		select {
		case <-check:
			if m, ok := n.Member(node); !ok || m.State != Alive {
				return nil, fmt.Errorf("%w: %s went down before it answered", ErrUnknownNode, node)
			}
		case m := <-rp.ch:
			switch r := m.(type) {
			case *pa.DeadLetterResponse:
				return nil, fmt.Errorf("%w: %s", ErrNoInspection, node)
			case proto.Message:
				return r, nil
			default:
				return nil, fmt.Errorf("cluster: inspect %s: unexpected reply %T", node, m)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s (%s) did not answer: %v", ErrUnknownNode, node, addr, ctx.Err())
		}
	}
}

// replyProc receives the one reply of a serviceAsk.
type replyProc struct{ ch chan any }

func (r *replyProc) SendUserMessage(_ *pa.PID, m any) {
	_, msg, _ := pa.UnwrapEnvelope(m)
	select {
	case r.ch <- msg:
	default:
	}
}
func (r *replyProc) SendSystemMessage(*pa.PID, any) {}
func (r *replyProc) Stop(*pa.PID)                   {}

// inspectProc is the registered service process. It hands each request to
// a goroutine: protoactor calls SendUserMessage on the transport's receive
// path, which must not block on walking supervision trees.
type inspectProc struct{ in *inspector }

func (p *inspectProc) SendUserMessage(_ *pa.PID, m any) {
	_, msg, sender := pa.UnwrapEnvelope(m)
	if sender == nil {
		return
	}
	in := p.in
	reply := func(r proto.Message) { in.n.sys.Protoactor().Root.Send(sender, r) }
	select {
	case in.sem <- struct{}{}:
	default:
		switch msg.(type) {
		case *clusterpb.InspectRequest:
			reply(&clusterpb.NodeReport{Node: in.n.cfg.Name, Error: "busy: too many inspection requests at once"})
		case *clusterpb.ControlRequest:
			reply(&clusterpb.ControlResponse{Code: clusterpb.ControlResponse_CODE_FAILED, Error: "busy: too many requests at once"})
		}
		return
	}
	go func() {
		defer func() { <-in.sem }()
		switch req := msg.(type) {
		case *clusterpb.InspectRequest:
			ctx, cancel := context.WithTimeout(context.Background(), 5*in.opts.TreeTimeout)
			defer cancel()
			reply(in.report(ctx))
		case *clusterpb.ControlRequest:
			// A rule that cuts the link to the asker is made after the
			// answer has left, one that restores it before, so that the
			// rule does not swallow the answer.
			resp, apply := in.control(req)
			if restores(req) {
				apply()
				reply(resp)
			} else {
				reply(resp)
				apply()
			}
		}
	}()
}
func (p *inspectProc) SendSystemMessage(*pa.PID, any) {}
func (p *inspectProc) Stop(*pa.PID)                   {}

const defaultMaxProcesses = 5000

// supervisorKind is the actor kind of package supervision's supervisors.
const supervisorKind = "supervisor"

type childAnnotation struct {
	id, typ, strategy string
	restarts          int64
}

// report builds the node's report.
func (in *inspector) report(ctx context.Context) *clusterpb.NodeReport {
	n := in.n
	now := time.Now()
	r := &clusterpb.NodeReport{
		Node: n.cfg.Name, RemoteAddress: n.addr, GossipAddress: n.GossipAddress(),
		FaultRules: n.faults.Rules(), ControlEnabled: in.opts.AllowControl, UnixNanos: now.UnixNano(),
	}
	for _, m := range n.Members() {
		r.Members = append(r.Members, &clusterpb.MemberReport{Name: m.Name, RemoteAddress: m.RemoteAddress,
			GossipAddress: m.GossipAddress, State: m.State.String(), SinceUnixNanos: m.Since.UnixNano()})
	}
	procs := n.sys.Processes()
	if len(procs) > in.opts.MaxProcesses {
		r.ProcessesOmitted = uint32(len(procs) - in.opts.MaxProcesses)
		procs = procs[:in.opts.MaxProcesses]
	}
	kinds := make(map[string]string, len(procs))
	for _, p := range procs {
		kinds[p.PID.ID()] = p.Kind
	}
	// Supervision trees: one walk from each supervisor whose parent is not
	// itself a supervisor (Tree descends into the nested ones).
	notes := map[string]childAnnotation{}
	for _, p := range procs {
		if p.Kind != supervisorKind || (p.Parent != nil && kinds[p.Parent.ID()] == supervisorKind) {
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, in.opts.TreeTimeout)
		t, err := supervision.Tree(tctx, n.sys, p.PID)
		cancel()
		if err != nil {
			continue // it died meanwhile, or is not one of package supervision's
		}
		t.Walk(func(x *supervision.TreeNode, depth int) {
			if x.PID == nil {
				return
			}
			a := childAnnotation{restarts: int64(x.Restarts)}
			if depth > 0 {
				a.id, a.typ = x.ID, x.Type.String()
			}
			if x.Type == supervision.Supervisor || depth == 0 {
				a.strategy = x.Strategy.String()
			}
			notes[x.PID.ID()] = a
		})
	}
	in.mu.Lock()
	rates := make(map[string]rateSample, len(procs))
	for _, p := range procs {
		key := p.PID.ID()
		s := rateSample{processed: p.Processed, at: now}
		if prev, ok := in.rates[key]; ok {
			if dt := now.Sub(prev.at); dt >= 200*time.Millisecond {
				s.rate = float64(p.Processed-prev.processed) / dt.Seconds()
			} else {
				s = prev // asked again too soon for a meaningful rate
			}
		}
		rates[key] = s
		pr := &clusterpb.ProcessReport{
			Pid: p.PID.ToProto(), Kind: p.Kind, Names: p.Names, MailboxDepth: int32(min(p.MailboxDepth, 1<<31-1)),
			Processed: p.Processed, MessagesPerSecond: s.rate, Restarts: p.Restarts,
			UptimeNanos: int64(p.Uptime), Info: p.Info,
		}
		if p.Parent != nil {
			pr.Parent = p.Parent.ToProto()
		}
		if a, ok := notes[key]; ok {
			pr.ChildId, pr.ChildType, pr.ChildRestarts, pr.Strategy = a.id, a.typ, a.restarts, a.strategy
		}
		r.Processes = append(r.Processes, pr)
	}
	in.rates = rates
	in.mu.Unlock()
	return r
}

// control checks one control request and returns the answer and the
// function that carries it out (which does nothing for a refused request).
// A fault rule is first applied to a scratch Faults, so that an invalid one
// is refused before anything changes.
func (in *inspector) control(req *clusterpb.ControlRequest) (*clusterpb.ControlResponse, func()) {
	n := in.n
	nothing := func() {}
	fail := func(code clusterpb.ControlResponse_Code, format string, args ...any) (*clusterpb.ControlResponse, func()) {
		return &clusterpb.ControlResponse{Code: code, Error: fmt.Sprintf(format, args...)}, nothing
	}
	if !in.opts.AllowControl {
		return fail(clusterpb.ControlResponse_CODE_DISABLED,
			"node %s does not accept control requests (start it with control enabled, e.g. dist node --actions)", n.cfg.Name)
	}
	ok := &clusterpb.ControlResponse{}
	switch a := req.GetAction().(type) {
	case *clusterpb.ControlRequest_Kill:
		pid, perr := actor.PIDFromProto(a.Kill.GetPid())
		if perr != nil {
			return fail(clusterpb.ControlResponse_CODE_INVALID, "kill: %v", perr)
		}
		if pid.Address() != n.addr {
			return fail(clusterpb.ControlResponse_CODE_INVALID, "kill: %s is not an actor of node %s (%s)", pid, n.cfg.Name, n.addr)
		}
		if _, alive := n.sys.Info(pid); !alive {
			return fail(clusterpb.ControlResponse_CODE_NOT_FOUND, "kill: no live actor %s on node %s", pid.ID(), n.cfg.Name)
		}
		return ok, func() {
			n.log.Warn("actor killed on request", zap.Stringer("pid", pid))
			_ = n.sys.Kill(pid)
		}
	case *clusterpb.ControlRequest_Crash:
		return ok, func() {
			n.log.Warn("crashing on request")
			// Crash after the answer is on its way: a crashed node sends nothing.
			time.AfterFunc(100*time.Millisecond, in.opts.OnCrash)
		}
	case nil:
		return fail(clusterpb.ControlResponse_CODE_INVALID, "no action")
	}
	if err := applyFault(NewFaults(0), req); err != nil {
		return fail(clusterpb.ControlResponse_CODE_INVALID, "%v", err)
	}
	return ok, func() {
		if err := applyFault(n.faults, req); err != nil {
			n.log.Warn("fault rule refused", zap.Error(err))
		}
	}
}

// applyFault applies a fault request to f.
func applyFault(f *Faults, req *clusterpb.ControlRequest) error {
	switch a := req.GetAction().(type) {
	case *clusterpb.ControlRequest_Partition:
		groups := make([][]string, 0, len(a.Partition.GetGroups()))
		for _, g := range a.Partition.GetGroups() {
			groups = append(groups, g.GetNodes())
		}
		return f.Partition(groups...)
	case *clusterpb.ControlRequest_Heal:
		f.Heal()
	case *clusterpb.ControlRequest_Delay:
		d := a.Delay
		return f.SetDelay(d.GetFrom(), d.GetTo(), time.Duration(d.GetBaseNanos()), time.Duration(d.GetJitterNanos()))
	case *clusterpb.ControlRequest_Drop:
		d := a.Drop
		switch p := d.GetProbability(); {
		case p == 1:
			return f.DropOneWay(d.GetFrom(), d.GetTo())
		case p == 0:
			if err := f.SetDropProbability(d.GetFrom(), d.GetTo(), 0); err != nil {
				return err
			}
			f.UndropOneWay(d.GetFrom(), d.GetTo())
		default:
			return f.SetDropProbability(d.GetFrom(), d.GetTo(), p)
		}
	case *clusterpb.ControlRequest_Clear:
		f.Clear()
	default:
		return fmt.Errorf("unknown action %T", a)
	}
	return nil
}
