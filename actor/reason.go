package actor

import (
	"errors"
	"fmt"
)

// ReasonKind classifies why an actor exited. The kinds are Erlang's exit
// reasons: they decide whether links propagate the exit and whether a
// supervisor restarts a transient child.
type ReasonKind uint8

const (
	// KindNormal is a clean, intended exit (the actor stopped itself).
	KindNormal ReasonKind = iota
	// KindShutdown is an ordered stop requested by someone else: a
	// supervisor, a parent, or System.Shutdown.
	KindShutdown
	// KindKilled is an abrupt, untrappable kill (fault injection, or a
	// supervisor's brutal kill after a shutdown timeout).
	KindKilled
	// KindError is a crash: a panic, or an error returned by a behaviour.
	KindError
	// KindNoProc is reported for an actor that did not exist (link or
	// monitor of a dead or unknown PID).
	KindNoProc
	// KindNoConnection is reported when the node that hosted the actor
	// went away, rather than the actor itself.
	KindNoConnection
)

var kindNames = [...]string{"normal", "shutdown", "killed", "error", "noproc", "noconnection"}

// String returns the Erlang name of the kind ("normal", "shutdown", ...).
func (k ReasonKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("ReasonKind(%d)", k)
}

// Reason is an exit reason: a kind plus, for errors and custom shutdowns, a
// human-readable detail. Reason is a small comparable value.
type Reason struct {
	Kind   ReasonKind
	Detail string
}

// Predefined reasons.
var (
	Normal       = Reason{Kind: KindNormal}
	Shutdown     = Reason{Kind: KindShutdown}
	Killed       = Reason{Kind: KindKilled}
	NoProc       = Reason{Kind: KindNoProc}
	NoConnection = Reason{Kind: KindNoConnection}
)

// ErrorReason returns a crash reason carrying err's message. A nil err gives
// a crash reason with detail "nil error".
func ErrorReason(err error) Reason {
	if err == nil {
		return Reason{Kind: KindError, Detail: "nil error"}
	}
	return Reason{Kind: KindError, Detail: err.Error()}
}

// Errorf returns a crash reason with a formatted detail.
func Errorf(format string, args ...any) Reason {
	return Reason{Kind: KindError, Detail: fmt.Sprintf(format, args...)}
}

// ShutdownWith returns a shutdown reason with a detail ({shutdown, Term} in
// Erlang). Like Shutdown it is not restarted by a transient child spec.
func ShutdownWith(detail string) Reason { return Reason{Kind: KindShutdown, Detail: detail} }

// IsNormal reports whether the reason is KindNormal. Only a normal exit is
// ignored by linked actors that do not trap exits.
func (r Reason) IsNormal() bool { return r.Kind == KindNormal }

// IsClean reports whether the exit was intended: normal or shutdown. A
// transient child is restarted only when its exit is not clean.
func (r Reason) IsClean() bool { return r.Kind == KindNormal || r.Kind == KindShutdown }

// String renders the reason as "kind" or "kind: detail".
func (r Reason) String() string {
	if r.Detail == "" {
		return r.Kind.String()
	}
	return r.Kind.String() + ": " + r.Detail
}

// Err returns the reason as an error, or nil for a normal exit.
func (r Reason) Err() error {
	if r.IsNormal() {
		return nil
	}
	return &ExitError{Reason: r}
}

// ExitError is an error that carries an exit reason.
type ExitError struct{ Reason Reason }

func (e *ExitError) Error() string { return "actor exited: " + e.Reason.String() }

// Lifecycle and signal messages delivered to an actor's Receive.

// Started is the first message every actor receives, before any other.
type Started struct{}

// Stopping is delivered when the actor is about to stop for any reason except
// a kill (a killed actor gets no chance to clean up, as in Erlang). Children
// are still running when it is delivered; they are stopped right after.
type Stopping struct{ Reason Reason }

// Exit is delivered to an actor that traps exits (Context.TrapExit) when a
// linked actor exits, or when System.Exit sends it an exit signal. An actor
// that does not trap exits is instead stopped with the same reason, unless
// the reason is normal.
type Exit struct {
	From   *PID
	Reason Reason
}

// Down is delivered once to the watcher of a monitor when the monitored actor
// exits (or immediately, with reason noproc, if it was already dead).
type Down struct {
	Ref    MonitorRef
	PID    *PID
	Reason Reason
}

// MonitorRef identifies one monitor, so that it can be removed with
// Context.Demonitor and matched against Down messages.
type MonitorRef uint64

// Errors returned by the actor API. Callers branch on them with errors.Is.
var (
	// ErrDeadActor: the target of an Ask, Link or Monitor is dead or unknown,
	// or died before answering.
	ErrDeadActor = errors.New("actor: target is dead or unknown")
	// ErrNameTaken: a name is already registered or in use.
	ErrNameTaken = errors.New("actor: name already registered")
	// ErrSystemStopped: the system is shut down.
	ErrSystemStopped = errors.New("actor: system is shut down")
	// ErrInvalidProps: props without a producer, or another invalid spawn argument.
	ErrInvalidProps = errors.New("actor: invalid props")
	// ErrNoReply is returned by a Server's HandleCall to defer the reply:
	// the server answers later through From.Reply.
	ErrNoReply = errors.New("actor: reply deferred")
)

// DeadActorError tells which actor was dead and, when known, why it exited.
// It matches ErrDeadActor with errors.Is.
type DeadActorError struct {
	PID    *PID
	Reason Reason
	Known  bool // Reason is meaningful (the exit was observed)
}

func (e *DeadActorError) Error() string {
	if e.Known && e.Reason.Kind == KindNoConnection {
		return fmt.Sprintf("actor: %s is unreachable: its node is down or cut off", e.PID)
	}
	if e.Known {
		return fmt.Sprintf("actor: %s exited (%s) before answering", e.PID, e.Reason)
	}
	return fmt.Sprintf("actor: %s is dead or unknown", e.PID)
}

// Is makes errors.Is(err, ErrDeadActor) true.
func (e *DeadActorError) Is(target error) bool { return target == ErrDeadActor }
