package actor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/actor/actorpb"
)

// This file makes PIDs location transparent once a transport to other
// nodes is installed (the cluster package installs its own, see
// RemoteSender; raw protoactor remote also works).
//
// User messages to PIDs of other nodes travel as protobuf messages through
// that transport. Links, monitors, exit signals and kills travel as the
// signals of package actorpb to a small process that every system registers
// under the id SignalsID, which applies them to its local actors. A
// Membership, when installed, gates all of this: a PID on a node that is
// not reachable fails fast (dead letter, ErrDeadActor), and NodeDown fires
// every link and monitor towards that node with reason noconnection.

// SignalsID is the protoactor id of the process that receives link, monitor
// and exit signals from other nodes.
const SignalsID = "$distributed.signals"

// askPrefix starts the protoactor id of a pending remote Ask's reply process.
const askPrefix = "$ask."

// Membership tells the system which nodes can be reached. The cluster layer
// implements it from its gossip membership.
type Membership interface {
	// Reachable reports whether the node at address is a live member.
	Reachable(address string) bool
}

// RemoteSender is implemented by a Membership that also carries messages to
// other nodes (the cluster layer, which applies its fault rules and counts
// traffic per peer). Without it, messages go through protoactor's process
// registry, which resolves the PID on every send.
type RemoteSender interface {
	SendRemote(target *pa.PID, msg proto.Message, sender *pa.PID)
}

// membershipBox holds the installed Membership for lock-free reads.
type membershipBox struct {
	m      Membership
	sender RemoteSender
}

// remoteState is the system's bookkeeping for remote traffic.
type remoteState struct {
	mu         sync.Mutex
	membership atomic.Pointer[membershipBox]
	asks       map[string]map[*askProc]struct{} // pending remote Asks by node address
	askSeq     uint64
	installed  bool
}

// SetMembership installs the membership that gates remote traffic and
// registers the signal process. The cluster layer calls it after starting
// its transport. Calling it again replaces the membership.
func (s *System) SetMembership(m Membership) error {
	s.remote.mu.Lock()
	defer s.remote.mu.Unlock()
	box := &membershipBox{m: m}
	box.sender, _ = m.(RemoteSender)
	s.remote.membership.Store(box)
	if s.remote.installed {
		return nil
	}
	if _, ok := s.ps.ProcessRegistry.Add(&signalProc{s: s}, SignalsID); !ok {
		return fmt.Errorf("actor: %s is already registered", SignalsID)
	}
	s.remote.installed = true
	return nil
}

// reachable reports whether a node can be reached (true without membership).
func (s *System) reachable(address string) bool {
	box := s.remote.membership.Load()
	return box == nil || box.m == nil || box.m.Reachable(address)
}

// toWire converts a message for another node: this package's Down, Exit and
// error values get their protobuf forms; anything else must be a protobuf
// message already.
func toWire(msg any) (proto.Message, error) {
	switch m := msg.(type) {
	case *Down:
		return m.ToProto(), nil
	case *Exit:
		return m.ToProto(), nil
	case error:
		return &actorpb.ErrorReply{Message: m.Error()}, nil
	case proto.Message:
		return m, nil
	}
	return nil, fmt.Errorf("actor: %T is not a protobuf message and cannot cross nodes", msg)
}

// fromWire converts this package's wire forms back for the receiving actor.
func fromWire(msg any) any {
	switch m := msg.(type) {
	case *actorpb.Down:
		if d, err := DownFromProto(m); err == nil {
			return d
		}
	case *actorpb.Exit:
		if e, err := ExitFromProto(m); err == nil {
			return e
		}
	case *actorpb.ErrorReply:
		return errors.New(m.GetMessage())
	}
	return msg
}

// pidFromRaw wraps any protoactor PID, including ones this package did not
// make (an Ask's reply process): enough to reply to.
func pidFromRaw(raw *pa.PID) *PID {
	if raw == nil {
		return nil
	}
	if p, err := PIDFromProtoactor(raw); err == nil {
		return p
	}
	return &PID{raw: raw, name: raw.Id}
}

// sendRemote delivers a message to a PID of another node.
func (s *System) sendRemote(pid *PID, msg any) {
	var sender *PID
	if env, ok := msg.(*envelope); ok {
		if env.fut != nil {
			// An Ask reached here through Send: not supported; Ask handles
			// remote targets itself.
			env.fut.complete(nil, fmt.Errorf("actor: remote ask through send: %w", ErrDeadActor))
			return
		}
		msg, sender = env.msg, env.sender
	}
	if !s.reachable(pid.Address()) {
		s.deadLetter(pid, msg, sender)
		return
	}
	wire, err := toWire(msg)
	if err != nil {
		s.metrics.deadLetters.Inc()
		s.log.Warn("message dropped", zap.Stringer("to", pid), zap.Error(err))
		return
	}
	var senderRaw *pa.PID
	if sender != nil {
		senderRaw = sender.raw
	}
	if box := s.remote.membership.Load(); box != nil && box.sender != nil {
		box.sender.SendRemote(pid.raw, wire, senderRaw)
		return
	}
	if senderRaw != nil {
		s.ps.Root.Send(pid.fresh(), &pa.MessageEnvelope{Message: wire, Sender: senderRaw})
		return
	}
	s.ps.Root.Send(pid.fresh(), wire)
}

// sendSignal sends a signal to the signal process of a node.
func (s *System) sendSignal(address string, m proto.Message) {
	s.ps.Root.Send(&pa.PID{Address: address, Id: SignalsID}, m)
}

// askProc is the protoactor process that receives the reply of one remote
// Ask.
type askProc struct {
	s      *System
	f      *future
	raw    *pa.PID
	target *PID
}

func (a *askProc) SendUserMessage(_ *pa.PID, m any) {
	_, msg, _ := pa.UnwrapEnvelope(m)
	switch r := msg.(type) {
	case *pa.DeadLetterResponse:
		a.f.complete(nil, &DeadActorError{PID: a.target})
	case *actorpb.Down:
		reason, _ := ReasonFromProto(r.GetReason())
		a.f.complete(nil, &DeadActorError{PID: a.target, Reason: reason, Known: true})
	default:
		v := fromWire(msg)
		if err, ok := v.(error); ok {
			a.f.complete(nil, err)
		} else {
			a.f.complete(v, nil)
		}
	}
	a.s.forgetAsk(a)
}

func (a *askProc) SendSystemMessage(*pa.PID, any) {}
func (a *askProc) Stop(*pa.PID)                   {}

// askRemote sends an Ask to a PID of another node.
func (s *System) askRemote(ctx context.Context, pid *PID, msg any, d time.Duration) (any, error) {
	addr := pid.Address()
	if !s.reachable(addr) {
		return nil, &DeadActorError{PID: pid, Reason: NoConnection, Known: true}
	}
	wire, err := toWire(msg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	a := &askProc{s: s, f: &future{ch: make(chan reply, 1)}, target: pid}
	s.remote.mu.Lock()
	s.remote.askSeq++
	id := askPrefix + strconv.FormatUint(s.remote.askSeq, 36)
	s.remote.mu.Unlock()
	// Registered before it is published in asks, so that NodeDown (another
	// goroutine) sees a.raw set.
	a.raw, _ = s.ps.ProcessRegistry.Add(a, id)
	s.remote.mu.Lock()
	if s.remote.asks == nil {
		s.remote.asks = make(map[string]map[*askProc]struct{})
	}
	set := s.remote.asks[addr]
	if set == nil {
		set = make(map[*askProc]struct{})
		s.remote.asks[addr] = set
	}
	set[a] = struct{}{}
	s.remote.mu.Unlock()
	if box := s.remote.membership.Load(); box != nil && box.sender != nil {
		box.sender.SendRemote(pid.raw, wire, a.raw)
	} else {
		s.ps.Root.Send(pid.fresh(), &pa.MessageEnvelope{Message: wire, Sender: a.raw})
	}
	tm := expiry(d)
	defer releaseTimer(tm)
	select {
	case r := <-a.f.ch:
		s.metrics.askLatency.Observe(time.Since(start).Seconds())
		return r.v, r.err
	case <-ctx.Done():
		return s.abandonAsk(a, pid, ctx.Err())
	case <-timerC(tm):
		return s.abandonAsk(a, pid, context.DeadlineExceeded)
	}
}

// abandonAsk gives up waiting for a remote Ask's reply.
func (s *System) abandonAsk(a *askProc, pid *PID, cause error) (any, error) {
	s.forgetAsk(a)
	if a.f.done.CompareAndSwap(false, true) {
		s.metrics.askTimeouts.Inc()
		return nil, fmt.Errorf("actor: ask %s: %w", pid, cause)
	}
	r := <-a.f.ch
	return r.v, r.err
}

func (s *System) forgetAsk(a *askProc) {
	s.remote.mu.Lock()
	delete(s.remote.asks[a.target.Address()], a)
	s.remote.mu.Unlock()
	if a.raw != nil {
		s.ps.ProcessRegistry.Remove(a.raw)
	}
}

// NodeDown tells the system that the node at address is gone (the cluster
// layer calls it when membership declares the node dead or left). Every
// link to an actor of that node fires with reason noconnection, every
// monitor of one delivers Down with reason noconnection, pending Asks to it
// fail at once, and its actors' links and monitors on local actors are
// dropped.
func (s *System) NodeDown(address string) {
	s.remote.mu.Lock()
	asks := s.remote.asks[address]
	delete(s.remote.asks, address)
	s.remote.mu.Unlock()
	for a := range asks {
		a.f.complete(nil, &DeadActorError{PID: a.target, Reason: NoConnection, Known: true})
		s.ps.ProcessRegistry.Remove(a.raw)
	}
	s.procs.Range(func(_, v any) bool {
		p := v.(*process)
		var linked []*PID
		downs := map[MonitorRef]*PID{}
		p.mu.Lock()
		for k, l := range p.links {
			if l.Address() == address {
				linked = append(linked, l)
				delete(p.links, k)
			}
		}
		for ref, t := range p.monitoring {
			if t.Address() == address {
				downs[ref] = t // removed when the Down is delivered
			}
		}
		for ref, w := range p.monitors {
			if w.Address() == address {
				delete(p.monitors, ref)
			}
		}
		p.mu.Unlock()
		for _, l := range linked {
			p.post(&signal{kind: sigExit, from: l, reason: NoConnection, link: true})
		}
		for ref, t := range downs {
			p.mb.PostUserMessage(&Down{Ref: ref, PID: t, Reason: NoConnection})
		}
		return true
	})
}

// signalProc applies signals from other nodes to local actors. It runs on
// protoactor's endpoint reader goroutine: every step is short and never
// blocks.
type signalProc struct{ s *System }

func (sp *signalProc) SendSystemMessage(*pa.PID, any) {}
func (sp *signalProc) Stop(*pa.PID)                   {}

func (sp *signalProc) SendUserMessage(_ *pa.PID, m any) {
	_, msg, _ := pa.UnwrapEnvelope(m)
	if err := sp.s.applySignal(msg); err != nil {
		sp.s.metrics.deadLetters.Inc()
		sp.s.log.Warn("bad signal from another node", zap.Error(err))
	}
}

func (s *System) applySignal(msg any) error {
	switch m := msg.(type) {
	case *actorpb.LinkRequest:
		from, to, err := pidPair(m.GetFrom(), m.GetTo())
		if err != nil {
			return fmt.Errorf("link: %w", err)
		}
		if tp := s.local(to); tp != nil && tp.addLink(from) {
			return nil
		}
		s.sendSignal(from.Address(), &actorpb.ExitSignal{From: to.ToProto(), To: from.ToProto(),
			Reason: NoProc.ToProto(), Link: true})
	case *actorpb.UnlinkRequest:
		from, to, err := pidPair(m.GetFrom(), m.GetTo())
		if err != nil {
			return fmt.Errorf("unlink: %w", err)
		}
		if tp := s.local(to); tp != nil {
			tp.removeLink(from)
		}
	case *actorpb.MonitorRequest:
		watcher, target, err := pidPair(m.GetWatcher(), m.GetTarget())
		if err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
		ref := MonitorRef(m.GetRef())
		if tp := s.local(target); tp != nil && tp.addMonitor(ref, watcher) {
			return nil
		}
		s.send(watcher, &Down{Ref: ref, PID: target, Reason: NoProc})
	case *actorpb.DemonitorRequest:
		_, target, err := pidPair(m.GetWatcher(), m.GetTarget())
		if err != nil {
			return fmt.Errorf("demonitor: %w", err)
		}
		if tp := s.local(target); tp != nil {
			tp.removeMonitor(MonitorRef(m.GetRef()))
		}
	case *actorpb.ExitSignal:
		to, err := PIDFromProto(m.GetTo())
		if err != nil {
			return fmt.Errorf("exit signal to: %w", err)
		}
		reason, err := ReasonFromProto(m.GetReason())
		if err != nil {
			return fmt.Errorf("exit signal reason: %w", err)
		}
		var from *PID
		if m.GetFrom() != nil {
			if from, err = PIDFromProto(m.GetFrom()); err != nil {
				return fmt.Errorf("exit signal from: %w", err)
			}
		}
		tp := s.local(to)
		if tp == nil {
			return nil // already dead: nothing to do
		}
		if m.GetUntrappable() {
			tp.post(&signal{kind: sigKill})
		} else {
			tp.post(&signal{kind: sigExit, from: from, reason: reason, link: m.GetLink() && from != nil})
		}
	default:
		return fmt.Errorf("unknown signal %T", msg)
	}
	return nil
}

func pidPair(a, b *actorpb.PID) (*PID, *PID, error) {
	pa, err := PIDFromProto(a)
	if err != nil {
		return nil, nil, err
	}
	pb, err := PIDFromProto(b)
	if err != nil {
		return nil, nil, err
	}
	return pa, pb, nil
}

// isAskReply reports whether a sender is a remote Ask's reply process, which
// must be told when the actor dies before answering.
func isAskReply(sender *PID) bool { return strings.HasPrefix(sender.raw.Id, askPrefix) }

// exitRemoteLink propagates a local actor's exit to a linked actor of
// another node.
func (s *System) exitRemoteLink(to, from *PID, reason Reason) error {
	if !s.reachable(to.Address()) {
		return nil // that node is gone; its side learns through NodeDown
	}
	s.sendSignal(to.Address(), &actorpb.ExitSignal{From: from.ToProto(), To: to.ToProto(),
		Reason: reason.ToProto(), Link: true})
	return nil
}

// ServicePID returns a PID for a process that every node registers under a
// fixed protoactor id (a service such as the cluster's spawner) on the node
// at address. It has no incarnation: the service lives as long as its node.
func ServicePID(address, id string) *PID {
	return &PID{raw: &pa.PID{Address: address, Id: id}, name: id}
}
