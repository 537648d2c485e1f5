// Package saga runs orchestrated sagas: a sequence of steps, each an action
// sent to a participant actor and a compensation that undoes it, driven by
// a supervised coordinator actor that writes every decision to a durable
// journal first, so that a killed coordinator or a crashed node resumes the
// saga where it was and ends it the same way it would have without the
// crash.
//
// # Defining and running sagas
//
// A Definition names an ordered list of Steps. Each Step names its
// participant (a Resolver: a fixed PID with To, a local name with Named, or
// any lookup, so a participant may live on another node or move), a
// per-attempt Timeout and two RetryPolicies (exponential backoff with
// jitter), one for the action and one for the compensation. A step marked
// Parallel runs at the same time as the step before it: such steps form a
// stage, whose actions are sent together; the next stage starts when all of
// them have succeeded.
//
// Start opens a Manager on an actor system with a journal directory
// (normally <node data dir>/saga) and the definitions. Manager.Begin starts
// a saga by definition name, unique id and input bytes; Manager.Wait waits
// for its outcome; Manager.Run does both. Begin is idempotent by id: a
// retried Begin fails with ErrExists instead of starting a second saga.
//
// # Execution
//
// Each running saga has one coordinator actor, a transient child of the
// manager's simple_one_for_one supervisor. For each step in order, the
// coordinator appends SENT to the journal, waits until it is durable, and
// then sends a sagapb.StepRequest to the participant; the participant's
// sagapb.StepReply (or the step's timeout) is appended as DONE,
// ATTEMPT_FAILED or FAILED before the coordinator acts on it. Results of
// earlier actions travel with later requests.
//
//   - OUTCOME_OK: the action's result is recorded and the next step runs;
//     after the last one the saga is COMMITTED.
//   - OUTCOME_BUSINESS_FAILURE (the participant refused and applied
//     nothing, see Fail): not retried. The saga turns to compensation.
//   - OUTCOME_TRANSIENT_FAILURE, a timeout or a participant that cannot be
//     resolved: retried after a backoff. When the action's retry policy is
//     exhausted the action FAILED with an unknown outcome: the saga
//     compensates, this step included, since it may have been applied.
//
// Compensation starts once no action is under way any more (the other
// branches of a parallel stage have answered or timed out). It runs the
// compensations of every step whose action succeeded or may have
// succeeded, one at a time in reverse step order, each retried (with
// backoff) until it succeeds; then the saga is COMPENSATED. A compensation whose retry
// policy is exhausted puts the saga in the Stuck state: it is recorded,
// counted in saga_stuck, listed by List(Stuck), and never dropped; an
// operator fixes the participant and calls Manager.Resume.
//
// # Recovery
//
// The journal is the coordinator's state: its in-memory state is only ever
// the fold of durable events (the pure core in core.go), and the manager's
// index holds the same fold for every saga. A coordinator that is killed
// is restarted by its supervisor; the new incarnation waits until no event
// of its saga is still on its way to the disk, loads the durable state and
// decides again: an attempt that was sent but not answered is sent again
// (with the same idempotency key). When a node crashes, Start on the same
// directory replays the journal and starts a coordinator for every saga
// that was running or compensating. Resends after a restart do not count as
// failed attempts, so a crash does not change how a saga ends (for the same
// answers from the participants).
//
// Finished sagas stay in the journal, and in the manager's index for
// queries, until a compaction drops them: Manager.Compact, or automatically
// with Config.CompactEvery and Config.Retention. A compaction rewrites the
// journal to the sagas still kept, between two journal writes, while sagas
// run. Until a saga is dropped its id cannot start another saga.
//
// # Participants and idempotency
//
// Every request carries an idempotency key: saga id + step + "action" or
// "compensation", the same for all attempts. A participant wraps its
// business logic (a Handler) in a Barrier, like dtm's sub-transaction
// barrier, which applies each action and compensation at most once and
// handles the two races of sagas: a compensation that arrives before its
// action (null compensation: nothing to undo, and the action is barred) and
// an action that arrives after its compensation (suspension: refused).
// ParticipantProps makes an actor that answers StepRequests through a
// Barrier. A participant's Barrier must survive whatever its data survives.
//
// # Queries, the service and the client
//
// List returns sagas by status, Get one saga's state and History its
// events. Manager.ServiceProps is an actor that answers the same queries,
// and starts and resumes sagas, over protobuf messages (sagapb.BeginRequest,
// StatusRequest, ListRequest, HistoryRequest, ResumeRequest), so a Client on
// any node can use it. The Client retries what can be retried (a dead or
// unreachable service, an overloaded one, a lost answer) with backoff until
// its context ends; because a saga id is unique, a retried Begin never
// starts a second saga.
//
// # Metrics
//
// On the actor system's registry, labelled with its name:
// saga_started_total, saga_committed_total, saga_compensated_total,
// saga_stuck, saga_step_duration_seconds{step,phase,outcome},
// saga_journal_appends_total and saga_journal_fsyncs_total.
//
// # Journal and group commit
//
// The journal (package journal) frames each event as a length, a CRC-32C and
// a protobuf sagapb.Event, in segment files; one writer goroutine batches
// the appends of all coordinators into one write and one fsync (group
// commit), and recovery cuts a torn last record and reports corruption
// anywhere else. BenchmarkSagas measures sagas per second and fsyncs per
// saga with and without group commit in one run.
package saga
