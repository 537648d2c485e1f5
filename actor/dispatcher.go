package actor

import (
	"sync"
)

// dispatcher runs mailbox activations on a pool of long-lived worker
// goroutines.
//
// Why not protoactor's default dispatcher: it starts a new goroutine for every
// activation. A new goroutine begins with a small stack, and the message path
// (mailbox loop, context, behaviour) is deep enough that nearly every
// activation grows the stack by copying it (runtime.copystack was ~77% of CPU
// in a local ping-pong profile). In request/reply traffic every message is an
// activation, so that cost dominates. Workers here keep their grown stacks and
// are handed work through a channel; idle workers wait in a LIFO stack so the
// most recently used (cache-warm) worker is reused first.
type dispatcher struct {
	throughput int

	mu     sync.Mutex
	idle   []*worker
	closed bool
	wg     sync.WaitGroup
}

type worker struct {
	ch chan func()
}

// maxIdleWorkers bounds the parked workers kept after a burst.
const maxIdleWorkers = 1024

func newDispatcher(throughput int) *dispatcher {
	return &dispatcher{throughput: throughput}
}

// Throughput is the number of messages an activation processes before it
// yields the worker to other goroutines.
func (d *dispatcher) Throughput() int { return d.throughput }

// Schedule runs fn on an idle worker, or on a new one.
func (d *dispatcher) Schedule(fn func()) {
	d.mu.Lock()
	if n := len(d.idle); n > 0 {
		w := d.idle[n-1]
		d.idle[n-1] = nil
		d.idle = d.idle[:n-1]
		d.mu.Unlock()
		w.ch <- fn
		return
	}
	if d.closed {
		// After shutdown (a late dead letter, say) run without pooling.
		d.mu.Unlock()
		go fn()
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	w := &worker{ch: make(chan func(), 1)}
	go d.run(w, fn)
}

func (d *dispatcher) run(w *worker, fn func()) {
	defer d.wg.Done()
	for {
		fn()
		d.mu.Lock()
		if d.closed || len(d.idle) >= maxIdleWorkers {
			d.mu.Unlock()
			return
		}
		d.idle = append(d.idle, w)
		d.mu.Unlock()
		var ok bool
		if fn, ok = <-w.ch; !ok {
			return
		}
	}
}

// close ends the idle workers and waits for busy ones to finish.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	idle := d.idle
	d.idle = nil
	d.mu.Unlock()
	for _, w := range idle {
		close(w.ch)
	}
	d.wg.Wait()
}
