package actor

import (
	"sync"
	"time"
)

// Timer is a pending SendAfter or Tick. Cancel stops it.
type Timer struct {
	mu       sync.Mutex
	t        *time.Timer
	owner    *process
	done     bool
	periodic bool
}

// newTimer arms a timer that sends msg to pid after d (every d if periodic).
// owner, when set, cancels the timer when it dies.
func (s *System) newTimer(owner *process, to *PID, d time.Duration, msg any, periodic bool) *Timer {
	if d <= 0 && periodic {
		d = time.Millisecond
	}
	t := &Timer{owner: owner, periodic: periodic}
	if owner != nil {
		owner.mu.Lock()
		if owner.exited {
			owner.mu.Unlock()
			t.done = true
			return t
		}
		if owner.timers == nil {
			owner.timers = make(map[*Timer]struct{})
		}
		owner.timers[t] = struct{}{}
		owner.mu.Unlock()
	}
	t.mu.Lock()
	t.t = time.AfterFunc(d, func() {
		t.mu.Lock()
		if t.done {
			t.mu.Unlock()
			return
		}
		if t.periodic {
			t.t.Reset(d)
		} else {
			t.done = true
		}
		t.mu.Unlock()
		if !t.periodic {
			t.forget()
		}
		s.send(to, msg)
	})
	t.mu.Unlock()
	return t
}

// SendAfter delivers msg to pid after d, from outside any actor.
func (s *System) SendAfter(d time.Duration, pid *PID, msg any) *Timer {
	return s.newTimer(nil, pid, d, msg, false)
}

// Cancel stops the timer. It reports whether the timer was still pending: a
// one-shot timer that already fired returns false (its message may be in
// the mailbox).
func (t *Timer) Cancel() bool {
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		return false
	}
	t.done = true
	if t.t != nil {
		t.t.Stop()
	}
	t.mu.Unlock()
	t.forget()
	return true
}

func (t *Timer) forget() {
	if o := t.owner; o != nil {
		o.mu.Lock()
		delete(o.timers, t)
		o.mu.Unlock()
	}
}
