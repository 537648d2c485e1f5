//go:build !race

// These tests run two protoactor remote transports in one process. protoactor
// -go's remote has data races of its own when more than one transport runs
// in a process (remote.Start replaces gRPC's process-wide logger while
// another transport's server reads it; its endpoint manager's stop flag is
// unsynchronized), which the race detector reports although they are not in
// this module. So these tests are left out of -race runs; `make test` runs
// them without -race. Our own code is covered by the race runs of the
// single-system tests and by the cluster tests across OS processes.

package actor_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
)

// fakeMembership lets a test declare nodes unreachable.
type fakeMembership struct{ down map[string]bool }

func (f *fakeMembership) Reachable(a string) bool { return !f.down[a] }

// remoteSystem is a system with protoactor remote on a loopback port.
func remoteSystem(t *testing.T) (*actor.System, *fakeMembership) {
	t.Helper()
	s := newSystem(t)
	// Port 0: the remote server binds a free port itself and takes the
	// bound address as the system's.
	r := remote.NewRemote(s.Protoactor(), remote.Configure("127.0.0.1", 0))
	r.Start()
	t.Cleanup(func() { r.Shutdown(true) })
	m := &fakeMembership{down: map[string]bool{}}
	if err := s.SetMembership(m); err != nil {
		t.Fatal(err)
	}
	if host, port, err := net.SplitHostPort(s.Protoactor().Address()); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("address %q", s.Protoactor().Address())
	}
	return s, m
}

// remoteEcho answers *StringValue requests; "crash" panics, "hold" defers
// the reply forever.
func remoteEcho() *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *wrapperspb.StringValue:
			switch m.Value {
			case "crash":
				panic("crash")
			case "hold":
			case "fail":
				c.Reply(errors.New("no such key"))
			default:
				c.Reply(wrapperspb.String("echo " + m.Value))
			}
		}
	}, actor.WithKind("echo"))
}

// wirePID rebuilds b's PID as a will see it (from the wire).
func wirePID(t *testing.T, pid *actor.PID) *actor.PID {
	t.Helper()
	p, err := actor.PIDFromProto(pid.ToProto())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRemoteAskSendAndErrors(t *testing.T) {
	a, _ := remoteSystem(t)
	b, _ := remoteSystem(t)
	echo, _ := b.Spawn(remoteEcho())
	target := wirePID(t, echo)
	ctx := ctxT(t)
	got, err := actor.Ask[*wrapperspb.StringValue](ctx, a, target, wrapperspb.String("hi"))
	if err != nil || got.Value != "echo hi" {
		t.Fatalf("remote Ask = %v, %v", got, err)
	}
	if _, err := actor.Ask[*wrapperspb.StringValue](ctx, a, target, wrapperspb.String("fail")); err == nil || err.Error() != "no such key" {
		t.Fatalf("remote error reply: %v", err)
	}
	if _, err := actor.Ask[string](ctx, a, target, "not a protobuf"); err == nil {
		t.Fatal("a non-protobuf message crossed nodes")
	}
	// The remote actor dies while the Ask waits: fail fast with its reason.
	errc := make(chan error, 1)
	go func() {
		_, err := actor.Ask[*wrapperspb.StringValue](context.Background(), a, target, wrapperspb.String("hold"))
		errc <- err
	}()
	eventually(t, "request held", func() bool { i, _ := b.Info(echo); return i.Processed >= 3 })
	_ = a.Kill(target) // a remote kill
	var dead *actor.DeadActorError
	if err := <-errc; !errors.As(err, &dead) || dead.Reason != actor.Killed {
		t.Fatalf("pending remote Ask after kill: %v", err)
	}
	// Asking the dead remote actor fails fast too.
	if _, err := actor.Ask[*wrapperspb.StringValue](context.Background(), a, target, wrapperspb.String("x")); !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("remote Ask to a dead actor: %v", err)
	}
}

func TestRemoteLinkMonitorAndNodeDown(t *testing.T) {
	a, ma := remoteSystem(t)
	b, _ := remoteSystem(t)
	msgs := make(chan any, 10)
	w, _ := a.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Link(m)
			c.Monitor(m)
			c.Reply(true)
		case *actor.Exit, *actor.Down:
			msgs <- m
		}
	}, actor.WithTrapExit()))
	ctx := ctxT(t)

	// Kill on b: a's link and monitor fire with reason killed.
	e1, _ := b.Spawn(remoteEcho())
	if _, err := actor.Ask[bool](ctx, a, w, wirePID(t, e1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "remote link and monitor recorded", func() bool {
		i, _ := b.Info(e1)
		return len(i.Links) == 1 && i.Monitors == 1
	})
	_ = b.Kill(e1)
	seen := map[string]actor.Reason{}
	for range 2 {
		switch m := recv(t, msgs).(type) {
		case *actor.Exit:
			seen["exit"] = m.Reason
		case *actor.Down:
			seen["down"] = m.Reason
		}
	}
	if seen["exit"] != actor.Killed || seen["down"] != actor.Killed {
		t.Fatalf("after remote kill: %v", seen)
	}

	// The node goes away: link and monitor fire with noconnection, at once.
	e2, _ := b.Spawn(remoteEcho())
	if _, err := actor.Ask[bool](ctx, a, w, wirePID(t, e2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second link recorded", func() bool { i, _ := b.Info(e2); return len(i.Links) == 1 })
	addr := b.Protoactor().Address()
	ma.down[addr] = true
	a.NodeDown(addr)
	seen = map[string]actor.Reason{}
	for range 2 {
		switch m := recv(t, msgs).(type) {
		case *actor.Exit:
			seen["exit"] = m.Reason
		case *actor.Down:
			seen["down"] = m.Reason
		}
	}
	if seen["exit"] != actor.NoConnection || seen["down"] != actor.NoConnection {
		t.Fatalf("after node down: %v", seen)
	}
	// Sends and Asks to that node fail fast.
	start := time.Now()
	_, err := actor.Ask[*wrapperspb.StringValue](context.Background(), a, wirePID(t, e2), wrapperspb.String("x"))
	var dead *actor.DeadActorError
	if !errors.As(err, &dead) || dead.Reason != actor.NoConnection {
		t.Fatalf("Ask to a down node: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Ask to a down node took %v", d)
	}
}

// recv takes the next message or fails the test after a while.
func recv(t *testing.T, ch <-chan any) any {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

// TestNamedPIDRemote: another node reaches a registered name, also after
// the holder was replaced.
func TestNamedPIDRemote(t *testing.T) {
	a, _ := remoteSystem(t)
	b, _ := remoteSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	named := actor.NamedPID(b.Address(), "svc")
	for i := range 2 {
		pid, err := b.Spawn(remoteEcho())
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Register("svc", pid); err != nil {
			t.Fatal(err)
		}
		got, err := actor.Ask[*wrapperspb.StringValue](ctx, a, named, wrapperspb.String("hi"))
		if err != nil || got.GetValue() != "echo hi" {
			t.Fatalf("incarnation %d: %v %v", i, got, err)
		}
		if err := b.Kill(pid); err != nil {
			t.Fatal(err)
		}
		if _, err := b.WaitExit(ctx, pid); err != nil {
			t.Fatal(err)
		}
		if _, err := actor.Ask[*wrapperspb.StringValue](ctx, a, named, wrapperspb.String("x")); !errors.Is(err, actor.ErrDeadActor) {
			t.Fatalf("ask after the holder died: %v, want ErrDeadActor", err)
		}
	}
}
