package actor_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/distributed-go/distributed/actor"
)

// recorder collects events from several actors in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// metric reads one metric value from the system's registry.
func metric(t *testing.T, s *actor.System, name string) float64 {
	t.Helper()
	mfs, err := s.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			found = true
			sum += value(m)
		}
	}
	if !found {
		t.Fatalf("metric %s not found", name)
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestIncarnationProtectsNewActor(t *testing.T) {
	s := newSystem(t)
	got := make(chan string, 10)
	props := actor.PropsFromProducer(func() actor.Actor {
		return actor.ReceiveFunc(func(c *actor.Context) {
			if m, ok := c.Message().(string); ok {
				got <- c.Self().String() + " " + m
			}
		})
	})
	old, err := s.SpawnNamed(props, "worker")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctxT(t), old); err != nil {
		t.Fatal(err)
	}
	fresh, err := s.SpawnNamed(props, "worker")
	if err != nil {
		t.Fatalf("name not freed at death: %v", err)
	}
	if old.Equal(fresh) || old.Name() != fresh.Name() || old.Incarnation() == fresh.Incarnation() {
		t.Fatalf("old %v and new %v: want same name, different incarnation", old, fresh)
	}
	before := metric(t, s, "actor_dead_letters_total")
	s.Send(old, "for the old one")
	s.Send(fresh, "for the new one")
	if m := <-got; m != fresh.String()+" for the new one" {
		t.Fatalf("new actor received %q", m)
	}
	eventually(t, "dead letter counted", func() bool { return metric(t, s, "actor_dead_letters_total") == before+1 })
	if _, err := actor.Ask[string](ctxT(t), s, old, "x"); !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("Ask to the old incarnation: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("unexpected delivery: %q", <-got)
	}
}

// watcher records the messages it gets and answers "list" with them.
func watcherProps(msgs chan<- any) *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
		case monitorReq:
			c.Reply(c.Monitor(m.pid))
		case demonitorReq:
			c.Demonitor(m.ref)
			c.Reply(true)
		default:
			msgs <- m
		}
	})
}

type monitorReq struct{ pid *actor.PID }
type demonitorReq struct{ ref actor.MonitorRef }

func TestMonitorDeliversOneDown(t *testing.T) {
	s := newSystem(t)
	msgs := make(chan any, 10)
	w, _ := s.Spawn(watcherProps(msgs))
	target, _ := s.Spawn(echoProps())
	ref, err := actor.Ask[actor.MonitorRef](ctxT(t), s, w, monitorReq{target})
	if err != nil {
		t.Fatal(err)
	}
	ref2, _ := actor.Ask[actor.MonitorRef](ctxT(t), s, w, monitorReq{target})
	if ref == ref2 {
		t.Fatal("two monitors share a ref")
	}
	if err := s.Kill(target); err != nil {
		t.Fatal(err)
	}
	downs := map[actor.MonitorRef]bool{}
	for range 2 {
		d := (<-msgs).(*actor.Down)
		if !d.PID.Equal(target) || d.Reason != actor.Killed || downs[d.Ref] {
			t.Fatalf("Down = %+v", d)
		}
		downs[d.Ref] = true
	}
	// Monitoring a dead actor gives noproc at once.
	ref3, _ := actor.Ask[actor.MonitorRef](ctxT(t), s, w, monitorReq{target})
	if d := (<-msgs).(*actor.Down); d.Ref != ref3 || d.Reason != actor.NoProc {
		t.Fatalf("Down for a dead actor = %+v", d)
	}
	// After Demonitor no Down arrives: the marker sent after the target's
	// death is the next message.
	t2, _ := s.Spawn(echoProps())
	ref4, _ := actor.Ask[actor.MonitorRef](ctxT(t), s, w, monitorReq{t2})
	if _, err := actor.Ask[bool](ctxT(t), s, w, demonitorReq{ref4}); err != nil {
		t.Fatal(err)
	}
	_ = s.Kill(t2)
	if _, err := s.WaitExit(ctxT(t), t2); err != nil {
		t.Fatal(err)
	}
	s.Send(w, "marker")
	if m := <-msgs; m != "marker" {
		t.Fatalf("after Demonitor got %#v", m)
	}
}

func TestKillSkipsStoppingStopDoesNot(t *testing.T) {
	s := newSystem(t)
	rec := &recorder{}
	props := actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*actor.Stopping); ok {
			rec.add(c.Self().Name() + " stopping " + m.Reason.String())
		}
	})
	a, _ := s.SpawnNamed(props, "a")
	b, _ := s.SpawnNamed(props, "b")
	if err := s.Stop(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	_ = s.Kill(b)
	r, err := s.WaitExit(ctxT(t), b)
	if err != nil || r != actor.Killed {
		t.Fatalf("killed actor reason = %v, %v", r, err)
	}
	if got := rec.get(); len(got) != 1 || got[0] != "a stopping shutdown" {
		t.Fatalf("events = %q", got)
	}
}

func TestPanicCrashesOnlyTheActor(t *testing.T) {
	s := newSystem(t)
	p, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if c.Message() == "boom" {
			panic("boom")
		}
	}))
	s.Send(p, "boom")
	r, err := s.WaitExit(ctxT(t), p)
	if err != nil || r.Kind != actor.KindError || !strings.Contains(r.Detail, "boom") {
		t.Fatalf("reason = %v, %v", r, err)
	}
	// The system still works.
	e, _ := s.Spawn(echoProps())
	if v, err := actor.Ask[int](ctxT(t), s, e, 7); err != nil || v != 7 {
		t.Fatalf("after a panic: %v, %v", v, err)
	}
}

func linkerProps(trap bool, msgs chan<- any) *actor.Props {
	opts := []actor.PropsOption{}
	if trap {
		opts = append(opts, actor.WithTrapExit())
	}
	return actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Link(m)
			c.Reply(true)
		case *actor.Exit:
			msgs <- m
		case string:
			if m == "stop" {
				c.Stop()
			}
		}
	}, opts...)
}

func TestLinkNormalExitDoesNotPropagate(t *testing.T) {
	s := newSystem(t)
	a, _ := s.Spawn(linkerProps(false, nil))
	b, _ := s.Spawn(linkerProps(false, nil))
	if _, err := actor.Ask[bool](ctxT(t), s, a, b); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(b); len(info.Links) != 1 || !info.Links[0].Equal(a) {
		t.Fatalf("b's links = %v", info.Links)
	}
	s.Send(b, "stop")
	if r, _ := s.WaitExit(ctxT(t), b); r != actor.Normal {
		t.Fatalf("b exited %v", r)
	}
	// a survives and its link to b is gone.
	eventually(t, "link removed", func() bool { i, _ := s.Info(a); return len(i.Links) == 0 })
	if !s.Alive(a) {
		t.Fatal("a died of b's normal exit")
	}
}

func TestLinkToDeadActorGivesNoProc(t *testing.T) {
	s := newSystem(t)
	msgs := make(chan any, 1)
	dead, _ := s.Spawn(echoProps())
	_ = s.Stop(ctxT(t), dead)
	a, _ := s.Spawn(linkerProps(true, msgs))
	if _, err := actor.Ask[bool](ctxT(t), s, a, dead); err != nil {
		t.Fatal(err)
	}
	if e := (<-msgs).(*actor.Exit); e.Reason != actor.NoProc || !e.From.Equal(dead) {
		t.Fatalf("Exit = %+v", e)
	}
}

func TestExitSignal(t *testing.T) {
	s := newSystem(t)
	msgs := make(chan any, 2)
	plain, _ := s.Spawn(linkerProps(false, nil))
	trapper, _ := s.Spawn(linkerProps(true, msgs))

	_ = s.Exit(plain, nil, actor.Normal) // ignored
	_ = s.Exit(trapper, nil, actor.ShutdownWith("bye"))
	if e := (<-msgs).(*actor.Exit); e.Reason != actor.ShutdownWith("bye") {
		t.Fatalf("trapped %+v", e)
	}
	_ = s.Exit(plain, nil, actor.Shutdown)
	if r, _ := s.WaitExit(ctxT(t), plain); r != actor.Shutdown {
		t.Fatalf("plain exited %v", r)
	}
	_ = s.Exit(trapper, nil, actor.Killed) // untrappable
	if r, _ := s.WaitExit(ctxT(t), trapper); r != actor.Killed {
		t.Fatalf("trapper exited %v", r)
	}
	if err := s.Exit(trapper, nil, actor.Shutdown); !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("Exit to a dead actor: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	s := newSystem(t)
	a, err := s.SpawnNamed(echoProps(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SpawnNamed(echoProps(), "svc"); !errors.Is(err, actor.ErrNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	if p, ok := s.WhereIs("svc"); !ok || !p.Equal(a) {
		t.Fatalf("WhereIs = %v, %v", p, ok)
	}
	if err := s.Register("alias", a); err != nil {
		t.Fatal(err)
	}
	if got := s.Registered(); fmt.Sprint(got) != "[alias svc]" {
		t.Fatalf("Registered = %v", got)
	}
	if !s.Unregister("alias") || s.Unregister("alias") {
		t.Fatal("Unregister")
	}
	if err := s.Register("bad/name", a); err == nil {
		t.Fatal("a name with '/' was accepted")
	}
	_ = s.Kill(a)
	_, _ = s.WaitExit(ctxT(t), a)
	if _, ok := s.WhereIs("svc"); ok {
		t.Fatal("name kept after death")
	}
	if err := s.Register("late", a); !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("Register of a dead actor: %v", err)
	}
}

func TestTimers(t *testing.T) {
	s := newSystem(t)
	msgs := make(chan any, 10)
	var tick *actor.Timer
	p, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.SendAfter(time.Millisecond, "once")
			if c.SendAfter(time.Hour, "never").Cancel() != true {
				msgs <- "cancel of a pending timer returned false"
			}
			tick = c.Tick(time.Millisecond, "tick")
		case string:
			msgs <- m
		}
	}))
	seen := map[string]int{}
	for seen["once"] == 0 || seen["tick"] < 3 {
		seen[(<-msgs).(string)]++
	}
	if seen["never"] != 0 || seen["cancel of a pending timer returned false"] != 0 {
		t.Fatalf("seen %v", seen)
	}
	_ = s.Stop(ctxT(t), p)
	if tick.Cancel() {
		t.Fatal("a periodic timer outlived its actor")
	}
}

func TestShutdownStopsChildrenFirstInReverseOrder(t *testing.T) {
	s := newSystem(t)
	rec := &recorder{}
	var leaf func(string) *actor.Props
	leaf = func(name string) *actor.Props {
		return actor.PropsFromFunc(func(c *actor.Context) {
			if _, ok := c.Message().(*actor.Stopping); ok {
				rec.add("stopping " + name)
			}
		})
	}
	parent := func(name string, kids ...string) *actor.Props {
		return actor.PropsFromFunc(func(c *actor.Context) {
			switch c.Message().(type) {
			case *actor.Started:
				for _, k := range kids {
					if _, err := c.SpawnNamed(leaf(k), k); err != nil {
						panic(err)
					}
				}
			case *actor.Stopping:
				rec.add("stopping " + name)
			}
		})
	}
	a, _ := s.SpawnNamed(parent("a", "a1", "a2"), "a")
	b, _ := s.SpawnNamed(parent("b", "b1"), "b")
	eventually(t, "children started", func() bool {
		ia, _ := s.Info(a)
		ib, _ := s.Info(b)
		return len(ia.Children) == 2 && len(ib.Children) == 1
	})
	if err := s.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	want := "stopping b,stopping b1,stopping a,stopping a2,stopping a1"
	if got := strings.Join(rec.get(), ","); got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
	if _, err := s.Spawn(echoProps()); !errors.Is(err, actor.ErrSystemStopped) {
		t.Fatalf("spawn after shutdown: %v", err)
	}
}

func TestInvalidSpawns(t *testing.T) {
	s := newSystem(t)
	cases := map[string]*actor.Props{
		"nil props":    nil,
		"nil producer": actor.PropsFromProducer(nil),
		"nil func":     actor.PropsFromFunc(nil),
		"nil actor":    actor.PropsFromProducer(func() actor.Actor { return nil }),
	}
	for name, p := range cases {
		if _, err := s.Spawn(p); !errors.Is(err, actor.ErrInvalidProps) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := s.SpawnNamed(echoProps(), "a#b"); err == nil || !strings.Contains(err.Error(), "must not contain") {
		t.Errorf("bad name: %v", err)
	}
	if _, err := actor.NewSystem(actor.Config{Throughput: -1}); err == nil || !strings.Contains(err.Error(), "Throughput") {
		t.Errorf("bad config: %v", err)
	}
}

func TestMetricsCountMessagesAndDepth(t *testing.T) {
	s := newSystem(t)
	release := make(chan struct{})
	p, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if c.Message() == "block" {
			<-release
		}
	}))
	s.Send(p, "block")
	for range 5 {
		s.Send(p, "queued")
	}
	eventually(t, "mailbox depth 5", func() bool { return metric(t, s, "actor_mailbox_depth") == 5 })
	close(release)
	eventually(t, "6 processed", func() bool { return metric(t, s, "actor_messages_processed_total") >= 6 })
	if d := metric(t, s, "actor_mailbox_depth"); d != 0 {
		t.Fatalf("depth after draining = %v", d)
	}
}
