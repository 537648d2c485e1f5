package actor_test

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
)

func exampleSystem() *actor.System {
	s, err := actor.NewSystem(actor.Config{Name: "example", Logger: zap.NewNop()})
	if err != nil {
		panic(err)
	}
	return s
}

// Spawn an actor and Ask it for a typed reply.
func ExampleAsk() {
	s := exampleSystem()
	defer s.Shutdown(context.Background())

	greeter, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if name, ok := c.Message().(string); ok {
			c.Reply("hello, " + name)
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	reply, err := actor.Ask[string](ctx, s, greeter, "world")
	fmt.Println(reply, err)
	// Output: hello, world <nil>
}

// Monitor an actor and see why it exited.
func ExampleContext_Monitor() {
	s := exampleSystem()
	defer s.Shutdown(context.Background())

	worker, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {}))
	downs := make(chan *actor.Down, 1)
	watcher, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Monitor(m)
			c.Reply(true)
		case *actor.Down:
			downs <- m
		}
	}))
	_, _ = actor.Ask[bool](context.Background(), s, watcher, worker)
	_ = s.Kill(worker)
	d := <-downs
	fmt.Println("down:", d.PID.Name(), d.Reason)
	// Output: down: actor killed
}

// Linked actors share their fate unless they trap exits.
func ExampleContext_Link() {
	s := exampleSystem()
	defer s.Shutdown(context.Background())

	exits := make(chan *actor.Exit, 1)
	trapper, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Link(m)
			c.Reply(true)
		case *actor.Exit:
			exits <- m
		}
	}, actor.WithTrapExit()))
	crasher, _ := s.SpawnNamed(actor.PropsFromFunc(func(c *actor.Context) {
		if c.Message() == "crash" {
			panic("disk full")
		}
	}), "crasher")
	_, _ = actor.Ask[bool](context.Background(), s, trapper, crasher)
	s.Send(crasher, "crash")
	e := <-exits
	fmt.Println(e.From.Name(), "exited:", e.Reason)
	// Output: crasher exited: error: panic: disk full
}

// kv is a gen_server-style Server: its state is its fields.
type kv struct {
	actor.ServerBase
	data map[string]string
}

type put struct{ k, v string }
type lookup struct{ k string }

func (s *kv) Init(*actor.Context) error { s.data = map[string]string{}; return nil }

func (s *kv) HandleCall(_ *actor.Context, req any, _ actor.From) (any, error) {
	switch r := req.(type) {
	case lookup:
		v, ok := s.data[r.k]
		if !ok {
			return nil, fmt.Errorf("%q not found", r.k)
		}
		return v, nil
	}
	return nil, fmt.Errorf("unknown call %T", req)
}

func (s *kv) HandleCast(_ *actor.Context, msg any) error {
	if p, ok := msg.(put); ok {
		s.data[p.k] = p.v
	}
	return nil
}

func ExampleServerProps() {
	s := exampleSystem()
	defer s.Shutdown(context.Background())

	pid, _ := s.SpawnNamed(actor.ServerProps(func() actor.Server { return &kv{} }), "kv")
	actor.Cast(s, pid, put{"color", "blue"})
	ctx := context.Background()
	v, err := actor.Call[string](ctx, s, pid, lookup{"color"})
	fmt.Println(v, err)
	_, err = actor.Call[string](ctx, s, pid, lookup{"size"})
	fmt.Println(err)
	// Output:
	// blue <nil>
	// "size" not found
}

// Timers deliver messages to the actor itself, later or periodically.
func ExampleContext_SendAfter() {
	s := exampleSystem()
	defer s.Shutdown(context.Background())

	got := make(chan string, 1)
	_, _ = s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.SendAfter(10*time.Millisecond, "wake up")
		case string:
			got <- m
		}
	}))
	fmt.Println(<-got)
	// Output: wake up
}

// A name is freed when its actor dies; a new incarnation can take it, and
// the old PID never reaches the new actor.
func ExampleSystem_WhereIs() {
	s := exampleSystem()
	defer s.Shutdown(context.Background())

	props := actor.PropsFromFunc(func(c *actor.Context) {})
	old, _ := s.SpawnNamed(props, "db")
	_ = s.Stop(context.Background(), old)
	_, ok := s.WhereIs("db")
	fmt.Println("registered after stop:", ok)
	fresh, _ := s.SpawnNamed(props, "db")
	now, _ := s.WhereIs("db")
	fmt.Println("same name:", old.Name() == fresh.Name(), "same actor:", old.Equal(now))
	// Output:
	// registered after stop: false
	// same name: true same actor: false
}
