// Package actor is the actor API of distributed: Erlang/OTP-style processes
// over github.com/asynkron/protoactor-go.
//
// # Actors and systems
//
// A System hosts actors. An actor is an Actor value (or a ReceiveFunc) that
// handles one message at a time in Receive; its state lives in its own
// fields, so Props carry a Producer that makes a fresh Actor per spawn.
// System.Spawn and System.SpawnNamed start top-level actors; Context.Spawn,
// SpawnLink and StartLink start children. Every actor first receives
// *Started, and *Stopping{Reason} before it stops (except when killed).
//
// System.Shutdown really stops every actor, which protoactor's own Shutdown
// does not: top-level actors in reverse spawn order, each one only after its
// children, newest first. A parent gets *Stopping before its children stop,
// so that it can stop them itself in the order it likes (a supervisor does);
// the parent is dead, and its links and monitors fire, only after all of them.
//
// # PIDs and incarnations
//
// A *PID names one incarnation of an actor: its id carries a number that is
// unique on the node, also across restarts of the node. A message sent to a
// PID whose actor has died is a dead letter, even if a new actor has been
// spawned under the same name since. PIDs are location transparent: the
// cluster layer makes the same operations work on PIDs of other nodes.
//
// # Messages
//
// Send delivers a message without a sender; Context.Request adds the sender
// so that the receiver can Reply. Ask (and Call, its gen_server name) waits
// for a typed reply until its context ends. Ask fails fast with an error
// matching ErrDeadActor when the target is dead or unknown, and as soon as it
// dies without answering, instead of waiting for a timeout. A reply can be
// deferred: keep Context.From and answer later from anywhere.
//
// Messages that cannot be delivered are dead letters: they are counted in
// actor_dead_letters_total and logged (rate-limited) with their target,
// never dropped silently.
//
// # Exits, links and monitors
//
// Every exit has a Reason: normal, shutdown, killed, error (with a detail),
// noproc or noconnection. A panic in an actor crashes that actor with an
// error reason; it never takes the process down.
//
// Links are Erlang's: bidirectional; when a linked actor exits abnormally its
// partners exit with the same reason, unless they trap exits
// (Context.TrapExit or WithTrapExit), in which case they receive an *Exit
// message. A normal exit does not propagate. Linking to a dead actor gives
// an exit signal with reason noproc. Monitors are one-way: Context.Monitor
// delivers exactly one *Down message when the target exits (noproc at once if
// it is already dead).
//
// System.Kill is the fault-injection primitive: an untrappable, abrupt crash
// with reason killed; the actor gets no *Stopping. System.Stop is a graceful
// stop with reason shutdown; System.Exit sends an exit signal like Erlang's
// exit/2. Go cannot interrupt a goroutine, so a kill takes effect when the
// message being handled returns.
//
// # Behaviours, timers, names
//
// Server is a gen_server-style behaviour (Init, HandleCall, HandleCast,
// HandleInfo, Terminate) run by ServerProps. Context.SendAfter and
// Context.Tick deliver messages later or periodically and are cancelled when
// the actor dies. System.Register / WhereIs / Unregister are a local name
// registry; names are freed when their actor dies.
//
// # Observability
//
// Logs go to zap (Config.Logger); protoactor's slog output is routed into
// the same logger at Warn and above. Metrics go to Prometheus
// (Config.Registerer): actor_messages_processed_total, actor_mailbox_depth,
// actor_mailbox_depth_max, actor_live, actor_spawned_total,
// actor_exits_total{reason}, actor_restarts_total{supervisor},
// actor_ask_duration_seconds, actor_ask_timeouts_total and
// actor_dead_letters_total, all labelled with the system name.
// System.Processes and System.Info give snapshots of live actors for tools.
//
// # Performance
//
// protoactor's default dispatcher starts a goroutine for every mailbox
// activation; the new goroutine's small stack is grown (copied) on nearly
// every activation, which dominated request/reply traffic. This package
// plugs its own mailbox and a dispatcher with a pool of long-lived workers
// into protoactor. The benchmarks in this package measure both, side by side.
package actor
