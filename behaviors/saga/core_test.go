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

// simulate drives the core as the coordinator does, against sc. Replies
// to the attempts under way arrive in an order drawn by t; crash(i)
// decides whether the coordinator crashes before the i-th reply: then its
// state is rebuilt from the events and every reply under way is lost.
func simulate(t *rapid.T, label string, def *Definition, sc *script, crash func(i int) bool) (*state, []*sagapb.Event) {
	s := newState("s")
	var evs []*sagapb.Event
	rec := func(ev *sagapb.Event) {
		ev.SagaId = "s"
		if err := s.apply(ev, len(def.Steps)); err != nil {
			t.Fatalf("apply %v: %v", ev, err)
		}
		evs = append(evs, ev)
	}
	var inflight []decision
	busy := func(step int, phase sagapb.Phase) bool {
		for _, d := range inflight {
			if d.step == step && d.phase == phase {
				return true
			}
		}
		return false
	}
	rec(&sagapb.Event{Kind: sagapb.EventKind_EVENT_STARTED, Definition: def.Name})
	replies := 0
	for i := 0; i < 2000; i++ {
		d := s.next(def, busy)
		deliver := d.kind == decideIdle
		if !deliver && len(inflight) > 0 && d.kind != decideStop {
			deliver = rapid.Bool().Draw(t, label+"-early")
		}
		if deliver {
			if len(inflight) == 0 {
				t.Fatalf("idle with nothing under way; events %v", evs)
			}
			j := rapid.IntRange(0, len(inflight)-1).Draw(t, label+"-which")
			a := inflight[j]
			inflight = append(inflight[:j], inflight[j+1:]...)
			replies++
			if crash(replies) {
				r := newState("s")
				for _, ev := range evs {
					if err := r.apply(ev, len(def.Steps)); err != nil {
						t.Fatal(err)
					}
				}
				s, inflight = r, nil
				continue
			}
			st := s.steps[a.step]
			failures := st.actionFailures
			if a.phase == sagapb.Phase_PHASE_COMPENSATION {
				failures = st.compFailures
			}
			ev := &sagapb.Event{Step: int32(a.step), Phase: a.phase, Attempt: a.attempt}
			switch sc.answer(a.step, a.phase, failures) {
			case outOK:
				ev.Kind = sagapb.EventKind_EVENT_DONE
			case outBusiness:
				if a.phase == sagapb.Phase_PHASE_ACTION {
					ev.Kind, ev.Business = sagapb.EventKind_EVENT_FAILED, true
				} else {
					ev.Kind = sagapb.EventKind_EVENT_ATTEMPT_FAILED
				}
			case outTransient:
				ev.Kind = sagapb.EventKind_EVENT_ATTEMPT_FAILED
			}
			rec(ev)
			continue
		}
		switch d.kind {
		case decideStop:
			if len(inflight) > 0 {
				t.Fatalf("saga settled %s with attempts under way", s.status)
			}
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
			if d.phase == sagapb.Phase_PHASE_COMPENSATION {
				for _, a := range inflight {
					if a.phase == sagapb.Phase_PHASE_ACTION {
						t.Fatalf("compensation of step %d sent while the action of step %d is under way", d.step, a.step)
					}
				}
			}
			rec(&sagapb.Event{Kind: sagapb.EventKind_EVENT_SENT, Step: int32(d.step), Phase: d.phase, Attempt: d.attempt})
			inflight = append(inflight, d)
		}
	}
	t.Fatalf("saga did not settle: %v", evs)
	return nil, nil
}

// TestCoreProperties checks the core's decisions on random definitions
// (with parallel stages), random participants' answers, random reply
// orders and random coordinator crashes:
//   - a crash never changes the outcome (of a sequential saga);
//   - a stage starts only when every action of the stages before it
//     succeeded, and no compensation is sent while an action is under way;
//   - committed iff every action succeeded;
//   - after the first FAILED no action is sent;
//   - compensated: every step whose action may have been applied was
//     compensated, in reverse step order, and no other step was;
//   - stuck only when a compensation exhausted its retries.
func TestCoreProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "steps")
		def := &Definition{Name: "d"}
		parallel := false
		sc := &script{}
		outGen := rapid.SampledFrom([]outcome{outOK, outOK, outBusiness, outTransient, outTransient})
		compGen := rapid.SampledFrom([]outcome{outOK, outTransient})
		for i := range n {
			st := Step{Name: fmt.Sprintf("s%d", i), Participant: To(nil), Parallel: i > 0 && rapid.Bool().Draw(t, "parallel"),
				Retry:             RetryPolicy{MaxAttempts: rapid.IntRange(1, 4).Draw(t, "maxA")},
				CompensationRetry: RetryPolicy{MaxAttempts: rapid.IntRange(1, 4).Draw(t, "maxC")}}
			def.Steps = append(def.Steps, st)
			parallel = parallel || st.Parallel
			sc.action = append(sc.action, rapid.SliceOfN(outGen, 0, 5).Draw(t, "action"))
			sc.comp = append(sc.comp, rapid.SliceOfN(compGen, 0, 5).Draw(t, "comp"))
		}
		nd, err := def.normalize()
		if err != nil {
			t.Fatal(err)
		}
		crashes := rapid.SliceOfN(rapid.Bool(), 0, 40).Draw(t, "crashes")
		clean, _ := simulate(t, "clean", nd, sc, func(int) bool { return false })
		crashed, evs := simulate(t, "crashed", nd, sc, func(i int) bool { return i <= len(crashes) && crashes[i-1] })
		// Parallel actions answer in any order, and a stage's failure may
		// come before a sibling is sent, which decides whether the
		// sibling needs compensating: only sequential sagas have one
		// outcome for one script.
		if !parallel && clean.status != crashed.status {
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
		done := map[int]bool{}
		stageOf := map[int]int{}
		for si, stage := range nd.stages {
			for _, i := range stage {
				stageOf[i] = si
			}
		}
		for _, ev := range evs {
			switch {
			case ev.Kind == sagapb.EventKind_EVENT_DONE && ev.Phase == sagapb.Phase_PHASE_ACTION:
				done[int(ev.Step)] = true
			case ev.Kind == sagapb.EventKind_EVENT_FAILED:
				failed = true
			case ev.Kind == sagapb.EventKind_EVENT_SENT && ev.Phase == sagapb.Phase_PHASE_ACTION && failed:
				t.Fatalf("action of step %d sent after a failure", ev.Step)
			case ev.Kind == sagapb.EventKind_EVENT_SENT && ev.Phase == sagapb.Phase_PHASE_ACTION:
				for j := range int(ev.Step) {
					if stageOf[j] < stageOf[int(ev.Step)] && !done[j] {
						t.Fatalf("action of step %d sent before step %d of an earlier stage succeeded", ev.Step, j)
					}
				}
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
