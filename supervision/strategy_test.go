package supervision_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

// Each strategy, children a, b, c started in that order, one of them exits.
// The expected events are those OTP 25 produces (shared/notes/otp-supervision.md).
func TestStrategies(t *testing.T) {
	tests := []struct {
		name     string
		strategy supervision.Strategy
		victim   string
		byError  bool     // exit with an error (gets Stopping) instead of a kill
		events   []string // after the victim's exit
		kept     []string // children that keep their PID
	}{
		{
			name: "one_for_one", strategy: supervision.OneForOne, victim: "b",
			events: []string{"start:b"}, kept: []string{"a", "c"},
		},
		{
			// OTP: c then a are shut down (b is not terminated again), then
			// a, b, c start again in start order.
			name: "one_for_all", strategy: supervision.OneForAll, victim: "b",
			events: []string{"stop:c:shutdown", "stop:a:shutdown", "start:a", "start:b", "start:c"},
		},
		{
			name: "one_for_all crash by error", strategy: supervision.OneForAll, victim: "b", byError: true,
			events: []string{"stop:b:error", "stop:c:shutdown", "stop:a:shutdown", "start:a", "start:b", "start:c"},
		},
		{
			name: "one_for_all first child", strategy: supervision.OneForAll, victim: "a",
			events: []string{"stop:c:shutdown", "stop:b:shutdown", "start:a", "start:b", "start:c"},
		},
		{
			// OTP: the children after b are shut down in reverse order, then
			// b and those children restart in start order.
			name: "rest_for_one", strategy: supervision.RestForOne, victim: "b",
			events: []string{"stop:c:shutdown", "start:b", "start:c"}, kept: []string{"a"},
		},
		{
			name: "rest_for_one first child", strategy: supervision.RestForOne, victim: "a",
			events: []string{"stop:c:shutdown", "stop:b:shutdown", "start:a", "start:b", "start:c"},
		},
		{
			name: "rest_for_one last child", strategy: supervision.RestForOne, victim: "c",
			events: []string{"start:c"}, kept: []string{"a", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, _ := newSystem(t)
			rec := newRecorder()
			sup := startSup(t, sys, supervision.Spec{
				Strategy: tt.strategy, MaxRestarts: 10, Period: time.Hour,
				Children: workers(rec, "a", "b", "c"),
			})
			rec.expect(t, "start:a", "start:b", "start:c")
			before, _ := children(t, sys, sup)
			victim := before[tt.victim].PID
			if tt.byError {
				crash(t, sys, victim, actor.Errorf("boom"))
			} else {
				kill(t, sys, victim)
			}
			settled(t, sys, sup, victim)
			rec.expect(t, tt.events...)
			rec.noMore(t)

			after, ids := children(t, sys, sup)
			if want := []string{"a", "b", "c"}; !slices.Equal(ids, want) {
				t.Fatalf("children in start order = %q, want %q", ids, want)
			}
			for _, id := range ids {
				b, a := before[id], after[id]
				if a.PID == nil || !sys.Alive(a.PID) {
					t.Fatalf("%s is not running after the restart", id)
				}
				kept := slices.Contains(tt.kept, id)
				if kept != a.PID.Equal(b.PID) {
					t.Errorf("%s: kept PID = %v, want %v", id, !kept, kept)
				}
				if want := map[bool]int{true: 0, false: 1}[kept]; a.Restarts != want {
					t.Errorf("%s: Restarts = %d, want %d", id, a.Restarts, want)
				}
				if !kept && sys.Alive(b.PID) {
					t.Errorf("%s: old incarnation %s still alive", id, b.PID)
				}
			}
			pi, _ := sys.Info(sup)
			if pi.Restarts != 1 {
				t.Errorf("supervisor Restarts = %d, want 1", pi.Restarts)
			}
		})
	}
}

func poolSpec(rec *recorder, restart supervision.RestartType) supervision.Spec {
	return supervision.Spec{
		Strategy: supervision.SimpleOneForOne, MaxRestarts: 10, Period: time.Hour,
		Children: []supervision.ChildSpec{{
			ID: "conn", Restart: restart,
			Factory: func(arg any) (*actor.Props, error) {
				return probe(rec, arg.(string), probeOpts{}), nil
			},
		}},
	}
}

func TestSimpleOneForOne(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, poolSpec(rec, supervision.Permanent))
	if n, _ := supervision.CountChildren(ctxT(t), sys, sup); n != (supervision.Counts{Specs: 1}) {
		t.Fatalf("CountChildren of an empty pool = %+v", n)
	}
	pids := map[string]*actor.PID{}
	for _, arg := range []string{"x", "y", "z"} {
		pid, err := supervision.StartChildWith(ctxT(t), sys, sup, arg)
		if err != nil {
			t.Fatal(err)
		}
		pids[arg] = pid
	}
	rec.expect(t, "start:x", "start:y", "start:z")

	list, err := supervision.WhichChildren(ctxT(t), sys, sup)
	if err != nil {
		t.Fatal(err)
	}
	for i, arg := range []string{"z", "y", "x"} { // newest first
		if !list[i].PID.Equal(pids[arg]) || list[i].ID != "conn" {
			t.Fatalf("WhichChildren[%d] = %+v, want %s", i, list[i], arg)
		}
	}
	if n, _ := supervision.CountChildren(ctxT(t), sys, sup); n != (supervision.Counts{Specs: 1, Active: 3, Workers: 3}) {
		t.Fatalf("CountChildren = %+v", n)
	}

	// A crashed child is restarted with the argument it was started with.
	kill(t, sys, pids["y"])
	settled(t, sys, sup, pids["y"])
	rec.expect(t, "start:y")
	rec.noMore(t)

	// Operations by id are not for simple_one_for_one.
	if err := supervision.TerminateChild(ctxT(t), sys, sup, "conn"); !errorsIs(err, supervision.ErrSimpleOneForOne) {
		t.Fatalf("TerminateChild by id: %v", err)
	}
	if _, err := supervision.StartChild(ctxT(t), sys, sup, worker(rec, "w")); !errorsIs(err, supervision.ErrSimpleOneForOne) {
		t.Fatalf("StartChild with a spec: %v", err)
	}
	// Terminating by PID removes the child.
	if err := supervision.TerminateChildPID(ctxT(t), sys, sup, pids["x"]); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "stop:x:shutdown")
	if err := supervision.TerminateChildPID(ctxT(t), sys, sup, pids["x"]); !errorsIs(err, supervision.ErrNotFound) {
		t.Fatalf("TerminateChildPID of a removed child: %v", err)
	}
	if n, _ := supervision.CountChildren(ctxT(t), sys, sup); n.Active != 2 {
		t.Fatalf("CountChildren = %+v, want 2 active", n)
	}
}

func TestSimpleOneForOneTransientRemovedOnCleanExit(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, poolSpec(rec, supervision.Transient))
	pid, err := supervision.StartChildWith(ctxT(t), sys, sup, "x")
	if err != nil {
		t.Fatal(err)
	}
	crash(t, sys, pid, actor.Normal)
	settled(t, sys, sup, pid)
	if list, _ := supervision.WhichChildren(ctxT(t), sys, sup); len(list) != 0 {
		t.Fatalf("children after a clean exit = %+v, want none", list)
	}
}

// On shutdown, simple_one_for_one children are stopped at the same time:
// each child's Stopping handler waits until all of them are stopping, which
// can only happen if the supervisor does not wait for one before the next.
func TestSimpleOneForOneStopsAllAtOnce(t *testing.T) {
	sys, _ := newSystem(t)
	const n = 4
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	together := make(chan bool, n)
	sup := startSup(t, sys, supervision.Spec{
		Strategy: supervision.SimpleOneForOne,
		Children: []supervision.ChildSpec{{
			ID: "member",
			Props: actor.PropsFromFunc(func(c *actor.Context) {
				if _, ok := c.Message().(*actor.Stopping); ok {
					arrived.Done()
					select {
					case <-all:
						together <- true
					case <-time.After(waitLimit):
						together <- false
					}
				}
			}),
		}},
	})
	for i := 0; i < n; i++ {
		if _, err := supervision.StartChildWith(ctxT(t), sys, sup, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := sys.Stop(ctxT(t), sup); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if !<-together {
			t.Fatal("children were stopped one after another")
		}
	}
}

func TestRestartTypes(t *testing.T) {
	reasons := []actor.Reason{actor.Normal, actor.Shutdown, actor.ShutdownWith("drained"), actor.Errorf("boom"), actor.Killed}
	// restarted[type][reason index], from OTP's do_restart.
	restarted := map[supervision.RestartType][]bool{
		supervision.Permanent: {true, true, true, true, true},
		supervision.Transient: {false, false, false, true, true},
		supervision.Temporary: {false, false, false, false, false},
	}
	for rt, want := range restarted {
		for i, reason := range reasons {
			t.Run(fmt.Sprintf("%s/%s", rt, reason), func(t *testing.T) {
				sys, _ := newSystem(t)
				rec := newRecorder()
				sup := startSup(t, sys, supervision.Spec{
					MaxRestarts: 10, Period: time.Hour,
					Children: []supervision.ChildSpec{{ID: "w", Restart: rt, Props: probe(rec, "w", probeOpts{})}},
				})
				old := pidOf(t, sys, sup, "w")
				if reason == actor.Killed {
					kill(t, sys, old)
				} else {
					crash(t, sys, old, reason)
				}
				settled(t, sys, sup, old)
				byID, _ := children(t, sys, sup)
				c, present := byID["w"]
				switch {
				case want[i]:
					if !present || c.PID == nil || c.Restarts != 1 {
						t.Fatalf("child not restarted: %+v (present %v)", c, present)
					}
				case rt == supervision.Temporary:
					if present {
						t.Fatalf("temporary child's spec kept: %+v", c)
					}
				default:
					if !present || c.PID != nil {
						t.Fatalf("child = %+v (present %v), want its spec kept, not running", c, present)
					}
					if n, _ := supervision.CountChildren(ctxT(t), sys, sup); n != (supervision.Counts{Specs: 1, Workers: 1}) {
						t.Fatalf("CountChildren = %+v", n)
					}
				}
				pi, _ := sys.Info(sup)
				if got, w := pi.Restarts, map[bool]uint64{true: 1, false: 0}[want[i]]; got != w {
					t.Fatalf("supervisor Restarts = %d, want %d", got, w)
				}
			})
		}
	}
}

// A temporary sibling shut down for a group restart is not started again.
func TestGroupRestartDropsTemporarySiblings(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	specs := workers(rec, "a", "b", "c")
	specs[2].Restart = supervision.Temporary
	sup := startSup(t, sys, supervision.Spec{Strategy: supervision.OneForAll, MaxRestarts: 10, Period: time.Hour, Children: specs})
	rec.expect(t, "start:a", "start:b", "start:c")
	old := pidOf(t, sys, sup, "a")
	kill(t, sys, old)
	settled(t, sys, sup, old)
	rec.expect(t, "stop:c:shutdown", "stop:b:shutdown", "start:a", "start:b")
	rec.noMore(t)
	if _, ids := children(t, sys, sup); !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("children = %q, want [a b]", ids)
	}
}
