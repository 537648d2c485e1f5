package supervision_test

import (
	"sync"
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

// parent is a plain actor that StartLinks a supervisor on request and
// forwards the Exit messages it receives (when it traps exits).
func parentProps(spec supervision.Spec, exits chan<- *actor.Exit, trap bool) *actor.Props {
	var opts []actor.PropsOption
	if trap {
		opts = append(opts, actor.WithTrapExit())
	}
	return actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case string:
			props, err := supervision.Props(spec)
			if err != nil {
				c.Reply(err)
				return
			}
			pid, err := c.StartLink(props, "", time.Minute)
			if err != nil {
				c.Reply(err)
				return
			}
			c.Reply(pid)
		case *actor.Exit:
			exits <- m
		}
	}, opts...)
}

// watcher monitors a PID on request and forwards the Down message.
func watcherProps(downs chan<- *actor.Down) *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Monitor(m)
			c.Reply(true)
		case *actor.Down:
			downs <- m
		}
	})
}

// OTP: when the intensity is exceeded, the crashed child is not restarted,
// the others are shut down in reverse start order, and the supervisor exits
// with reason shutdown; a trapping parent and a monitor see only shutdown;
// the cause is in a log report.
func TestIntensityExceeded(t *testing.T) {
	sys, logs := newSystem(t)
	rec := newRecorder()
	exits := make(chan *actor.Exit, 4)
	downs := make(chan *actor.Down, 1)
	parent, _ := sys.Spawn(parentProps(supervision.Spec{
		MaxRestarts: 2, Period: time.Hour, Children: workers(rec, "a", "b", "c"),
	}, exits, true))
	sup, err := actor.Ask[*actor.PID](ctxT(t), sys, parent, "start")
	if err != nil {
		t.Fatal(err)
	}
	watcher, _ := sys.Spawn(watcherProps(downs))
	if _, err := actor.Ask[bool](ctxT(t), sys, watcher, sup); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "start:a", "start:b", "start:c")
	for i := 0; i < 2; i++ {
		old := pidOf(t, sys, sup, "b")
		kill(t, sys, old)
		settled(t, sys, sup, old)
		rec.expect(t, "start:b")
	}
	if logged(logs, "reached_max_restart_intensity", "") {
		t.Fatal("intensity report before the intensity was exceeded")
	}
	kill(t, sys, pidOf(t, sys, sup, "b")) // the third restart within the period
	r, err := sys.WaitExit(ctxT(t), sup)
	if err != nil || r != actor.Shutdown {
		t.Fatalf("supervisor exit = %v, %v; want shutdown", r, err)
	}
	rec.expect(t, "stop:c:shutdown", "stop:a:shutdown") // b is not restarted
	rec.noMore(t)
	select {
	case e := <-exits:
		if !e.From.Equal(sup) || e.Reason != actor.Shutdown {
			t.Fatalf("parent got %+v, want exit from the supervisor with reason shutdown", e)
		}
	case <-time.After(waitLimit):
		t.Fatal("the trapping parent got no Exit")
	}
	select {
	case d := <-downs:
		if d.Reason != actor.Shutdown {
			t.Fatalf("monitor got %v, want shutdown", d.Reason)
		}
	case <-time.After(waitLimit):
		t.Fatal("the monitor got no Down")
	}
	if !logged(logs, "reached_max_restart_intensity", "b") {
		t.Fatal("no reached_max_restart_intensity report naming child b")
	}
	if !sys.Alive(parent) {
		t.Fatal("the trapping parent died")
	}
}

// A parent that does not trap exits dies with its supervisor.
func TestIntensityExceededKillsNonTrappingParent(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	parent, _ := sys.Spawn(parentProps(supervision.Spec{
		MaxRestarts: 0, Period: time.Hour, Children: workers(rec, "a"),
	}, nil, false))
	sup, err := actor.Ask[*actor.PID](ctxT(t), sys, parent, "start")
	if err != nil {
		t.Fatal(err)
	}
	kill(t, sys, pidOf(t, sys, sup, "a"))
	if r, _ := sys.WaitExit(ctxT(t), sup); r != actor.Shutdown {
		t.Fatalf("supervisor exit = %v, want shutdown", r)
	}
	if r, _ := sys.WaitExit(ctxT(t), parent); r != actor.Shutdown {
		t.Fatalf("parent exit = %v, want shutdown", r)
	}
}

// fakeClock is a restart-intensity clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Restarts older than Period no longer count.
func TestIntensityPeriodSlides(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	t.Cleanup(supervision.SetClock(clock.Now))
	sys, _ := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{MaxRestarts: 1, Period: 10 * time.Second, Children: workers(rec, "a")})

	old := pidOf(t, sys, sup, "a")
	kill(t, sys, old) // restart 1 at t=0: allowed
	settled(t, sys, sup, old)
	clock.Advance(11 * time.Second)
	old = pidOf(t, sys, sup, "a")
	kill(t, sys, old) // restart 2 at t=11s: the first is out of the window
	settled(t, sys, sup, old)
	clock.Advance(5 * time.Second)
	kill(t, sys, pidOf(t, sys, sup, "a")) // restart 3 at t=16s: two within 10s
	if r, _ := sys.WaitExit(ctxT(t), sup); r != actor.Shutdown {
		t.Fatalf("supervisor exit = %v, want shutdown", r)
	}
}

// The defaults are OTP's: one restart within five seconds.
func TestIntensityDefaults(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{Children: workers(rec, "a")})
	old := pidOf(t, sys, sup, "a")
	kill(t, sys, old)
	settled(t, sys, sup, old)
	kill(t, sys, pidOf(t, sys, sup, "a"))
	if r, _ := sys.WaitExit(ctxT(t), sup); r != actor.Shutdown {
		t.Fatalf("supervisor exit = %v, want shutdown", r)
	}
}

// A nested supervisor that gives up exits with shutdown; its supervisor
// restarts it (permanent children restart after any exit) with fresh
// children, and the tree shows the counts.
func TestNestedEscalation(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	subProps, err := supervision.Props(supervision.Spec{
		Strategy: supervision.RestForOne, MaxRestarts: 1, Period: time.Hour,
		Children: workers(rec, "db", "cache", "api"),
	})
	if err != nil {
		t.Fatal(err)
	}
	root := startSup(t, sys, supervision.Spec{
		MaxRestarts: 3, Period: time.Hour,
		Children: []supervision.ChildSpec{
			{ID: "backend", Type: supervision.Supervisor, Props: subProps},
			worker(rec, "metrics"),
		},
	})
	rec.expect(t, "start:db", "start:cache", "start:api", "start:metrics")
	sub := pidOf(t, sys, root, "backend")
	metrics := pidOf(t, sys, root, "metrics")

	db := pidOf(t, sys, sub, "db")
	kill(t, sys, db) // within the sub-supervisor's intensity
	settled(t, sys, sub, db)
	rec.expect(t, "stop:api:shutdown", "stop:cache:shutdown", "start:db", "start:cache", "start:api")

	kill(t, sys, pidOf(t, sys, sub, "db")) // the sub-supervisor gives up
	if r, _ := sys.WaitExit(ctxT(t), sub); r != actor.Shutdown {
		t.Fatalf("sub-supervisor exit = %v, want shutdown", r)
	}
	settled(t, sys, root, sub)
	rec.expect(t, "stop:api:shutdown", "stop:cache:shutdown", "start:db", "start:cache", "start:api")
	rec.noMore(t)

	tree, err := supervision.Tree(ctxT(t), sys, root)
	if err != nil {
		t.Fatal(err)
	}
	if tree.ChildRestarts != 1 || tree.Strategy != supervision.OneForOne || len(tree.Children) != 2 {
		t.Fatalf("root node = %+v", tree)
	}
	backend, m := tree.Children[0], tree.Children[1]
	if backend.ID != "backend" || backend.PID.Equal(sub) || backend.Restarts != 1 ||
		backend.Strategy != supervision.RestForOne || backend.ChildRestarts != 0 || len(backend.Children) != 3 {
		t.Fatalf("backend node = %+v", backend)
	}
	if m.ID != "metrics" || !m.PID.Equal(metrics) || m.Restarts != 0 {
		t.Fatalf("metrics node = %+v", m)
	}
	for i, id := range []string{"db", "cache", "api"} {
		if c := backend.Children[i]; c.ID != id || c.PID == nil || !sys.Alive(c.PID) || c.Restarts != 0 {
			t.Fatalf("backend child %d = %+v", i, c)
		}
	}
	t.Logf("tree:\n%s", tree)
}

// A restart that fails to start is tried again, and each try counts.
func TestFailedRestartIsRetried(t *testing.T) {
	sys, logs := newSystem(t)
	rec := newRecorder()
	var mu sync.Mutex
	starts := 0
	flaky := supervision.ChildSpec{ID: "flaky", Factory: func(any) (*actor.Props, error) {
		mu.Lock()
		defer mu.Unlock()
		starts++
		if starts == 2 {
			return probe(rec, "flaky", probeOpts{failStart: "not yet"}), nil
		}
		return probe(rec, "flaky", probeOpts{}), nil
	}}
	sup := startSup(t, sys, supervision.Spec{MaxRestarts: 5, Period: time.Hour, Children: []supervision.ChildSpec{flaky}})
	old := pidOf(t, sys, sup, "flaky")
	kill(t, sys, old)
	rec.expect(t, "start:flaky", "fail:flaky", "stop:flaky:error", "start:flaky")
	eventually(t, "flaky to run again", func() bool {
		byID, _ := children(t, sys, sup)
		return byID["flaky"].PID != nil
	})
	pi, _ := sys.Info(sup)
	if pi.Restarts != 2 {
		t.Fatalf("supervisor Restarts = %d, want 2 (the failed try counts)", pi.Restarts)
	}
	if !logged(logs, "start_error", "flaky") {
		t.Fatal("no start_error report")
	}
}

// A child that never starts again exhausts the intensity.
func TestFailedRestartsExhaustIntensity(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	var mu sync.Mutex
	first := true
	spec := supervision.ChildSpec{ID: "w", Factory: func(any) (*actor.Props, error) {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return probe(rec, "w", probeOpts{}), nil
		}
		return probe(rec, "w", probeOpts{failStart: "broken"}), nil
	}}
	sup := startSup(t, sys, supervision.Spec{MaxRestarts: 3, Period: time.Hour, Children: []supervision.ChildSpec{spec}})
	kill(t, sys, pidOf(t, sys, sup, "w"))
	if r, _ := sys.WaitExit(ctxT(t), sup); r != actor.Shutdown {
		t.Fatalf("supervisor exit = %v, want shutdown", r)
	}
	// the first start, then three failed tries; the fourth restart is refused
	rec.expect(t, "start:w",
		"fail:w", "stop:w:error", "fail:w", "stop:w:error", "fail:w", "stop:w:error")
	rec.noMore(t)
}
