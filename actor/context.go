package actor

import (
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// Context is an actor's view of itself and of the message it is handling.
// It is valid only inside Receive, on the actor's goroutine; do not keep it
// or use it from other goroutines (use From to answer later, and System for
// work outside the actor).
type Context struct {
	p      *process
	pc     pa.Context
	msg    any
	sender *PID
	fut    *future
	tok    *replyToken // a remote Ask's reply is pending
}

// replyToken records that a reply was sent, for remote Asks.
type replyToken struct{ done atomic.Bool }

// Self is the actor's own PID.
func (c *Context) Self() *PID { return c.p.pid }

// Parent is the PID of the actor that spawned this one, or nil for an actor
// spawned by System.Spawn.
func (c *Context) Parent() *PID {
	if c.p.parent == nil {
		return nil
	}
	return c.p.parent.pid
}

// System is the actor system the actor runs in.
func (c *Context) System() *System { return c.p.sys }

// Logger is the system's logger with the actor's pid and kind as fields.
func (c *Context) Logger() *zap.Logger {
	return c.p.sys.log.With(zap.Stringer("pid", c.p.pid), zap.String("kind", c.p.kind))
}

// Message is the message being handled.
func (c *Context) Message() any { return c.msg }

// Sender is the PID that sent the message with Request (or replied with
// Reply), or nil.
func (c *Context) Sender() *PID { return c.sender }

// Send delivers msg to the actor at pid, without a sender. Delivery is
// asynchronous; a message to a dead actor becomes a counted, logged dead letter.
func (c *Context) Send(pid *PID, msg any) { c.p.sys.send(pid, msg) }

// Request delivers msg to pid with this actor as its sender, so that the
// receiver can answer with Reply.
func (c *Context) Request(pid *PID, msg any) {
	c.p.sys.send(pid, &envelope{msg: msg, sender: c.p.pid})
}

// Reply answers the message being handled: the Ask that sent it, or its
// sender. A reply to a message that had neither is a dead letter.
func (c *Context) Reply(msg any) { c.From().Reply(msg) }

// From captures the return address of the current message, so that the
// actor can answer later (a deferred reply), from any goroutine.
func (c *Context) From() From {
	return From{sys: c.p.sys, self: c.p.pid, sender: c.sender, fut: c.fut, tok: c.tok}
}

// Spawn starts a child actor. Children stop before their parent, newest first.
func (c *Context) Spawn(props *Props) (*PID, error) {
	return c.p.sys.spawn(props, "", c.p, false)
}

// SpawnNamed starts a child actor and registers name for it in the local
// registry (see System.Register). The name is freed when the actor dies.
func (c *Context) SpawnNamed(props *Props, name string) (*PID, error) {
	return c.p.sys.spawn(props, name, c.p, false)
}

// SpawnLink starts a child actor linked to this one, atomically: there is no
// window in which the child can die unnoticed. name may be empty.
func (c *Context) SpawnLink(props *Props, name string) (*PID, error) {
	return c.p.sys.spawn(props, name, c.p, true)
}

// StartLink is SpawnLink that waits until the child has handled Started (the
// gen_server init), as OTP's start_link does. If the child crashed or
// returned an error while starting, StartLink returns that error and the
// child is dead. While it waits, this actor handles no other message.
func (c *Context) StartLink(props *Props, name string, timeout time.Duration) (*PID, error) {
	pid, err := c.SpawnLink(props, name)
	if err != nil {
		return nil, err
	}
	return pid, c.p.sys.awaitStarted(pid, timeout)
}

// Link creates a bidirectional link with pid: when either exits abnormally,
// the other exits with the same reason unless it traps exits, in which case
// it receives an *Exit message. Linking to a dead actor delivers an exit
// signal with reason noproc at once.
func (c *Context) Link(pid *PID) { c.p.sys.link(c.p, pid) }

// Unlink removes a link in both directions.
func (c *Context) Unlink(pid *PID) { c.p.sys.unlink(c.p, pid) }

// Monitor watches pid: exactly one *Down message arrives when it exits (at
// once, with reason noproc, if it is already dead).
func (c *Context) Monitor(pid *PID) MonitorRef { return c.p.sys.monitor(c.p, pid) }

// Demonitor removes a monitor. A Down message that was already queued stays
// in the mailbox.
func (c *Context) Demonitor(ref MonitorRef) { c.p.sys.demonitor(c.p, ref) }

// TrapExit turns exit trapping on or off: when on, exit signals from links
// arrive as *Exit messages instead of stopping the actor. Kill is never trapped.
func (c *Context) TrapExit(on bool) { c.p.trapExit = on }

// TrapsExit reports whether the actor traps exits.
func (c *Context) TrapsExit() bool { return c.p.trapExit }

// Stop stops this actor with reason normal after the current message.
func (c *Context) Stop() { c.p.exit(Normal) }

// Exit stops this actor with the given reason after the current message.
func (c *Context) Exit(reason Reason) { c.p.exit(reason) }

// SendAfter delivers msg to this actor after d. The timer is cancelled when
// the actor dies.
func (c *Context) SendAfter(d time.Duration, msg any) *Timer {
	return c.p.sys.newTimer(c.p, c.p.pid, d, msg, false)
}

// Tick delivers msg to this actor every d until the timer is cancelled or the
// actor dies.
func (c *Context) Tick(d time.Duration, msg any) *Timer {
	return c.p.sys.newTimer(c.p, c.p.pid, d, msg, true)
}

// SetInfo installs a function that summarises the actor's state for
// inspection (System.Processes, the observer). It is called from other
// goroutines, so it must be safe for concurrent use.
func (c *Context) SetInfo(f func() string) {
	c.p.mu.Lock()
	c.p.info = f
	c.p.mu.Unlock()
}

// From is the return address of a message: the future of an Ask, or the
// PID of a Request's sender. It may be kept and used from any goroutine to
// answer later; only the first answer counts.
type From struct {
	sys    *System
	self   *PID
	sender *PID
	fut    *future
	tok    *replyToken
}

// Reply answers the request. A reply of type error makes the asker's Ask
// return that error.
func (f From) Reply(msg any) {
	switch {
	case f.fut != nil:
		f.fut.complete(msg, nil)
	case f.sender != nil:
		if f.tok != nil {
			f.tok.done.Store(true)
		}
		f.sys.send(f.sender, &envelope{msg: msg, sender: f.self})
	case f.sys != nil:
		f.sys.deadLetter(nil, msg, f.self)
	}
}

// IsAsk reports whether the message came from an Ask (someone is waiting).
func (f From) IsAsk() bool { return f.fut != nil }

// Valid reports whether there is anyone to answer.
func (f From) Valid() bool { return f.fut != nil || f.sender != nil }
