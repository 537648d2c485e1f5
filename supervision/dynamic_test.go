package supervision_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

// The dynamic API and its OTP error cases, step by step.
func TestDynamicAPI(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{Children: workers(rec, "a")})
	ctx := ctxT(t)
	rec.expect(t, "start:a")

	// StartChild adds the newest child.
	b, err := supervision.StartChild(ctx, sys, sup, worker(rec, "b"))
	if err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "start:b")
	tmp := worker(rec, "tmp")
	tmp.Restart = supervision.Temporary
	sv, _ := supervision.Props(supervision.Spec{Children: workers(rec, "x")})
	if _, err := supervision.StartChild(ctx, sys, sup, tmp); err != nil {
		t.Fatal(err)
	}
	if _, err := supervision.StartChild(ctx, sys, sup, supervision.ChildSpec{ID: "sv", Type: supervision.Supervisor, Props: sv}); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "start:tmp", "start:x")
	list, err := supervision.WhichChildren(ctx, sys, sup)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if want := []string{"sv", "tmp", "b", "a"}; !slices.Equal(ids, want) {
		t.Fatalf("WhichChildren ids = %q, want %q (newest first)", ids, want)
	}
	if list[0].Type != supervision.Supervisor || list[1].Restart != supervision.Temporary {
		t.Fatalf("WhichChildren = %+v", list)
	}
	if n, _ := supervision.CountChildren(ctx, sys, sup); n != (supervision.Counts{Specs: 4, Active: 4, Supervisors: 1, Workers: 3}) {
		t.Fatalf("CountChildren = %+v", n)
	}

	// already_started, with the running PID
	_, err = supervision.StartChild(ctx, sys, sup, worker(rec, "b"))
	var started *supervision.AlreadyStartedError
	if !errors.Is(err, supervision.ErrAlreadyStarted) || !errors.As(err, &started) || !started.PID.Equal(b) {
		t.Fatalf("StartChild of a running id: %v", err)
	}
	// running
	if _, err := supervision.RestartChild(ctx, sys, sup, "b"); !errors.Is(err, supervision.ErrRunning) {
		t.Fatalf("RestartChild of a running child: %v", err)
	}
	if err := supervision.DeleteChild(ctx, sys, sup, "b"); !errors.Is(err, supervision.ErrRunning) {
		t.Fatalf("DeleteChild of a running child: %v", err)
	}

	// TerminateChild keeps the spec; doing it again is fine.
	if err := supervision.TerminateChild(ctx, sys, sup, "b"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "stop:b:shutdown")
	if sys.Alive(b) {
		t.Fatal("terminated child alive")
	}
	if err := supervision.TerminateChild(ctx, sys, sup, "b"); err != nil {
		t.Fatalf("TerminateChild of a stopped child: %v", err)
	}
	if n, _ := supervision.CountChildren(ctx, sys, sup); n != (supervision.Counts{Specs: 4, Active: 3, Supervisors: 1, Workers: 3}) {
		t.Fatalf("CountChildren = %+v", n)
	}
	// already_present
	if _, err := supervision.StartChild(ctx, sys, sup, worker(rec, "b")); !errors.Is(err, supervision.ErrAlreadyPresent) {
		t.Fatalf("StartChild of a stopped id: %v", err)
	}
	// RestartChild brings it back, in its place.
	b2, err := supervision.RestartChild(ctx, sys, sup, "b")
	if err != nil || b2 == nil || b2.Equal(b) {
		t.Fatalf("RestartChild = %v, %v", b2, err)
	}
	rec.expect(t, "start:b")
	if _, ids := children(t, sys, sup); !slices.Equal(ids, []string{"a", "b", "tmp", "sv"}) {
		t.Fatalf("start order = %q", ids)
	}

	// Terminating a temporary child deletes its spec.
	if err := supervision.TerminateChild(ctx, sys, sup, "tmp"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "stop:tmp:shutdown")
	if _, err := supervision.RestartChild(ctx, sys, sup, "tmp"); !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("RestartChild of a terminated temporary child: %v", err)
	}

	// TerminateChildPID works for any strategy.
	if err := supervision.TerminateChildPID(ctx, sys, sup, b2); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "stop:b:shutdown")
	if err := supervision.DeleteChild(ctx, sys, sup, "b"); err != nil {
		t.Fatal(err)
	}
	// not_found
	if err := supervision.DeleteChild(ctx, sys, sup, "b"); !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("DeleteChild twice: %v", err)
	}
	if err := supervision.TerminateChild(ctx, sys, sup, "nope"); !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("TerminateChild of an unknown id: %v", err)
	}
	if err := supervision.TerminateChildPID(ctx, sys, sup, b2); !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("TerminateChildPID of a dead child: %v", err)
	}
	if _, err := supervision.RestartChild(ctx, sys, sup, "nope"); !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("RestartChild of an unknown id: %v", err)
	}

	// StartChildWith is for simple_one_for_one only.
	if _, err := supervision.StartChildWith(ctx, sys, sup, 1); !errors.Is(err, supervision.ErrNotSimpleOneForOne) {
		t.Fatalf("StartChildWith: %v", err)
	}
	// Invalid specs are rejected before they reach the supervisor.
	if _, err := supervision.StartChild(ctx, sys, sup, supervision.ChildSpec{ID: "c"}); !errors.Is(err, supervision.ErrInvalidSpec) {
		t.Fatalf("StartChild of an invalid spec: %v", err)
	}
	mustContain(t, func() error { _, err := supervision.StartChild(ctx, sys, sup, supervision.ChildSpec{}); return err }(),
		"supervision: spec.ID is empty")

	// A child that fails to start is not added.
	_, err = supervision.StartChild(ctx, sys, sup, supervision.ChildSpec{ID: "bad", Props: probe(rec, "bad", probeOpts{failStart: "nope"})})
	mustContain(t, err, `start child "bad"`, "nope")
	rec.expect(t, "fail:bad", "stop:bad:error")
	if byID, _ := children(t, sys, sup); len(byID) != 2 {
		t.Fatalf("children after a failed StartChild = %+v", byID)
	}
	rec.noMore(t)

	// An Ask the supervisor does not understand is answered with an error.
	if _, err := actor.Ask[string](ctx, sys, sup, "hello?"); err == nil || !strings.Contains(err.Error(), "unexpected request string") {
		t.Fatalf("unknown request: %v", err)
	}

	// Requests to a dead supervisor fail at once.
	if err := sys.Stop(ctx, sup); err != nil {
		t.Fatal(err)
	}
	if _, err := supervision.WhichChildren(ctx, sys, sup); !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("WhichChildren of a dead supervisor: %v", err)
	}
}

// A dynamically added child is restarted like a static one, and a new
// incarnation of the supervisor starts from its spec again.
func TestDynamicChildRestarts(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{Strategy: supervision.RestForOne, MaxRestarts: 5, Period: time.Hour, Children: workers(rec, "a")})
	if _, err := supervision.StartChild(ctxT(t), sys, sup, worker(rec, "b")); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "start:a", "start:b")
	a := pidOf(t, sys, sup, "a")
	kill(t, sys, a)
	settled(t, sys, sup, a)
	rec.expect(t, "stop:b:shutdown", "start:a", "start:b")
	rec.noMore(t)
}

// The supervisor publishes a summary for System.Info and the observer, and
// counts its restarts in ProcessInfo.Restarts.
func TestInfo(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sup := startSup(t, sys, supervision.Spec{MaxRestarts: 5, Period: time.Hour, Children: workers(rec, "a", "b")})
	pi, ok := sys.Info(sup)
	if !ok || pi.Kind != "supervisor" || pi.Info != "one_for_one, 2 children (2 running), 0 restarts" || len(pi.Children) != 2 {
		t.Fatalf("Info = %+v", pi)
	}
	a := pidOf(t, sys, sup, "a")
	kill(t, sys, a)
	settled(t, sys, sup, a)
	pi, _ = sys.Info(sup)
	if pi.Info != "one_for_one, 2 children (2 running), 1 restart" || pi.Restarts != 1 {
		t.Fatalf("Info after a restart = %+v", pi)
	}
}
