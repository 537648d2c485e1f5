package actor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/distributed-go/distributed/actor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newSystem(t *testing.T) *actor.System {
	t.Helper()
	s, err := actor.NewSystem(actor.Config{Name: "test", Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// echo replies to every message with the message itself.
func echoProps() *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		switch c.Message().(type) {
		case *actor.Started, *actor.Stopping:
		default:
			c.Reply(c.Message())
		}
	}, actor.WithKind("echo"))
}

func TestAskReply(t *testing.T) {
	s := newSystem(t)
	pid, err := s.Spawn(echoProps())
	if err != nil {
		t.Fatal(err)
	}
	got, err := actor.Ask[string](ctxT(t), s, pid, "hello")
	if err != nil || got != "hello" {
		t.Fatalf("Ask = %q, %v", got, err)
	}
	if _, err := actor.Ask[int](ctxT(t), s, pid, "x"); err == nil {
		t.Fatal("Ask with the wrong reply type succeeded")
	}
}

func TestAskDeadFailsFast(t *testing.T) {
	s := newSystem(t)
	pid, _ := s.Spawn(echoProps())
	if err := s.Stop(ctxT(t), pid); err != nil {
		t.Fatal(err)
	}
	// No deadline: only fail-fast can end this call.
	_, err := actor.Ask[string](context.Background(), s, pid, "hello")
	if !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("Ask to a dead actor: %v, want ErrDeadActor", err)
	}
}

func TestLinkPropagatesAndTrapExit(t *testing.T) {
	s := newSystem(t)
	got := make(chan *actor.Exit, 1)
	trapper, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Link(m)
			c.Reply(true)
		case *actor.Exit:
			got <- m
		}
	}, actor.WithTrapExit()))
	plain, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*actor.PID); ok {
			c.Link(m)
			c.Reply(true)
		}
	}))
	crasher, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if c.Message() == "crash" {
			panic("boom")
		}
	}))
	for _, p := range []*actor.PID{trapper, plain} {
		if _, err := actor.Ask[bool](ctxT(t), s, p, crasher); err != nil {
			t.Fatal(err)
		}
	}
	s.Send(crasher, "crash")
	select {
	case e := <-got:
		if !e.From.Equal(crasher) || e.Reason.Kind != actor.KindError {
			t.Fatalf("Exit = %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Exit message")
	}
	r, err := s.WaitExit(ctxT(t), plain)
	if err != nil || r.Kind != actor.KindError {
		t.Fatalf("linked non-trapping actor exit = %v, %v; want error", r, err)
	}
	if !s.Alive(trapper) {
		t.Fatal("trapping actor died")
	}
}
