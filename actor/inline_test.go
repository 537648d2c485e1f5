package actor

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
)

func inlineTestSystem(t *testing.T) *System {
	t.Helper()
	s, err := NewSystem(Config{Name: "inline", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// waitUnscheduled waits until no goroutine runs pid's mailbox.
func waitUnscheduled(t *testing.T, s *System, pid *PID) *mailbox {
	t.Helper()
	mb := s.local(pid).mb
	deadline := time.Now().Add(5 * time.Second)
	for {
		mb.mu.Lock()
		idle := !mb.scheduled
		mb.mu.Unlock()
		if idle {
			return mb
		}
		if time.Now().After(deadline) {
			t.Fatal("mailbox never idle")
		}
		time.Sleep(time.Millisecond)
	}
}

// A message to an idle actor comes back as an activation that runs on the
// caller; what is delivered meanwhile joins that run; an unknown id is not
// delivered.
func TestDeliverRemoteRunsOnCaller(t *testing.T) {
	s := inlineTestSystem(t)
	var got []string
	var pid *PID
	pid, err := s.Spawn(PropsFromFunc(func(c *Context) {
		m, ok := c.Message().(string)
		if !ok {
			return
		}
		got = append(got, m)
		if m == "first" {
			if act, ok := s.DeliverRemote(pid.ID(), "second", nil); !ok || act.Pending() {
				t.Errorf("delivery to a running actor: ok %v, pending %v", ok, act.Pending())
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.DeliverRemote("no-such-actor", "x", nil); ok {
		t.Fatal("DeliverRemote to an unknown id reported delivery")
	}
	waitUnscheduled(t, s, pid)
	act, ok := s.DeliverRemote(pid.ID(), "first", nil)
	if !ok || !act.Pending() || !act.Inlinable() {
		t.Fatalf("idle actor: ok %v, pending %v", ok, act.Pending())
	}
	act.Run()
	if len(got) != 2 || got[0] != "first" || got[1] != "second" {
		t.Fatalf("after Run on the caller: %v", got)
	}
	act, ok = s.DeliverRemote(pid.ID(), "third", nil)
	if !ok {
		t.Fatal("not delivered")
	}
	act.Run()
	if len(got) != 3 {
		t.Fatalf("after the third: %v", got)
	}
}

// An actor whose inline run took longer than inlineSlow is not inlinable
// for its next inlineBackoff activations.
func TestInlineBackoffAfterSlowRun(t *testing.T) {
	s := inlineTestSystem(t)
	pid, err := s.Spawn(PropsFromFunc(func(c *Context) {
		if c.Message() == "work" {
			for start := time.Now(); time.Since(start) <= 2*inlineSlow; {
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	mb := waitUnscheduled(t, s, pid)
	act, _ := s.DeliverRemote(pid.ID(), "work", nil)
	if !act.Pending() || !act.Inlinable() {
		t.Fatal("fresh actor not inlinable")
	}
	act.Run()
	for i := range inlineBackoff {
		waitUnscheduled(t, s, pid)
		act, _ := s.DeliverRemote(pid.ID(), "quick", nil)
		if !act.Pending() {
			t.Fatalf("activation %d: not pending", i)
		}
		if act.Inlinable() {
			t.Fatalf("activation %d after a slow run: inlinable", i)
		}
		act.Schedule()
	}
	waitUnscheduled(t, s, pid)
	act, _ = s.DeliverRemote(pid.ID(), "quick", nil)
	if !act.Inlinable() {
		t.Fatalf("still not inlinable after %d activations (skip %d)", inlineBackoff, mb.inlineSkip.Load())
	}
	act.Run()
}
