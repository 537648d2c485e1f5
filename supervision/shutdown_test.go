package supervision_test

import (
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

// A stopping supervisor stops its children in reverse start order, each
// with reason shutdown.
func TestShutdownReverseOrder(t *testing.T) {
	for _, strategy := range []supervision.Strategy{supervision.OneForOne, supervision.OneForAll, supervision.RestForOne} {
		t.Run(strategy.String(), func(t *testing.T) {
			sys, _ := newSystem(t)
			rec := newRecorder()
			sup := startSup(t, sys, supervision.Spec{Strategy: strategy, Children: workers(rec, "a", "b", "c")})
			rec.expect(t, "start:a", "start:b", "start:c")
			kids, _ := children(t, sys, sup)
			if err := sys.Stop(ctxT(t), sup); err != nil {
				t.Fatal(err)
			}
			rec.expect(t, "stop:c:shutdown", "stop:b:shutdown", "stop:a:shutdown")
			rec.noMore(t)
			for id, c := range kids {
				if r, _ := sys.WaitExit(ctxT(t), c.PID); r != actor.Shutdown {
					t.Errorf("%s exited with %v, want shutdown", id, r)
				}
			}
		})
	}
}

// A child that traps exits and ignores the shutdown signal is killed after
// its Shutdown timeout; its reason is killed and a shutdown_error is logged.
// The next child is stopped only after that.
func TestShutdownTimeoutThenKill(t *testing.T) {
	sys, logs := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{Children: []supervision.ChildSpec{
		worker(rec, "a"),
		{ID: "stubborn", Props: probe(rec, "stubborn", probeOpts{trap: true}), Shutdown: 50 * time.Millisecond},
		worker(rec, "c"),
	}})
	rec.expect(t, "start:a", "start:stubborn", "start:c")
	stubborn := pidOf(t, sys, sup, "stubborn")
	if err := sys.Stop(ctxT(t), sup); err != nil {
		t.Fatal(err)
	}
	// the killed child gets no Stopping
	rec.expect(t, "stop:c:shutdown", "trapped:stubborn:shutdown", "stop:a:shutdown")
	rec.noMore(t)
	if r, _ := sys.WaitExit(ctxT(t), stubborn); r != actor.Killed {
		t.Fatalf("stubborn child exited with %v, want killed", r)
	}
	if !logged(logs, "shutdown_error", "stubborn") {
		t.Fatal("no shutdown_error report for the killed child")
	}
}

func TestTerminateChildTimeoutThenKill(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{Children: []supervision.ChildSpec{
		{ID: "stubborn", Props: probe(rec, "stubborn", probeOpts{trap: true}), Shutdown: 20 * time.Millisecond},
	}})
	pid := pidOf(t, sys, sup, "stubborn")
	if err := supervision.TerminateChild(ctxT(t), sys, sup, "stubborn"); err != nil {
		t.Fatal(err)
	}
	if r, _ := sys.WaitExit(ctxT(t), pid); r != actor.Killed {
		t.Fatalf("exit = %v, want killed", r)
	}
}

// ShutdownBrutalKill kills at once: no Stopping, reason killed, no report.
func TestShutdownBrutalKill(t *testing.T) {
	sys, logs := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{Children: []supervision.ChildSpec{
		{ID: "a", Props: probe(rec, "a", probeOpts{}), Shutdown: supervision.ShutdownBrutalKill},
	}})
	rec.expect(t, "start:a")
	pid := pidOf(t, sys, sup, "a")
	if err := supervision.TerminateChild(ctxT(t), sys, sup, "a"); err != nil {
		t.Fatal(err)
	}
	if r, _ := sys.WaitExit(ctxT(t), pid); r != actor.Killed {
		t.Fatalf("exit = %v, want killed", r)
	}
	rec.noMore(t)
	if logged(logs, "shutdown_error", "a") {
		t.Fatal("shutdown_error logged for a brutal kill")
	}
}

// A child whose goroutine is stuck in a handler cannot be killed (a kill
// takes effect when the handler returns). The supervisor must not hang on
// it: after a bounded wait it logs the child and goes on with the restart.
func TestStuckChildDoesNotHangRestart(t *testing.T) {
	t.Cleanup(supervision.SetKillWait(50 * time.Millisecond))
	sys, logs := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{
		Strategy: supervision.OneForAll, MaxRestarts: 5, Period: time.Hour,
		Children: []supervision.ChildSpec{
			worker(rec, "a"),
			{ID: "stuck", Props: probe(rec, "stuck", probeOpts{}), Shutdown: 20 * time.Millisecond},
			worker(rec, "c"),
		},
	})
	rec.expect(t, "start:a", "start:stuck", "start:c")
	stuck := pidOf(t, sys, sup, "stuck")
	entered, release := make(chan struct{}), make(chan struct{})
	sys.Send(stuck, blockUntil{entered: entered, release: release})
	<-entered

	c := pidOf(t, sys, sup, "c")
	kill(t, sys, c)
	settled(t, sys, sup, c)
	rec.expect(t, "stop:a:shutdown", "start:a", "start:stuck", "start:c")
	if !sys.Alive(stuck) {
		t.Fatal("the stuck child died; the test needs it stuck")
	}
	if !logged(logs, "shutdown_error", "stuck") {
		t.Fatal("the stuck child was not reported")
	}
	if byID, _ := children(t, sys, sup); byID["stuck"].PID.Equal(stuck) || byID["stuck"].PID == nil {
		t.Fatalf("stuck child not replaced: %+v", byID["stuck"])
	}

	// Released, the old incarnation handles the signals queued meanwhile,
	// in order: the shutdown signal first (the kill finds it exiting).
	close(release)
	if r, err := sys.WaitExit(ctxT(t), stuck); err != nil || r != actor.Shutdown {
		t.Fatalf("stuck child exit = %v, %v", r, err)
	}
	rec.expect(t, "stop:stuck:shutdown")
	rec.noMore(t)
}

// An exit signal from the parent (for a top-level supervisor: from outside
// any actor) stops the supervisor with that reason; one from any other
// linked actor is ignored, as in OTP.
func TestExitSignals(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{Children: workers(rec, "a", "b")})
	rec.expect(t, "start:a", "start:b")
	stranger, _ := sys.Spawn(actor.PropsFromFunc(func(*actor.Context) {}))
	if err := sys.Exit(sup, stranger, actor.Errorf("go away")); err != nil {
		t.Fatal(err)
	}
	// The first request is answered after the signal became a message, the
	// second after that message was handled.
	children(t, sys, sup)
	children(t, sys, sup)
	if !sys.Alive(sup) {
		t.Fatal("an exit signal from a stranger stopped the supervisor")
	}
	if err := sys.Exit(sup, nil, actor.ShutdownWith("maintenance")); err != nil {
		t.Fatal(err)
	}
	if r, _ := sys.WaitExit(ctxT(t), sup); r != actor.ShutdownWith("maintenance") {
		t.Fatalf("supervisor exit = %v", r)
	}
	rec.expect(t, "stop:b:shutdown", "stop:a:shutdown")
}

// A nested supervisor stopped by its parent stops its own children first.
func TestNestedShutdownOrder(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sub, err := supervision.Props(supervision.Spec{Children: workers(rec, "x", "y")})
	if err != nil {
		t.Fatal(err)
	}
	root := startSup(t, sys, supervision.Spec{Children: []supervision.ChildSpec{
		worker(rec, "a"),
		{ID: "sub", Type: supervision.Supervisor, Props: sub},
		worker(rec, "b"),
	}})
	rec.expect(t, "start:a", "start:x", "start:y", "start:b")
	if err := sys.Stop(ctxT(t), root); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "stop:b:shutdown", "stop:y:shutdown", "stop:x:shutdown", "stop:a:shutdown")
}
