package actor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
)

// TestNamedPIDFollowsRestarts: a NamedPID reaches whichever actor holds the
// name when the message arrives, fails fast while nobody does, and keeps
// working when a new actor takes the name.
func TestNamedPIDFollowsRestarts(t *testing.T) {
	s := newSystem(t)
	named := actor.NamedPID(s.Address(), "echo")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if _, err := actor.Ask[*wrapperspb.StringValue](ctx, s, named, wrapperspb.String("x")); !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("ask before registration: %v, want ErrDeadActor", err)
	}
	for i := range 2 {
		pid, err := s.Spawn(remoteEchoLocal())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Register("echo", pid); err != nil {
			t.Fatal(err)
		}
		got, err := actor.Ask[*wrapperspb.StringValue](ctx, s, named, wrapperspb.String("hi"))
		if err != nil || got.GetValue() != "echo hi" {
			t.Fatalf("incarnation %d: %v %v", i, got, err)
		}
		if err := s.Kill(pid); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WaitExit(ctx, pid); err != nil {
			t.Fatal(err)
		}
		if _, err := actor.Ask[*wrapperspb.StringValue](ctx, s, named, wrapperspb.String("x")); !errors.Is(err, actor.ErrDeadActor) {
			t.Fatalf("ask after the holder died: %v, want ErrDeadActor", err)
		}
	}
}

func remoteEchoLocal() *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Reply(wrapperspb.String("echo " + m.Value))
		}
	})
}

// TestNamedPIDSpawnNamed: a name given at spawn is reachable too.
func TestNamedPIDSpawnNamed(t *testing.T) {
	s := newSystem(t)
	if _, err := s.SpawnNamed(remoteEchoLocal(), "svc2"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := actor.Ask[*wrapperspb.StringValue](ctx, s, actor.NamedPID(s.Address(), "svc2"), wrapperspb.String("hi"))
	if err != nil || got.GetValue() != "echo hi" {
		t.Fatalf("%v %v", got, err)
	}
}

// TestNamedPIDDuringSpawn: messages through a name can arrive while the
// named actor is still being spawned; they wait for it instead of hitting
// a mailbox that has no dispatcher yet.
func TestNamedPIDDuringSpawn(t *testing.T) {
	s := newSystem(t)
	named := actor.NamedPID(s.Address(), "racy")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				s.Send(named, wrapperspb.String("x"))
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 200 {
		pid, err := s.SpawnNamed(remoteEchoLocal(), "racy")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Kill(pid); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WaitExit(ctx, pid); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
}
