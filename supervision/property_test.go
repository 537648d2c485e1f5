package supervision_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

// mChild is the model's view of one child.
type mChild struct {
	id       string
	restart  supervision.RestartType
	pid      *actor.PID // nil: stopped
	fresh    bool       // restarted in the last step: its PID is not known yet
	restarts int
}

// model predicts what a supervisor does, from the rules in the package doc.
type model struct {
	strategy    supervision.Strategy
	maxRestarts int
	children    []*mChild // in start order
	total       int
	alive       bool
}

func (m *model) remove(c *mChild) {
	m.children = slices.DeleteFunc(m.children, func(x *mChild) bool { return x == c })
}

// exit applies the exit of child v with reason.
func (m *model) exit(v *mChild, reason actor.Reason) {
	v.pid = nil
	restart := v.restart == supervision.Permanent || (v.restart == supervision.Transient && !reason.IsClean())
	if !restart {
		if v.restart == supervision.Temporary || m.strategy == supervision.SimpleOneForOne {
			m.remove(v)
		}
		return
	}
	m.total++
	if m.total > m.maxRestarts {
		m.alive = false
		return
	}
	var group []*mChild
	switch m.strategy {
	case supervision.OneForAll:
		group = slices.Clone(m.children)
	case supervision.RestForOne:
		group = slices.Clone(m.children[slices.Index(m.children, v):])
	default:
		group = []*mChild{v}
	}
	for _, g := range group {
		if g.restart == supervision.Temporary {
			m.remove(g)
			continue
		}
		g.pid, g.fresh = nil, true
		g.restarts++
	}
}

func (m *model) running() []*mChild {
	var out []*mChild
	for _, c := range m.children {
		if c.pid != nil {
			out = append(out, c)
		}
	}
	return out
}

// Random exits of random children, across strategies and restart types.
// After each exit has been handled, the supervisor must agree with the
// model: the same children in the same order, each running child alive
// with a new PID if it was restarted and the same PID otherwise, the same
// restart counts, and the supervisor alive exactly while the restarts stay
// within its intensity (then it exits with reason shutdown, after its
// children).
func TestPropertyRandomExits(t *testing.T) {
	sys, _ := newSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rapid.Check(t, func(rt *rapid.T) {
		rec := newRecorder()
		m := &model{
			strategy:    rapid.SampledFrom([]supervision.Strategy{supervision.OneForOne, supervision.OneForAll, supervision.RestForOne, supervision.SimpleOneForOne}).Draw(rt, "strategy"),
			maxRestarts: rapid.IntRange(0, 8).Draw(rt, "maxRestarts"),
			alive:       true,
		}
		n := rapid.IntRange(1, 5).Draw(rt, "children")
		restartTypes := rapid.SampledFrom([]supervision.RestartType{supervision.Permanent, supervision.Transient, supervision.Temporary})
		spec := supervision.Spec{Strategy: m.strategy, MaxRestarts: m.maxRestarts, Period: time.Hour}
		if m.strategy == supervision.SimpleOneForOne {
			rtype := restartTypes.Draw(rt, "restart")
			spec.Children = []supervision.ChildSpec{{ID: "conn", Restart: rtype, Factory: func(arg any) (*actor.Props, error) {
				return probe(rec, arg.(string), probeOpts{}), nil
			}}}
			for i := 0; i < n; i++ {
				m.children = append(m.children, &mChild{id: fmt.Sprintf("c%d", i), restart: rtype})
			}
		} else {
			for i := 0; i < n; i++ {
				c := &mChild{id: fmt.Sprintf("c%d", i), restart: restartTypes.Draw(rt, "restart")}
				m.children = append(m.children, c)
				spec.Children = append(spec.Children, supervision.ChildSpec{ID: c.id, Restart: c.restart, Props: probe(rec, c.id, probeOpts{})})
			}
		}
		sup, err := supervision.Start(sys, spec, "")
		if err != nil {
			rt.Fatalf("Start: %v", err)
		}
		defer func() {
			if sys.Alive(sup) {
				if err := sys.Stop(ctx, sup); err != nil {
					rt.Fatalf("Stop: %v", err)
				}
			}
			for _, c := range m.children {
				if c.pid != nil && sys.Alive(c.pid) {
					rt.Fatalf("child %s alive after its supervisor stopped", c.id)
				}
			}
		}()
		if m.strategy == supervision.SimpleOneForOne {
			for _, c := range m.children {
				if _, err := supervision.StartChildWith(ctx, sys, sup, c.id); err != nil {
					rt.Fatalf("StartChildWith: %v", err)
				}
			}
		}
		for _, c := range m.children {
			c.fresh = true
		}
		check(rt, ctx, sys, sup, m)

		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for step := 0; step < steps && m.alive; step++ {
			running := m.running()
			if len(running) == 0 {
				break
			}
			v := running[rapid.IntRange(0, len(running)-1).Draw(rt, "victim")]
			reason := rapid.SampledFrom([]actor.Reason{actor.Killed, actor.Errorf("boom"), actor.Normal, actor.Shutdown}).Draw(rt, "reason")
			old := v.pid
			if reason == actor.Killed {
				_ = sys.Kill(old)
			} else {
				sys.Send(old, exitWith{reason})
			}
			if _, err := sys.WaitExit(ctx, old); err != nil {
				rt.Fatalf("%s did not exit: %v", v.id, err)
			}
			before := m.running()
			m.exit(v, reason)
			if !m.alive {
				r, err := sys.WaitExit(ctx, sup)
				if err != nil || r != actor.Shutdown {
					rt.Fatalf("supervisor exit = %v, %v; want shutdown after %d restarts (max %d)", r, err, m.total, m.maxRestarts)
				}
				for _, c := range before {
					if sys.Alive(c.pid) {
						rt.Fatalf("child %s outlived its supervisor", c.id)
					}
				}
				return
			}
			waitHandled(rt, ctx, sys, sup, old)
			check(rt, ctx, sys, sup, m)
		}
	})
}

// waitHandled waits until no child of sup has the PID old.
func waitHandled(rt *rapid.T, ctx context.Context, sys *actor.System, sup, old *actor.PID) {
	for {
		list, err := supervision.WhichChildren(ctx, sys, sup)
		if err != nil {
			rt.Fatalf("WhichChildren: %v", err)
		}
		if !slices.ContainsFunc(list, func(c supervision.ChildInfo) bool { return c.PID.Equal(old) }) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// check compares the supervisor with the model and learns the PIDs of the
// children restarted in the last step.
func check(rt *rapid.T, ctx context.Context, sys *actor.System, sup *actor.PID, m *model) {
	if !sys.Alive(sup) {
		rt.Fatalf("supervisor died after %d restarts (max %d)", m.total, m.maxRestarts)
	}
	list, err := supervision.WhichChildren(ctx, sys, sup)
	if err != nil {
		rt.Fatalf("WhichChildren: %v", err)
	}
	slices.Reverse(list) // start order
	if len(list) != len(m.children) {
		rt.Fatalf("%d children, model has %d: %+v", len(list), len(m.children), list)
	}
	seen := map[string]bool{}
	for i, got := range list {
		want := m.children[i]
		if m.strategy != supervision.SimpleOneForOne && got.ID != want.id {
			rt.Fatalf("child %d is %q, want %q", i, got.ID, want.id)
		}
		if got.Restarts != want.restarts {
			rt.Fatalf("%s: Restarts = %d, want %d", want.id, got.Restarts, want.restarts)
		}
		switch {
		case want.fresh:
			if got.PID == nil || got.PID.Equal(want.pid) {
				rt.Fatalf("%s: PID %v, want a new incarnation", want.id, got.PID)
			}
			want.pid, want.fresh = got.PID, false
		case !got.PID.Equal(want.pid):
			rt.Fatalf("%s: PID %v, want %v", want.id, got.PID, want.pid)
		}
		if want.pid == nil {
			continue
		}
		if seen[want.pid.ID()] {
			rt.Fatalf("PID %s listed twice", want.pid)
		}
		seen[want.pid.ID()] = true
		// the running child answers, and it is the right one
		id, err := actor.Ask[string](ctx, sys, want.pid, whoAreYou{})
		if err != nil || id != want.id {
			rt.Fatalf("child %d answers %q, %v; want %q", i, id, err, want.id)
		}
	}
	if pi, _ := sys.Info(sup); pi.Restarts != uint64(m.total) {
		rt.Fatalf("supervisor Restarts = %d, want %d", pi.Restarts, m.total)
	}
}
