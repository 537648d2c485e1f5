package saga

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

// Step names of the shop's order saga.
const (
	stepReserve = "Reserve inventory"
	stepPay     = "Process payment"
	stepOrder   = "Update order status"
)

// order is a saga input: "qty:amount:flags", flags a comma-separated list
// (failpay, failorder, failstock).
func order(qty, amount int, flags ...string) []byte {
	return []byte(fmt.Sprintf("%d:%d:%s", qty, amount, strings.Join(flags, ",")))
}

func parseOrder(b []byte) (qty, amount int, flags map[string]bool, err error) {
	parts := strings.SplitN(string(b), ":", 3)
	if len(parts) != 3 {
		return 0, 0, nil, fmt.Errorf("bad order %q", b)
	}
	qty, err1 := strconv.Atoi(parts[0])
	amount, err2 := strconv.Atoi(parts[1])
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, nil, err
	}
	flags = map[string]bool{}
	for _, f := range strings.Split(parts[2], ",") {
		if f != "" {
			flags[f] = true
		}
	}
	return qty, amount, flags, nil
}

// shop is the participants' "database": inventory, payments and orders,
// with one barrier per service. It lives outside any actor system, as a
// database would, so it survives killed actors and crashed nodes.
type shop struct {
	mu           sync.Mutex
	initial      int
	stock        int
	reserved     int
	reservations map[string]int
	charges      map[string]int // saga -> standing charge
	chargeCount  map[string]int // saga -> charges ever applied
	orders       map[string]string

	invB, payB, ordB *Barrier

	// faults, consulted by the handlers (nil: none)
	payTransient  func(req Request) error // an error makes the action fail transiently
	releaseFails  func(req Request) error // an error makes the compensation fail
	payGate       chan struct{}           // if set, payment actions wait for it to close
	payGateSignal chan string             // if set, told when a payment action waits at the gate
}

func newShop(stock int) *shop {
	return &shop{initial: stock, stock: stock, reservations: map[string]int{}, charges: map[string]int{},
		chargeCount: map[string]int{}, orders: map[string]string{},
		invB: NewBarrier(), payB: NewBarrier(), ordB: NewBarrier()}
}

func (s *shop) inventory() Handler {
	return Handler{
		Action: func(req Request) ([]byte, error) {
			qty, _, flags, err := parseOrder(req.Input)
			if err != nil {
				return nil, Fail(err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if flags["failstock"] || s.stock < qty {
				return nil, Failf("out of stock: %d left, %d wanted", s.stock, qty)
			}
			s.stock -= qty
			s.reserved += qty
			s.reservations[req.SagaID] = qty
			return []byte("reservation-" + req.SagaID), nil
		},
		Compensate: func(req Request) error {
			if s.releaseFails != nil {
				if err := s.releaseFails(req); err != nil {
					return err
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			q := s.reservations[req.SagaID]
			delete(s.reservations, req.SagaID)
			s.stock += q
			s.reserved -= q
			return nil
		},
	}
}

func (s *shop) payment() Handler {
	return Handler{
		Action: func(req Request) ([]byte, error) {
			_, amount, flags, err := parseOrder(req.Input)
			if err != nil {
				return nil, Fail(err)
			}
			if s.payGate != nil {
				if s.payGateSignal != nil {
					s.payGateSignal <- req.SagaID
				}
				<-s.payGate
			}
			if s.payTransient != nil {
				if err := s.payTransient(req); err != nil {
					return nil, err
				}
			}
			if flags["failpay"] {
				return nil, Failf("card declined")
			}
			if string(req.Results[stepReserve]) != "reservation-"+req.SagaID {
				return nil, Failf("payment without the reservation's result (got %q)", req.Results[stepReserve])
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.charges[req.SagaID] = amount
			s.chargeCount[req.SagaID]++
			return []byte("charge-" + req.SagaID), nil
		},
		Compensate: func(req Request) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.charges, req.SagaID)
			return nil
		},
	}
}

func (s *shop) orderService() Handler {
	return Handler{
		Action: func(req Request) ([]byte, error) {
			_, _, flags, err := parseOrder(req.Input)
			if err != nil {
				return nil, Fail(err)
			}
			if flags["failorder"] {
				return nil, Failf("order rejected")
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.orders[req.SagaID] = "confirmed"
			return nil, nil
		},
		Compensate: func(req Request) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.orders, req.SagaID)
			return nil
		},
	}
}

// check verifies the shop's invariants against the sagas' outcomes.
func (s *shop) check(t *testing.T, outcomes map[string]Status) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stock+s.reserved != s.initial {
		t.Errorf("stock %d + reserved %d != initial %d", s.stock, s.reserved, s.initial)
	}
	sum := 0
	for _, q := range s.reservations {
		sum += q
	}
	if sum != s.reserved {
		t.Errorf("reservations sum to %d, reserved is %d", sum, s.reserved)
	}
	for id, n := range s.chargeCount {
		if n > 1 {
			t.Errorf("saga %s charged %d times", id, n)
		}
	}
	for id := range s.charges {
		if s.orders[id] != "confirmed" {
			t.Errorf("saga %s: payment without an order", id)
		}
	}
	for id, st := range outcomes {
		_, res := s.reservations[id]
		_, chg := s.charges[id]
		_, ord := s.orders[id]
		switch st {
		case Committed:
			if !res || !chg || !ord {
				t.Errorf("committed saga %s: reservation %v, charge %v, order %v", id, res, chg, ord)
			}
		case Compensated:
			if res || chg || ord {
				t.Errorf("compensated saga %s left reservation %v, charge %v, order %v", id, res, chg, ord)
			}
		default:
			t.Errorf("saga %s ended %s", id, st)
		}
	}
}

// env is a single-node test environment: an actor system, the shop's three
// participant actors and a manager.
type env struct {
	t    *testing.T
	sys  *actor.System
	shop *shop
	inv  *actor.PID
	pay  *actor.PID
	ord  *actor.PID
	dir  string
	m    *Manager
	cfg  Config
}

func newSystem(t *testing.T) *actor.System {
	t.Helper()
	sys, err := actor.NewSystem(actor.Config{Name: "test", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return sys
}

func spawn(t *testing.T, sys *actor.System, p *actor.Props) *actor.PID {
	t.Helper()
	pid, err := sys.Spawn(p)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// orderSaga is the shop's saga definition with the given participants.
func orderSaga(inv, pay, ord Resolver, tune func(*Step)) *Definition {
	d := &Definition{Name: "order", Steps: []Step{
		{Name: stepReserve, Compensation: "Release inventory", Participant: inv},
		{Name: stepPay, Compensation: "Refund payment", Participant: pay},
		{Name: stepOrder, Compensation: "Cancel order", Participant: ord},
	}}
	for i := range d.Steps {
		d.Steps[i].Timeout = 10 * time.Second
		d.Steps[i].Retry = RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
		d.Steps[i].CompensationRetry = RetryPolicy{MaxAttempts: 6, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
		if tune != nil {
			tune(&d.Steps[i])
		}
	}
	return d
}

func newEnv(t *testing.T, tune func(*Step)) *env {
	t.Helper()
	e := &env{t: t, sys: newSystem(t), shop: newShop(1000), dir: t.TempDir()}
	e.inv = spawn(t, e.sys, ParticipantProps(e.shop.invB, e.shop.inventory()))
	e.pay = spawn(t, e.sys, ParticipantProps(e.shop.payB, e.shop.payment()))
	e.ord = spawn(t, e.sys, ParticipantProps(e.shop.ordB, e.shop.orderService()))
	e.cfg = Config{Dir: e.dir, Definitions: []*Definition{orderSaga(To(e.inv), To(e.pay), To(e.ord), tune)}}
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	m, err := Start(e.sys, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
	e.t.Cleanup(func() { m.Close(context.Background()) })
}

func (e *env) run(id string, input []byte) Info {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	info, err := e.m.Run(ctx, "order", id, input)
	if err != nil {
		e.t.Fatalf("run %s: %v (history %v)", id, err, e.history(id))
	}
	return info
}

func (e *env) history(id string) []string {
	h, _ := e.m.History(id)
	out := make([]string, len(h))
	for i, ev := range h {
		out[i] = strings.TrimPrefix(ev.String(), id+" ")
	}
	return out
}

// kinds lists the history as "KIND step phase" strings without attempts
// and errors, for comparisons.
func kinds(h []Event) []string {
	var out []string
	for _, ev := range h {
		s := strings.TrimPrefix(ev.Kind.String(), "EVENT_")
		if ev.Step >= 0 {
			s += fmt.Sprintf(" %d", ev.Step)
		}
		if ev.Phase == sagapb.Phase_PHASE_COMPENSATION {
			s += " comp"
		}
		out = append(out, s)
	}
	return out
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
