package saga

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

func TestClientThroughTheService(t *testing.T) {
	e := newEnv(t, nil)
	svc := spawn(t, e.sys, e.m.ServiceProps())
	c := NewClient(e.sys, To(svc))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	in, err := c.Run(ctx, "order", "o1", order(1, 5))
	if err != nil || in.Status != Committed || in.ID != "o1" || in.Definition != "order" {
		t.Fatalf("Run: %+v, %v", in, err)
	}
	if in, err := c.Run(ctx, "order", "o2", order(1, 5, "failpay")); err != nil || in.Status != Compensated || in.Error == "" {
		t.Fatalf("Run o2: %+v, %v", in, err)
	}
	if err := c.Begin(ctx, "order", "o1", order(1, 5)); !errors.Is(err, ErrExists) {
		t.Fatalf("Begin of an existing id: %v", err)
	}
	if err := c.Begin(ctx, "nope", "o3", nil); !errors.Is(err, ErrUnknownDefinition) {
		t.Fatalf("unknown definition: %v", err)
	}
	if err := c.Begin(ctx, "order", "", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}
	if _, err := c.Get(ctx, "o9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
	if err := c.Resume(ctx, "o1"); !errors.Is(err, ErrNotStuck) {
		t.Fatalf("Resume committed: %v", err)
	}
	l, err := c.List(ctx, Compensated)
	if err != nil || len(l) != 1 || l[0].ID != "o2" {
		t.Fatalf("List: %v, %v", l, err)
	}
	h, err := c.History(ctx, "o1")
	if err != nil || len(h) != 8 || h[len(h)-1].Kind != sagapb.EventKind_EVENT_COMMITTED {
		t.Fatalf("History: %v, %v", h, err)
	}
	e.shop.check(t, map[string]Status{"o1": Committed, "o2": Compensated})
}

// TestClientRetriesALostAnswer: the first answer to Begin is lost; the
// client retries, finds the saga recorded, and reports success — one saga,
// one charge.
func TestClientRetriesALostAnswer(t *testing.T) {
	e := newEnv(t, nil)
	svc := spawn(t, e.sys, e.m.ServiceProps())
	var dropped atomic.Bool
	lossy := spawn(t, e.sys, actor.PropsFromFunc(func(ctx *actor.Context) {
		req, ok := ctx.Message().(*sagapb.BeginRequest)
		if !ok {
			return
		}
		from := ctx.From()
		go func() {
			rep, err := actor.Ask[*sagapb.BeginReply](context.Background(), e.sys, svc, req)
			if dropped.CompareAndSwap(false, true) {
				return // the answer is lost
			}
			if err != nil {
				from.Reply(err)
				return
			}
			from.Reply(rep)
		}()
	}))
	c := NewClient(e.sys, To(lossy))
	c.AttemptTimeout = 100 * time.Millisecond
	c.Retry = RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Begin(ctx, "order", "o1", order(1, 5)); err != nil {
		t.Fatalf("Begin after a lost answer: %v", err)
	}
	if !dropped.Load() {
		t.Fatal("no answer was dropped")
	}
	in, err := e.m.Wait(ctx, "o1")
	if err != nil || in.Status != Committed {
		t.Fatalf("%+v %v", in, err)
	}
	if len(e.m.List()) != 1 || e.shop.chargeCount["o1"] != 1 {
		t.Fatalf("%d sagas, %d charges", len(e.m.List()), e.shop.chargeCount["o1"])
	}
}

func TestClientGivesUpWhenItsContextEnds(t *testing.T) {
	sys := newSystem(t)
	c := NewClient(sys, func() (*actor.PID, error) { return nil, errors.New("no service registered") })
	c.Retry = RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Begin(ctx, "order", "o1", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Begin without a service: %v", err)
	}
}

// TestWaitingRequestsEndWithTheManager: a Status request waiting for a
// saga is answered (unavailable) when the manager closes, not after its
// wait runs out.
func TestWaitingRequestsEndWithTheManager(t *testing.T) {
	e := newEnv(t, nil)
	svc := spawn(t, e.sys, e.m.ServiceProps())
	waiting, open := e.gate()
	defer open()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.m.Begin(ctx, "order", "o1", order(1, 1)); err != nil {
		t.Fatal(err)
	}
	<-waiting
	reply := make(chan *sagapb.StatusReply, 1)
	go func() {
		r, err := actor.Ask[*sagapb.StatusReply](ctx, e.sys, svc, &sagapb.StatusRequest{SagaId: "o1", WaitMillis: 60000})
		if err != nil {
			t.Error(err)
		}
		reply <- r
	}()
	// The request is waiting: the service has taken it.
	waitFor(t, "the service takes the request", 5*time.Second, func() bool {
		in, ok := e.sys.Info(svc)
		return ok && in.Processed >= 1
	})
	if err := e.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-reply:
		if r.GetCode() != sagapb.ErrorCode_ERROR_CODE_UNAVAILABLE {
			t.Fatalf("reply %v, want unavailable", r)
		}
	case <-ctx.Done():
		t.Fatal("the waiting request was not answered when the manager closed")
	}
}
