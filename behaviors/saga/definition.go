package saga

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/distributed-go/distributed/actor"
)

// Resolver finds the participant actor of a step. It is called before every
// send, so it may follow a participant that moved (restarted, or spawned
// anew on another node): look it up in a registry, a global name or a
// process group. It must be safe for concurrent use and must not block for
// long. An error counts as a transient failure of the attempt.
type Resolver func() (*actor.PID, error)

// To returns a Resolver that always answers pid.
func To(pid *actor.PID) Resolver {
	return func() (*actor.PID, error) {
		if pid == nil {
			return nil, errors.New("saga: nil participant")
		}
		return pid, nil
	}
}

// Named returns a Resolver that looks name up in sys's local registry
// (System.WhereIs) at each send.
func Named(sys *actor.System, name string) Resolver {
	return func() (*actor.PID, error) {
		pid, ok := sys.WhereIs(name)
		if !ok {
			return nil, fmt.Errorf("saga: no actor registered as %q", name)
		}
		return pid, nil
	}
}

// RetryPolicy says how often and how fast a failed attempt is retried:
// exponential backoff with jitter. Only transient failures are retried
// (a timeout, an unreachable participant, OUTCOME_TRANSIENT_FAILURE); a
// business failure is final at once.
type RetryPolicy struct {
	// MaxAttempts is the number of failed attempts after which the
	// coordinator gives up: an action is then treated as failed with an
	// unknown outcome (the saga compensates, this step included), and a
	// compensation puts the saga in the Stuck state. Sends repeated after a
	// coordinator restart do not count; only failures do. Default 5 for
	// actions, 10 for compensations; negative means no limit.
	MaxAttempts int
	// InitialBackoff is the wait after the first failure. Default 50ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait. Default 5s.
	MaxBackoff time.Duration
	// Multiplier grows the wait after each further failure. Default 2.
	Multiplier float64
	// Jitter spreads each wait uniformly over ±Jitter of its value
	// (0..1). Default 0.2.
	Jitter float64
}

// DefaultRetry is the default policy of actions.
var DefaultRetry = RetryPolicy{MaxAttempts: 5, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second, Multiplier: 2, Jitter: 0.2}

// DefaultCompensationRetry is the default policy of compensations.
var DefaultCompensationRetry = RetryPolicy{MaxAttempts: 10, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second, Multiplier: 2, Jitter: 0.2}

func (p RetryPolicy) withDefaults(d RetryPolicy) RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.InitialBackoff == 0 {
		p.InitialBackoff = d.InitialBackoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = d.MaxBackoff
	}
	if p.Multiplier == 0 {
		p.Multiplier = d.Multiplier
	}
	if p.Jitter == 0 {
		p.Jitter = d.Jitter
	}
	return p
}

func (p RetryPolicy) validate() error {
	switch {
	case p.InitialBackoff < 0 || p.MaxBackoff < 0:
		return errors.New("negative backoff")
	case p.Multiplier < 1:
		return fmt.Errorf("multiplier %v below 1", p.Multiplier)
	case p.Jitter < 0 || p.Jitter > 1:
		return fmt.Errorf("jitter %v outside 0..1", p.Jitter)
	}
	return nil
}

// exhausted reports whether failures reach the limit.
func (p RetryPolicy) exhausted(failures int) bool {
	return p.MaxAttempts > 0 && failures >= p.MaxAttempts
}

// Backoff is the wait before the retry that follows the given number of
// failures (1 for the first retry), jitter included.
func (p RetryPolicy) Backoff(failures int) time.Duration {
	if failures < 1 {
		return 0
	}
	d := float64(p.InitialBackoff) * math.Pow(p.Multiplier, float64(failures-1))
	if d > float64(p.MaxBackoff) {
		d = float64(p.MaxBackoff)
	}
	if p.Jitter > 0 {
		d *= 1 + p.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// Step is one step of a saga: an action sent to a participant actor, and
// the compensation that undoes it, sent to the same participant.
type Step struct {
	// Name identifies the step within its definition (and in idempotency
	// keys and history), for example "Reserve inventory". Required, unique.
	Name string
	// Compensation names the compensation in history and logs, for example
	// "Release inventory". Default "Compensate " + Name.
	Compensation string
	// Participant finds the actor that runs the action and the
	// compensation. Required.
	Participant Resolver
	// Timeout bounds each attempt: without a reply by then, the attempt
	// failed transiently. Default 5s.
	Timeout time.Duration
	// Retry is the action's retry policy. Zero fields take DefaultRetry's.
	Retry RetryPolicy
	// CompensationRetry is the compensation's retry policy. Zero fields
	// take DefaultCompensationRetry's.
	CompensationRetry RetryPolicy
	// Parallel runs the step at the same time as the step before it: a
	// step and the Parallel steps that follow it form a stage, whose
	// actions are all sent at once; the next stage starts when every
	// action of the stage has succeeded. If one fails for good, the
	// coordinator waits for the stage's other actions to answer (or time
	// out) and then compensates, one step at a time in reverse step order.
	// Not allowed on the first step.
	Parallel bool
}

// Definition is a named, ordered list of steps. Sagas are started by
// definition name, and the journal records only that name, so the same
// definition must be registered when a node restarts and recovers its
// sagas.
type Definition struct {
	// Name identifies the definition. Required.
	Name string
	// Steps run in order (a Parallel step with the one before it);
	// compensations run in reverse order.
	Steps []Step

	stages [][]int // step indexes by stage, filled by normalize
}

// MaxNameLen bounds definition names, step names and saga ids.
const MaxNameLen = 256

// normalize validates d and returns a copy with defaults filled in.
func (d *Definition) normalize() (*Definition, error) {
	if d == nil {
		return nil, errors.New("saga: nil definition")
	}
	if d.Name == "" || len(d.Name) > MaxNameLen {
		return nil, fmt.Errorf("saga: definition name %q: must be 1..%d bytes", d.Name, MaxNameLen)
	}
	if len(d.Steps) == 0 {
		return nil, fmt.Errorf("saga: definition %q has no steps", d.Name)
	}
	out := &Definition{Name: d.Name, Steps: make([]Step, len(d.Steps))}
	seen := map[string]bool{}
	for i, s := range d.Steps {
		where := fmt.Sprintf("saga: definition %q: steps[%d]", d.Name, i)
		if s.Name == "" || len(s.Name) > MaxNameLen {
			return nil, fmt.Errorf("%s: name %q must be 1..%d bytes", where, s.Name, MaxNameLen)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%s: name %q is duplicated", where, s.Name)
		}
		seen[s.Name] = true
		if s.Parallel && i == 0 {
			return nil, fmt.Errorf("%s (%s): the first step cannot be Parallel", where, s.Name)
		}
		if s.Participant == nil {
			return nil, fmt.Errorf("%s (%s): no Participant", where, s.Name)
		}
		if s.Timeout < 0 {
			return nil, fmt.Errorf("%s (%s): negative Timeout", where, s.Name)
		}
		if s.Timeout == 0 {
			s.Timeout = 5 * time.Second
		}
		if s.Compensation == "" {
			s.Compensation = "Compensate " + s.Name
		}
		s.Retry = s.Retry.withDefaults(DefaultRetry)
		s.CompensationRetry = s.CompensationRetry.withDefaults(DefaultCompensationRetry)
		if err := s.Retry.validate(); err != nil {
			return nil, fmt.Errorf("%s (%s): Retry: %w", where, s.Name, err)
		}
		if err := s.CompensationRetry.validate(); err != nil {
			return nil, fmt.Errorf("%s (%s): CompensationRetry: %w", where, s.Name, err)
		}
		out.Steps[i] = s
		if s.Parallel {
			last := len(out.stages) - 1
			out.stages[last] = append(out.stages[last], i)
		} else {
			out.stages = append(out.stages, []int{i})
		}
	}
	return out, nil
}
