package saga

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/journal"
)

// BenchmarkSagas runs 3-step sagas over local participant actors with the
// durable journal, 64 at a time, with group commit and without it (every
// journal append pays its own fsync), and reports sagas/s, fsyncs per saga
// and the ratio of the two throughputs (group_commit_speedup, on the
// no_group_commit line).
func BenchmarkSagas(b *testing.B) {
	const inFlight = 64
	rates := map[bool]float64{}
	for _, group := range []bool{true, false} {
		name := "group_commit"
		if !group {
			name = "no_group_commit"
		}
		b.Run(name, func(b *testing.B) {
			sys, err := actor.NewSystem(actor.Config{Name: "bench", Logger: zap.NewNop()})
			if err != nil {
				b.Fatal(err)
			}
			defer sys.Shutdown(context.Background())
			s := newShop(1 << 40)
			inv, _ := sys.Spawn(ParticipantProps(s.invB, s.inventory()))
			pay, _ := sys.Spawn(ParticipantProps(s.payB, s.payment()))
			ord, _ := sys.Spawn(ParticipantProps(s.ordB, s.orderService()))
			m, err := Start(sys, Config{Dir: b.TempDir(), Definitions: []*Definition{orderSaga(To(inv), To(pay), To(ord), nil)},
				Journal: journal.Options{NoGroupCommit: !group}})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			ctx := context.Background()
			before := m.JournalStats()
			sem := make(chan struct{}, inFlight)
			var wg sync.WaitGroup
			var failed sync.Once
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					info, err := m.Run(ctx, "order", fmt.Sprintf("%s-%d-%d", name, b.N, i), order(1, 1))
					if err != nil || info.Status != Committed {
						failed.Do(func() { b.Errorf("saga %d: %v %v", i, info.Status, err) })
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			after := m.JournalStats()
			rate := float64(b.N) / elapsed.Seconds()
			rates[group] = rate
			b.ReportMetric(rate, "sagas/s")
			b.ReportMetric(float64(after.Syncs-before.Syncs)/float64(b.N), "fsyncs/saga")
			b.ReportMetric(float64(after.Appends-before.Appends)/float64(b.N), "records/saga")
			if !group && rates[true] > 0 {
				// The peer measured in this run: the ratio is reported on
				// this line.
				b.ReportMetric(rates[true]/rate, "group_commit_speedup")
			}
		})
	}
}
