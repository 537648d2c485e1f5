package supervision

import (
	"fmt"
	"math"
	"time"

	"github.com/distributed-go/distributed/actor"
)

// Strategy is a supervisor's restart strategy: which children are restarted
// when one of them exits and must be restarted.
type Strategy uint8

const (
	// OneForOne restarts only the child that exited (OTP's one_for_one).
	// It is the zero value.
	OneForOne Strategy = iota
	// OneForAll shuts the other children down in reverse start order and
	// then starts all children again in start order (one_for_all).
	OneForAll
	// RestForOne shuts down the children started after the one that exited,
	// in reverse start order, then starts that child and those after it in
	// start order (rest_for_one).
	RestForOne
	// SimpleOneForOne is OneForOne for children that are all made from a
	// single child spec and started only dynamically, with StartChildWith
	// (simple_one_for_one). On shutdown they are all stopped at the same
	// time, in no order.
	SimpleOneForOne
)

var strategyNames = [...]string{"one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"}

// String returns the OTP name of the strategy ("one_for_one", ...).
func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("Strategy(%d)", s)
}

// RestartType says whether a child is restarted after it exits.
type RestartType uint8

const (
	// Permanent children are always restarted, whatever their exit reason,
	// including normal and shutdown. It is the zero value.
	Permanent RestartType = iota
	// Transient children are restarted only after an abnormal exit: not
	// after a clean one (normal, shutdown, or shutdown with a detail).
	Transient
	// Temporary children are never restarted; their spec is removed when
	// they exit.
	Temporary
)

var restartNames = [...]string{"permanent", "transient", "temporary"}

// String returns the OTP name of the restart type ("permanent", ...).
func (r RestartType) String() string {
	if int(r) < len(restartNames) {
		return restartNames[r]
	}
	return fmt.Sprintf("RestartType(%d)", r)
}

// ChildType tells workers from supervisors. It sets the default shutdown
// and start timeouts, and Tree walks into children of type Supervisor.
type ChildType uint8

const (
	// Worker is any child that is not a supervisor. It is the zero value.
	Worker ChildType = iota
	// Supervisor is a child that is itself a supervisor of this package.
	Supervisor
)

// String returns "worker" or "supervisor".
func (t ChildType) String() string {
	switch t {
	case Worker:
		return "worker"
	case Supervisor:
		return "supervisor"
	}
	return fmt.Sprintf("ChildType(%d)", t)
}

// Special durations for ChildSpec.Shutdown, ChildSpec.StartTimeout and
// Spec.Period.
const (
	// ShutdownBrutalKill as ChildSpec.Shutdown kills the child at once, with
	// no chance to clean up (OTP's brutal_kill).
	ShutdownBrutalKill time.Duration = -1
	// Infinity waits without a time limit (OTP's infinity). It is the default
	// Shutdown and StartTimeout of children of type Supervisor, whose own
	// children bound the time they take.
	Infinity time.Duration = math.MaxInt64
)

// Defaults, as in OTP.
const (
	// DefaultMaxRestarts and DefaultPeriod are the restart intensity used
	// when Spec.MaxRestarts and Spec.Period are both zero: one restart in
	// five seconds.
	DefaultMaxRestarts = 1
	// DefaultPeriod: see DefaultMaxRestarts.
	DefaultPeriod = 5 * time.Second
	// DefaultShutdown is how long a worker is given to stop after the
	// supervisor asks it to, before it is killed.
	DefaultShutdown = 5 * time.Second
	// DefaultStartTimeout is how long a worker may take to handle Started.
	DefaultStartTimeout = 5 * time.Second
)

// ChildSpec describes one child of a supervisor: how to start it and what to
// do when it exits (OTP's child specification).
type ChildSpec struct {
	// ID names the child within its supervisor; it must be unique and not
	// empty. For a SimpleOneForOne supervisor it names the template and is
	// reported as the ID of every child made from it.
	ID string
	// Props starts the child. Exactly one of Props and Factory is set.
	Props *actor.Props
	// Factory makes the Props for each start of the child. For a
	// SimpleOneForOne supervisor it receives the argument given to
	// StartChildWith (and the same argument again on a restart); for other
	// strategies it receives nil. A Factory that returns an error or panics
	// makes that start fail.
	Factory func(arg any) (*actor.Props, error)
	// Name, if set, registers the child under this name (System.WhereIs)
	// each time it starts. Not allowed for SimpleOneForOne templates.
	Name string
	// Restart is the restart type. Default Permanent.
	Restart RestartType
	// Type is Worker (default) or Supervisor.
	Type ChildType
	// Shutdown is how long the child may take to stop after the supervisor
	// sends it an exit signal with reason shutdown; then it is killed.
	// ShutdownBrutalKill kills it at once; Infinity waits as long as it
	// takes. Default: DefaultShutdown for workers, Infinity for supervisors.
	Shutdown time.Duration
	// StartTimeout bounds the time the child may take to handle Started;
	// a child that takes longer is killed and its start fails. Default:
	// DefaultStartTimeout for workers, Infinity for supervisors.
	StartTimeout time.Duration
}

// Spec describes a supervisor: its strategy, its restart intensity and its
// children (OTP's supervisor flags plus child specifications).
//
// Restart intensity: if more than MaxRestarts restarts happen within any
// Period, the supervisor gives up: it shuts its remaining children down
// and exits with reason shutdown, leaving the decision to its own
// supervisor. If MaxRestarts and Period are both zero, DefaultMaxRestarts
// and DefaultPeriod apply; otherwise Period must be positive. MaxRestarts 0
// (with a Period) means that no restart is allowed.
type Spec struct {
	// Strategy is the restart strategy. Default OneForOne.
	Strategy Strategy
	// MaxRestarts is the number of restarts allowed within Period (>= 0).
	MaxRestarts int
	// Period is the sliding window of the restart intensity (> 0).
	Period time.Duration
	// Children are started in this order when the supervisor starts and
	// stopped in the reverse order. For SimpleOneForOne it holds exactly
	// one spec, the template; no child is started until StartChildWith.
	Children []ChildSpec
}

// validate checks a spec and returns a copy with the defaults applied.
func (s Spec) validate() (Spec, error) {
	if s.Strategy > SimpleOneForOne {
		return s, invalid("Strategy %d is unknown", s.Strategy)
	}
	if s.MaxRestarts == 0 && s.Period == 0 {
		s.MaxRestarts, s.Period = DefaultMaxRestarts, DefaultPeriod
	}
	if s.MaxRestarts < 0 {
		return s, invalid("MaxRestarts must be >= 0, got %d", s.MaxRestarts)
	}
	if s.Period <= 0 {
		return s, invalid("Period must be > 0, got %v", s.Period)
	}
	if s.Strategy == SimpleOneForOne && len(s.Children) != 1 {
		return s, invalid("simple_one_for_one needs exactly one child spec, got %d", len(s.Children))
	}
	children := make([]ChildSpec, len(s.Children))
	seen := make(map[string]bool, len(s.Children))
	for i, c := range s.Children {
		field := fmt.Sprintf("children[%d]", i)
		c, err := c.validate(field, s.Strategy == SimpleOneForOne)
		if err != nil {
			return s, err
		}
		if seen[c.ID] {
			return s, invalid("%s.ID %q is duplicated", field, c.ID)
		}
		seen[c.ID] = true
		children[i] = c
	}
	s.Children = children
	return s, nil
}

// validate checks a child spec, naming it field in errors, and returns it
// with the defaults applied.
func (c ChildSpec) validate(field string, simple bool) (ChildSpec, error) {
	if c.ID == "" {
		return c, invalid("%s.ID is empty", field)
	}
	switch {
	case c.Props == nil && c.Factory == nil:
		return c, invalid("%s.Props is nil (set Props or Factory)", field)
	case c.Props != nil && c.Factory != nil:
		return c, invalid("%s: set only one of Props and Factory", field)
	}
	if c.Restart > Temporary {
		return c, invalid("%s.Restart %d is unknown", field, c.Restart)
	}
	if c.Type > Supervisor {
		return c, invalid("%s.Type %d is unknown", field, c.Type)
	}
	if simple && c.Name != "" {
		return c, invalid("%s.Name must be empty for simple_one_for_one (every child would take the same name)", field)
	}
	switch {
	case c.Shutdown == 0 && c.Type == Supervisor:
		c.Shutdown = Infinity
	case c.Shutdown == 0:
		c.Shutdown = DefaultShutdown
	case c.Shutdown < 0 && c.Shutdown != ShutdownBrutalKill:
		return c, invalid("%s.Shutdown must be > 0 or ShutdownBrutalKill, got %v", field, c.Shutdown)
	}
	switch {
	case c.StartTimeout == 0 && c.Type == Supervisor:
		c.StartTimeout = Infinity
	case c.StartTimeout == 0:
		c.StartTimeout = DefaultStartTimeout
	case c.StartTimeout < 0:
		return c, invalid("%s.StartTimeout must be > 0, got %v", field, c.StartTimeout)
	}
	return c, nil
}

func invalid(format string, args ...any) error {
	return &specError{msg: "supervision: " + fmt.Sprintf(format, args...)}
}

// specError is a validation error; it matches ErrInvalidSpec.
type specError struct{ msg string }

func (e *specError) Error() string        { return e.msg }
func (e *specError) Is(target error) bool { return target == ErrInvalidSpec }
