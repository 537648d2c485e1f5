package supervision_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

// Restart latency: the time from a child's crash (a panic in a handler) to
// its replacement answering a request, ours and raw protoactor-go's
// OneForOneStrategy in the same run:
//
//	go test ./supervision -run '^$' -bench Restart -benchtime 2000x
//
// Each reports the median and 99th percentile (p50-µs, p99-µs); ns/op is
// the mean, which bench/ratio.sh compares. The panic sub-benchmarks are the
// like-for-like pair. Ours also has kill: the crash is System.Kill, which
// skips the panic path (package actor logs a panic with its stack trace,
// and takes the trace even when the logger drops the entry).
//
// The two do different work. Ours stops the crashed actor for good
// (links, monitors, pending requests fail), sends an exit signal to the
// supervisor, which spawns a new actor with a new PID and waits for its
// Started (OTP's start_link); the caller learns the new PID and asks it.
// protoactor suspends the mailbox, sends a failure to the parent, and
// restarts the actor in place under the same PID; the request queued behind
// the crash is answered by the new incarnation.

type crashMsg struct{}
type pingMsg struct{}
type pongMsg struct{}

func reportLatencies(b *testing.B, lat []time.Duration) {
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

func BenchmarkRestart(b *testing.B) {
	b.Run("panic", func(b *testing.B) {
		benchRestart(b, func(sys *actor.System, pid *actor.PID) { sys.Send(pid, crashMsg{}) })
	})
	b.Run("kill", func(b *testing.B) {
		benchRestart(b, func(sys *actor.System, pid *actor.PID) { _ = sys.Kill(pid) })
	})
}

func benchRestart(b *testing.B, crash func(*actor.System, *actor.PID)) {
	sys, err := actor.NewSystem(actor.Config{Name: "bench", Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer sys.Shutdown(context.Background())
	started := make(chan *actor.PID, 1)
	child := actor.PropsFromFunc(func(c *actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			started <- c.Self()
		case crashMsg:
			panic("crash")
		case pingMsg:
			c.Reply(pongMsg{})
		}
	})
	_, err = supervision.Start(sys, supervision.Spec{
		MaxRestarts: b.N + 1, Period: time.Hour,
		Children: []supervision.ChildSpec{{ID: "child", Props: child}},
	}, "")
	if err != nil {
		b.Fatal(err)
	}
	pid := <-started
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		crash(sys, pid)
		pid = <-started
		if _, err := actor.Ask[pongMsg](ctx, sys, pid, pingMsg{}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatencies(b, lat)
}

func BenchmarkRestartProtoactor(b *testing.B) {
	b.Run("panic", benchRestartProtoactor)
}

func benchRestartProtoactor(b *testing.B) {
	sys := pa.NewActorSystem(pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	defer sys.Shutdown()
	childProps := pa.PropsFromFunc(func(c pa.Context) {
		switch c.Message().(type) {
		case crashMsg:
			panic("crash")
		case pingMsg:
			c.Respond(pongMsg{})
		}
	})
	children := make(chan *pa.PID, 1)
	parent := sys.Root.Spawn(pa.PropsFromFunc(func(c pa.Context) {
		if _, ok := c.Message().(*pa.Started); ok {
			children <- c.Spawn(childProps)
		}
	}, pa.WithSupervisor(pa.NewOneForOneStrategy(b.N+1, time.Hour, pa.DefaultDecider))))
	pid := <-children
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		sys.Root.Send(pid, crashMsg{})
		if _, err := sys.Root.RequestFuture(pid, pingMsg{}, 5*time.Second).Result(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatencies(b, lat)
	_ = sys.Root.StopFuture(parent).Wait()
}
