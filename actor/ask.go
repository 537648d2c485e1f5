package actor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// future receives one reply. Only the first completion counts.
type future struct {
	ch   chan reply
	done atomic.Bool
}

type reply struct {
	v   any
	err error
}

func (f *future) complete(v any, err error) bool {
	if !f.done.CompareAndSwap(false, true) {
		return false
	}
	f.ch <- reply{v, err}
	return true
}

// Ask sends msg to pid and waits for the reply (Context.Reply or From.Reply),
// returning it as an R.
//
// Ask fails fast, with an error matching ErrDeadActor, when the target is
// dead or unknown, and as soon as it dies without answering; it does not
// wait for a timeout in those cases. Otherwise it waits until ctx is done.
// A reply that is an error is returned as the error. A reply of another type
// than R is an error too.
func Ask[R any](ctx context.Context, s *System, pid *PID, msg any) (R, error) {
	return askAs[R](ctx, s, pid, msg, 0)
}

// AskTimeout is Ask with a time limit of its own besides ctx's: when d
// passes first it fails with an error wrapping context.DeadlineExceeded.
// It costs less than deriving a context with a timeout for each call (one
// timer, no context), which matters to clients that bound every attempt.
func AskTimeout[R any](ctx context.Context, s *System, pid *PID, msg any, d time.Duration) (R, error) {
	return askAs[R](ctx, s, pid, msg, d)
}

func askAs[R any](ctx context.Context, s *System, pid *PID, msg any, d time.Duration) (R, error) {
	var zero R
	v, err := s.ask(ctx, pid, msg, d)
	if err != nil {
		return zero, err
	}
	if e, ok := v.(error); ok {
		return zero, e
	}
	if v == nil {
		return zero, nil
	}
	r, ok := v.(R)
	if !ok {
		return zero, fmt.Errorf("actor: ask %s: reply is %T, want %T", pid, v, zero)
	}
	return r, nil
}

// timers recycles the timers of Asks with a time limit: a timer and its
// channel are two allocations per call otherwise. Since Go 1.23 a stopped
// or reset timer delivers no stale value, so a recycled one is as good as
// new.
var timers sync.Pool

// expiry returns a timer that fires after d, or nil (never) for d <= 0;
// release it with releaseTimer.
func expiry(d time.Duration) *time.Timer {
	if d <= 0 {
		return nil
	}
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// releaseTimer stops t and keeps it for reuse.
func releaseTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
		timers.Put(t)
	}
}

// timerC is t's channel, nil (never ready) for a nil t.
func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func (s *System) ask(ctx context.Context, pid *PID, msg any, d time.Duration) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("actor: ask %s: %w", pid, err)
	}
	p := s.local(pid)
	if p == nil {
		if pid == nil || s.isLocal(pid) {
			return nil, &DeadActorError{PID: pid}
		}
		return s.askRemote(ctx, pid, msg, d)
	}
	start := time.Now()
	f := &future{ch: make(chan reply, 1)}
	p.mb.PostUserMessage(&envelope{msg: msg, fut: f})
	tm := expiry(d)
	defer releaseTimer(tm)
	var cause error
	select {
	case r := <-f.ch:
		s.metrics.askLatency.Observe(time.Since(start).Seconds())
		return r.v, r.err
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timerC(tm):
		cause = context.DeadlineExceeded
	}
	if f.done.CompareAndSwap(false, true) {
		s.metrics.askTimeouts.Inc()
		return nil, fmt.Errorf("actor: ask %s: %w", pid, cause)
	}
	r := <-f.ch // answered in the meantime
	s.metrics.askLatency.Observe(time.Since(start).Seconds())
	return r.v, r.err
}
