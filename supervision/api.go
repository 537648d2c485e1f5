package supervision

import (
	"context"
	"errors"
	"fmt"

	"github.com/distributed-go/distributed/actor"
)

// Props validates spec and returns the props of a supervisor that runs it.
// Spawn it with Context.StartLink from a parent actor (so that a failure to
// start is returned), use it as the Props of a ChildSpec of type Supervisor,
// or start a top-level supervisor with Start.
//
// Each incarnation of the supervisor (each restart by its own supervisor)
// starts from spec again: children added with StartChild are not kept.
func Props(spec Spec) (*actor.Props, error) {
	spec, err := spec.validate()
	if err != nil {
		return nil, err
	}
	kw, now := killWait, clock
	return actor.PropsFromProducer(func() actor.Actor {
		return &supervisor{spec: spec, killWait: kw, now: now}
	}, actor.WithKind(kind), actor.WithTrapExit()), nil
}

// Start starts a top-level supervisor, registered under name unless name is
// empty, and waits until all its children have started. If a child fails to
// start, the supervisor stops the ones already started and Start returns the
// error. The wait is bounded by the children's StartTimeouts; StartContext
// bounds it by a context too. Stop the supervisor with System.Stop (or
// System.Shutdown): it stops its children in reverse start order.
func Start(sys *actor.System, spec Spec, name string) (*actor.PID, error) {
	return StartContext(context.Background(), sys, spec, name)
}

// StartContext is Start with a context that bounds the wait; if it ends
// first, the supervisor is killed and ctx's error returned.
func StartContext(ctx context.Context, sys *actor.System, spec Spec, name string) (*actor.PID, error) {
	props, err := Props(spec)
	if err != nil {
		return nil, err
	}
	var pid *actor.PID
	if name == "" {
		pid, err = sys.Spawn(props)
	} else {
		pid, err = sys.SpawnNamed(props, name)
	}
	if err != nil {
		return nil, fmt.Errorf("supervision: start: %w", err)
	}
	// The supervisor answers only after its Started handler, which starts
	// the children; if that fails, it is dead and the Ask fails at once.
	if _, err := actor.Ask[struct{}](ctx, sys, pid, readyReq{}); err != nil {
		if errors.Is(err, actor.ErrDeadActor) {
			if r, werr := sys.WaitExit(ctx, pid); werr == nil {
				if err := r.Err(); err != nil {
					return nil, fmt.Errorf("supervision: start %s: %w", pid.Name(), err)
				}
				return nil, fmt.Errorf("supervision: start %s: exited normally while starting", pid.Name())
			}
		}
		_ = sys.Kill(pid)
		return nil, fmt.Errorf("supervision: start %s: %w", pid.Name(), err)
	}
	return pid, nil
}

// ChildInfo describes one child, as WhichChildren reports it.
type ChildInfo struct {
	// ID is the child spec's id (for simple_one_for_one children, the
	// template's id; OTP reports undefined).
	ID string
	// PID is the running incarnation, or nil if the child is not running.
	PID *actor.PID
	// Type is Worker or Supervisor.
	Type ChildType
	// Restart is the child's restart type.
	Restart RestartType
	// Restarts counts the automatic restarts of this child by its
	// supervisor, including those where a sibling's exit restarted it
	// (one_for_all, rest_for_one). RestartChild does not count.
	Restarts int
}

// Counts is what CountChildren reports (OTP's count_children).
type Counts struct {
	// Specs is the number of child specs (1 for simple_one_for_one).
	Specs int
	// Active is the number of running children.
	Active int
	// Supervisors and Workers count the specs of each type (for
	// simple_one_for_one, the running children).
	Supervisors int
	// Workers: see Supervisors.
	Workers int
}

// Requests of the dynamic API. Each is answered by the supervisor's Receive
// with a value or an error.
type (
	readyReq          struct{}
	startChildReq     struct{ spec ChildSpec }
	startChildWithReq struct{ arg any }
	terminateChildReq struct {
		id  string
		pid *actor.PID
	}
	restartChildReq  struct{ id string }
	deleteChildReq   struct{ id string }
	whichChildrenReq struct{}
	countChildrenReq struct{}
	describeReq      struct{}
)

// The dynamic API. Each function is a request to the supervisor sup and
// waits for its answer (or until ctx ends, or fails at once with an error
// matching actor.ErrDeadActor if sup is dead). The supervisor handles one
// request at a time, in order with the exits of its children. A child must
// not call these on its own supervisor while it is starting (in its Started
// handler): the supervisor is waiting for that start to finish.

// StartChild adds spec to sup's children and starts the child, as the
// newest child. It returns an *AlreadyStartedError (ErrAlreadyStarted) if a
// child with that id runs, ErrAlreadyPresent if its spec exists but the
// child is stopped, ErrSimpleOneForOne for a simple_one_for_one supervisor,
// and the start error, without adding the spec, if the child fails to start.
func StartChild(ctx context.Context, sys *actor.System, sup *actor.PID, spec ChildSpec) (*actor.PID, error) {
	spec, err := spec.validate("spec", false)
	if err != nil {
		return nil, err
	}
	return actor.Ask[*actor.PID](ctx, sys, sup, startChildReq{spec: spec})
}

// StartChildWith starts a new child of a simple_one_for_one supervisor from
// its template; the template's Factory receives arg (and receives it again
// if the child is restarted). It returns ErrNotSimpleOneForOne for other
// supervisors.
func StartChildWith(ctx context.Context, sys *actor.System, sup *actor.PID, arg any) (*actor.PID, error) {
	return actor.Ask[*actor.PID](ctx, sys, sup, startChildWithReq{arg: arg})
}

// TerminateChild stops the child id (shutdown signal, then a kill after its
// Shutdown timeout). The spec stays, so RestartChild can start it again,
// except for a temporary child, whose spec is deleted. Terminating a child
// that is not running succeeds. It returns ErrNotFound for an unknown id
// and ErrSimpleOneForOne for a simple_one_for_one supervisor (use
// TerminateChildPID).
func TerminateChild(ctx context.Context, sys *actor.System, sup *actor.PID, id string) error {
	_, err := actor.Ask[struct{}](ctx, sys, sup, terminateChildReq{id: id})
	return err
}

// TerminateChildPID stops the running child pid, as TerminateChild. For a
// simple_one_for_one supervisor the child is removed. It returns
// ErrNotFound if pid is not a running child of sup.
func TerminateChildPID(ctx context.Context, sys *actor.System, sup *actor.PID, pid *actor.PID) error {
	if pid == nil {
		return fmt.Errorf("%w: nil PID", ErrNotFound)
	}
	_, err := actor.Ask[struct{}](ctx, sys, sup, terminateChildReq{pid: pid})
	return err
}

// RestartChild starts the stopped child id again from its spec. It returns
// ErrRunning if the child runs, ErrNotFound for an unknown id, and the start
// error if it fails to start (the spec stays).
func RestartChild(ctx context.Context, sys *actor.System, sup *actor.PID, id string) (*actor.PID, error) {
	return actor.Ask[*actor.PID](ctx, sys, sup, restartChildReq{id: id})
}

// DeleteChild removes the spec of the stopped child id. It returns
// ErrRunning if the child runs and ErrNotFound for an unknown id.
func DeleteChild(ctx context.Context, sys *actor.System, sup *actor.PID, id string) error {
	_, err := actor.Ask[struct{}](ctx, sys, sup, deleteChildReq{id: id})
	return err
}

// WhichChildren lists sup's children, newest first (as OTP's
// which_children), including stopped ones (with a nil PID).
func WhichChildren(ctx context.Context, sys *actor.System, sup *actor.PID) ([]ChildInfo, error) {
	return actor.Ask[[]ChildInfo](ctx, sys, sup, whichChildrenReq{})
}

// CountChildren counts sup's children (OTP's count_children).
func CountChildren(ctx context.Context, sys *actor.System, sup *actor.PID) (Counts, error) {
	return actor.Ask[Counts](ctx, sys, sup, countChildrenReq{})
}
