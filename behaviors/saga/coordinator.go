package saga

import (
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
		step    int
		phase   sagapb.Phase
		attempt uint32
	}
	// retryNow: a backoff has elapsed.
	retryNow struct{}
)

// outstanding is the attempt the coordinator waits for.
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
// and backoffs into events.
type coordinator struct {
	m   *Manager
	id  string
	def *Definition
	st  *state
	out *outstanding
	// busy: an event is being persisted; the next decision waits for it.
	busy bool
	// backingOff: a retry timer is armed.
	backingOff bool
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
		if err != nil {
			ctx.Logger().Error("saga coordinator cannot load its saga", zap.String("saga", c.id), zap.Error(err))
			ctx.Exit(actor.ErrorReason(err))
			return
		}
		c.st, c.def = st, def
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
		if err := c.st.apply(msg.ev, len(c.def.Steps)); err != nil {
			ctx.Exit(actor.ErrorReason(err))
			return
		}
		switch msg.ev.Kind {
		case sagapb.EventKind_EVENT_SENT:
			c.send(ctx, msg.ev)
		case sagapb.EventKind_EVENT_ATTEMPT_FAILED:
			d := c.st.next(c.def)
			if d.kind == decideSend && d.backoff > 0 {
				c.backingOff = true
				ctx.SendAfter(c.policy(d).Backoff(d.backoff), retryNow{})
				return
			}
			c.advance(ctx)
		default:
			c.advance(ctx)
		}
	case retryNow:
		c.backingOff = false
		c.advance(ctx)
	case *sagapb.StepReply:
		c.reply(ctx, msg)
	case attemptTimeout:
		o := c.out
		if o == nil || o.step != msg.step || o.phase != msg.phase || o.attempt != msg.attempt {
			return // answered in time
		}
		c.out = nil
		c.m.metrics.observeStep(c.def.Steps[o.step].Name, o.phase, "timeout", time.Since(o.sentAt))
		c.persist(ctx, &sagapb.Event{Kind: sagapb.EventKind_EVENT_ATTEMPT_FAILED, Step: int32(o.step), Phase: o.phase,
			Attempt: o.attempt, Error: fmt.Sprintf("no reply within %v", c.def.Steps[o.step].Timeout)})
	}
}

func (c *coordinator) policy(d decision) RetryPolicy {
	if d.phase == sagapb.Phase_PHASE_COMPENSATION {
		return c.def.Steps[d.step].CompensationRetry
	}
	return c.def.Steps[d.step].Retry
}

// advance makes the next move the core decides, unless one is under way.
func (c *coordinator) advance(ctx *actor.Context) {
	if c.st == nil || c.busy || c.out != nil || c.backingOff {
		return
	}
	d := c.st.next(c.def)
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
	case decideWait:
		// Committed, compensated or stuck: this coordinator's work is done.
		ctx.Exit(actor.Normal)
	}
}

func (c *coordinator) persist(ctx *actor.Context, ev *sagapb.Event) {
	ev.SagaId = c.id
	c.busy = true
	self := ctx.Self()
	c.m.persist(ev, func(err error) { c.m.sys.Send(self, persisted{ev: ev, err: err}) })
}

// send delivers the attempt that ev recorded, and arms its timeout.
func (c *coordinator) send(ctx *actor.Context, ev *sagapb.Event) {
	step := &c.def.Steps[ev.Step]
	o := &outstanding{step: int(ev.Step), phase: ev.Phase, attempt: ev.Attempt,
		key: IdempotencyKey(c.id, step.Name, ev.Phase), sentAt: time.Now()}
	pid, err := step.Participant()
	if err != nil {
		c.persist(ctx, &sagapb.Event{Kind: sagapb.EventKind_EVENT_ATTEMPT_FAILED, Step: ev.Step, Phase: ev.Phase,
			Attempt: ev.Attempt, Error: fmt.Sprintf("resolve participant: %v", err)})
		return
	}
	req := &sagapb.StepRequest{
		SagaId: c.id, Step: step.Name, Phase: ev.Phase, IdempotencyKey: o.key, Attempt: ev.Attempt,
		Input: c.st.input, Definition: c.def.Name, Results: c.st.results(c.def),
	}
	c.out = o
	o.timer = ctx.SendAfter(step.Timeout, attemptTimeout{step: o.step, phase: o.phase, attempt: o.attempt})
	ctx.Request(pid, req)
}

func (c *coordinator) reply(ctx *actor.Context, r *sagapb.StepReply) {
	o := c.out
	// Any attempt's reply settles the step: the key is the same for every
	// attempt, and the participant's barrier answers each alike.
	if o == nil || r.GetIdempotencyKey() != o.key {
		return // a late reply to an attempt already settled
	}
	c.out = nil
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
