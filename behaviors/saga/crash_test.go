package saga

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
	"github.com/distributed-go/distributed/cluster"
)

var soak = flag.Int("saga.soak", 0, "run the crash-recovery test with this many sagas instead of 1000")

// participantNode is a node that hosts one of the shop's services.
type participantNode struct {
	node *cluster.Node
	pid  atomic.Pointer[actor.PID]
}

func (p *participantNode) resolve() (*actor.PID, error) {
	pid := p.pid.Load()
	if pid == nil {
		return nil, errors.New("participant is down")
	}
	return pid, nil
}

func startClusterNode(t *testing.T, cfg cluster.Config) *cluster.Node {
	t.Helper()
	cfg.Logger = zap.NewNop()
	cfg.JoinTimeout = 10 * time.Second
	nd, err := cluster.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := nd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nd.Stop)
	return nd
}

// TestCrashRecovery runs 1000 order sagas over three participant services
// (inventory, payment, order), each on its own node, while a chaos loop
// kills random coordinators, the coordinator's node crashes twice and comes
// back on its data directory, and the payment node crashes once and is
// replaced, and the coordinator's journal is compacted every 250 ms. Every
// saga must end as it would have without the faults
// (committed, or compensated where its input makes a step refuse), and the
// services' invariants must hold: stock + reserved = initial, no payment
// without an order, no double charge.
func TestCrashRecovery(t *testing.T) {
	n := 1000
	if *soak > 0 {
		n = *soak
	}
	s := newShop(3 * n)
	seed := cluster.Local("inv")
	invNode := startClusterNode(t, seed)
	seeds := []string{invNode.GossipAddress()}
	start := func(name string, h Handler, b *Barrier) *participantNode {
		cfg := cluster.Local(name)
		cfg.Seeds = seeds
		nd := invNode
		if name != "inv" {
			nd = startClusterNode(t, cfg)
		}
		p := &participantNode{node: nd}
		pid, err := nd.System().Spawn(ParticipantProps(b, h))
		if err != nil {
			t.Fatal(err)
		}
		p.pid.Store(pid)
		return p
	}
	inv := start("inv", s.inventory(), s.invB)
	pay := start("pay", s.payment(), s.payB)
	ord := start("ord", s.orderService(), s.ordB)

	def := orderSaga(inv.resolve, pay.resolve, ord.resolve, func(st *Step) {
		st.Timeout = 500 * time.Millisecond
		// No limit on retries: a fault must delay a saga, not change how
		// it ends.
		st.Retry = RetryPolicy{MaxAttempts: -1, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
		st.CompensationRetry = st.Retry
	})
	coordDir := t.TempDir()
	var (
		mu       sync.Mutex
		coord    *cluster.Node
		mgr      *Manager
		restarts int
	)
	var service atomic.Pointer[actor.PID]
	startCoordinator := func() error {
		cfg := cluster.Local(fmt.Sprintf("coord-%d", restarts))
		cfg.Seeds = seeds
		cfg.DataDir = coordDir
		cfg.Logger = zap.NewNop()
		cfg.JoinTimeout = 10 * time.Second
		nd, err := cluster.NewNode(cfg)
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := nd.Start(sctx); err != nil {
			return err
		}
		t.Cleanup(nd.Stop)
		m, err := Start(nd.System(), Config{Dir: filepath.Join(nd.DataDir(), "saga"), Definitions: []*Definition{def},
			MaxRestarts: 1 << 30, CompactEvery: 250 * time.Millisecond, Retention: time.Hour})
		if err != nil {
			return err
		}
		t.Cleanup(func() { m.Close(context.Background()) })
		svc, err := nd.System().SpawnNamed(m.ServiceProps(), "saga-service")
		if err != nil {
			return err
		}
		mu.Lock()
		coord, mgr = nd, m
		mu.Unlock()
		service.Store(svc)
		return nil
	}
	// crashCoordinator crashes the coordinator's node and starts it again
	// on its data directory, while sagas are being started.
	crashCoordinator := func() error {
		mu.Lock()
		nd, m := coord, mgr
		mu.Unlock()
		nd.Crash()
		if err := m.Close(context.Background()); err != nil {
			return err
		}
		restarts++
		return startCoordinator()
	}
	if err := startCoordinator(); err != nil {
		t.Fatal(err)
	}
	// Sagas are started from the inventory node, through the saga service.
	client := NewClient(invNode.System(), func() (*actor.PID, error) { return service.Load(), nil })
	client.AttemptTimeout = time.Second
	client.Retry = RetryPolicy{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}

	// The chaos loop kills the coordinator of a random unfinished saga.
	var kills atomic.Int64
	stop := make(chan struct{})
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(2+rng.IntN(8)) * time.Millisecond):
			}
			mu.Lock()
			nd, m := coord, mgr
			mu.Unlock()
			live := m.List(Running, Compensating)
			if len(live) == 0 {
				continue
			}
			if pid, ok := m.Coordinator(live[rng.IntN(len(live))].ID); ok {
				if nd.System().Kill(pid) == nil {
					kills.Add(1)
				}
			}
		}
	}()

	want := map[string]Status{}
	const batch = 100
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nb := (n + batch - 1) / batch
	faultAt := map[int]string{3 * nb / 10: "coordinator", 5 * nb / 10: "payment", 7 * nb / 10: "coordinator"}
	var crashed chan error
	for b := 0; b < nb; b++ {
		for i := b * batch; i < min(n, (b+1)*batch); i++ {
			id := fmt.Sprintf("order-%05d", i)
			var flags []string
			want[id] = Committed
			switch {
			case i%25 == 11:
				flags = append(flags, "failstock")
				want[id] = Compensated
			case i%10 == 3:
				flags = append(flags, "failpay")
				want[id] = Compensated
			case i%10 == 7:
				flags = append(flags, "failorder")
				want[id] = Compensated
			}
			if err := client.Begin(ctx, "order", id, order(1+i%3, 10+i%7, flags...)); err != nil {
				t.Fatalf("Begin %s: %v", id, err)
			}
		}
		// Faults at fixed points of the run, with sagas in flight.
		if crashed != nil {
			if err := <-crashed; err != nil {
				t.Fatal(err)
			}
			crashed = nil
		}
		switch faultAt[b] {
		case "coordinator":
			// The crash happens while the next batch is being started:
			// the client retries until the node is back.
			crashed = make(chan error, 1)
			go func() { crashed <- crashCoordinator() }()
		case "payment":
			// The payment node crashes while the next batch runs, and a
			// new one takes over the same data a little later.
			crashed = make(chan error, 1)
			go func() {
				t0 := time.Now()
				defer func() { t.Logf("payment outage %v", time.Since(t0)) }()
				// Requests go on to the crashed node until the cluster
				// has declared it dead and the replacement is up.
				old := pay.node
				old.Crash()
				for deadline := time.Now().Add(10 * time.Second); ; {
					if m, ok := invNode.Member(old.Name()); ok && m.State != cluster.Alive {
						break
					}
					if time.Now().After(deadline) {
						crashed <- errors.New("the payment node's crash was not detected")
						return
					}
					time.Sleep(time.Millisecond)
				}
				cfg := cluster.Local(fmt.Sprintf("pay-%d", b))
				cfg.Seeds = seeds
				cfg.Logger = zap.NewNop()
				nd, err := cluster.NewNode(cfg)
				if err == nil {
					err = nd.Start(ctx)
				}
				if err != nil {
					crashed <- err
					return
				}
				t.Cleanup(nd.Stop)
				pid, err := nd.System().Spawn(ParticipantProps(s.payB, s.payment()))
				pay.node = nd
				pay.pid.Store(pid)
				crashed <- err
			}()
		}
		// Keep the number of sagas in flight bounded.
		waitFor(t, "in-flight sagas drain", time.Minute, func() bool {
			mu.Lock()
			m := mgr
			mu.Unlock()
			return len(m.List(Running, Compensating)) < batch/2
		})
	}
	if crashed != nil {
		if err := <-crashed; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	m := mgr
	mu.Unlock()
	waitFor(t, "every saga ends", 2*time.Minute, func() bool { return len(m.List(Committed, Compensated)) == n })
	close(stop)
	<-chaosDone

	got := map[string]Status{}
	for _, info := range m.List() {
		got[info.ID] = info.Status
	}
	if len(got) != n {
		t.Fatalf("%d sagas in the journal, want %d", len(got), n)
	}
	wrong := 0
	for id, st := range want {
		if got[id] != st {
			wrong++
			if wrong <= 5 {
				h, _ := m.History(id)
				t.Errorf("saga %s ended %s, want %s; history:", id, got[id], st)
				for _, ev := range h {
					t.Logf("  %v", ev)
				}
			}
		}
	}
	if wrong > 0 {
		t.Fatalf("%d sagas ended differently than without faults", wrong)
	}
	s.check(t, got)
	if restarts != 2 || kills.Load() == 0 {
		t.Fatalf("faults injected: %d coordinator node crashes, %d coordinator kills", restarts, kills.Load())
	}
	failedAttempts, resends := 0, 0
	for id := range got {
		h, _ := m.History(id)
		for _, ev := range h {
			if ev.Kind == sagapb.EventKind_EVENT_ATTEMPT_FAILED {
				failedAttempts++
			}
			if ev.Kind == sagapb.EventKind_EVENT_SENT && ev.Attempt > 1 {
				resends++
			}
		}
	}
	ps, is, ords := s.payB.Stats(), s.invB.Stats(), s.ordB.Stats()
	t.Logf("%d sagas, %d coordinator kills, 2 coordinator node crashes, 1 payment node crash; %d resends, %d failed attempts; barrier duplicates: inventory %d, payment %d, order %d; null compensations %d",
		n, kills.Load(), resends, failedAttempts, is.Duplicates, ps.Duplicates, ords.Duplicates, is.NullCompensations+ps.NullCompensations+ords.NullCompensations)
}
