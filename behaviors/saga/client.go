package saga

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

// Client starts and watches sagas through a saga service (ServiceProps),
// on any node. It retries what can be retried: an unreachable or dead
// service, an overloaded one, and an attempt that got no answer in time,
// with exponential backoff and jitter, until its context ends. Starting a
// saga is idempotent by saga id, so a retried Begin never starts a second
// saga.
type Client struct {
	sys     *actor.System
	service Resolver
	// Retry is the backoff between attempts (MaxAttempts is ignored: the
	// context bounds the retries). Default DefaultRetry's backoff.
	Retry RetryPolicy
	// AttemptTimeout bounds one attempt that gets no answer (a lost
	// request). Default 5s.
	AttemptTimeout time.Duration
}

// NewClient returns a client that sends from sys to the service that
// service resolves (for example To(pid), or a global-name lookup).
func NewClient(sys *actor.System, service Resolver) *Client {
	return &Client{sys: sys, service: service, Retry: DefaultRetry, AttemptTimeout: 5 * time.Second}
}

// retryable reports whether another attempt may succeed.
func retryable(err error) bool {
	return errors.Is(err, actor.ErrDeadActor) || errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// call sends req and returns the reply, retrying while that may help.
// extra lengthens the attempt timeout (for requests that wait).
func call[R any](ctx context.Context, c *Client, req any, extra time.Duration, code func(R) error) (R, int, error) {
	var zero R
	policy := c.Retry.withDefaults(DefaultRetry)
	timeout := c.AttemptTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	for attempt := 1; ; attempt++ {
		err := ctx.Err()
		var rep R
		if err == nil {
			var pid *actor.PID
			pid, err = c.service()
			if err != nil {
				err = fmt.Errorf("%w: resolve service: %v", ErrUnavailable, err)
			} else {
				actx, cancel := context.WithTimeout(ctx, timeout+extra)
				rep, err = actor.Ask[R](actx, c.sys, pid, req)
				cancel()
				if err == nil {
					if err = code(rep); err == nil {
						return rep, attempt, nil
					}
				}
			}
		}
		if ctx.Err() != nil {
			return zero, attempt, fmt.Errorf("saga client: %w (last error: %v)", ctx.Err(), err)
		}
		if !retryable(err) {
			return rep, attempt, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(policy.Backoff(attempt)):
		}
	}
}

// Begin starts a saga. It returns ErrExists only if the saga existed
// before this call; if an earlier attempt of this call was recorded but
// its answer was lost, the retry finds the saga and Begin succeeds.
func (c *Client) Begin(ctx context.Context, definition, id string, input []byte) error {
	_, attempts, err := call(ctx, c, &sagapb.BeginRequest{Definition: definition, SagaId: id, Input: input}, 0,
		func(r *sagapb.BeginReply) error { return codeError(r.GetCode(), r.GetError()) })
	if errors.Is(err, ErrExists) && attempts > 1 {
		return nil
	}
	return err
}

// Get returns a saga's state.
func (c *Client) Get(ctx context.Context, id string) (Info, error) {
	return c.status(ctx, id, 0)
}

func (c *Client) status(ctx context.Context, id string, wait time.Duration) (Info, error) {
	rep, _, err := call(ctx, c, &sagapb.StatusRequest{SagaId: id, WaitMillis: uint32(wait / time.Millisecond)}, wait,
		func(r *sagapb.StatusReply) error { return codeError(r.GetCode(), r.GetError()) })
	if err != nil {
		return Info{}, err
	}
	return infoFromProto(rep.Info)
}

// Wait waits until the saga is committed, compensated or stuck, or ctx
// ends.
func (c *Client) Wait(ctx context.Context, id string) (Info, error) {
	for {
		wait := 30 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		in, err := c.status(ctx, id, max(wait, time.Millisecond))
		if err != nil {
			return in, err
		}
		if in.Status.Final() || in.Status == Stuck {
			return in, nil
		}
	}
}

// Run is Begin followed by Wait.
func (c *Client) Run(ctx context.Context, definition, id string, input []byte) (Info, error) {
	if err := c.Begin(ctx, definition, id, input); err != nil {
		return Info{}, err
	}
	return c.Wait(ctx, id)
}

// List returns the sagas in any of the given states (all if none), oldest
// first, at most 1000.
func (c *Client) List(ctx context.Context, statuses ...Status) ([]Info, error) {
	req := &sagapb.ListRequest{}
	for _, s := range statuses {
		req.Statuses = append(req.Statuses, statusToProto(s))
	}
	rep, _, err := call(ctx, c, req, 0, func(*sagapb.ListReply) error { return nil })
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(rep.Sagas))
	for _, p := range rep.Sagas {
		in, err := infoFromProto(p)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// History returns a saga's events, oldest first. Step names are not
// carried over the wire (the client does not know the definition).
func (c *Client) History(ctx context.Context, id string) ([]Event, error) {
	rep, _, err := call(ctx, c, &sagapb.HistoryRequest{SagaId: id}, 0,
		func(r *sagapb.HistoryReply) error { return codeError(r.GetCode(), r.GetError()) })
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(rep.Events))
	for i, ev := range rep.Events {
		out[i] = toEvent(ev, nil)
	}
	return out, nil
}

// Resume resumes a stuck saga (Manager.Resume).
func (c *Client) Resume(ctx context.Context, id string) error {
	_, _, err := call(ctx, c, &sagapb.ResumeRequest{SagaId: id}, 0,
		func(r *sagapb.ResumeReply) error { return codeError(r.GetCode(), r.GetError()) })
	return err
}
