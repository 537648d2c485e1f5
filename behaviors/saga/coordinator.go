package saga

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

// Messages a coordinator sends itself. They never leave the node.
type (
	// loadState: the journal holds no pending event of this saga, so
	// the index is the durable state.
	loadState struct{}
	// persisted: an event is durable (or failed to be).
	persisted struct {
		ev  *sagapb.Event
		err error
	}
	// attemptTimeout: the attempt got no reply in time.
	attemptTimeout struct {
		key     string
		attempt uint32
	}
	// retryNow: the backoff of a step's phase has elapsed.
	retryNow struct{ key string }
)

// outstanding is an attempt the coordinator waits for.
type outstanding struct {
	step    int
	phase   sagapb.Phase
	attempt uint32
	key     string
	sentAt  time.Time
	timer   *actor.Timer
}

// coordinator is the actor shell of one saga: it feeds the core (state)
// with journal events, persists before it sends, and turns replies, timers
// and backoffs into events. Events are persisted one at a time; the
// attempts of a stage's parallel actions are under way together.
type coordinator struct {
	m   *Manager
	id  string
	def *Definition
	st  *state
	// out are the attempts sent and not answered, by idempotency key.
	out map[string]*outstanding
	// backoff are the step phases waiting out a retry backoff, by key.
	backoff map[string]bool
	// busy: an event is being persisted; the next decision waits for it.
	busy bool
	// queue holds results that arrived while busy, to persist in order
	// before anything is decided.
	queue []*sagapb.Event
}

func (c *coordinator) Receive(ctx *actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		self := ctx.Self()
		if !c.m.attach(c.id, self, func() { c.m.sys.Send(self, loadState{}) }) {
			ctx.Logger().Warn("saga already has a live coordinator; this one stops", zap.String("saga", c.id))
			ctx.Exit(actor.Normal)
			return
		}
		ctx.SetInfo(func() string { return "saga " + c.id })
	case loadState:
		st, def, err := c.m.snapshot(c.id)
		if errors.Is(err, ErrNotFound) {
			// Finished and dropped by a compaction: nothing to do.
			ctx.Exit(actor.Normal)
			return
		}
		if err != nil {
			ctx.Logger().Error("saga coordinator cannot load its saga", zap.String("saga", c.id), zap.Error(err))
			ctx.Exit(actor.ErrorReason(err))
			return
		}
		c.st, c.def = st, def
		c.out, c.backoff = map[string]*outstanding{}, map[string]bool{}
		c.advance(ctx)
	case persisted:
		c.busy = false
		if msg.err != nil {
			// Whether the event reached the disk is unknown: crash, and
			// let the restarted coordinator start from the journal.
			ctx.Logger().Error("saga journal append failed", zap.String("saga", c.id), zap.Error(msg.err))
			ctx.Exit(actor.ErrorReason(fmt.Errorf("saga %s: journal: %w", c.id, msg.err)))
			return
		}
		ev := msg.ev
		if err := c.st.apply(ev, len(c.def.Steps)); err != nil {
			ctx.Exit(actor.ErrorReason(err))
			return
		}
		switch ev.Kind {
		case sagapb.EventKind_EVENT_SENT:
			c.send(ctx, ev)
		case sagapb.EventKind_EVENT_ATTEMPT_FAILED:
			step := &c.def.Steps[ev.Step]
			policy, failures := step.Retry, c.st.steps[ev.Step].actionFailures
			if ev.Phase == sagapb.Phase_PHASE_COMPENSATION {
				policy, failures = step.CompensationRetry, c.st.steps[ev.Step].compFailures
			}
			if !policy.exhausted(failures) {
				key := IdempotencyKey(c.id, step.Name, ev.Phase)
				c.backoff[key] = true
				ctx.SendAfter(policy.Backoff(failures), retryNow{key: key})
			}
		}
		c.advance(ctx)
	case retryNow:
		delete(c.backoff, msg.key)
		c.advance(ctx)
	case *sagapb.StepReply:
		c.reply(ctx, msg)
	case attemptTimeout:
		o := c.out[msg.key]
		if o == nil || o.attempt != msg.attempt {
			return // answered in time
		}
		delete(c.out, msg.key)
		c.m.metrics.observeStep(c.def.Steps[o.step].Name, o.phase, "timeout", time.Since(o.sentAt))
		c.persist(ctx, &sagapb.Event{Kind: sagapb.EventKind_EVENT_ATTEMPT_FAILED, Step: int32(o.step), Phase: o.phase,
			Attempt: o.attempt, Error: fmt.Sprintf("no reply within %v", c.def.Steps[o.step].Timeout)})
	}
}

// isBusy reports whether step's phase has an attempt under way. While
// compensating, an action waiting out a backoff is not retried any more,
// so only sent actions count.
func (c *coordinator) isBusy(step int, phase sagapb.Phase) bool {
	key := IdempotencyKey(c.id, c.def.Steps[step].Name, phase)
	if c.out[key] != nil {
		return true
	}
	if phase == sagapb.Phase_PHASE_ACTION && c.st.status != Running {
		return false
	}
	return c.backoff[key]
}

// advance makes the next move the core decides, unless an event is being
// persisted (the move after it is decided when it is durable).
func (c *coordinator) advance(ctx *actor.Context) {
	if c.st == nil || c.busy {
		return
	}
	if len(c.queue) > 0 {
		ev := c.queue[0]
		c.queue = c.queue[1:]
		c.persist(ctx, ev)
		return
	}
	d := c.st.next(c.def, c.isBusy)
	switch d.kind {
	case decideSend:
		c.persist(ctx, &sagapb.Event{Kind: sagapb.EventKind_EVENT_SENT, Step: int32(d.step), Phase: d.phase, Attempt: d.attempt})
	case decideFail:
		c.persist(ctx, &sagapb.Event{Kind: sagapb.EventKind_EVENT_FAILED, Step: int32(d.step),
			Error: fmt.Sprintf("%s: gave up after %d failed attempts: %s", c.def.Steps[d.step].Name, c.st.steps[d.step].actionFailures, c.st.lastErr)})
	case decideStuck:
		c.persist(ctx, &sagapb.Event{Kind: sagapb.EventKind_EVENT_STUCK, Step: int32(d.step),
			Error: fmt.Sprintf("%s: gave up after %d failed attempts: %s", c.def.Steps[d.step].Compensation, c.st.steps[d.step].compFailures, c.st.lastErr)})
	case decideCommit:
		c.persist(ctx, &sagapb.Event{Kind: sagapb.EventKind_EVENT_COMMITTED})
	case decideFinished:
		c.persist(ctx, &sagapb.Event{Kind: sagapb.EventKind_EVENT_COMPENSATED})
	case decideIdle:
		// A reply, a timeout or a backoff moves the saga on.
	case decideStop:
		// Committed, compensated or stuck: this coordinator's work is done.
		ctx.Exit(actor.Normal)
	}
}

func (c *coordinator) persist(ctx *actor.Context, ev *sagapb.Event) {
	ev.SagaId = c.id
	if c.busy {
		c.queue = append(c.queue, ev)
		return
	}
	c.busy = true
	self := ctx.Self()
	c.m.persist(ev, func(err error) { c.m.sys.Send(self, persisted{ev: ev, err: err}) })
}

// send delivers the attempt that ev recorded, and arms its timeout.
func (c *coordinator) send(ctx *actor.Context, ev *sagapb.Event) {
	step := &c.def.Steps[ev.Step]
	key := IdempotencyKey(c.id, step.Name, ev.Phase)
	pid, err := step.Participant()
	if err != nil {
		c.persist(ctx, &sagapb.Event{Kind: sagapb.EventKind_EVENT_ATTEMPT_FAILED, Step: ev.Step, Phase: ev.Phase,
			Attempt: ev.Attempt, Error: fmt.Sprintf("resolve participant: %v", err)})
		return
	}
	o := &outstanding{step: int(ev.Step), phase: ev.Phase, attempt: ev.Attempt, key: key, sentAt: time.Now()}
	o.timer = ctx.SendAfter(step.Timeout, attemptTimeout{key: key, attempt: ev.Attempt})
	c.out[key] = o
	ctx.Request(pid, &sagapb.StepRequest{
		SagaId: c.id, Step: step.Name, Phase: ev.Phase, IdempotencyKey: key, Attempt: ev.Attempt,
		Input: c.st.input, Definition: c.def.Name, Results: c.st.results(c.def),
	})
}

func (c *coordinator) reply(ctx *actor.Context, r *sagapb.StepReply) {
	// Any attempt's reply settles the step's phase: the key is the same
	// for every attempt, and the participant's barrier answers each alike.
	o := c.out[r.GetIdempotencyKey()]
	if o == nil || c.st == nil {
		return // a late reply to an attempt already settled
	}
	delete(c.out, o.key)
	o.timer.Cancel()
	name := c.def.Steps[o.step].Name
	ev := &sagapb.Event{Step: int32(o.step), Phase: o.phase, Attempt: o.attempt, Error: r.GetError()}
	switch r.GetOutcome() {
	case sagapb.Outcome_OUTCOME_OK:
		c.m.metrics.observeStep(name, o.phase, "ok", time.Since(o.sentAt))
		ev.Kind, ev.Data = sagapb.EventKind_EVENT_DONE, r.GetResult()
	case sagapb.Outcome_OUTCOME_BUSINESS_FAILURE:
		c.m.metrics.observeStep(name, o.phase, "business_failure", time.Since(o.sentAt))
		if o.phase == sagapb.Phase_PHASE_ACTION {
			ev.Kind, ev.Business = sagapb.EventKind_EVENT_FAILED, true
		} else {
			// A compensation must succeed eventually: retry it.
			ev.Kind = sagapb.EventKind_EVENT_ATTEMPT_FAILED
		}
	default:
		c.m.metrics.observeStep(name, o.phase, "transient_failure", time.Since(o.sentAt))
		ev.Kind = sagapb.EventKind_EVENT_ATTEMPT_FAILED
		if ev.Error == "" {
			ev.Error = fmt.Sprintf("participant answered %s", r.GetOutcome())
		}
	}
	c.persist(ctx, ev)
}
