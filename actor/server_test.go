package actor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
)

// counter is a Server: its state is its fields.
type counter struct {
	actor.ServerBase
	n        int
	waiting  []actor.From
	events   chan string
	failInit bool
}

type (
	incr    struct{ by int }
	get     struct{}
	waitFor struct{}
	release struct{}
	stopReq struct{}
	boom    struct{}
)

func (c *counter) Init(ctx *actor.Context) error {
	if c.failInit {
		return errors.New("no database")
	}
	c.n = 100
	return nil
}

func (c *counter) HandleCall(ctx *actor.Context, req any, from actor.From) (any, error) {
	switch r := req.(type) {
	case incr:
		c.n += r.by
		return c.n, nil
	case get:
		return c.n, nil
	case waitFor:
		c.waiting = append(c.waiting, from)
		return nil, actor.ErrNoReply
	case stopReq:
		return nil, actor.StopServerReply(actor.Normal, "bye")
	case boom:
		panic("boom")
	}
	return nil, errors.New("unknown request")
}

func (c *counter) HandleCast(ctx *actor.Context, msg any) error {
	switch msg.(type) {
	case release:
		for _, f := range c.waiting {
			f.Reply(c.n)
		}
		c.waiting = nil
	case incr:
		c.n += msg.(incr).by
	}
	return nil
}

func (c *counter) HandleInfo(ctx *actor.Context, msg any) error {
	if s, ok := msg.(string); ok && c.events != nil {
		c.events <- "info " + s
	}
	return nil
}

func (c *counter) Terminate(ctx *actor.Context, reason actor.Reason) {
	if c.events != nil {
		c.events <- "terminate " + reason.String()
	}
}

func TestServerCallCastInfo(t *testing.T) {
	s := newSystem(t)
	events := make(chan string, 10)
	pid, err := s.Spawn(actor.ServerProps(func() actor.Server { return &counter{events: events} }))
	if err != nil {
		t.Fatal(err)
	}
	if pid.Name() != "counter" {
		t.Errorf("kind of a server = %q, want counter", pid.Name())
	}
	ctx := ctxT(t)
	if n, err := actor.Call[int](ctx, s, pid, incr{5}); err != nil || n != 105 {
		t.Fatalf("Call incr = %d, %v", n, err)
	}
	actor.Cast(s, pid, incr{10})
	if n, _ := actor.Call[int](ctx, s, pid, get{}); n != 115 {
		t.Fatalf("after cast n = %d", n)
	}
	s.Send(pid, "hello")
	if e := <-events; e != "info hello" {
		t.Fatalf("info: %q", e)
	}
	if _, err := actor.Call[int](ctx, s, pid, 3.14); err == nil || err.Error() != "unknown request" {
		t.Fatalf("error reply: %v", err)
	}
	// A call that times out reports the context's error, not a dead actor.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := actor.Call[int](short, s, pid, waitFor{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out call: %v", err)
	}
	if reply, err := actor.Call[string](ctx, s, pid, stopReq{}); err != nil || reply != "bye" {
		t.Fatalf("stop reply = %q, %v", reply, err)
	}
	if r, _ := s.WaitExit(ctx, pid); r != actor.Normal {
		t.Fatalf("exit reason %v", r)
	}
	if e := <-events; e != "terminate normal" {
		t.Fatalf("terminate: %q", e)
	}
}

func TestServerDeferredReply(t *testing.T) {
	s := newSystem(t)
	pid, _ := s.Spawn(actor.ServerProps(func() actor.Server { return &counter{} }))
	ctx := ctxT(t)
	done := make(chan int, 2)
	for range 2 {
		go func() {
			n, err := actor.Call[int](ctx, s, pid, waitFor{})
			if err != nil {
				n = -1
			}
			done <- n
		}()
	}
	eventually(t, "two callers waiting", func() bool {
		i, _ := s.Info(pid)
		return i.Processed >= 2 // both calls taken
	})
	actor.Cast(s, pid, release{})
	if a, b := <-done, <-done; a != 100 || b != 100 {
		t.Fatalf("deferred replies %d %d", a, b)
	}
}

func TestCallFailsFastWhenServerDiesWithPendingReply(t *testing.T) {
	s := newSystem(t)
	pid, _ := s.Spawn(actor.ServerProps(func() actor.Server { return &counter{} }))
	errc := make(chan error, 1)
	go func() {
		// No deadline: only the server's death can end this call.
		_, err := actor.Call[int](context.Background(), s, pid, waitFor{})
		errc <- err
	}()
	eventually(t, "caller waiting", func() bool { i, _ := s.Info(pid); return i.Processed >= 1 })
	_ = s.Kill(pid)
	err := <-errc
	var dead *actor.DeadActorError
	if !errors.As(err, &dead) || !errors.Is(err, actor.ErrDeadActor) || dead.Reason != actor.Killed {
		t.Fatalf("pending call after kill: %v", err)
	}
}

func TestServerPanicCrashesWithErrorReason(t *testing.T) {
	s := newSystem(t)
	pid, _ := s.Spawn(actor.ServerProps(func() actor.Server { return &counter{} }))
	_, err := actor.Call[int](ctxT(t), s, pid, boom{})
	if !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("call that panics: %v", err)
	}
	if r, _ := s.WaitExit(ctxT(t), pid); r.Kind != actor.KindError || !strings.Contains(r.Detail, "boom") {
		t.Fatalf("reason %v", r)
	}
}

func TestStartLinkReportsInitFailure(t *testing.T) {
	s := newSystem(t)
	result := make(chan error, 1)
	parent, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if c.Message() == "start" {
			_, err := c.StartLink(actor.ServerProps(func() actor.Server { return &counter{failInit: true} }), "", time.Second)
			result <- err
		}
	}, actor.WithTrapExit()))
	s.Send(parent, "start")
	if err := <-result; err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("StartLink: %v", err)
	}
	if !s.Alive(parent) {
		t.Fatal("a trapping parent died of its child's failed start")
	}
}

func TestServerStopsWhenParentExits(t *testing.T) {
	s := newSystem(t)
	events := make(chan string, 4)
	child := make(chan *actor.PID, 1)
	parent, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			pid, err := c.StartLink(actor.ServerProps(func() actor.Server { return &counter{events: events} },
				actor.WithTrapExit()), "", time.Second)
			if err != nil {
				panic(err)
			}
			child <- pid
		}
	}))
	cp := <-child
	_ = s.Exit(parent, nil, actor.Errorf("parent failed"))
	if r, _ := s.WaitExit(ctxT(t), cp); r.Kind != actor.KindError {
		t.Fatalf("child exit %v", r)
	}
	if e := <-events; e != "terminate error: parent failed" {
		t.Fatalf("terminate: %q", e)
	}
}
