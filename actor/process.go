package actor

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// signalKind is the kind of an out-of-band signal to an actor.
type signalKind uint8

const (
	sigExit signalKind = iota // exit signal from a link or System.Exit
	sigKill                   // untrappable kill
)

// signal travels on the system queue, ahead of user messages.
type signal struct {
	kind   signalKind
	from   *PID
	reason Reason
	link   bool // the signal comes from a linked actor's exit
}

// envelope carries a user message with its sender and, for Ask, the future
// that receives the reply.
type envelope struct {
	msg    any
	sender *PID
	fut    *future
}

// process is this package's per-actor state. It is protoactor's Actor (its
// Receive is the adapter that maps protoactor's lifecycle to ours) and also
// the handle through which other goroutines link, monitor, kill and inspect
// the actor.
type process struct {
	sys    *System
	pid    *PID
	parent *process
	props  *Props
	kind   string
	mb     *mailbox
	ctx    Context
	actor  Actor

	// fields below are owned by the actor's goroutine
	trapExit bool
	pending  map[*future]struct{}
	// remote Asks not answered yet, told of this actor's death
	remoteAsks map[*replyToken]*PID
	prunedAt   int

	started  chan struct{} // closed after Started was handled
	initErr  error         // set before started is closed
	done     chan struct{} // closed when the actor is dead
	dead     atomic.Bool
	spawned  time.Time
	restarts atomic.Uint64 // restarts performed by this actor as a supervisor

	mu         sync.Mutex
	exited     bool // links/monitors closed; reason final
	reason     Reason
	reasonSet  bool
	links      map[string]*PID
	monitors   map[MonitorRef]*PID // watchers of this actor
	monitoring map[MonitorRef]*PID // actors this actor watches
	names      []string
	timers     map[*Timer]struct{}
	children   []*process
	info       func() string // optional state summary for inspection
}

func newProcess(s *System, props *Props, parent *process, pid *PID, a Actor, kind string) *process {
	p := &process{
		sys:     s,
		pid:     pid,
		parent:  parent,
		props:   props,
		kind:    kind,
		actor:   a,
		started: make(chan struct{}),
		done:    make(chan struct{}),
		spawned: time.Now(),
	}
	p.ctx.p = p
	p.trapExit = props.trapExit
	p.mb = &mailbox{dead: p.deadLetter, onPanic: p.escaped}
	return p
}

// Receive is the protoactor entry point.
func (p *process) Receive(pc pa.Context) {
	switch m := pc.Message().(type) {
	case *envelope:
		p.deliver(pc, m.msg, m.sender, m.fut)
	case *signal:
		p.handleSignal(pc, m)
	case *pa.Started:
		p.handleStarted(pc)
	case *pa.Stopping:
		p.handleStopping(pc)
	case *pa.Stopped:
		p.handleStopped()
	case *pa.Terminated, *pa.Restarting, *pa.ReceiveTimeout:
		// protoactor bookkeeping; children are watched through our own links.
	default:
		var sender *PID
		if raw := pc.Sender(); raw != nil {
			sender = pidFromRaw(raw) // a message from another node
		}
		p.deliver(pc, fromWire(m), sender, nil)
	}
}

func (p *process) handleStarted(pc pa.Context) {
	defer close(p.started)
	if err := p.invoke(pc, &Started{}, nil, nil); err != nil {
		p.initErr = err
		return
	}
	// An actor that stops itself while starting failed to start.
	p.mu.Lock()
	if p.reasonSet && !p.reason.IsNormal() {
		p.initErr = p.reason.Err()
	}
	p.mu.Unlock()
}

// deliver runs the behaviour for one user message, recovering panics.
func (p *process) deliver(pc pa.Context, msg any, sender *PID, fut *future) {
	if p.dead.Load() {
		return
	}
	if d, ok := msg.(*Down); ok && !p.takeMonitor(d.Ref) {
		return // demonitored, or already reported: one Down per monitor
	}
	var tok *replyToken
	if sender != nil && fut == nil && isAskReply(sender) {
		tok = new(replyToken)
	}
	p.ctx.tok = tok
	_ = p.invoke(pc, msg, sender, fut)
	if tok != nil && !tok.done.Load() {
		// A remote Ask is waiting: tell it if this actor dies first.
		if p.remoteAsks == nil {
			p.remoteAsks = make(map[*replyToken]*PID)
		}
		p.remoteAsks[tok] = sender
		if len(p.remoteAsks) > 64 {
			for t := range p.remoteAsks {
				if t.done.Load() {
					delete(p.remoteAsks, t)
				}
			}
		}
	}
	if fut != nil && !fut.done.Load() {
		// The behaviour did not answer (yet): remember the future so that it
		// fails at once if this actor dies before answering.
		if p.pending == nil {
			p.pending = make(map[*future]struct{})
		}
		p.pending[fut] = struct{}{}
		if len(p.pending) > 2*p.prunedAt+64 {
			for f := range p.pending {
				if f.done.Load() {
					delete(p.pending, f)
				}
			}
			p.prunedAt = len(p.pending)
		}
	}
}

// invoke calls the behaviour; a panic crashes the actor with an error reason.
func (p *process) invoke(pc pa.Context, msg any, sender *PID, fut *future) (err error) {
	c := &p.ctx
	c.pc, c.msg, c.sender, c.fut = pc, msg, sender, fut
	defer func() {
		c.pc, c.msg, c.sender, c.fut, c.tok = nil, nil, nil, nil, nil
		if r := recover(); r != nil {
			reason := Errorf("panic: %v", r)
			// Capturing the stack costs more than the restart that follows:
			// only when the log line is written.
			if ce := p.sys.log.Check(zap.ErrorLevel, "actor crashed"); ce != nil {
				ce.Write(zap.Stringer("pid", p.pid), zap.String("kind", p.kind),
					zap.Any("panic", r), zap.String("message", fmt.Sprintf("%T", msg)),
					zap.ByteString("stack", debug.Stack()))
			}
			p.exit(reason)
			err = reason.Err()
		}
	}()
	p.actor.Receive(c)
	return nil
}

func (p *process) handleSignal(pc pa.Context, s *signal) {
	if p.dead.Load() {
		return
	}
	switch s.kind {
	case sigKill:
		p.exit(Killed)
	case sigExit:
		if s.link {
			p.mu.Lock()
			delete(p.links, s.from.key())
			p.mu.Unlock()
		}
		switch {
		case s.reason.Kind == KindKilled && !s.link:
			p.exit(Killed) // exit(Pid, kill) is untrappable
		case p.trapExit:
			// As in Erlang, the signal becomes a message at the end of the queue.
			p.mb.PostUserMessage(&Exit{From: s.from, Reason: s.reason})
		case s.reason.IsNormal():
			// ignored by actors that do not trap exits
		default:
			p.exit(s.reason)
		}
	}
}

// exit sets the exit reason (the first one wins) and stops the actor.
func (p *process) exit(r Reason) {
	p.mu.Lock()
	if !p.reasonSet {
		p.reason, p.reasonSet = r, true
	}
	p.mu.Unlock()
	// Straight to our own mailbox: a protoactor call on p.pid.raw would use
	// the process pointer protoactor caches in that PID, which another
	// system of this process may have set when it sent to this PID.
	p.mb.PostSystemMessage(stopMsg)
}

// stopMsg is protoactor's stop system message.
var stopMsg = &pa.Stop{}

func (p *process) exitReason() Reason {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reasonSet {
		// stopped by protoactor because its parent is stopping
		p.reason, p.reasonSet = Shutdown, true
	}
	return p.reason
}

func (p *process) handleStopping(pc pa.Context) {
	r := p.exitReason()
	if r.Kind != KindKilled {
		if err := p.invoke(pc, &Stopping{Reason: r}, nil, nil); err != nil {
			p.sys.log.Warn("actor panicked while stopping", zap.Stringer("pid", p.pid), zap.Error(err))
		}
	}
	// Children stop first, newest first, each before the next. A linked
	// child gets the parent's reason, as the link would give it in Erlang;
	// the others stop with shutdown.
	for {
		p.mu.Lock()
		n := len(p.children)
		var c *process
		cr := Shutdown
		if n > 0 {
			c = p.children[n-1]
			if _, linked := p.links[c.pid.key()]; linked && !r.IsNormal() {
				cr = r
			}
		}
		p.mu.Unlock()
		if c == nil {
			break
		}
		c.exit(cr)
		<-c.done
	}
}

// handleStopped runs once the actor and all its children are dead.
func (p *process) handleStopped() {
	if !p.dead.CompareAndSwap(false, true) {
		return
	}
	r := p.exitReason()
	p.mb.close()

	p.mu.Lock()
	p.exited = true
	links, monitors, monitoring, names, timers := p.links, p.monitors, p.monitoring, p.names, p.timers
	p.links, p.monitors, p.monitoring, p.names, p.timers = nil, nil, nil, nil, nil
	p.mu.Unlock()

	for t := range timers {
		t.Cancel()
	}
	for _, n := range names {
		p.sys.names.unregisterIf(n, p)
	}
	for ref, target := range monitoring {
		p.sys.dropMonitor(p.pid, target, ref)
	}
	for f := range p.pending {
		f.complete(nil, &DeadActorError{PID: p.pid, Reason: r, Known: true})
	}
	p.pending = nil
	for t, asker := range p.remoteAsks {
		if !t.done.Load() {
			p.sys.send(asker, &Down{PID: p.pid, Reason: r})
		}
	}
	p.remoteAsks = nil
	for _, l := range links {
		if lp := p.sys.local(l); lp != nil {
			lp.post(&signal{kind: sigExit, from: p.pid, reason: r, link: true})
		} else if !p.sys.isLocal(l) {
			_ = p.sys.exitRemoteLink(l, p.pid, r)
		}
	}
	for ref, w := range monitors {
		p.sys.send(w, &Down{Ref: ref, PID: p.pid, Reason: r})
	}
	if p.parent != nil {
		p.parent.removeChild(p)
	}
	p.sys.retire(p, r)
	close(p.done)
}

func (p *process) removeChild(c *process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.children {
		if x == c {
			p.children = append(p.children[:i], p.children[i+1:]...)
			return
		}
	}
}

// post puts a signal on the system queue.
func (p *process) post(s *signal) { p.mb.PostSystemMessage(s) }

// addLink records a link; false if the actor has already exited.
func (p *process) addLink(other *PID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return false
	}
	if p.links == nil {
		p.links = make(map[string]*PID)
	}
	p.links[other.key()] = other
	return true
}

func (p *process) removeLink(other *PID) {
	p.mu.Lock()
	delete(p.links, other.key())
	p.mu.Unlock()
}

func (p *process) addMonitor(ref MonitorRef, watcher *PID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return false
	}
	if p.monitors == nil {
		p.monitors = make(map[MonitorRef]*PID)
	}
	p.monitors[ref] = watcher
	return true
}

// takeMonitor removes a monitor this actor holds, reporting whether it held it.
func (p *process) takeMonitor(ref MonitorRef) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.monitoring[ref]; !ok {
		return false
	}
	delete(p.monitoring, ref)
	return true
}

func (p *process) removeMonitor(ref MonitorRef) {
	p.mu.Lock()
	delete(p.monitors, ref)
	p.mu.Unlock()
}

// deadLetter receives what the mailbox can no longer deliver.
func (p *process) deadLetter(msg any) {
	switch m := msg.(type) {
	case *envelope:
		if m.fut != nil {
			m.fut.complete(nil, &DeadActorError{PID: p.pid, Reason: p.exitReason(), Known: true})
			p.sys.metrics.deadLetters.Inc()
			return
		}
		p.sys.deadLetter(p.pid, m.msg, m.sender)
	case *signal:
		// a signal to a dead actor has nothing left to do
	case *pa.Watch:
		// protoactor's dead-letter process answers a Watch with Terminated.
		p.sys.ps.DeadLetter.SendSystemMessage(p.pid.raw, m)
	case *pa.Stop, *pa.Unwatch, *pa.Terminated, *pa.Started, *pa.Restart,
		*pa.SuspendMailbox, *pa.ResumeMailbox, *pa.Failure, *pa.Stopping, *pa.Stopped:
		// protoactor bookkeeping for an actor that is gone
	default:
		p.sys.deadLetter(p.pid, msg, nil)
	}
}

// escaped handles a panic that came from protoactor's code rather than the
// behaviour: log it and crash the actor.
func (p *process) escaped(r, msg any) {
	p.sys.log.Error("panic outside the behaviour",
		zap.Stringer("pid", p.pid), zap.Any("panic", r), zap.String("message", fmt.Sprintf("%T", msg)),
		zap.ByteString("stack", debug.Stack()))
	p.exit(Errorf("panic: %v", r))
}

func zapType(msg any) zap.Field { return zap.String("type", fmt.Sprintf("%T", msg)) }
