package saga

import (
	"errors"
	"fmt"
	"sync"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

// BusinessError marks a refusal for a business reason (out of stock,
// card declined): nothing was applied, and retrying will not help. The
// coordinator does not retry it; it compensates the steps before.
type BusinessError struct{ Err error }

func (e *BusinessError) Error() string { return e.Err.Error() }
func (e *BusinessError) Unwrap() error { return e.Err }

// Fail wraps err as a business failure.
func Fail(err error) error { return &BusinessError{Err: err} }

// Failf is Fail with a formatted error.
func Failf(format string, args ...any) error { return Fail(fmt.Errorf(format, args...)) }

// IsBusiness reports whether err is (or wraps) a business failure.
func IsBusiness(err error) bool {
	var b *BusinessError
	return errors.As(err, &b)
}

// Request is a StepRequest as a participant's handler sees it.
type Request struct {
	SagaID     string
	Definition string
	Step       string
	Phase      sagapb.Phase
	Key        string // the idempotency key
	Attempt    int
	Input      []byte
	// Results are the results of the saga's earlier actions, by step name.
	Results map[string][]byte
}

// Handler is a participant's business logic for one or more steps (tell
// them apart by Request.Step).
//
// Action applies the step and returns its result, a business failure
// (Fail) if it refuses without applying anything, or another error for a
// transient failure that must leave nothing applied either (the
// coordinator retries).
//
// Compensate undoes the action; an error is retried by the coordinator
// until it succeeds or its retry policy puts the saga in the Stuck state.
type Handler struct {
	Action     func(req Request) ([]byte, error)
	Compensate func(req Request) error
}

// BarrierStats count what a Barrier did.
type BarrierStats struct {
	Actions           uint64 // actions run
	Compensations     uint64 // compensations run
	Duplicates        uint64 // requests answered from the barrier without running anything
	NullCompensations uint64 // compensations that arrived before (or without) their action
	Suspended         uint64 // actions refused because their compensation came first
}

type barrierRecord struct {
	actionDone   bool // the action ran and succeeded
	actionResult []byte
	actionFailed bool   // the action refused (business failure)
	actionError  string // its error
	compDone     bool   // the compensation ran, or was a null compensation
	nullComp     bool   // the compensation came first: the action must never run
}

// Barrier makes a participant apply each action and compensation at most
// once, whatever the coordinator resends (retries, restarts), like dtm's
// sub-transaction barrier:
//
//   - a duplicate is answered with the first answer, without running
//     anything;
//   - a compensation that arrives before its action (the action's request
//     was delayed or lost and the coordinator gave up on it) is a null
//     compensation: it succeeds without running Compensate, and the action
//     is barred;
//   - an action that arrives after its compensation (suspension) is
//     refused with a business failure, without running Action;
//   - a compensation of an action that refused with a business failure
//     succeeds without running Compensate (nothing was applied).
//
// The handler runs while the barrier is locked, so the check, the business
// change and the barrier's record form one step with respect to every other
// request of this barrier. Keep a Barrier with the data it protects: if the
// data survives a crash, the barrier's records must too (in a database,
// store both in one transaction). The records are kept in memory here;
// Forget drops those of a finished saga.
type Barrier struct {
	mu      sync.Mutex
	records map[[2]string]*barrierRecord
	stats   BarrierStats
}

// NewBarrier returns an empty barrier.
func NewBarrier() *Barrier { return &Barrier{records: map[[2]string]*barrierRecord{}} }

// validate checks a request from the network.
func validate(req *sagapb.StepRequest) error {
	switch {
	case req == nil:
		return errors.New("nil request")
	case req.SagaId == "" || len(req.SagaId) > MaxNameLen:
		return fmt.Errorf("saga id of %d bytes", len(req.SagaId))
	case req.Step == "" || len(req.Step) > MaxNameLen:
		return fmt.Errorf("step name of %d bytes", len(req.Step))
	case req.Phase != sagapb.Phase_PHASE_ACTION && req.Phase != sagapb.Phase_PHASE_COMPENSATION:
		return fmt.Errorf("phase %s", req.Phase)
	case req.IdempotencyKey != IdempotencyKey(req.SagaId, req.Step, req.Phase):
		return fmt.Errorf("idempotency key %q does not match saga, step and phase", req.IdempotencyKey)
	}
	return nil
}

// Apply runs req through the barrier and h, and returns the reply to send.
func (b *Barrier) Apply(req *sagapb.StepRequest, h Handler) *sagapb.StepReply {
	if err := validate(req); err != nil {
		return &sagapb.StepReply{IdempotencyKey: req.GetIdempotencyKey(), Outcome: sagapb.Outcome_OUTCOME_BUSINESS_FAILURE,
			Error: "saga: malformed step request: " + err.Error()}
	}
	reply := &sagapb.StepReply{IdempotencyKey: req.IdempotencyKey, Outcome: sagapb.Outcome_OUTCOME_OK}
	r := Request{SagaID: req.SagaId, Definition: req.Definition, Step: req.Step, Phase: req.Phase,
		Key: req.IdempotencyKey, Attempt: int(req.Attempt), Input: req.Input, Results: map[string][]byte{}}
	for _, res := range req.Results {
		r.Results[res.GetStep()] = res.GetData()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := [2]string{req.SagaId, req.Step}
	rec := b.records[k]
	if rec == nil {
		rec = &barrierRecord{}
		b.records[k] = rec
	}
	if req.Phase == sagapb.Phase_PHASE_ACTION {
		switch {
		case rec.nullComp:
			b.stats.Suspended++
			reply.Outcome = sagapb.Outcome_OUTCOME_BUSINESS_FAILURE
			reply.Error = "saga: action arrived after its compensation; not applied"
		case rec.actionDone:
			b.stats.Duplicates++
			reply.Result = rec.actionResult
		case rec.actionFailed:
			b.stats.Duplicates++
			reply.Outcome, reply.Error = sagapb.Outcome_OUTCOME_BUSINESS_FAILURE, rec.actionError
		default:
			res, err := callAction(h, r)
			switch {
			case err == nil:
				b.stats.Actions++
				rec.actionDone, rec.actionResult = true, res
				reply.Result = res
			case IsBusiness(err):
				b.stats.Actions++
				rec.actionFailed, rec.actionError = true, err.Error()
				reply.Outcome, reply.Error = sagapb.Outcome_OUTCOME_BUSINESS_FAILURE, err.Error()
			default:
				reply.Outcome, reply.Error = sagapb.Outcome_OUTCOME_TRANSIENT_FAILURE, err.Error()
			}
		}
		return reply
	}
	switch {
	case rec.compDone:
		b.stats.Duplicates++
	case !rec.actionDone && !rec.actionFailed:
		b.stats.NullCompensations++
		rec.compDone, rec.nullComp = true, true
	case rec.actionFailed:
		b.stats.NullCompensations++
		rec.compDone = true
	default:
		if err := callCompensate(h, r); err != nil {
			reply.Outcome, reply.Error = sagapb.Outcome_OUTCOME_TRANSIENT_FAILURE, err.Error()
			return reply
		}
		b.stats.Compensations++
		rec.compDone = true
	}
	return reply
}

func callAction(h Handler, r Request) (res []byte, err error) {
	if h.Action == nil {
		return nil, Failf("saga: participant has no action for step %q", r.Step)
	}
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("saga: action %q panicked: %v", r.Step, p)
		}
	}()
	return h.Action(r)
}

func callCompensate(h Handler, r Request) (err error) {
	if h.Compensate == nil {
		return fmt.Errorf("saga: participant has no compensation for step %q", r.Step)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("saga: compensation %q panicked: %v", r.Step, p)
		}
	}()
	return h.Compensate(r)
}

// Stats returns what the barrier did so far.
func (b *Barrier) Stats() BarrierStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Forget drops the records of a saga that is committed or compensated.
// A request for it that arrives later is treated as new, so forget only
// sagas that can no longer send (their coordinator recorded the end).
func (b *Barrier) Forget(sagaID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.records {
		if k[0] == sagaID {
			delete(b.records, k)
		}
	}
}

// ParticipantProps returns Props of a participant actor that answers every
// StepRequest through b and h. Several incarnations (a restarted actor, or
// one on a restarted node) may share b, so that duplicates stay duplicates.
func ParticipantProps(b *Barrier, h Handler, opts ...actor.PropsOption) *actor.Props {
	return actor.PropsFromFunc(func(ctx *actor.Context) {
		if req, ok := ctx.Message().(*sagapb.StepRequest); ok {
			ctx.Reply(b.Apply(req, h))
		}
	}, append([]actor.PropsOption{actor.WithKind("saga-participant")}, opts...)...)
}
