package actor_test

import (
	"testing"

	"github.com/distributed-go/distributed/actor"
)

// Request/Reply between two actors carries the sender both ways.
func TestRequestReplyBetweenActors(t *testing.T) {
	s := newSystem(t)
	got := make(chan string, 1)
	server, _ := s.SpawnNamed(actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(string); ok {
			if c.Sender() == nil {
				panic("no sender")
			}
			c.Reply(m + " back from " + c.Self().Name())
		}
	}), "server")
	_, _ = s.SpawnNamed(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.Request(server, "ping")
		case string:
			got <- m + " (sender " + c.Sender().Name() + ")"
		}
	}), "client")
	if m := <-got; m != "ping back from server (sender server)" {
		t.Fatalf("got %q", m)
	}
}

// The tree of live actors can be walked from the top-level actors.
func TestTreeWalkAndInfo(t *testing.T) {
	s := newSystem(t)
	ready := make(chan struct{})
	root, _ := s.SpawnNamed(actor.PropsFromFunc(func(c *actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			c.SetInfo(func() string { return "root state" })
			for _, n := range []string{"left", "right"} {
				child, err := c.SpawnNamed(actor.PropsFromFunc(func(cc *actor.Context) {
					if _, ok := cc.Message().(*actor.Started); ok && !cc.Parent().Equal(c.Self()) {
						panic("wrong parent")
					}
				}), n)
				if err != nil {
					panic(err)
				}
				_ = child
			}
			if _, err := c.Spawn(actor.PropsFromFunc(func(*actor.Context) {}, actor.WithKind("anon"))); err != nil {
				panic(err)
			}
			close(ready)
		}
	}), "root")
	<-ready
	top := s.TopLevel()
	if len(top) != 1 || !top[0].Equal(root) {
		t.Fatalf("TopLevel = %v", top)
	}
	info, ok := s.Info(root)
	if !ok || info.Info != "root state" || info.Parent != nil || len(info.Names) != 1 {
		t.Fatalf("Info(root) = %+v", info)
	}
	var names []string
	for _, c := range info.Children {
		ci, _ := s.Info(c)
		if !ci.Parent.Equal(root) {
			t.Fatalf("child %v has parent %v", c, ci.Parent)
		}
		names = append(names, c.Name())
	}
	if len(names) != 3 || names[0] != "left" || names[1] != "right" || names[2] != "anon" {
		t.Fatalf("children = %v", names)
	}
	if n := len(s.Processes()); n != 4 {
		t.Fatalf("Processes() has %d entries, want 4", n)
	}
}

// Unlink removes the link both ways: the partner's crash no longer kills.
func TestUnlink(t *testing.T) {
	s := newSystem(t)
	crasher, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if c.Message() == "crash" {
			panic("crash")
		}
	}))
	a, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch c.Message() {
		case "link":
			c.Link(crasher)
			c.Reply(c.TrapsExit())
		case "unlink":
			c.Unlink(crasher)
			c.Reply(true)
		}
	}))
	if trap, err := actor.Ask[bool](ctxT(t), s, a, "link"); err != nil || trap {
		t.Fatalf("link: %v %v", trap, err)
	}
	if _, err := actor.Ask[bool](ctxT(t), s, a, "unlink"); err != nil {
		t.Fatal(err)
	}
	if i, _ := s.Info(crasher); len(i.Links) != 0 {
		t.Fatalf("crasher still linked to %v", i.Links)
	}
	s.Send(crasher, "crash")
	_, _ = s.WaitExit(ctxT(t), crasher)
	if _, err := actor.Ask[bool](ctxT(t), s, a, "unlink"); err != nil {
		t.Fatalf("unlinked actor died: %v", err)
	}
}
