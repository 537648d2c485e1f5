package actor_test

import (
	"context"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
)

// The benchmarks come in pairs: our API and raw protoactor-go (default
// dispatcher and mailbox), in the same run. Run them with
//
//	go test ./actor -run '^$' -bench . -benchtime 2s -count 3
//
// and compare the rt/s or msg/s columns; bench/ratio.sh prints the ratios.

type ping struct{ n int }
type pong struct{ n int }

func quietSystem(tb testing.TB) *actor.System {
	tb.Helper()
	s, err := actor.NewSystem(actor.Config{Name: "bench", Logger: zap.NewNop()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// BenchmarkPingPong: one actor requests, another replies, b.N round trips.
func BenchmarkPingPong(b *testing.B) {
	s := quietSystem(b)
	done := make(chan struct{})
	echo, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*ping); ok {
			c.Reply(&pong{m.n})
		}
	}))
	n := b.N
	client, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case string:
			c.Request(echo, &ping{0})
		case *pong:
			if m.n+1 >= n {
				close(done)
				return
			}
			c.Request(echo, &ping{m.n + 1})
		}
	}))
	b.ResetTimer()
	s.Send(client, "go")
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
}

func BenchmarkPingPongProtoactor(b *testing.B) {
	sys := pa.NewActorSystem(pa.WithLoggerFactory(nopSlog))
	done := make(chan struct{})
	echo := sys.Root.Spawn(pa.PropsFromFunc(func(c pa.Context) {
		if m, ok := c.Message().(*ping); ok {
			c.Respond(&pong{m.n})
		}
	}))
	n := b.N
	client := sys.Root.Spawn(pa.PropsFromFunc(func(c pa.Context) {
		switch m := c.Message().(type) {
		case string:
			c.Request(echo, &ping{0})
		case *pong:
			if m.n+1 >= n {
				close(done)
				return
			}
			c.Request(echo, &ping{m.n + 1})
		}
	}))
	b.ResetTimer()
	sys.Root.Send(client, "go")
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
	b.StopTimer()
	sys.Root.StopFuture(client).Wait()
	sys.Root.StopFuture(echo).Wait()
}

// BenchmarkAsk: a goroutine outside the actors asks and waits, b.N times.
func BenchmarkAsk(b *testing.B) {
	s := quietSystem(b)
	echo, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*ping); ok {
			c.Reply(&pong{m.n})
		}
	}))
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := actor.Ask[*pong](ctx, s, echo, &ping{i}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
}

// BenchmarkAskTimeout is BenchmarkAsk with a time limit on every call, as
// clients that bound each attempt (the Raft client) use it.
func BenchmarkAskTimeout(b *testing.B) {
	s := quietSystem(b)
	echo, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*ping); ok {
			c.Reply(&pong{m.n})
		}
	}))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := actor.AskTimeout[*pong](ctx, s, echo, &ping{i}, time.Second); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
}

func BenchmarkAskProtoactor(b *testing.B) {
	sys := pa.NewActorSystem(pa.WithLoggerFactory(nopSlog))
	echo := sys.Root.Spawn(pa.PropsFromFunc(func(c pa.Context) {
		if m, ok := c.Message().(*ping); ok {
			c.Respond(&pong{m.n})
		}
	}))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := sys.Root.RequestFuture(echo, &ping{i}, 5e9).Result(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
	b.StopTimer()
	sys.Root.StopFuture(echo).Wait()
}

// BenchmarkStream: one sender, one receiver, b.N one-way messages.
func BenchmarkStream(b *testing.B) {
	s := quietSystem(b)
	done := make(chan struct{})
	n, cnt := b.N, 0
	sink, _ := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if _, ok := c.Message().(*ping); ok {
			if cnt++; cnt == n {
				close(done)
			}
		}
	}))
	m := &ping{}
	b.ResetTimer()
	for i := 0; i < n; i++ {
		s.Send(sink, m)
	}
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

func BenchmarkStreamProtoactor(b *testing.B) {
	sys := pa.NewActorSystem(pa.WithLoggerFactory(nopSlog))
	done := make(chan struct{})
	n, cnt := b.N, 0
	sink := sys.Root.Spawn(pa.PropsFromFunc(func(c pa.Context) {
		if _, ok := c.Message().(*ping); ok {
			if cnt++; cnt == n {
				close(done)
			}
		}
	}))
	m := &ping{}
	b.ResetTimer()
	for i := 0; i < n; i++ {
		sys.Root.Send(sink, m)
	}
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	b.StopTimer()
	sys.Root.StopFuture(sink).Wait()
}
