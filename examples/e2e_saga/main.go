// Command e2e_saga runs order sagas across a two-node cluster in one
// process: a coordinator node, whose saga journal lives in its data
// directory, and a services node with three participant actors (inventory,
// payment, order). It prints the story of four sagas:
//
//  1. every step succeeds and the saga commits;
//  2. the payment is declined and the inventory reservation is compensated;
//  3. the saga's coordinator actor is killed during the payment; its
//     supervisor restarts it and it resumes from the journal;
//  4. the coordinator's node crashes during the last step; the node starts
//     again on the same data directory and the saga resumes from the journal.
//
// Finally it checks the participants' data: each saga applied exactly what
// its outcome says, and no payment was applied twice.
//
//	go run ./examples/e2e_saga
//
// Each step line is printed when the step's result is durable in the journal
// (saga.Config.OnEvent). The nodes' own logs are discarded. Slow services are simulated by holding a request in
// the participant actor until the demo has injected its fault.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
	"github.com/distributed-go/distributed/cluster"
)

func main() {
	watchdog := time.AfterFunc(60*time.Second, func() {
		fmt.Fprintln(os.Stderr, "error: the demo did not finish within 60s")
		os.Exit(2)
	})
	err := run()
	watchdog.Stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// out receives the story (standard output; a buffer in the test).
var out io.Writer = os.Stdout

func info(format string, args ...any) { fmt.Fprintf(out, "[INFO] "+format+"\n", args...) }
func warn(format string, args ...any) { fmt.Fprintf(out, "[WARN] "+format+"\n", args...) }

// Order is a saga's input.
type Order struct {
	ID     string
	Item   string
	Qty    int
	Amount int // cents
	Card   string
}

// services is the participants' data: it stands for their databases, so it
// outlives the actors and nodes that serve it.
type services struct {
	mu       sync.Mutex
	initial  int
	stock    int
	reserved map[string]int
	charges  map[string]int
	charged  map[string]int // how many times each order was charged
	orders   map[string]string

	invB, payB, ordB *saga.Barrier

	// hold, if set for an order id and step, keeps that request in the
	// participant until the channel is closed (a slow service).
	holdMu sync.Mutex
	hold   map[string]chan struct{}
}

func newServices(stock int) *services {
	return &services{initial: stock, stock: stock, reserved: map[string]int{}, charges: map[string]int{},
		charged: map[string]int{}, orders: map[string]string{}, hold: map[string]chan struct{}{},
		invB: saga.NewBarrier(), payB: saga.NewBarrier(), ordB: saga.NewBarrier()}
}

// slow makes the next request of step for order wait until release.
func (s *services) slow(order, step string) (release func()) {
	ch := make(chan struct{})
	s.holdMu.Lock()
	s.hold[order+"/"+step] = ch
	s.holdMu.Unlock()
	return func() { close(ch) }
}

func (s *services) wait(order, step string) {
	s.holdMu.Lock()
	ch := s.hold[order+"/"+step]
	delete(s.hold, order+"/"+step)
	s.holdMu.Unlock()
	if ch != nil {
		<-ch
	}
}

func decode(req saga.Request) (Order, error) {
	var o Order
	if err := json.Unmarshal(req.Input, &o); err != nil {
		return o, saga.Fail(fmt.Errorf("bad order: %w", err))
	}
	return o, nil
}

func (s *services) inventory() saga.Handler {
	return saga.Handler{
		Action: func(req saga.Request) ([]byte, error) {
			o, err := decode(req)
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.stock < o.Qty {
				return nil, saga.Failf("only %d %s left", s.stock, o.Item)
			}
			s.stock -= o.Qty
			s.reserved[o.ID] = o.Qty
			return nil, nil
		},
		Compensate: func(req saga.Request) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.stock += s.reserved[req.SagaID]
			delete(s.reserved, req.SagaID)
			return nil
		},
	}
}

func (s *services) payment() saga.Handler {
	return saga.Handler{
		Action: func(req saga.Request) ([]byte, error) {
			o, err := decode(req)
			if err != nil {
				return nil, err
			}
			s.wait(o.ID, req.Step)
			if o.Card == "declined" {
				return nil, saga.Failf("card declined")
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.charges[o.ID] = o.Amount
			s.charged[o.ID]++
			return []byte(fmt.Sprintf("txn-%s", o.ID)), nil
		},
		Compensate: func(req saga.Request) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.charges, req.SagaID)
			return nil
		},
	}
}

func (s *services) order() saga.Handler {
	return saga.Handler{
		Action: func(req saga.Request) ([]byte, error) {
			o, err := decode(req)
			if err != nil {
				return nil, err
			}
			s.wait(o.ID, req.Step)
			s.mu.Lock()
			defer s.mu.Unlock()
			s.orders[o.ID] = "paid, " + string(req.Results["Process payment"])
			return nil, nil
		},
		Compensate: func(req saga.Request) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.orders, req.SagaID)
			return nil
		},
	}
}

// demo is the running cluster.
type demo struct {
	ctx      context.Context
	log      *zap.Logger
	svc      *services
	services *cluster.Node
	pids     map[string]*actor.PID
	dataDir  string
	def      *saga.Definition
	seeds    []string
	boots    int

	mu    sync.Mutex
	coord *cluster.Node
	mgr   *saga.Manager
	sent  chan saga.Event // SENT events, for the fault injection
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	// The nodes' own logs are discarded: a crashed node makes the
	// transport report lost connections, which is the point of the demo.
	log := zap.NewNop()
	dataDir, err := os.MkdirTemp("", "e2e_saga-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)

	info("Starting Saga transaction demo")
	d := &demo{ctx: ctx, log: log, svc: newServices(100), dataDir: dataDir, pids: map[string]*actor.PID{},
		sent: make(chan saga.Event, 64)}
	scfg := cluster.Local("services")
	scfg.Logger = log
	d.services, err = startNode(ctx, scfg)
	if err != nil {
		return err
	}
	defer d.services.Stop()
	d.seeds = []string{d.services.GossipAddress()}
	for name, h := range map[string]struct {
		b *saga.Barrier
		h saga.Handler
	}{"inventory": {d.svc.invB, d.svc.inventory()}, "payment": {d.svc.payB, d.svc.payment()}, "order": {d.svc.ordB, d.svc.order()}} {
		pid, err := d.services.System().SpawnNamed(saga.ParticipantProps(h.b, h.h), name)
		if err != nil {
			return err
		}
		d.pids[name] = pid
	}
	d.def = &saga.Definition{Name: "place-order", Steps: []saga.Step{
		{Name: "Reserve inventory", Compensation: "Release inventory", Participant: saga.To(d.pids["inventory"])},
		{Name: "Process payment", Compensation: "Refund payment", Participant: saga.To(d.pids["payment"])},
		{Name: "Update order status", Compensation: "Cancel order", Participant: saga.To(d.pids["order"])},
	}}
	if err := d.bootCoordinator(); err != nil {
		return err
	}
	defer func() {
		d.mu.Lock()
		m, nd := d.mgr, d.coord
		d.mu.Unlock()
		m.Close(context.Background())
		nd.Stop()
	}()
	info("Cluster: node %s runs the saga coordinators (journal in its data directory), node %s runs the inventory, payment and order actors",
		d.coord.Name(), d.services.Name())

	outcomes := map[string]saga.Status{}

	// 1. Every step succeeds.
	fmt.Fprintln(out)
	o := Order{ID: "order-1001", Item: "widget", Qty: 2, Amount: 3000, Card: "ok"}
	info("Saga %s: %d x %s, %s", o.ID, o.Qty, o.Item, money(o.Amount))
	st, err := d.runSaga(o)
	if err != nil {
		return err
	}
	outcomes[o.ID] = st

	// 2. The payment is declined.
	fmt.Fprintln(out)
	o = Order{ID: "order-1002", Item: "gadget", Qty: 1, Amount: 12000, Card: "declined"}
	info("Saga %s: %d x %s, %s, with a card that will be declined", o.ID, o.Qty, o.Item, money(o.Amount))
	if st, err = d.runSaga(o); err != nil {
		return err
	}
	outcomes[o.ID] = st

	// 3. The coordinator actor is killed during the payment.
	fmt.Fprintln(out)
	o = Order{ID: "order-1003", Item: "widget", Qty: 3, Amount: 4500, Card: "ok"}
	info("Saga %s: %d x %s, %s; its coordinator will be killed during Step 2", o.ID, o.Qty, o.Item, money(o.Amount))
	release := d.svc.slow(o.ID, "Process payment")
	if err := d.begin(o); err != nil {
		return err
	}
	if _, err := d.awaitSent(o.ID, 1); err != nil {
		return err
	}
	m, coordNode := d.current()
	old, ok := m.Coordinator(o.ID)
	if !ok {
		return errors.New("no coordinator for " + o.ID)
	}
	if err := coordNode.System().Kill(old); err != nil {
		return err
	}
	warn("Coordinator %s killed during Step 2: Process payment", old)
	pid, err := d.awaitCoordinator(o.ID, old)
	if err != nil {
		return err
	}
	in, _ := m.Get(o.ID)
	info("Supervisor restarted the coordinator as %s; it resumes from the journal at Step %d", pid, in.Step+1)
	release()
	if st, err = d.wait(o.ID); err != nil {
		return err
	}
	outcomes[o.ID] = st

	// 4. The coordinator's node crashes during the last step.
	fmt.Fprintln(out)
	o = Order{ID: "order-1004", Item: "gizmo", Qty: 1, Amount: 999, Card: "ok"}
	info("Saga %s: %d x %s, %s; the coordinator's node will crash during Step 3", o.ID, o.Qty, o.Item, money(o.Amount))
	release = d.svc.slow(o.ID, "Update order status")
	if err := d.begin(o); err != nil {
		return err
	}
	if _, err := d.awaitSent(o.ID, 2); err != nil {
		return err
	}
	m, coordNode = d.current()
	coordNode.Crash()
	if err := m.Close(ctx); err != nil {
		return err
	}
	warn("Node %s crashed during Step 3: Update order status", coordNode.Name())
	release() // the order service finishes; its reply is lost with the node
	if err := d.bootCoordinator(); err != nil {
		return err
	}
	m, coordNode = d.current()
	var resumed []string
	for _, in := range m.List(saga.Running, saga.Compensating) {
		resumed = append(resumed, in.ID)
	}
	in, _ = m.Get(o.ID)
	info("Node %s started on the same data directory; the journal has %d saga(s), unfinished: %s, resuming at Step %d",
		coordNode.Name(), len(m.List()), strings.Join(resumed, ", "), in.Step+1)
	if st, err = d.wait(o.ID); err != nil {
		return err
	}
	outcomes[o.ID] = st

	fmt.Fprintln(out)
	return d.check(outcomes)
}

func money(cents int) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) }

func startNode(ctx context.Context, cfg cluster.Config) (*cluster.Node, error) {
	nd, err := cluster.NewNode(cfg)
	if err != nil {
		return nil, err
	}
	if err := nd.Start(ctx); err != nil {
		return nil, err
	}
	return nd, nil
}

// bootCoordinator starts (or restarts) the coordinator node on its data
// directory, and the saga manager on it, which resumes unfinished sagas.
func (d *demo) bootCoordinator() error {
	d.boots++
	name := "coordinator"
	if d.boots > 1 {
		name = fmt.Sprintf("coordinator-%d", d.boots)
	}
	cfg := cluster.Local(name)
	cfg.Logger = d.log
	cfg.Seeds = d.seeds
	cfg.DataDir = filepath.Join(d.dataDir, "coordinator")
	nd, err := startNode(d.ctx, cfg)
	if err != nil {
		return err
	}
	m, err := saga.Start(nd.System(), saga.Config{
		Dir:         filepath.Join(nd.DataDir(), "saga"),
		Definitions: []*saga.Definition{d.def},
		OnEvent:     d.onEvent,
	})
	if err != nil {
		nd.Stop()
		return err
	}
	d.mu.Lock()
	d.coord, d.mgr = nd, m
	d.mu.Unlock()
	return nil
}

func (d *demo) current() (*saga.Manager, *cluster.Node) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mgr, d.coord
}

// onEvent prints each durable step result.
func (d *demo) onEvent(ev saga.Event) {
	n := ev.Step + 1
	switch {
	case ev.Kind == sagapb.EventKind_EVENT_SENT:
		select {
		case d.sent <- ev:
		default:
		}
	case ev.Kind == sagapb.EventKind_EVENT_DONE && ev.Phase == sagapb.Phase_PHASE_ACTION:
		info("Step %d: %s - SUCCESS", n, ev.StepName)
	case ev.Kind == sagapb.EventKind_EVENT_FAILED:
		info("Step %d: %s - FAILED (%s)", n, ev.StepName, ev.Error)
	case ev.Kind == sagapb.EventKind_EVENT_ATTEMPT_FAILED:
		warn("Step %d: %s - attempt %d failed (%s), retrying", n, ev.StepName, ev.Attempt, ev.Error)
	case ev.Kind == sagapb.EventKind_EVENT_DONE:
		info("Compensating Step %d: %s - SUCCESS", n, ev.StepName)
	case ev.Kind == sagapb.EventKind_EVENT_STUCK:
		warn("Compensating Step %d: %s - gave up; the saga needs an operator (%s)", n, ev.StepName, ev.Error)
	}
}

func (d *demo) begin(o Order) error {
	input, err := json.Marshal(o)
	if err != nil {
		return err
	}
	m, _ := d.current()
	return m.Begin(d.ctx, d.def.Name, o.ID, input)
}

func (d *demo) wait(id string) (saga.Status, error) {
	m, _ := d.current()
	in, err := m.Wait(d.ctx, id)
	if err != nil {
		return 0, err
	}
	switch in.Status {
	case saga.Committed:
		info("Saga transaction completed successfully")
	case saga.Compensated:
		info("Saga transaction rolled back successfully")
	default:
		warn("Saga %s is %s: %s", id, in.Status, in.Error)
	}
	return in.Status, nil
}

func (d *demo) runSaga(o Order) (saga.Status, error) {
	if err := d.begin(o); err != nil {
		return 0, err
	}
	return d.wait(o.ID)
}

// awaitSent waits until the saga's step is sent (durably recorded first).
func (d *demo) awaitSent(id string, step int) (saga.Event, error) {
	for {
		select {
		case ev := <-d.sent:
			if ev.Saga == id && ev.Step == step && ev.Phase == sagapb.Phase_PHASE_ACTION {
				return ev, nil
			}
		case <-d.ctx.Done():
			return saga.Event{}, fmt.Errorf("saga %s: step %d not sent: %w", id, step+1, d.ctx.Err())
		}
	}
}

// awaitCoordinator waits for a coordinator incarnation other than old.
func (d *demo) awaitCoordinator(id string, old *actor.PID) (*actor.PID, error) {
	m, _ := d.current()
	for {
		if pid, ok := m.Coordinator(id); ok && !pid.Equal(old) {
			return pid, nil
		}
		select {
		case <-d.ctx.Done():
			return nil, fmt.Errorf("saga %s: no new coordinator: %w", id, d.ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// check compares the services' data with the sagas' outcomes.
func (d *demo) check(outcomes map[string]saga.Status) error {
	s := d.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	reserved := 0
	for _, q := range s.reserved {
		reserved += q
	}
	info("Inventory: stock %d + reserved %d = %d (initial %d)", s.stock, reserved, s.stock+reserved, s.initial)
	var problems []string
	if s.stock+reserved != s.initial {
		problems = append(problems, "inventory does not add up")
	}
	ids := make([]string, 0, len(outcomes))
	for id := range outcomes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		charge, paid := s.charges[id]
		status, ordered := s.orders[id]
		_, held := s.reserved[id]
		line := fmt.Sprintf("%s %s: reserved %v, charged %v", id, outcomes[id], held, paid)
		if paid {
			line += " " + money(charge)
		}
		if ordered {
			line += ", order " + status
		}
		if s.charged[id] > 0 {
			line += fmt.Sprintf(" (payment applied %d time(s))", s.charged[id])
		}
		info("%s", line)
		committed := outcomes[id] == saga.Committed
		if held != committed || paid != committed || ordered != committed {
			problems = append(problems, id+" does not match its outcome")
		}
		if s.charged[id] > 1 {
			problems = append(problems, id+" was charged twice")
		}
	}
	pb := s.payB.Stats()
	info("Payment barrier: %d actions applied, %d duplicates answered without charging again", pb.Actions, pb.Duplicates)
	if outcomes["order-1001"] != saga.Committed || outcomes["order-1002"] != saga.Compensated ||
		outcomes["order-1003"] != saga.Committed || outcomes["order-1004"] != saga.Committed {
		problems = append(problems, fmt.Sprintf("unexpected outcomes %v", outcomes))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	info("All participants agree with the saga outcomes")
	return nil
}
