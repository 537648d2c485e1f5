package saga

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

type outcome uint8

const (
	outOK outcome = iota
	outBusiness
	outTransient
)

// script says how a participant answers: by step, phase and the number of
// failures so far, so that a resend after a crash gets the same answer as
// the attempt it repeats.
type script struct {
	action [][]outcome // [step][failures]
	comp   [][]outcome
}

func (s *script) answer(step int, phase sagapb.Phase, failures int) outcome {
	seq := s.action[step]
	if phase == sagapb.Phase_PHASE_COMPENSATION {
		seq = s.comp[step]
	}
	if failures < len(seq) {
		return seq[failures]
	}
	return outOK
}

// simulate drives the core as the coordinator does, against sc. crash(i)
// decides whether the coordinator crashes before handling the i-th reply:
// then its state is rebuilt from the events and the reply is lost.
func simulate(t *rapid.T, def *Definition, sc *script, crash func(i int) bool) (*state, []*sagapb.Event) {
	s := newState("s")
	var evs []*sagapb.Event
	rec := func(ev *sagapb.Event) {
		ev.SagaId = "s"
		if err := s.apply(ev, len(def.Steps)); err != nil {
			t.Fatalf("apply %v: %v", ev, err)
		}
		evs = append(evs, ev)
	}
	rec(&sagapb.Event{Kind: sagapb.EventKind_EVENT_STARTED, Definition: def.Name})
	for i := 0; i < 1000; i++ {
		d := s.next(def)
		switch d.kind {
		case decideWait:
			return s, evs
		case decideCommit:
			rec(&sagapb.Event{Kind: sagapb.EventKind_EVENT_COMMITTED})
		case decideFinished:
			rec(&sagapb.Event{Kind: sagapb.EventKind_EVENT_COMPENSATED})
		case decideFail:
			rec(&sagapb.Event{Kind: sagapb.EventKind_EVENT_FAILED, Step: int32(d.step)})
		case decideStuck:
			rec(&sagapb.Event{Kind: sagapb.EventKind_EVENT_STUCK, Step: int32(d.step)})
		case decideSend:
			rec(&sagapb.Event{Kind: sagapb.EventKind_EVENT_SENT, Step: int32(d.step), Phase: d.phase, Attempt: d.attempt})
			if crash(i) {
				// The reply is lost with the coordinator; the restarted
				// one rebuilds its state from the journal.
				r := newState("s")
				for _, ev := range evs {
					if err := r.apply(ev, len(def.Steps)); err != nil {
						t.Fatal(err)
					}
				}
				s = r
				continue
			}
			st := s.steps[d.step]
			failures := st.actionFailures
			if d.phase == sagapb.Phase_PHASE_COMPENSATION {
				failures = st.compFailures
			}
			ev := &sagapb.Event{Step: int32(d.step), Phase: d.phase, Attempt: d.attempt}
			switch sc.answer(d.step, d.phase, failures) {
			case outOK:
				ev.Kind = sagapb.EventKind_EVENT_DONE
			case outBusiness:
				if d.phase == sagapb.Phase_PHASE_ACTION {
					ev.Kind, ev.Business = sagapb.EventKind_EVENT_FAILED, true
				} else {
					ev.Kind = sagapb.EventKind_EVENT_ATTEMPT_FAILED
				}
			case outTransient:
				ev.Kind = sagapb.EventKind_EVENT_ATTEMPT_FAILED
			}
			rec(ev)
		}
	}
	t.Fatalf("saga did not settle: %v", evs)
	return nil, nil
}

// TestCoreProperties checks the core's decisions on random participants'
// answers and random coordinator crashes:
//   - a crash never changes the outcome;
//   - committed iff every action succeeded;
//   - after the first FAILED no action is sent;
//   - compensated: every step whose action may have been applied was
//     compensated, in reverse step order, and no other step was;
//   - stuck only when a compensation exhausted its retries.
func TestCoreProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "steps")
		def := &Definition{Name: "d"}
		sc := &script{}
		outGen := rapid.SampledFrom([]outcome{outOK, outOK, outBusiness, outTransient, outTransient})
		compGen := rapid.SampledFrom([]outcome{outOK, outTransient})
		for i := range n {
			st := Step{Name: fmt.Sprintf("s%d", i), Participant: To(nil),
				Retry:             RetryPolicy{MaxAttempts: rapid.IntRange(1, 4).Draw(t, "maxA")},
				CompensationRetry: RetryPolicy{MaxAttempts: rapid.IntRange(1, 4).Draw(t, "maxC")}}
			def.Steps = append(def.Steps, st)
			sc.action = append(sc.action, rapid.SliceOfN(outGen, 0, 5).Draw(t, "action"))
			sc.comp = append(sc.comp, rapid.SliceOfN(compGen, 0, 5).Draw(t, "comp"))
		}
		nd, err := def.normalize()
		if err != nil {
			t.Fatal(err)
		}
		crashes := rapid.SliceOfN(rapid.Bool(), 0, 40).Draw(t, "crashes")
		clean, _ := simulate(t, nd, sc, func(int) bool { return false })
		crashed, evs := simulate(t, nd, sc, func(i int) bool { return i < len(crashes) && crashes[i] })
		if clean.status != crashed.status {
			t.Fatalf("outcome %s without crashes, %s with", clean.status, crashed.status)
		}
		s := crashed
		allDone := true
		for i := range s.steps {
			allDone = allDone && s.steps[i].actionDone
		}
		if (s.status == Committed) != allDone {
			t.Fatalf("status %s with all actions done = %v", s.status, allDone)
		}
		failed := false
		lastComp := n
		compSent := map[int]bool{}
		for _, ev := range evs {
			switch {
			case ev.Kind == sagapb.EventKind_EVENT_FAILED:
				failed = true
			case ev.Kind == sagapb.EventKind_EVENT_SENT && ev.Phase == sagapb.Phase_PHASE_ACTION && failed:
				t.Fatalf("action of step %d sent after a failure", ev.Step)
			case ev.Kind == sagapb.EventKind_EVENT_SENT && ev.Phase == sagapb.Phase_PHASE_COMPENSATION:
				if int(ev.Step) > lastComp {
					t.Fatalf("compensation of step %d after that of step %d", ev.Step, lastComp)
				}
				lastComp = int(ev.Step)
				compSent[int(ev.Step)] = true
			}
		}
		for i := range s.steps {
			st := s.steps[i]
			if compSent[i] && !st.needsCompensation() {
				t.Fatalf("step %d compensated though its action was never applied", i)
			}
			if s.status == Compensated && st.needsCompensation() && !st.compDone {
				t.Fatalf("compensated saga left step %d uncompensated", i)
			}
		}
		if s.status == Stuck {
			ok := false
			for i := range s.steps {
				ok = ok || nd.Steps[i].CompensationRetry.exhausted(s.steps[i].compFailures)
			}
			if !ok {
				t.Fatal("stuck without an exhausted compensation")
			}
		}
	})
}

func TestApplyRejectsEventsThatDoNotFit(t *testing.T) {
	for name, evs := range map[string][]*sagapb.Event{
		"before STARTED": {{Kind: sagapb.EventKind_EVENT_SENT, Phase: sagapb.Phase_PHASE_ACTION}},
		"started twice":  {{Kind: sagapb.EventKind_EVENT_STARTED}, {Kind: sagapb.EventKind_EVENT_STARTED}},
		"step range":     {{Kind: sagapb.EventKind_EVENT_STARTED}, {Kind: sagapb.EventKind_EVENT_SENT, Step: 7, Phase: sagapb.Phase_PHASE_ACTION}},
		"no phase":       {{Kind: sagapb.EventKind_EVENT_STARTED}, {Kind: sagapb.EventKind_EVENT_DONE}},
		"unknown kind":   {{Kind: sagapb.EventKind_EVENT_STARTED}, {Kind: 99}},
		"resume running": {{Kind: sagapb.EventKind_EVENT_STARTED}, {Kind: sagapb.EventKind_EVENT_RESUMED}},
	} {
		s := newState("x")
		var err error
		for _, ev := range evs {
			ev.SagaId = "x"
			if err = s.apply(ev, 2); err != nil {
				break
			}
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
