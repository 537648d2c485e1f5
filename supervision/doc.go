// Package supervision provides OTP supervisors: actors whose only job is to
// start other actors, watch them, and restart them when they exit, so that
// a program is a tree of supervised workers that heals itself.
//
// The semantics are those of Erlang/OTP's supervisor module (the OTP design
// principles), checked against a real OTP 25 where the two could differ.
// A supervisor is an ordinary actor of package actor that traps exits and
// links to each child it starts; everything it does is done through the
// actor package's public API.
//
// # Specs
//
// A Spec holds a strategy, a restart intensity and an ordered list of
// ChildSpecs. Each ChildSpec has an ID (unique within the supervisor), the
// Props (or a Factory) that start the child, a restart type, a child type
// (worker or supervisor) and shutdown and start timeouts. Props and Start
// validate a Spec before anything is spawned; an invalid one is rejected
// with an error that names the field, such as
//
//	supervision: children[2].ID "db" is duplicated
//
// # Starting
//
// A supervisor starts its children one at a time in spec order, waiting
// until each has handled actor.Started (Context.StartLink, OTP's start_link)
// before starting the next, so that a child may rely on the ones before it.
// If a child fails to start, the children already started are stopped in
// reverse order and the supervisor exits with an error reason: Start (or
// the StartLink of a parent) returns the error.
//
// # Restart types
//
//   - Permanent children are restarted after any exit, even normal or
//     shutdown.
//   - Transient children are restarted only after an abnormal exit (an
//     error, or killed); after a clean one (normal or shutdown) their spec
//     stays, stopped.
//   - Temporary children are never restarted, and their spec is removed
//     when they exit.
//
// # Strategies
//
// When a child must be restarted, the strategy decides which others go with
// it ("b crashes" below means b of children a, b, c, started in that order):
//
//   - OneForOne: only b is restarted.
//   - OneForAll: c then a are shut down (reverse start order; b is already
//     dead and is not terminated again), then a, b, c are started again in
//     start order.
//   - RestForOne: the children started after b are shut down in reverse
//     order (c), then b and c are started again in start order; a is left
//     alone.
//   - SimpleOneForOne: as OneForOne, for children that are all made from
//     one spec (the template) and started only dynamically, with
//     StartChildWith. When the supervisor stops, they are all stopped at
//     the same time.
//
// A temporary sibling that was shut down for a group restart is not started
// again; its spec is removed. Each child records how many times it was
// restarted (ChildInfo.Restarts, which counts group restarts too). The
// supervisor counts restart decisions: one per exit that calls for a
// restart, however many children it restarts, and one per retry of a
// failed restart. That count is what the intensity limits, and it is
// reported as ProcessInfo.Restarts and in the actor_restarts_total metric.
//
// # Restart intensity
//
// If more than MaxRestarts restarts happen within Period (default: 1 within
// 5 s, as OTP), the supervisor concludes that restarting does not help. The
// child that exited last is not restarted, a log report
// (report=reached_max_restart_intensity) states the cause, the remaining
// children are shut down in reverse start order, and the supervisor exits
// with reason actor.Shutdown, so that its own supervisor decides what
// happens next: a parent that traps exits and a monitor see only shutdown,
// and a linked parent that does not trap exits dies with it. A failed
// restart (the child does not start) is tried again by a message the
// supervisor sends itself, and each try counts as a restart.
//
// # Shutdown
//
// A child is stopped as OTP does it: the supervisor unlinks it, sends it an
// exit signal with reason shutdown, and waits up to the child's Shutdown
// timeout; a child that has not exited by then is killed (actor.System.Kill)
// and its exit reason is killed. ShutdownBrutalKill kills at once; Infinity,
// the default for children of type Supervisor, waits as long as it takes.
// A stopping supervisor stops its children in reverse start order, one
// after the other (simple_one_for_one: all at once). A kill takes effect
// only when the child's current handler returns; a child whose goroutine is
// stuck in a handler is logged and left behind after a bounded wait, so
// that it cannot hang a restart or the dynamic API. (A supervisor that is
// itself stopping still finishes dying only when that child does: package
// actor stops an actor after all its children.) A supervisor that is
// killed runs no shutdown of its own: package actor stops its children,
// newest first, with reason shutdown.
//
// An exit signal from the supervisor's parent (the actor that spawned it,
// or for a top-level supervisor, System.Exit from outside any actor) stops
// the supervisor with the same reason, after it has stopped its children.
// Exit signals from other linked actors are ignored, as in OTP.
//
// # Dynamic children and inspection
//
// StartChild, StartChildWith, TerminateChild, TerminateChildPID,
// RestartChild, DeleteChild, WhichChildren and CountChildren are OTP's
// supervisor functions. They are requests (actor.Ask) that the supervisor
// handles in order with its children's exits, so they can be called from
// any goroutine or actor. Errors are those of OTP, as sentinel values:
// ErrAlreadyPresent, ErrAlreadyStarted, ErrNotFound, ErrRunning.
//
// Tree returns the whole tree under a supervisor (supervisors, their
// children, PIDs and restart counts) for observers and command-line tools.
//
// Not provided: OTP's significant children and auto_shutdown.
package supervision
