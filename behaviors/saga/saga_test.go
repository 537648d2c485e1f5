package saga

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

func TestAllStepsSucceed(t *testing.T) {
	e := newEnv(t, nil)
	info := e.run("o1", order(2, 30))
	if info.Status != Committed {
		t.Fatalf("status %s, want committed; history %v", info.Status, e.history("o1"))
	}
	h, err := e.m.History("o1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"STARTED", "SENT 0", "DONE 0", "SENT 1", "DONE 1", "SENT 2", "DONE 2", "COMMITTED"}
	if got := kinds(h); !reflect.DeepEqual(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	if h[1].StepName != stepReserve || h[3].StepName != stepPay || h[5].StepName != stepOrder {
		t.Fatalf("step names in history: %v", e.history("o1"))
	}
	e.shop.check(t, map[string]Status{"o1": Committed})
	if e.shop.stock != 998 || e.shop.charges["o1"] != 30 {
		t.Fatalf("stock %d, charge %d", e.shop.stock, e.shop.charges["o1"])
	}
	// The coordinator stops once the saga is over.
	waitFor(t, "coordinator stops", 5*time.Second, func() bool { _, ok := e.m.Coordinator("o1"); return !ok })
}

func TestBusinessFailureAtEachStep(t *testing.T) {
	cases := []struct {
		flag string
		want []string
	}{
		{"failstock", []string{"STARTED", "SENT 0", "FAILED 0", "COMPENSATED"}},
		{"failpay", []string{"STARTED", "SENT 0", "DONE 0", "SENT 1", "FAILED 1",
			"SENT 0 comp", "DONE 0 comp", "COMPENSATED"}},
		{"failorder", []string{"STARTED", "SENT 0", "DONE 0", "SENT 1", "DONE 1", "SENT 2", "FAILED 2",
			"SENT 1 comp", "DONE 1 comp", "SENT 0 comp", "DONE 0 comp", "COMPENSATED"}},
	}
	for _, c := range cases {
		t.Run(c.flag, func(t *testing.T) {
			e := newEnv(t, nil)
			info := e.run("o1", order(3, 10, c.flag))
			if info.Status != Compensated {
				t.Fatalf("status %s, want compensated", info.Status)
			}
			h, _ := e.m.History("o1")
			if got := kinds(h); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("history %v, want %v", got, c.want)
			}
			for _, ev := range h {
				if ev.Kind == sagapb.EventKind_EVENT_FAILED && !ev.Business {
					t.Fatalf("FAILED not marked as a business failure: %v", ev)
				}
			}
			if info.Error == "" {
				t.Fatal("compensated saga without an error")
			}
			e.shop.check(t, map[string]Status{"o1": Compensated})
			// A business failure is never retried.
			if n := e.shop.payB.Stats().Actions + e.shop.invB.Stats().Actions + e.shop.ordB.Stats().Actions; n > 3 {
				t.Fatalf("%d actions run", n)
			}
		})
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	e := newEnv(t, nil)
	var calls atomic.Int32
	e.shop.payTransient = func(Request) error {
		if calls.Add(1) <= 2 {
			return errors.New("payment gateway unavailable")
		}
		return nil
	}
	info := e.run("o1", order(1, 5))
	if info.Status != Committed {
		t.Fatalf("status %s; history %v", info.Status, e.history("o1"))
	}
	h, _ := e.m.History("o1")
	want := []string{"STARTED", "SENT 0", "DONE 0", "SENT 1", "ATTEMPT_FAILED 1", "SENT 1", "ATTEMPT_FAILED 1", "SENT 1",
		"DONE 1", "SENT 2", "DONE 2", "COMMITTED"}
	if got := kinds(h); !reflect.DeepEqual(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	if h[7].Attempt != 3 || !strings.Contains(h[4].Error, "gateway unavailable") {
		t.Fatalf("attempts or errors not recorded: %v", e.history("o1"))
	}
	e.shop.check(t, map[string]Status{"o1": Committed})
}

func TestRetriesExhaustedCompensateTheUncertainStep(t *testing.T) {
	e := newEnv(t, nil)
	e.shop.payTransient = func(Request) error { return errors.New("timeout talking to the bank") }
	info := e.run("o1", order(1, 5))
	if info.Status != Compensated {
		t.Fatalf("status %s; history %v", info.Status, e.history("o1"))
	}
	h, _ := e.m.History("o1")
	got := kinds(h)
	// 4 attempts (the policy's limit), then FAILED, then the payment is
	// compensated too (its outcome was unknown), then the reservation.
	want := []string{"STARTED", "SENT 0", "DONE 0",
		"SENT 1", "ATTEMPT_FAILED 1", "SENT 1", "ATTEMPT_FAILED 1", "SENT 1", "ATTEMPT_FAILED 1", "SENT 1", "ATTEMPT_FAILED 1",
		"FAILED 1", "SENT 1 comp", "DONE 1 comp", "SENT 0 comp", "DONE 0 comp", "COMPENSATED"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	if h[11].Business {
		t.Fatal("exhausted retries recorded as a business failure")
	}
	// The payment service never applied the action: its compensation
	// was a null compensation.
	if st := e.shop.payB.Stats(); st.NullCompensations != 1 || st.Compensations != 0 {
		t.Fatalf("payment barrier %+v", st)
	}
	e.shop.check(t, map[string]Status{"o1": Compensated})
}

func TestTimeoutNullCompensationAndSuspension(t *testing.T) {
	sys := newSystem(t)
	s := newShop(10)
	inv := spawn(t, sys, ParticipantProps(s.invB, s.inventory()))
	ord := spawn(t, sys, ParticipantProps(s.ordB, s.orderService()))
	// The proxy stands for a network that loses (holds back) the payment
	// actions; compensations reach the payment service's barrier.
	held := make(chan *sagapb.StepRequest, 16)
	proxy := spawn(t, sys, actor.PropsFromFunc(func(ctx *actor.Context) {
		req, ok := ctx.Message().(*sagapb.StepRequest)
		if !ok {
			return
		}
		if req.Phase == sagapb.Phase_PHASE_ACTION {
			held <- req
			return
		}
		ctx.Reply(s.payB.Apply(req, s.payment()))
	}))
	def := orderSaga(To(inv), To(proxy), To(ord), func(st *Step) {
		if st.Name == stepPay {
			st.Timeout = 20 * time.Millisecond
			st.Retry.MaxAttempts = 2
		}
	})
	m, err := Start(sys, Config{Dir: t.TempDir(), Definitions: []*Definition{def}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := m.Run(ctx, "order", "o1", order(1, 7))
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != Compensated {
		t.Fatalf("status %s", info.Status)
	}
	h, _ := m.History("o1")
	timeouts := 0
	for _, ev := range h {
		if ev.Kind == sagapb.EventKind_EVENT_ATTEMPT_FAILED && ev.Phase == sagapb.Phase_PHASE_ACTION &&
			strings.Contains(ev.Error, "no reply within") {
			timeouts++
		}
	}
	if timeouts != 2 {
		t.Fatalf("%d timeouts in history %v", timeouts, kinds(h))
	}
	if st := s.payB.Stats(); st.NullCompensations != 1 {
		t.Fatalf("payment barrier %+v, want one null compensation", st)
	}
	// The delayed action finally reaches the payment service: the barrier
	// refuses it (suspension), and nothing is charged.
	late := <-held
	r := s.payB.Apply(late, s.payment())
	if r.Outcome != sagapb.Outcome_OUTCOME_BUSINESS_FAILURE {
		t.Fatalf("late action answered %v", r)
	}
	if st := s.payB.Stats(); st.Suspended != 1 || st.Actions != 0 {
		t.Fatalf("payment barrier %+v", st)
	}
	s.check(t, map[string]Status{"o1": Compensated})
}

func TestCompensationIsRetriedUntilItSucceeds(t *testing.T) {
	e := newEnv(t, nil)
	var calls atomic.Int32
	e.shop.releaseFails = func(Request) error {
		if calls.Add(1) <= 3 {
			return errors.New("inventory database locked")
		}
		return nil
	}
	info := e.run("o1", order(4, 5, "failpay"))
	if info.Status != Compensated {
		t.Fatalf("status %s; history %v", info.Status, e.history("o1"))
	}
	h, _ := e.m.History("o1")
	fails := 0
	for _, ev := range h {
		if ev.Kind == sagapb.EventKind_EVENT_ATTEMPT_FAILED && ev.Phase == sagapb.Phase_PHASE_COMPENSATION {
			fails++
			if ev.StepName != "Release inventory" {
				t.Fatalf("compensation event named %q", ev.StepName)
			}
		}
	}
	if fails != 3 {
		t.Fatalf("%d failed compensation attempts, want 3: %v", fails, e.history("o1"))
	}
	e.shop.check(t, map[string]Status{"o1": Compensated})
}

func gauge(t *testing.T, sys *actor.System, name string) float64 {
	t.Helper()
	mfs, err := sys.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.Metric {
			sum += value(m)
		}
		return sum
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func TestStuckCompensationWaitsForAnOperator(t *testing.T) {
	e := newEnv(t, nil)
	var broken atomic.Bool
	broken.Store(true)
	e.shop.releaseFails = func(Request) error {
		if broken.Load() {
			return errors.New("inventory service misconfigured")
		}
		return nil
	}
	info := e.run("o1", order(4, 5, "failorder"))
	if info.Status != Stuck {
		t.Fatalf("status %s, want stuck; history %v", info.Status, e.history("o1"))
	}
	if info.Step != 0 || !strings.Contains(info.Error, "misconfigured") {
		t.Fatalf("stuck info %+v", info)
	}
	if l := e.m.List(Stuck); len(l) != 1 || l[0].ID != "o1" {
		t.Fatalf("List(Stuck) = %v", l)
	}
	if l := e.m.List(Committed, Compensated); len(l) != 0 {
		t.Fatalf("List(final) = %v", l)
	}
	if g := gauge(t, e.sys, "saga_stuck"); g != 1 {
		t.Fatalf("saga_stuck = %v", g)
	}
	// The payment was refunded; the reservation is still held.
	if _, ok := e.shop.charges["o1"]; ok {
		t.Fatal("payment not refunded")
	}
	// Stuck survives a restart of the manager: it is in the journal.
	e.m.Close(context.Background())
	e.start()
	if info, _ := e.m.Get("o1"); info.Status != Stuck {
		t.Fatalf("after restart: %s", info.Status)
	}
	if g := gauge(t, e.sys, "saga_stuck"); g != 1 {
		t.Fatalf("after restart saga_stuck = %v", g)
	}
	if err := e.m.Resume(context.Background(), "o2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resume(unknown) = %v", err)
	}
	// The operator fixes the inventory service and resumes the saga.
	broken.Store(false)
	if err := e.m.Resume(context.Background(), "o1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := e.m.Wait(ctx, "o1")
	if err != nil || info.Status != Compensated {
		t.Fatalf("after resume: %v %v", info.Status, err)
	}
	if err := e.m.Resume(context.Background(), "o1"); !errors.Is(err, ErrNotStuck) {
		t.Fatalf("Resume(compensated) = %v", err)
	}
	if g := gauge(t, e.sys, "saga_stuck"); g != 0 {
		t.Fatalf("saga_stuck = %v after resume", g)
	}
	e.shop.check(t, map[string]Status{"o1": Compensated})
}

// gate makes payment actions wait until the test opens the gate.
func (e *env) gate() (waiting chan string, open func()) {
	e.shop.payGate = make(chan struct{})
	e.shop.payGateSignal = make(chan string, 16)
	return e.shop.payGateSignal, func() { close(e.shop.payGate) }
}

func TestKilledCoordinatorResumes(t *testing.T) {
	e := newEnv(t, nil)
	waiting, open := e.gate()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.m.Begin(ctx, "order", "o1", order(1, 9)); err != nil {
		t.Fatal(err)
	}
	<-waiting // the payment action is in progress
	old, ok := e.m.Coordinator("o1")
	if !ok {
		t.Fatal("no coordinator")
	}
	if err := e.sys.Kill(old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new coordinator", 5*time.Second, func() bool {
		pid, ok := e.m.Coordinator("o1")
		return ok && !pid.Equal(old)
	})
	open()
	info, err := e.m.Wait(ctx, "o1")
	if err != nil || info.Status != Committed {
		t.Fatalf("status %s, err %v; history %v", info.Status, err, e.history("o1"))
	}
	// The new coordinator sent the payment again (attempt 2); the
	// barrier answered it as a duplicate.
	h, _ := e.m.History("o1")
	var paySends []int
	for _, ev := range h {
		if ev.Kind == sagapb.EventKind_EVENT_SENT && ev.Step == 1 {
			paySends = append(paySends, ev.Attempt)
		}
	}
	if !reflect.DeepEqual(paySends, []int{1, 2}) {
		t.Fatalf("payment sends %v; history %v", paySends, e.history("o1"))
	}
	if st := e.shop.payB.Stats(); st.Actions != 1 || st.Duplicates != 1 {
		t.Fatalf("payment barrier %+v", st)
	}
	e.shop.check(t, map[string]Status{"o1": Committed})
}

func TestRestartedManagerResumesFromTheJournal(t *testing.T) {
	for _, compensate := range []bool{false, true} {
		t.Run(fmt.Sprintf("compensate=%v", compensate), func(t *testing.T) {
			e := newEnv(t, nil)
			waiting, open := e.gate()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			input := order(1, 9)
			if compensate {
				input = order(1, 9, "failpay")
			}
			if err := e.m.Begin(ctx, "order", "o1", input); err != nil {
				t.Fatal(err)
			}
			<-waiting
			// The node goes down while the payment is in progress: the
			// coordinators and the journal first, then the participants
			// once the payment finished (its reply is lost). The
			// participants' data survives, as a database would.
			if err := e.m.Close(ctx); err != nil {
				t.Fatal(err)
			}
			open()
			if err := e.sys.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			e.shop.payGate = nil
			// The node comes back on the same data directory.
			e.sys = newSystem(t)
			e.inv = spawn(t, e.sys, ParticipantProps(e.shop.invB, e.shop.inventory()))
			e.pay = spawn(t, e.sys, ParticipantProps(e.shop.payB, e.shop.payment()))
			e.ord = spawn(t, e.sys, ParticipantProps(e.shop.ordB, e.shop.orderService()))
			e.cfg.Definitions = []*Definition{orderSaga(To(e.inv), To(e.pay), To(e.ord), nil)}
			e.start()
			info, err := e.m.Wait(ctx, "o1")
			want := Committed
			if compensate {
				want = Compensated
			}
			if err != nil || info.Status != want {
				t.Fatalf("status %s, err %v, want %s; history %v", info.Status, err, want, e.history("o1"))
			}
			e.shop.check(t, map[string]Status{"o1": want})
		})
	}
}

func TestBeginValidatesAndIsIdempotentByID(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.run("o1", order(1, 1))
	if err := e.m.Begin(ctx, "order", "o1", order(1, 1)); !errors.Is(err, ErrExists) {
		t.Fatalf("second Begin: %v, want ErrExists", err)
	}
	if err := e.m.Begin(ctx, "nope", "o2", nil); !errors.Is(err, ErrUnknownDefinition) {
		t.Fatalf("unknown definition: %v", err)
	}
	if err := e.m.Begin(ctx, "order", "", nil); err == nil {
		t.Fatal("empty id accepted")
	}
	if _, err := e.m.Wait(ctx, "o9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Wait(unknown) = %v", err)
	}
	if _, err := e.m.History("o9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("History(unknown) = %v", err)
	}
	if e.shop.chargeCount["o1"] != 1 {
		t.Fatal("duplicate Begin charged again")
	}
}

func TestDefinitionValidation(t *testing.T) {
	p := To(nil)
	cases := map[string]*Definition{
		"no name":        {Steps: []Step{{Name: "a", Participant: p}}},
		"no steps":       {Name: "d"},
		"dup step":       {Name: "d", Steps: []Step{{Name: "a", Participant: p}, {Name: "a", Participant: p}}},
		"no participant": {Name: "d", Steps: []Step{{Name: "a"}}},
		"bad jitter":     {Name: "d", Steps: []Step{{Name: "a", Participant: p, Retry: RetryPolicy{Jitter: 2}}}},
		"neg timeout":    {Name: "d", Steps: []Step{{Name: "a", Participant: p, Timeout: -1}}},
	}
	for name, d := range cases {
		if _, err := Start(newSystem(t), Config{Dir: t.TempDir(), Definitions: []*Definition{d}}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Start(newSystem(t), Config{}); err == nil {
		t.Error("no Dir accepted")
	}
}

func TestUnknownDefinitionOfAnUnfinishedSagaFailsStart(t *testing.T) {
	e := newEnv(t, nil)
	_, open := e.gate()
	defer open()
	if err := e.m.Begin(context.Background(), "order", "o1", order(1, 1)); err != nil {
		t.Fatal(err)
	}
	e.m.Close(context.Background())
	_, err := Start(newSystem(t), Config{Dir: e.dir})
	if !errors.Is(err, ErrUnknownDefinition) || !strings.Contains(err.Error(), "o1") {
		t.Fatalf("Start without the definition: %v", err)
	}
}

func TestQueriesAndMetrics(t *testing.T) {
	e := newEnv(t, nil)
	e.run("a", order(1, 1))
	e.run("b", order(1, 1, "failpay"))
	e.run("c", order(1, 1))
	if l := e.m.List(Committed); len(l) != 2 || l[0].ID != "a" || l[1].ID != "c" {
		t.Fatalf("List(Committed) = %v", l)
	}
	if l := e.m.List(Compensated); len(l) != 1 || l[0].ID != "b" {
		t.Fatalf("List(Compensated) = %v", l)
	}
	if l := e.m.List(); len(l) != 3 {
		t.Fatalf("List() = %v", l)
	}
	for name, want := range map[string]float64{
		"saga_started_total": 3, "saga_committed_total": 2, "saga_compensated_total": 1, "saga_stuck": 0,
		// 3+3 action replies and 2 actions + 1 compensation for b.
		"saga_step_duration_seconds": 9,
	} {
		if got := gauge(t, e.sys, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := gauge(t, e.sys, "saga_journal_fsyncs_total"); got < 1 {
		t.Errorf("saga_journal_fsyncs_total = %v", got)
	}
}

func TestBarrier(t *testing.T) {
	b := NewBarrier()
	var actions, comps int
	h := Handler{
		Action:     func(Request) ([]byte, error) { actions++; return []byte("r"), nil },
		Compensate: func(Request) error { comps++; return nil },
	}
	req := func(id string, phase sagapb.Phase) *sagapb.StepRequest {
		return &sagapb.StepRequest{SagaId: id, Step: "s", Phase: phase, IdempotencyKey: IdempotencyKey(id, "s", phase)}
	}
	act, comp := sagapb.Phase_PHASE_ACTION, sagapb.Phase_PHASE_COMPENSATION
	// Duplicate action: applied once, same answer.
	r1, r2 := b.Apply(req("a", act), h), b.Apply(req("a", act), h)
	if actions != 1 || string(r1.Result) != "r" || string(r2.Result) != "r" || r2.Outcome != sagapb.Outcome_OUTCOME_OK {
		t.Fatalf("duplicate action: %d runs, %v %v", actions, r1, r2)
	}
	// Duplicate compensation: applied once.
	b.Apply(req("a", comp), h)
	b.Apply(req("a", comp), h)
	if comps != 1 {
		t.Fatalf("%d compensations", comps)
	}
	// Compensation before the action: null compensation, then the
	// action is suspended.
	if r := b.Apply(req("b", comp), h); r.Outcome != sagapb.Outcome_OUTCOME_OK || comps != 1 {
		t.Fatalf("null compensation: %v, %d runs", r, comps)
	}
	if r := b.Apply(req("b", act), h); r.Outcome != sagapb.Outcome_OUTCOME_BUSINESS_FAILURE || actions != 1 {
		t.Fatalf("suspended action: %v, %d runs", r, actions)
	}
	// A refused action needs no compensation.
	refuse := Handler{Action: func(Request) ([]byte, error) { return nil, Failf("no") }, Compensate: h.Compensate}
	if r := b.Apply(req("c", act), refuse); r.Outcome != sagapb.Outcome_OUTCOME_BUSINESS_FAILURE {
		t.Fatalf("refusal: %v", r)
	}
	if r := b.Apply(req("c", comp), refuse); r.Outcome != sagapb.Outcome_OUTCOME_OK || comps != 1 {
		t.Fatalf("compensation of a refused action: %v, %d runs", r, comps)
	}
	// A transient failure is not recorded: the retry runs the action.
	var n int
	flaky := Handler{Action: func(Request) ([]byte, error) {
		n++
		if n == 1 {
			return nil, errors.New("busy")
		}
		return nil, nil
	}}
	if r := b.Apply(req("d", act), flaky); r.Outcome != sagapb.Outcome_OUTCOME_TRANSIENT_FAILURE {
		t.Fatalf("transient: %v", r)
	}
	if r := b.Apply(req("d", act), flaky); r.Outcome != sagapb.Outcome_OUTCOME_OK || n != 2 {
		t.Fatalf("retry after transient: %v, %d runs", r, n)
	}
	// A panicking handler is a transient failure, not a crash.
	boom := Handler{Action: func(Request) ([]byte, error) { panic("boom") }}
	if r := b.Apply(req("e", act), boom); r.Outcome != sagapb.Outcome_OUTCOME_TRANSIENT_FAILURE {
		t.Fatalf("panic: %v", r)
	}
	// Malformed requests are refused with a reason.
	bad := req("f", act)
	bad.IdempotencyKey = "x"
	for _, r := range []*sagapb.StepRequest{nil, {}, bad, {SagaId: "f", Step: "s", IdempotencyKey: "f/s/action"}} {
		if rep := b.Apply(r, h); rep.Outcome != sagapb.Outcome_OUTCOME_BUSINESS_FAILURE || !strings.Contains(rep.Error, "malformed") {
			t.Fatalf("malformed %v answered %v", r, rep)
		}
	}
	b.Forget("a")
	if b.Apply(req("a", act), h); actions != 2 {
		t.Fatal("Forget kept the records")
	}
	st := b.Stats()
	if st.Duplicates != 2 || st.NullCompensations != 2 || st.Suspended != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Multiplier: 2, Jitter: 0.2}
	for f, want := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 40 * time.Millisecond, 10: 100 * time.Millisecond} {
		for range 50 {
			d := p.Backoff(f)
			if d < want*8/10 || d > want*12/10 {
				t.Fatalf("Backoff(%d) = %v, want %v ±20%%", f, d, want)
			}
		}
	}
	if p.Backoff(0) != 0 {
		t.Fatal("Backoff(0) != 0")
	}
}

func TestCompactDropsFinishedSagas(t *testing.T) {
	e := newEnv(t, nil)
	e.run("a", order(1, 1))
	e.run("b", order(1, 1, "failpay"))
	var broken atomic.Bool
	broken.Store(true)
	e.shop.releaseFails = func(Request) error {
		if broken.Load() {
			return errors.New("down")
		}
		return nil
	}
	if in := e.run("c", order(1, 1, "failpay")); in.Status != Stuck {
		t.Fatalf("c is %s", in.Status)
	}
	// A long retention keeps everything.
	st, err := e.m.Compact(time.Hour)
	if err != nil || st.Dropped != 0 || st.Kept != 3 {
		t.Fatalf("Compact(1h) = %+v, %v", st, err)
	}
	// No retention drops the finished sagas; the stuck one stays.
	st, err = e.m.Compact(0)
	if err != nil || st.Dropped != 2 || st.Kept != 1 || st.Journal.RemovedSegments != 1 {
		t.Fatalf("Compact(0) = %+v, %v", st, err)
	}
	if l := e.m.List(); len(l) != 1 || l[0].ID != "c" {
		t.Fatalf("List after compaction: %v", l)
	}
	// The journal says the same after a restart, and the stuck saga can
	// still be resumed.
	e.m.Close(context.Background())
	e.start()
	if l := e.m.List(); len(l) != 1 || l[0].ID != "c" || l[0].Status != Stuck {
		t.Fatalf("List after restart: %v", l)
	}
	broken.Store(false)
	if err := e.m.Resume(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if in, err := e.m.Wait(ctx, "c"); err != nil || in.Status != Compensated {
		t.Fatalf("c after resume: %v %v", in.Status, err)
	}
	// A forgotten id can be used again.
	if in := e.run("a", order(1, 1)); in.Status != Committed {
		t.Fatalf("a again: %s", in.Status)
	}
}

func TestAutomaticCompaction(t *testing.T) {
	e := newEnv(t, nil)
	e.cfg.CompactEvery = 5 * time.Millisecond
	e.cfg.Retention = time.Nanosecond
	e.m.Close(context.Background())
	e.start()
	// Wait cannot be used: the saga may be gone by the time it looks.
	if err := e.m.Begin(context.Background(), "order", "a", order(1, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the saga commits and is compacted away", 10*time.Second, func() bool {
		return gauge(t, e.sys, "saga_committed_total") == 1 && len(e.m.List()) == 0
	})
	e.m.Close(context.Background())
	e.start()
	if l := e.m.List(); len(l) != 0 {
		t.Fatalf("List after restart: %v", l)
	}
}
