package actor

import (
	pa "github.com/asynkron/protoactor-go/actor"
)

// namedPrefix starts the protoactor id under which a node accepts messages
// for a registered name (names never contain '@', so it cannot clash with
// an actor's id).
const namedPrefix = "@"

// NamedPID returns a PID for whatever actor is registered under name on the
// node at address, like Erlang's {Name, Node}: each message is delivered to
// the actor that holds the name when the message arrives, so the PID keeps
// working when the actor is restarted under the same name (a supervised
// service that peers address across restarts). A message that arrives while
// the name is free is a dead letter, and an Ask through it fails with
// ErrDeadActor. Links and monitors need a real PID: use WhereIs, or the PID
// an actor gives in its messages.
//
// For this system's own address, NamedPID(s.Address(), name) works too.
func NamedPID(address, name string) *PID {
	return &PID{raw: &pa.PID{Address: address, Id: namedPrefix + name}, name: name}
}

// Address returns the address other nodes reach this system at ("nonhost"
// when it has no remote transport).
func (s *System) Address() string { return s.ps.Address() }

// namedProc is the protoactor process behind NamedPID for one name: it
// forwards each message to the current holder of the name.
type namedProc struct {
	s    *System
	name string
}

func (n *namedProc) SendUserMessage(pid *pa.PID, m any) {
	if p, ok := n.s.names.lookup(n.name); ok {
		p.mb.PostUserMessage(m)
		return
	}
	// protoactor's dead-letter process answers a request's sender with
	// DeadLetterResponse, which makes a pending Ask fail at once.
	n.s.ps.DeadLetter.SendUserMessage(pid, m)
}

func (n *namedProc) SendSystemMessage(*pa.PID, any) {}
func (n *namedProc) Stop(*pa.PID)                   {}

// exposeName makes name reachable through NamedPID. The forwarding process
// stays registered after the name is freed (it then dead-letters), so that
// a restarted holder is reachable again at once.
func (s *System) exposeName(name string) {
	s.ps.ProcessRegistry.Add(&namedProc{s: s, name: name}, namedPrefix+name)
}
