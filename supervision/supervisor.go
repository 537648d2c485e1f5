package supervision

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
)

// kind is the actor kind of every supervisor of this package.
const kind = "supervisor"

// Settings that tests replace (export_test.go). They are read when Props
// builds a supervisor's props, never by a running supervisor.
var (
	// killWait bounds the wait for a child to die after a kill. A kill
	// takes effect only when the child's current handler returns, so a
	// child stuck in a handler may never die; the supervisor then logs it
	// and goes on without it.
	killWait = 5 * time.Second
	// clock is the time source of the restart intensity.
	clock = time.Now
)

// child is the supervisor's record of one child spec and its current
// incarnation.
type child struct {
	spec     ChildSpec
	arg      any        // simple_one_for_one: the StartChildWith argument
	pid      *actor.PID // nil when not running
	restarts int        // automatic restarts of this child
	retrying bool       // a restart failed and a retry is queued
}

// retry asks the supervisor to try a failed restart again (OTP's
// try_again_restart). Each try counts towards the restart intensity.
type retry struct {
	c      *child
	reason actor.Reason
}

// supervisor is the actor behind a supervisor PID. All its state is owned
// by its Receive, except summary, which the inspection goroutines read.
type supervisor struct {
	spec     Spec
	killWait time.Duration
	now      func() time.Time

	self     *actor.PID
	parent   *actor.PID
	sys      *actor.System
	log      *zap.Logger
	children []*child          // in start order
	running  map[string]*child // by PID id
	window   []time.Time       // restart times within the intensity period
	total    uint64            // automatic restarts performed
	summary  atomic.Pointer[string]
}

// Receive implements actor.Actor.
func (s *supervisor) Receive(ctx *actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.init(ctx)
	case *actor.Exit:
		s.handleExit(ctx, m)
	case *retry:
		s.handleRetry(ctx, m)
	case *actor.Stopping:
		s.shutdown(ctx)
	case readyReq:
		ctx.Reply(struct{}{})
	case startChildReq:
		ctx.Reply(s.startChild(ctx, m.spec))
	case startChildWithReq:
		ctx.Reply(s.startChildWith(ctx, m.arg))
	case terminateChildReq:
		ctx.Reply(s.terminateChild(ctx, m))
	case restartChildReq:
		ctx.Reply(s.restartChild(ctx, m.id))
	case deleteChildReq:
		ctx.Reply(s.deleteChild(m.id))
	case whichChildrenReq:
		ctx.Reply(s.whichChildren())
	case countChildrenReq:
		ctx.Reply(s.countChildren())
	case describeReq:
		ctx.Reply(s.describe())
	case *actor.Down:
		// supervisors use links, not monitors
	default:
		s.log.Warn("supervisor received an unexpected message", zap.String("type", fmt.Sprintf("%T", m)))
		if ctx.From().IsAsk() {
			ctx.Reply(fmt.Errorf("supervision: unexpected request %T", m))
		}
	}
	s.publish()
}

// init starts the children in order. If one fails, the ones already started
// are stopped in reverse order and the supervisor exits with an error
// reason, which StartLink and Start return to the spawner.
func (s *supervisor) init(ctx *actor.Context) {
	s.self, s.parent, s.sys = ctx.Self(), ctx.Parent(), ctx.System()
	s.log = ctx.Logger().With(zap.String("strategy", s.spec.Strategy.String()))
	s.running = make(map[string]*child)
	s.publish()
	ctx.SetInfo(func() string { return *s.summary.Load() })
	if s.spec.Strategy == SimpleOneForOne {
		return // children are started by StartChildWith
	}
	for _, cs := range s.spec.Children {
		c := &child{spec: cs}
		if err := s.start(ctx, c); err != nil {
			s.log.Error("supervisor: child failed to start; stopping the children already started",
				zap.String("report", "start_error"), zap.String("child", cs.ID), zap.Error(err))
			s.stopInOrder(ctx, s.children)
			s.children = nil
			ctx.Exit(actor.Errorf("supervision: failed to start child %q: %v", cs.ID, err))
			return
		}
		s.children = append(s.children, c)
	}
}

// start starts one child, linked, and waits until it has handled Started.
func (s *supervisor) start(ctx *actor.Context, c *child) error {
	props := c.spec.Props
	if c.spec.Factory != nil {
		var err error
		if props, err = s.makeProps(c); err != nil {
			return err
		}
	}
	pid, err := ctx.StartLink(props, c.spec.Name, c.spec.StartTimeout)
	if err != nil {
		if pid != nil {
			// dead or dying; its exit is of no further interest
			ctx.Unlink(pid)
		}
		return err
	}
	c.pid = pid
	s.running[pid.ID()] = c
	return nil
}

func (s *supervisor) makeProps(c *child) (p *actor.Props, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("supervision: factory of %q panicked: %v", c.spec.ID, r)
		}
	}()
	p, err = c.spec.Factory(c.arg)
	if err == nil && p == nil {
		err = fmt.Errorf("supervision: factory of %q returned nil props", c.spec.ID)
	}
	return p, err
}

// handleExit handles an exit signal: from the parent, it stops the
// supervisor with the same reason (as OTP); from a child, it applies the
// child's restart type and the strategy. Other signals are ignored,
// including late ones from children already stopped or replaced.
func (s *supervisor) handleExit(ctx *actor.Context, m *actor.Exit) {
	if m.From == nil {
		// System.Exit from outside any actor: the owner of a top-level
		// supervisor, which is its parent in OTP terms.
		if s.parent == nil {
			ctx.Exit(m.Reason)
		}
		return
	}
	if s.parent != nil && m.From.Equal(s.parent) {
		ctx.Exit(m.Reason)
		return
	}
	c := s.running[m.From.ID()]
	if c == nil || !c.pid.Equal(m.From) {
		return
	}
	delete(s.running, m.From.ID())
	c.pid = nil
	s.exited(ctx, c, m.From, m.Reason)
}

// exited decides what happens after a child exited by itself.
func (s *supervisor) exited(ctx *actor.Context, c *child, pid *actor.PID, reason actor.Reason) {
	restart := c.spec.Restart == Permanent || (c.spec.Restart == Transient && !reason.IsClean())
	fields := []zap.Field{
		zap.String("report", "child_terminated"), zap.String("child", c.spec.ID),
		zap.Stringer("child_pid", pid), zap.Stringer("reason", reason),
		zap.Stringer("restart_type", c.spec.Restart),
	}
	switch {
	case !reason.IsClean():
		s.log.Warn("supervisor: child terminated", fields...)
	case restart:
		s.log.Info("supervisor: child exited", fields...)
	}
	if !restart {
		if c.spec.Restart == Temporary || s.spec.Strategy == SimpleOneForOne {
			s.remove(c)
		}
		return
	}
	s.restart(ctx, c, reason)
}

// restart counts a restart against the intensity and restarts c and, by the
// strategy, its siblings. If the intensity is exceeded, the supervisor
// exits with reason shutdown; its Stopping handler stops the remaining
// children in reverse start order.
func (s *supervisor) restart(ctx *actor.Context, c *child, reason actor.Reason) {
	if !s.addRestart() {
		s.log.Error("supervisor: restart intensity reached; shutting down",
			zap.String("report", "reached_max_restart_intensity"), zap.String("child", c.spec.ID),
			zap.Stringer("reason", reason), zap.Int("max_restarts", s.spec.MaxRestarts),
			zap.Duration("period", s.spec.Period))
		ctx.Exit(actor.Shutdown)
		return
	}
	s.total++
	s.sys.RecordRestart(s.self)
	group := s.group(c)
	for i := len(group) - 1; i >= 0; i-- {
		if g := group[i]; g != c && g.pid != nil {
			s.stop(ctx, g)
		}
	}
	for _, g := range group {
		if g.spec.Restart == Temporary {
			s.remove(g) // stopped siblings that are temporary are not restarted
			continue
		}
		if err := s.start(ctx, g); err != nil {
			s.log.Error("supervisor: restart failed; will try again",
				zap.String("report", "start_error"), zap.String("child", g.spec.ID), zap.Error(err))
			g.retrying = true
			ctx.Send(s.self, &retry{c: g, reason: actor.ErrorReason(err)})
			return
		}
		g.retrying = false
		g.restarts++
	}
}

func (s *supervisor) handleRetry(ctx *actor.Context, m *retry) {
	c := m.c
	if !c.retrying || c.pid != nil || !slices.Contains(s.children, c) {
		return // restarted or deleted in the meantime
	}
	c.retrying = false
	s.restart(ctx, c, m.reason)
}

// group lists the children that the strategy restarts with c, in start
// order.
func (s *supervisor) group(c *child) []*child {
	switch s.spec.Strategy {
	case OneForAll:
		return slices.Clone(s.children)
	case RestForOne:
		return slices.Clone(s.children[slices.Index(s.children, c):])
	default:
		return []*child{c}
	}
}

// addRestart records a restart now and reports whether the intensity still
// allows it (at most MaxRestarts restarts within Period).
func (s *supervisor) addRestart() bool {
	now := s.now()
	s.window = append(s.window, now)
	// The window is in time order: drop the restarts that left the period.
	// Beyond MaxRestarts+1 entries none can change the verdict.
	old := 0
	for old < len(s.window) && now.Sub(s.window[old]) > s.spec.Period {
		old++
	}
	if n := len(s.window) - old; n > s.spec.MaxRestarts+1 {
		old += n - (s.spec.MaxRestarts + 1)
	}
	if old > 0 {
		s.window = slices.Delete(s.window, 0, old)
	}
	return len(s.window) <= s.spec.MaxRestarts
}

func (s *supervisor) remove(c *child) {
	if i := slices.Index(s.children, c); i >= 0 {
		s.children = slices.Delete(s.children, i, i+1)
	}
}

func (s *supervisor) find(id string) *child {
	for _, c := range s.children {
		if c.spec.ID == id {
			return c
		}
	}
	return nil
}

// shutdown stops every child as the supervisor stops: in reverse start
// order, or all at once for simple_one_for_one.
func (s *supervisor) shutdown(ctx *actor.Context) {
	if s.spec.Strategy == SimpleOneForOne {
		s.stopAll(ctx, s.children)
	} else {
		s.stopInOrder(ctx, s.children)
	}
	s.children = nil
}

func (s *supervisor) stopInOrder(ctx *actor.Context, list []*child) {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].pid != nil {
			s.stop(ctx, list[i])
		}
	}
}

// stop stops one running child as OTP's supervisor does: unlink it, send it
// an exit signal with reason shutdown, wait up to its Shutdown timeout, then
// kill it.
func (s *supervisor) stop(ctx *actor.Context, c *child) {
	pid := c.pid
	ctx.Unlink(pid)
	delete(s.running, pid.ID())
	c.pid = nil
	var r actor.Reason
	if c.spec.Shutdown == ShutdownBrutalKill {
		_ = s.sys.Kill(pid)
		r = s.awaitKilled(c, pid)
	} else {
		_ = s.sys.Exit(pid, s.self, actor.Shutdown)
		var ok bool
		if r, ok = s.await(pid, c.spec.Shutdown); !ok {
			_ = s.sys.Kill(pid)
			r = s.awaitKilled(c, pid)
		}
	}
	s.checkShutdown(c, pid, r)
}

// stopAll stops children at the same time: all get the exit signal, then the
// supervisor waits for all of them up to the (common) Shutdown timeout, then
// kills the ones left.
func (s *supervisor) stopAll(ctx *actor.Context, list []*child) {
	type victim struct {
		c    *child
		pid  *actor.PID
		r    actor.Reason
		dead bool
	}
	var vs []*victim
	for _, c := range list {
		if c.pid == nil {
			continue
		}
		vs = append(vs, &victim{c: c, pid: c.pid})
		ctx.Unlink(c.pid)
		delete(s.running, c.pid.ID())
		c.pid = nil
	}
	if len(vs) == 0 {
		return
	}
	d := vs[0].c.spec.Shutdown // one template for all
	if d != ShutdownBrutalKill {
		for _, v := range vs {
			_ = s.sys.Exit(v.pid, s.self, actor.Shutdown)
		}
		wctx, cancel := deadline(d)
		for _, v := range vs {
			if r, err := s.sys.WaitExit(wctx, v.pid); err == nil {
				v.r, v.dead = r, true
			}
		}
		cancel()
	}
	for _, v := range vs {
		if !v.dead {
			_ = s.sys.Kill(v.pid)
		}
	}
	kctx, cancel := deadline(s.killWait)
	defer cancel()
	for _, v := range vs {
		if v.dead {
			continue
		}
		if r, err := s.sys.WaitExit(kctx, v.pid); err == nil {
			v.r = r
		} else {
			s.stuck(v.c, v.pid)
			v.r = actor.Killed
		}
	}
	for _, v := range vs {
		s.checkShutdown(v.c, v.pid, v.r)
	}
}

// await waits up to d for pid to die and returns its exit reason.
func (s *supervisor) await(pid *actor.PID, d time.Duration) (actor.Reason, bool) {
	ctx, cancel := deadline(d)
	defer cancel()
	r, err := s.sys.WaitExit(ctx, pid)
	return r, err == nil
}

// awaitKilled waits a bounded time for a killed child to die.
func (s *supervisor) awaitKilled(c *child, pid *actor.PID) actor.Reason {
	if r, ok := s.await(pid, s.killWait); ok {
		return r
	}
	s.stuck(c, pid)
	return actor.Killed
}

func (s *supervisor) stuck(c *child, pid *actor.PID) {
	s.log.Error("supervisor: child did not exit after a kill (its goroutine is stuck in a handler); going on without it",
		zap.String("report", "shutdown_error"), zap.String("child", c.spec.ID), zap.Stringer("child_pid", pid),
		zap.Duration("waited", s.killWait))
}

// checkShutdown reports a child that did not exit with the reason it was
// asked to (OTP's shutdown_error), such as one killed after its timeout.
func (s *supervisor) checkShutdown(c *child, pid *actor.PID, r actor.Reason) {
	want := actor.KindShutdown
	if c.spec.Shutdown == ShutdownBrutalKill {
		want = actor.KindKilled
	}
	if r.Kind == want || (r.IsNormal() && c.spec.Restart != Permanent) {
		return
	}
	s.log.Warn("supervisor: child did not shut down cleanly",
		zap.String("report", "shutdown_error"), zap.String("child", c.spec.ID),
		zap.Stringer("child_pid", pid), zap.Stringer("reason", r))
}

// deadline returns a context that ends after d (never for Infinity).
func deadline(d time.Duration) (context.Context, context.CancelFunc) {
	if d == Infinity {
		return context.WithCancel(context.Background())
	}
	return context.WithTimeout(context.Background(), d)
}

// Dynamic API handlers.

func (s *supervisor) startChild(ctx *actor.Context, spec ChildSpec) any {
	if s.spec.Strategy == SimpleOneForOne {
		return fmt.Errorf("%w: use StartChildWith", ErrSimpleOneForOne)
	}
	if c := s.find(spec.ID); c != nil {
		if c.pid != nil {
			return &AlreadyStartedError{ID: spec.ID, PID: c.pid}
		}
		return fmt.Errorf("%w: %q", ErrAlreadyPresent, spec.ID)
	}
	c := &child{spec: spec}
	if err := s.start(ctx, c); err != nil {
		return fmt.Errorf("supervision: start child %q: %w", spec.ID, err)
	}
	s.children = append(s.children, c)
	return c.pid
}

func (s *supervisor) startChildWith(ctx *actor.Context, arg any) any {
	if s.spec.Strategy != SimpleOneForOne {
		return ErrNotSimpleOneForOne
	}
	c := &child{spec: s.spec.Children[0], arg: arg}
	if err := s.start(ctx, c); err != nil {
		return fmt.Errorf("supervision: start child %q: %w", c.spec.ID, err)
	}
	s.children = append(s.children, c)
	return c.pid
}

func (s *supervisor) terminateChild(ctx *actor.Context, m terminateChildReq) any {
	var c *child
	if m.pid != nil {
		if c = s.running[m.pid.ID()]; c == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, m.pid)
		}
	} else {
		if s.spec.Strategy == SimpleOneForOne {
			return fmt.Errorf("%w: terminate by PID", ErrSimpleOneForOne)
		}
		if c = s.find(m.id); c == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, m.id)
		}
	}
	if c.pid != nil {
		s.stop(ctx, c)
	}
	c.retrying = false
	if c.spec.Restart == Temporary || s.spec.Strategy == SimpleOneForOne {
		s.remove(c)
	}
	return struct{}{}
}

func (s *supervisor) restartChild(ctx *actor.Context, id string) any {
	if s.spec.Strategy == SimpleOneForOne {
		return ErrSimpleOneForOne
	}
	c := s.find(id)
	switch {
	case c == nil:
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	case c.pid != nil:
		return fmt.Errorf("%w: %q", ErrRunning, id)
	}
	if err := s.start(ctx, c); err != nil {
		return fmt.Errorf("supervision: restart child %q: %w", id, err)
	}
	c.retrying = false
	return c.pid
}

func (s *supervisor) deleteChild(id string) any {
	if s.spec.Strategy == SimpleOneForOne {
		return ErrSimpleOneForOne
	}
	c := s.find(id)
	switch {
	case c == nil:
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	case c.pid != nil:
		return fmt.Errorf("%w: %q", ErrRunning, id)
	}
	s.remove(c)
	return struct{}{}
}

func (s *supervisor) info(c *child) ChildInfo {
	return ChildInfo{ID: c.spec.ID, PID: c.pid, Type: c.spec.Type, Restart: c.spec.Restart, Restarts: c.restarts}
}

func (s *supervisor) whichChildren() []ChildInfo {
	out := make([]ChildInfo, 0, len(s.children))
	for i := len(s.children) - 1; i >= 0; i-- {
		out = append(out, s.info(s.children[i]))
	}
	return out
}

func (s *supervisor) countChildren() Counts {
	var n Counts
	if s.spec.Strategy == SimpleOneForOne {
		// as OTP: one spec; workers and supervisors count the live children
		n.Specs, n.Active = 1, len(s.running)
		if s.spec.Children[0].Type == Supervisor {
			n.Supervisors = n.Active
		} else {
			n.Workers = n.Active
		}
		return n
	}
	n.Specs = len(s.children)
	for _, c := range s.children {
		if c.pid != nil {
			n.Active++
		}
		if c.spec.Type == Supervisor {
			n.Supervisors++
		} else {
			n.Workers++
		}
	}
	return n
}

func (s *supervisor) describe() *TreeNode {
	n := &TreeNode{
		ChildInfo:     ChildInfo{ID: s.self.Name(), PID: s.self, Type: Supervisor},
		Strategy:      s.spec.Strategy,
		ChildRestarts: s.total,
	}
	for _, c := range s.children {
		n.Children = append(n.Children, &TreeNode{ChildInfo: s.info(c)})
	}
	return n
}

// publish updates the summary shown by System.Info and the observer.
func (s *supervisor) publish() {
	str := fmt.Sprintf("%s, %s (%d running), %s",
		s.spec.Strategy, plural(len(s.children), "child"), len(s.running), plural(int(s.total), "restart"))
	s.summary.Store(&str)
}
