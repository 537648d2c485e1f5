package actor

import (
	"strings"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// DeliverRemote hands a message that arrived from another node to the local
// actor id (the protoactor process id a remote PID carries), with sender as
// its sender (nil for none). It reports false, delivering nothing, when id
// names no live actor of this system; the caller then routes the message
// the usual way (to a future, a system process or the dead letters).
//
// When the message activates an idle actor, DeliverRemote does not hand the
// activation to a worker goroutine: it returns it, and the caller runs it
// (Activation.Run) on its own goroutine. That saves the hand-off and the OS
// thread wake-up it costs, which is a large part of a remote round trip.
// Message order and the one-message-at-a-time guarantee are those of any
// other delivery. The caller must run a returned activation (the actor
// processes nothing until it does) and must cope with it taking long: a
// network reader has to let another goroutine take over its connection
// when a run does not return promptly (the cluster transport does), or an
// actor that blocks would hold up every message behind it.
func (s *System) DeliverRemote(id string, msg any, sender *pa.PID) (Activation, bool) {
	p := s.localByID(id)
	if p == nil {
		return Activation{}, false
	}
	if sender != nil {
		msg = &pa.MessageEnvelope{Message: msg, Sender: sender}
	}
	if p.mb.postInline(msg) {
		return Activation{mb: p.mb}, true
	}
	return Activation{}, true
}

// Activation is an actor's turn to process its mailbox, returned by
// DeliverRemote for the caller to run or schedule.
type Activation struct{ mb *mailbox }

// Pending reports whether there is an activation to run.
func (a Activation) Pending() bool { return a.mb != nil }

// Inlinable reports whether the actor is worth running on the caller's
// goroutine. It is not for inlineBackoff activations after an inline run
// that took longer than inlineSlow: such an actor blocks or does real work,
// and a worker runs it in parallel with the caller (a network reader,
// which can then read on).
func (a Activation) Inlinable() bool {
	if a.mb.inlineSkip.Load() > 0 {
		a.mb.inlineSkip.Add(-1)
		return false
	}
	return true
}

// Run processes the actor's messages on the calling goroutine until its
// mailbox is empty, or up to the dispatcher's throughput (the rest then
// goes to a worker). It does nothing for a zero Activation.
func (a Activation) Run() {
	if a.mb == nil {
		return
	}
	start := time.Now()
	a.mb.run(true)
	if time.Since(start) > inlineSlow {
		a.mb.inlineSkip.Store(inlineBackoff)
	}
}

const (
	inlineSlow    = 200 * time.Microsecond
	inlineBackoff = 64
)

// Schedule hands the activation to a worker goroutine, as a local send
// does. It does nothing for a zero Activation.
func (a Activation) Schedule() {
	if a.mb != nil {
		a.mb.dispatcher.Schedule(a.mb.process)
	}
}

// localByID is local for a protoactor id of this system.
func (s *System) localByID(id string) *process {
	if name, ok := strings.CutPrefix(id, namedPrefix); ok {
		if p, ok := s.names.lookup(name); ok {
			return p
		}
		return nil
	}
	if v, ok := s.procs.Load(id); ok {
		if p := v.(*process); !p.dead.Load() {
			return p
		}
	}
	return nil
}
