package saga

import (
	"fmt"

	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

// Status is a saga's state.
type Status uint8

const (
	// Running: actions are being run forward.
	Running Status = iota + 1
	// Compensating: an action failed; compensations run in reverse order.
	Compensating
	// Committed: every action succeeded. Final.
	Committed
	// Compensated: an action failed and every needed compensation
	// succeeded. Final.
	Compensated
	// Stuck: a compensation failed more often than its retry policy
	// allows. The saga waits for an operator (Manager.Resume).
	Stuck
)

// String returns the status's lower-case name.
func (s Status) String() string {
	switch s {
	case Running:
		return "running"
	case Compensating:
		return "compensating"
	case Committed:
		return "committed"
	case Compensated:
		return "compensated"
	case Stuck:
		return "stuck"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Final reports whether the saga is over (committed or compensated).
// A stuck saga is not final: it can be resumed.
func (s Status) Final() bool { return s == Committed || s == Compensated }

// stepState is what the journal says about one step.
type stepState struct {
	actionSent     uint32 // last action attempt sent
	actionFailures int    // failed action attempts
	actionDone     bool
	result         []byte
	actionFailed   bool // FAILED: for good
	business       bool // FAILED with a business failure: nothing applied
	compSent       uint32
	compFailures   int // failed compensation attempts since the last resume
	compDone       bool
}

// needsCompensation: the action may have taken effect. A business failure
// is a participant's promise that nothing was applied.
func (s *stepState) needsCompensation() bool {
	return s.actionSent > 0 && !(s.actionFailed && s.business)
}

// state is a saga's state rebuilt from its events: the pure core of the
// coordinator. It has no goroutines, clocks or I/O.
type state struct {
	id      string
	def     string
	input   []byte
	status  Status
	steps   []stepState
	lastErr string
}

func newState(id string) *state { return &state{id: id} }

func (s *state) clone() *state {
	c := *s
	c.steps = append([]stepState(nil), s.steps...)
	return &c
}

// maxSteps bounds the step index of an event of a saga whose definition
// is not known.
const maxSteps = 1 << 12

// apply folds one event into the state. nsteps is the definition's number
// of steps, or -1 if the definition is not known (a finished saga kept for
// queries). It rejects events that do not fit (an unknown kind, a step out
// of range, an event before STARTED).
func (s *state) apply(ev *sagapb.Event, nsteps int) error {
	if ev.GetSagaId() != s.id {
		return fmt.Errorf("saga: event for %q applied to %q", ev.GetSagaId(), s.id)
	}
	if ev.Kind == sagapb.EventKind_EVENT_STARTED {
		if s.status != 0 {
			return fmt.Errorf("saga %s: started twice", s.id)
		}
		s.def, s.input, s.status = ev.Definition, ev.Data, Running
		if nsteps >= 0 {
			s.steps = make([]stepState, nsteps)
		}
		return nil
	}
	if s.status == 0 {
		return fmt.Errorf("saga %s: %s before STARTED", s.id, ev.Kind)
	}
	if s.status.Final() {
		// A restarted coordinator may repeat what a killed one had
		// already queued; the first final event stands.
		return nil
	}
	var st *stepState
	switch ev.Kind {
	case sagapb.EventKind_EVENT_SENT, sagapb.EventKind_EVENT_DONE, sagapb.EventKind_EVENT_ATTEMPT_FAILED,
		sagapb.EventKind_EVENT_FAILED, sagapb.EventKind_EVENT_STUCK:
		if nsteps < 0 && ev.Step >= 0 && ev.Step < maxSteps && int(ev.Step) >= len(s.steps) {
			// The definition is not known: grow as the journal says.
			s.steps = append(s.steps, make([]stepState, int(ev.Step)+1-len(s.steps))...)
		}
		if ev.Step < 0 || int(ev.Step) >= len(s.steps) {
			return fmt.Errorf("saga %s: %s for step %d of %d", s.id, ev.Kind, ev.Step, len(s.steps))
		}
		st = &s.steps[ev.Step]
		if ev.Kind != sagapb.EventKind_EVENT_FAILED && ev.Kind != sagapb.EventKind_EVENT_STUCK &&
			ev.Phase != sagapb.Phase_PHASE_ACTION && ev.Phase != sagapb.Phase_PHASE_COMPENSATION {
			return fmt.Errorf("saga %s: %s with phase %s", s.id, ev.Kind, ev.Phase)
		}
	}
	action := ev.Phase == sagapb.Phase_PHASE_ACTION
	switch ev.Kind {
	case sagapb.EventKind_EVENT_SENT:
		if action {
			st.actionSent = max(st.actionSent, ev.Attempt)
		} else {
			st.compSent = max(st.compSent, ev.Attempt)
		}
	case sagapb.EventKind_EVENT_DONE:
		if action {
			st.actionDone, st.result = true, ev.Data
		} else {
			st.compDone = true
		}
	case sagapb.EventKind_EVENT_ATTEMPT_FAILED:
		if action {
			st.actionFailures++
		} else {
			st.compFailures++
		}
		s.lastErr = ev.Error
	case sagapb.EventKind_EVENT_FAILED:
		st.actionFailed, st.business = true, ev.Business
		s.lastErr = ev.Error
		s.status = Compensating
	case sagapb.EventKind_EVENT_COMMITTED:
		s.status = Committed
	case sagapb.EventKind_EVENT_COMPENSATED:
		s.status = Compensated
	case sagapb.EventKind_EVENT_STUCK:
		s.status = Stuck
		s.lastErr = ev.Error
	case sagapb.EventKind_EVENT_RESUMED:
		if s.status != Stuck {
			return fmt.Errorf("saga %s: RESUMED while %s", s.id, s.status)
		}
		s.status = Compensating
		for i := range s.steps {
			s.steps[i].compFailures = 0
		}
	default:
		return fmt.Errorf("saga %s: unknown event kind %d", s.id, ev.Kind)
	}
	return nil
}

// decisionKind is what the coordinator must do next.
type decisionKind uint8

const (
	decideStop     decisionKind = iota // nothing more to do (final or stuck)
	decideIdle                         // wait for an attempt under way
	decideSend                         // send step's phase, attempt
	decideFail                         // record FAILED (retries exhausted)
	decideStuck                        // record STUCK
	decideCommit                       // record COMMITTED
	decideFinished                     // record COMPENSATED
)

type decision struct {
	kind    decisionKind
	step    int
	phase   sagapb.Phase
	attempt uint32
}

// busyFunc tells next which steps' phases have an attempt under way (sent
// and not answered, or waiting out a backoff) in the coordinator.
type busyFunc func(step int, phase sagapb.Phase) bool

func notBusy(int, sagapb.Phase) bool { return false }

// next decides the coordinator's next move from the state and the
// attempts under way. Running, it works on the first stage (a step and the
// Parallel steps after it) with an action not done: each idle action of
// that stage is sent, so a stage's actions run at the same time. When an
// action has failed for good, it waits until no action is under way, then
// sends compensations one at a time in reverse step order.
func (s *state) next(def *Definition, busy busyFunc) decision {
	switch s.status {
	case Running:
		for _, stage := range def.stages {
			pending := false
			for _, i := range stage {
				st := &s.steps[i]
				if st.actionDone {
					continue
				}
				pending = true
				if busy(i, sagapb.Phase_PHASE_ACTION) {
					continue
				}
				if def.Steps[i].Retry.exhausted(st.actionFailures) {
					return decision{kind: decideFail, step: i}
				}
				return decision{kind: decideSend, step: i, phase: sagapb.Phase_PHASE_ACTION, attempt: st.actionSent + 1}
			}
			if pending {
				return decision{kind: decideIdle}
			}
		}
		return decision{kind: decideCommit}
	case Compensating:
		for i := range s.steps {
			if busy(i, sagapb.Phase_PHASE_ACTION) || busy(i, sagapb.Phase_PHASE_COMPENSATION) {
				return decision{kind: decideIdle}
			}
		}
		for i := len(s.steps) - 1; i >= 0; i-- {
			st := &s.steps[i]
			if !st.needsCompensation() || st.compDone {
				continue
			}
			if def.Steps[i].CompensationRetry.exhausted(st.compFailures) {
				return decision{kind: decideStuck, step: i}
			}
			return decision{kind: decideSend, step: i, phase: sagapb.Phase_PHASE_COMPENSATION, attempt: st.compSent + 1}
		}
		return decision{kind: decideFinished}
	}
	return decision{kind: decideStop}
}

// results are the results of the actions done so far, in step order.
func (s *state) results(def *Definition) []*sagapb.StepResult {
	var out []*sagapb.StepResult
	for i := range s.steps {
		if s.steps[i].actionDone {
			out = append(out, &sagapb.StepResult{Step: def.Steps[i].Name, Data: s.steps[i].result})
		}
	}
	return out
}

// currentStep is the step the saga is working on, for Info.
func (s *state) currentStep(def *Definition) int {
	d := s.next(def, notBusy)
	switch d.kind {
	case decideSend, decideFail, decideStuck:
		return d.step
	}
	for i := len(s.steps) - 1; i >= 0; i-- {
		if s.steps[i].actionSent > 0 {
			return i
		}
	}
	return -1
}

// IdempotencyKey is the key of one phase of one step of a saga:
// sagaID + "/" + step + "/" + "action" or "compensation". It is the same
// for every attempt.
func IdempotencyKey(sagaID, step string, phase sagapb.Phase) string {
	p := "action"
	if phase == sagapb.Phase_PHASE_COMPENSATION {
		p = "compensation"
	}
	return sagaID + "/" + step + "/" + p
}
