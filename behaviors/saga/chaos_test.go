package saga

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentSagasWithKilledCoordinators is the single-node companion of
// TestCrashRecovery that also runs under -race: sagas run concurrently
// while coordinators are killed at random and the manager is restarted on
// its journal twice, and the journal is compacted every few dozen milliseconds;
// every saga must end as its input says and the
// participants' invariants must hold.
func TestConcurrentSagasWithKilledCoordinators(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 60
	}
	e := newEnv(t, func(st *Step) {
		st.Retry.MaxAttempts = -1
		st.CompensationRetry.MaxAttempts = -1
	})
	e.cfg.MaxRestarts = 1 << 30
	// The journal is rewritten all the time while sagas run (finished
	// sagas are kept: the test checks them at the end).
	e.cfg.CompactEvery = 100 * time.Millisecond
	e.cfg.Retention = time.Hour
	e.m.Close(context.Background())
	e.start()
	var transient atomic.Int64
	e.shop.payTransient = func(req Request) error {
		if req.Attempt == 1 && transient.Add(1)%5 == 0 {
			return fmt.Errorf("flaky gateway")
		}
		return nil
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	var kills atomic.Int64
	var current atomic.Pointer[Manager]
	current.Store(e.m)
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			m := current.Load()
			live := m.List(Running, Compensating)
			if len(live) == 0 {
				continue
			}
			if pid, ok := m.Coordinator(live[rng.IntN(len(live))].ID); ok && e.sys.Kill(pid) == nil {
				kills.Add(1)
			}
		}
	}()

	want := map[string]Status{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		id := fmt.Sprintf("s%04d", i)
		var flags []string
		want[id] = Committed
		switch i % 6 {
		case 1:
			flags, want[id] = []string{"failpay"}, Compensated
		case 4:
			flags, want[id] = []string{"failorder"}, Compensated
		}
		if err := e.m.Begin(ctx, "order", id, order(1, 1, flags...)); err != nil {
			t.Fatal(err)
		}
		if i == n/3 || i == 2*n/3 {
			// The manager goes down with sagas in flight and comes back.
			if err := e.m.Close(ctx); err != nil {
				t.Fatal(err)
			}
			e.start()
			current.Store(e.m)
		}
	}
	waitFor(t, "every saga ends", time.Minute, func() bool { return len(e.m.List(Committed, Compensated)) == n })
	close(stop)
	<-done
	got := map[string]Status{}
	for _, in := range e.m.List() {
		got[in.ID] = in.Status
	}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("saga %s ended %s, want %s; history %v", id, got[id], st, e.history(id))
		}
	}
	e.shop.check(t, got)
	t.Logf("%d sagas, %d coordinator kills", n, kills.Load())
	if kills.Load() == 0 {
		t.Fatal("no coordinator was killed")
	}
}
