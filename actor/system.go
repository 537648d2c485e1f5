package actor

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"

	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/distributed-go/distributed/actor/actorpb"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
	"golang.org/x/time/rate"
)

// Config configures a System. The zero value is usable.
type Config struct {
	// Name labels the system in logs and metrics. Default "local".
	Name string
	// Logger receives the system's logs, and protoactor's (at Warn and
	// above). Default: zap's production logger (JSON, Info, stderr).
	Logger *zap.Logger
	// Registerer receives the system's Prometheus metrics. Default: a new
	// private registry, available from System.Gatherer.
	Registerer prometheus.Registerer
	// Throughput is how many messages an actor handles before yielding its
	// worker goroutine. Default 300 (as protoactor).
	Throughput int
	// DeadLetterLogRate bounds dead-letter log lines per second (all are
	// counted in metrics). Default 10; negative disables the logs.
	DeadLetterLogRate float64
}

// System is a set of actors sharing a dispatcher, registry, logger and
// metrics. It wraps a protoactor ActorSystem.
type System struct {
	cfg      Config
	ps       *pa.ActorSystem
	log      *zap.Logger
	disp     *dispatcher
	metrics  *metrics
	gatherer prometheus.Gatherer
	creation uint64
	seq      atomic.Uint64
	refSeq   atomic.Uint64
	names    registry
	procs    sync.Map // protoactor id → *process
	remote   remoteState
	dlLimit  *rate.Limiter
	dlSub    *eventstream.Subscription

	mu      sync.Mutex
	top     []*process // top-level actors in spawn order
	stopped bool
}

// NewSystem starts an actor system.
func NewSystem(cfg Config) (*System, error) {
	if cfg.Name == "" {
		cfg.Name = "local"
	}
	if cfg.Throughput < 0 {
		return nil, fmt.Errorf("actor: Config.Throughput must be >= 0, got %d", cfg.Throughput)
	}
	if cfg.Throughput == 0 {
		cfg.Throughput = 300
	}
	if cfg.Logger == nil {
		l, err := zap.NewProduction()
		if err != nil {
			return nil, fmt.Errorf("actor: default logger: %w", err)
		}
		cfg.Logger = l
	}
	if cfg.DeadLetterLogRate == 0 {
		cfg.DeadLetterLogRate = 10
	}
	s := &System{cfg: cfg, log: cfg.Logger.With(zap.String("system", cfg.Name))}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("actor: creation number: %w", err)
	}
	// The top 24 bits tell this system's incarnations from those of an
	// earlier system at the same address; the rest count spawns.
	s.creation = (binary.LittleEndian.Uint64(b[:]) | 1) & 0xffffff << 40
	// Monitor refs start at a random point so that refs made by different
	// nodes for monitors on the same actor do not collide.
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("actor: monitor refs: %w", err)
	}
	s.refSeq.Store(binary.LittleEndian.Uint64(b[:]) >> 1)
	reg := cfg.Registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, s.gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		s.gatherer = g
	}
	m, err := newMetrics(s, reg)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if cfg.DeadLetterLogRate > 0 {
		s.dlLimit = rate.NewLimiter(rate.Limit(cfg.DeadLetterLogRate), int(cfg.DeadLetterLogRate)+1)
	}
	s.disp = newDispatcher(cfg.Throughput)
	protoLog, err := zapcore.NewIncreaseLevelCore(cfg.Logger.Core(), zapcore.WarnLevel)
	if err != nil {
		// the logger is already above Warn
		protoLog = cfg.Logger.Core()
	}
	s.ps = pa.NewActorSystem(
		pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger {
			return slog.New(zapslog.NewHandler(protoLog, zapslog.WithName("protoactor")))
		}),
		// Dead letters are counted and logged by this package. protoactor's
		// own throttled logging (Info, filtered out above) keeps a goroutine
		// per throttle period: keep that period short.
		pa.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	s.dlSub = s.ps.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*pa.DeadLetterEvent); ok {
			s.protoDeadLetter(dl)
		}
	})
	return s, nil
}

// Name is the system's name (Config.Name).
func (s *System) Name() string { return s.cfg.Name }

// Logger is the system's logger.
func (s *System) Logger() *zap.Logger { return s.log }

// Gatherer exposes the system's metrics when they go to a registry that can
// be gathered (always, unless Config.Registerer was a plain Registerer).
func (s *System) Gatherer() prometheus.Gatherer { return s.gatherer }

// Registerer returns where the system registers its metrics (Config.Registerer,
// or its private registry), so that behaviours running on the system can
// register theirs next to them.
func (s *System) Registerer() prometheus.Registerer { return s.metrics.reg }

// Protoactor returns the underlying protoactor system: the seam for the
// cluster layer (remote transport). Application code should not need it.
func (s *System) Protoactor() *pa.ActorSystem { return s.ps }

// Spawn starts a top-level actor. System.Shutdown stops top-level actors in
// reverse spawn order, each after its children.
func (s *System) Spawn(props *Props) (*PID, error) { return s.spawn(props, "", nil, false) }

// SpawnNamed starts a top-level actor and registers it under name; it fails
// with ErrNameTaken if the name is registered.
func (s *System) SpawnNamed(props *Props, name string) (*PID, error) {
	return s.spawn(props, name, nil, false)
}

func (s *System) spawn(props *Props, name string, parent *process, link bool) (*PID, error) {
	if err := props.validate(); err != nil {
		return nil, err
	}
	if name != "" {
		if err := validName(name); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return nil, ErrSystemStopped
	}
	a := props.producer()
	if a == nil {
		return nil, fmt.Errorf("%w: producer returned nil", ErrInvalidProps)
	}
	kind := props.kind
	if kind == "" {
		kind = kindOf(a)
	}
	label := name
	if label == "" {
		label = kind
	}
	inc := s.creation | s.seq.Add(1)
	id := idFor(label, inc)
	if parent != nil {
		id = parent.pid.raw.Id + "/" + id
	}
	pid := newPID(&pa.PID{Address: s.ps.Address(), Id: id}, label, inc)
	p := newProcess(s, props, parent, pid, a, kind)
	pid.local = p
	if name != "" {
		if err := s.names.register(name, p); err != nil {
			return nil, err
		}
		p.names = []string{name}
		s.exposeName(name)
	}
	if parent != nil {
		parent.mu.Lock()
		if parent.exited {
			parent.mu.Unlock()
			s.names.unregisterIf(name, p)
			return nil, &DeadActorError{PID: parent.pid}
		}
		parent.children = append(parent.children, p)
		parent.mu.Unlock()
		if link {
			// Both sides are recorded before the child can run.
			p.links = map[string]*PID{parent.pid.key(): parent.pid}
			parent.addLink(pid)
		}
	} else {
		s.mu.Lock()
		s.top = append(s.top, p)
		s.mu.Unlock()
	}
	s.procs.Store(id, p)
	s.metrics.spawned.Inc()
	paProps := pa.PropsFromProducer(func() pa.Actor { return p },
		pa.WithMailbox(func() pa.Mailbox { return p.mb }),
		pa.WithDispatcher(s.disp))
	if _, err := s.ps.Root.SpawnNamed(paProps, id); err != nil {
		// cannot happen with unique incarnations; undo and report
		s.procs.Delete(id)
		s.names.unregisterIf(name, p)
		if parent != nil {
			parent.removeChild(p)
			parent.removeLink(pid)
		}
		return nil, fmt.Errorf("actor: spawn %s: %w", id, err)
	}
	return pid, nil
}

// retire forgets a dead process.
func (s *System) retire(p *process, r Reason) {
	s.procs.Delete(p.pid.raw.Id)
	s.metrics.retire(p, r)
	if p.parent == nil {
		s.mu.Lock()
		if i := slices.Index(s.top, p); i >= 0 {
			s.top = slices.Delete(s.top, i, i+1)
		}
		s.mu.Unlock()
	}
}

// local returns the live process of a PID hosted by this system, or nil.
func (s *System) local(pid *PID) *process {
	if pid == nil {
		return nil
	}
	if p := pid.local; p != nil && p.sys == s {
		if p.dead.Load() {
			return nil
		}
		return p
	}
	if !s.isLocal(pid) {
		return nil
	}
	if name, ok := strings.CutPrefix(pid.raw.Id, namedPrefix); ok {
		if p, ok := s.names.lookup(name); ok {
			return p
		}
		return nil
	}
	if v, ok := s.procs.Load(pid.raw.Id); ok {
		return v.(*process)
	}
	return nil
}

func (s *System) isLocal(pid *PID) bool {
	a := pid.raw.Address
	return a == s.ps.Address() || a == "nonhost"
}

// Send delivers msg to pid without a sender.
func (s *System) Send(pid *PID, msg any) { s.send(pid, msg) }

// Request delivers msg to pid with sender as its sender.
func (s *System) Request(pid *PID, msg any, sender *PID) {
	s.send(pid, &envelope{msg: msg, sender: sender})
}

func (s *System) send(pid *PID, msg any) {
	if pid == nil {
		s.deadLetter(nil, msg, nil)
		return
	}
	if p := pid.local; p != nil && p.sys == s {
		p.mb.PostUserMessage(msg) // a closed mailbox dead-letters it
		return
	}
	if !s.isLocal(pid) {
		s.sendRemote(pid, msg)
		return
	}
	// A PID decoded from the wire: protoactor routes it, and an unknown id
	// ends in its dead-letter process, which we count.
	s.ps.Root.Send(pid.fresh(), msg)
}

// Kill crashes the actor abruptly with reason killed: it gets no Stopping
// message, its links and monitors fire, and its supervisor decides what
// happens next. It is the fault-injection primitive. If the actor is in the
// middle of a message, the kill takes effect when that message returns (a
// goroutine cannot be interrupted).
func (s *System) Kill(pid *PID) error {
	if p := s.local(pid); p != nil {
		p.post(&signal{kind: sigKill})
		return nil
	}
	if pid != nil && !s.isLocal(pid) {
		return s.exitRemote(pid, nil, Killed, true)
	}
	return &DeadActorError{PID: pid}
}

// exitRemote sends an exit signal to an actor of another node.
func (s *System) exitRemote(pid, from *PID, reason Reason, untrappable bool) error {
	if !s.reachable(pid.Address()) {
		return &DeadActorError{PID: pid, Reason: NoConnection, Known: true}
	}
	sig := &actorpb.ExitSignal{To: pid.ToProto(), Reason: reason.ToProto(), Untrappable: untrappable}
	if from != nil {
		sig.From = from.ToProto()
	}
	s.sendSignal(pid.Address(), sig)
	return nil
}

// Stop stops the actor gracefully with reason shutdown: it handles Stopping,
// its children stop first, then links and monitors fire. Stop waits until the
// actor is dead or ctx is done.
func (s *System) Stop(ctx context.Context, pid *PID) error {
	p := s.local(pid)
	if p == nil {
		if pid != nil && !s.isLocal(pid) {
			return fmt.Errorf("actor: Stop waits for local actors only; %s is on another node: use Exit (or Kill) and a monitor", pid)
		}
		return &DeadActorError{PID: pid}
	}
	p.exit(Shutdown)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("actor: stop %s: %w", pid, ctx.Err())
	}
}

// Exit sends an exit signal with reason to pid, as Erlang's exit/2: an actor
// that traps exits receives an *Exit message; otherwise a normal reason is
// ignored and any other reason stops the actor with it. Reason killed is
// untrappable (it is Kill).
func (s *System) Exit(pid *PID, from *PID, reason Reason) error {
	p := s.local(pid)
	if p == nil {
		if pid != nil && !s.isLocal(pid) {
			return s.exitRemote(pid, from, reason, reason.Kind == KindKilled)
		}
		return &DeadActorError{PID: pid}
	}
	p.post(&signal{kind: sigExit, from: from, reason: reason})
	return nil
}

// WaitExit waits until pid has exited and returns its exit reason. For an
// actor that is already dead or unknown it returns reason noproc at once.
func (s *System) WaitExit(ctx context.Context, pid *PID) (Reason, error) {
	var p *process
	if pid != nil && pid.local != nil && pid.local.sys == s {
		p = pid.local
	} else {
		p = s.local(pid)
	}
	if p == nil {
		return NoProc, nil
	}
	select {
	case <-p.done:
		return p.exitReason(), nil
	case <-ctx.Done():
		return Reason{}, fmt.Errorf("actor: wait for %s: %w", pid, ctx.Err())
	}
}

// Alive reports whether pid is a live local actor.
func (s *System) Alive(pid *PID) bool { return s.local(pid) != nil }

// awaitStarted waits until a local actor has handled Started.
func (s *System) awaitStarted(pid *PID, timeout time.Duration) error {
	p := pid.local
	if p == nil {
		return &DeadActorError{PID: pid}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.started:
		if p.initErr != nil {
			<-p.done
			return p.initErr
		}
		return nil
	case <-p.done:
		return p.exitReason().Err()
	case <-t.C:
		s.Kill(pid)
		return fmt.Errorf("actor: %s did not start within %v", pid, timeout)
	}
}

func (s *System) link(self *process, pid *PID) {
	if pid == nil || pid.Equal(self.pid) {
		return
	}
	if !s.isLocal(pid) {
		if !s.reachable(pid.Address()) {
			self.post(&signal{kind: sigExit, from: pid, reason: NoConnection, link: true})
			return
		}
		if self.addLink(pid) {
			s.sendSignal(pid.Address(), &actorpb.LinkRequest{From: self.pid.ToProto(), To: pid.ToProto()})
		}
		return
	}
	if !self.addLink(pid) {
		return
	}
	if tp := s.local(pid); tp != nil && tp.addLink(self.pid) {
		return
	}
	self.removeLink(pid)
	self.post(&signal{kind: sigExit, from: pid, reason: NoProc, link: true})
}

func (s *System) unlink(self *process, pid *PID) {
	if pid == nil {
		return
	}
	self.removeLink(pid)
	if tp := s.local(pid); tp != nil {
		tp.removeLink(self.pid)
	} else if !s.isLocal(pid) {
		s.sendSignal(pid.Address(), &actorpb.UnlinkRequest{From: self.pid.ToProto(), To: pid.ToProto()})
	}
}

func (s *System) monitor(self *process, pid *PID) MonitorRef {
	ref := MonitorRef(s.refSeq.Add(1))
	self.mu.Lock()
	if self.monitoring == nil {
		self.monitoring = make(map[MonitorRef]*PID)
	}
	self.monitoring[ref] = pid
	self.mu.Unlock()
	reason := NoProc
	if pid != nil && !s.isLocal(pid) {
		if s.reachable(pid.Address()) {
			s.sendSignal(pid.Address(), &actorpb.MonitorRequest{
				Watcher: self.pid.ToProto(), Target: pid.ToProto(), Ref: uint64(ref)})
			return ref
		}
		reason = NoConnection
	} else if tp := s.local(pid); tp != nil && tp.addMonitor(ref, self.pid) {
		return ref
	}
	// The entry stays until the Down is delivered (see process.deliver).
	s.send(self.pid, &Down{Ref: ref, PID: pid, Reason: reason})
	return ref
}

func (s *System) demonitor(self *process, ref MonitorRef) {
	self.mu.Lock()
	pid := self.monitoring[ref]
	delete(self.monitoring, ref)
	self.mu.Unlock()
	s.dropMonitor(self.pid, pid, ref)
}

// dropMonitor removes a monitor from its target, local or remote.
func (s *System) dropMonitor(watcher, target *PID, ref MonitorRef) {
	if tp := s.local(target); tp != nil {
		tp.removeMonitor(ref)
	} else if target != nil && !s.isLocal(target) {
		s.sendSignal(target.Address(), &actorpb.DemonitorRequest{
			Watcher: watcher.ToProto(), Target: target.ToProto(), Ref: uint64(ref)})
	}
}

// Shutdown stops every actor: top-level actors in reverse spawn order, each
// after its own children (newest first), then releases the system's
// goroutines. If ctx ends first, the remaining actors are killed and
// Shutdown returns ctx's error. protoactor's own Shutdown stops no actor;
// this one does.
func (s *System) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	var err error
	for {
		s.mu.Lock()
		var p *process
		if n := len(s.top); n > 0 {
			p = s.top[n-1]
		}
		s.mu.Unlock()
		if p == nil {
			break
		}
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("actor: shutdown of %s: %w", s.cfg.Name, ctx.Err())
		}
		if err != nil {
			// Out of time: kill the rest, then give them a moment to die.
			// An actor stuck in a handler cannot be interrupted; after the
			// grace period it is abandoned.
			if !s.killAll(killGrace) {
				s.log.Error("shutdown incomplete: actors abandoned", zap.Error(err))
				return err
			}
			break
		}
		p.exit(Shutdown)
		select {
		case <-p.done:
		case <-ctx.Done():
		}
	}
	s.ps.EventStream.Unsubscribe(s.dlSub)
	s.disp.close()
	s.ps.Shutdown()
	s.metrics.unregister()
	return err
}

// killGrace is how long Shutdown waits for killed actors to die.
const killGrace = 2 * time.Second

// killAll kills every top-level actor and waits up to grace for them to
// die; it reports whether they all did.
func (s *System) killAll(grace time.Duration) bool {
	top := s.snapshotTop()
	for _, q := range top {
		q.post(&signal{kind: sigKill})
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	for _, q := range top {
		select {
		case <-q.done:
		case <-t.C:
			return false
		}
	}
	return true
}

func (s *System) snapshotTop() []*process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.top)
}

// deadLetter counts and logs a message that could not be delivered.
func (s *System) deadLetter(to *PID, msg any, sender *PID) {
	s.metrics.deadLetters.Inc()
	if s.dlLimit != nil && s.dlLimit.Allow() {
		s.log.Info("dead letter",
			zap.Stringer("to", to), zap.String("type", fmt.Sprintf("%T", msg)), zap.Stringer("sender", sender))
	}
}

// protoDeadLetter handles protoactor's dead letters (unknown ids).
func (s *System) protoDeadLetter(dl *pa.DeadLetterEvent) {
	switch m := dl.Message.(type) {
	case *pa.Stop, *pa.Watch, *pa.Unwatch, *pa.Terminated, *pa.Started, *pa.Restart,
		*pa.SuspendMailbox, *pa.ResumeMailbox, *pa.Failure, *pa.Stopping, *pa.Stopped, *signal:
		return // protoactor bookkeeping for an actor that is gone
	case *envelope:
		to, _ := PIDFromProtoactor(dl.PID)
		if m.fut != nil {
			m.fut.complete(nil, &DeadActorError{PID: to})
			s.metrics.deadLetters.Inc()
			return
		}
		s.deadLetter(to, m.msg, m.sender)
	default:
		to, _ := PIDFromProtoactor(dl.PID)
		if to == nil && dl.PID != nil {
			to = &PID{raw: dl.PID}
		}
		s.deadLetter(to, m, nil)
	}
}
