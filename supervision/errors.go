package supervision

import (
	"errors"
	"fmt"

	"github.com/distributed-go/distributed/actor"
)

// Errors of the dynamic API, as OTP's supervisor returns them. Callers branch
// on them with errors.Is; the returned errors add the child's id.
var (
	// ErrAlreadyPresent: StartChild with the id of a spec whose child is
	// not running (OTP's already_present). RestartChild starts it.
	ErrAlreadyPresent = errors.New("supervision: already present")
	// ErrAlreadyStarted: StartChild with the id of a running child
	// (already_started). The error is an *AlreadyStartedError with its PID.
	ErrAlreadyStarted = errors.New("supervision: already started")
	// ErrNotFound: no child with that id or PID (not_found).
	ErrNotFound = errors.New("supervision: not found")
	// ErrRunning: RestartChild or DeleteChild of a running child (running).
	ErrRunning = errors.New("supervision: running")
	// ErrSimpleOneForOne: an operation by child id, or StartChild with a
	// spec, sent to a SimpleOneForOne supervisor, whose children have no
	// ids of their own (OTP's simple_one_for_one error).
	ErrSimpleOneForOne = errors.New("supervision: not supported by a simple_one_for_one supervisor")
	// ErrNotSimpleOneForOne: StartChildWith sent to a supervisor whose
	// strategy is not SimpleOneForOne.
	ErrNotSimpleOneForOne = errors.New("supervision: supervisor is not simple_one_for_one")
	// ErrInvalidSpec: a Spec or ChildSpec was rejected by validation. The
	// error's message names the field.
	ErrInvalidSpec = errors.New("supervision: invalid spec")
)

// AlreadyStartedError is returned by StartChild for an id whose child is
// running. It matches ErrAlreadyStarted.
type AlreadyStartedError struct {
	ID  string     // the child's id
	PID *actor.PID // the running child
}

// Error describes the conflict.
func (e *AlreadyStartedError) Error() string {
	return fmt.Sprintf("supervision: already started: %q is %s", e.ID, e.PID)
}

// Is makes errors.Is(err, ErrAlreadyStarted) true.
func (e *AlreadyStartedError) Is(target error) bool { return target == ErrAlreadyStarted }
