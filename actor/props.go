package actor

import (
	"fmt"
	"reflect"
	"strings"
)

// Actor is the behaviour of an actor: it handles one message at a time.
// Receive is never called concurrently for the same actor.
type Actor interface {
	Receive(ctx *Context)
}

// ReceiveFunc adapts a function to the Actor interface.
type ReceiveFunc func(ctx *Context)

// Receive calls f(ctx).
func (f ReceiveFunc) Receive(ctx *Context) { f(ctx) }

// Producer makes a fresh Actor for each spawn. State lives in the Actor value
// it returns, so two spawns never share state.
type Producer func() Actor

// Props says how to make an actor. It is immutable once built and may be
// used for many spawns.
type Props struct {
	producer Producer
	kind     string
	trapExit bool
}

// PropsOption configures Props.
type PropsOption func(*Props)

// WithKind names the kind of actor (used for anonymous PIDs, logs and
// metrics). The default is the Go type name of the actor.
func WithKind(kind string) PropsOption { return func(p *Props) { p.kind = kind } }

// WithTrapExit makes the actor trap exits from its first message on, as if
// it called Context.TrapExit(true) in Started.
func WithTrapExit() PropsOption { return func(p *Props) { p.trapExit = true } }

// PropsFromProducer returns Props that spawn the actors made by producer.
func PropsFromProducer(producer Producer, opts ...PropsOption) *Props {
	p := &Props{producer: producer}
	for _, o := range opts {
		o(p)
	}
	return p
}

// PropsFromFunc returns Props for an actor whose behaviour is f. The actor
// keeps its state in variables captured by f, so f's closure must be created
// per spawn if the state must not be shared; prefer PropsFromProducer.
func PropsFromFunc(f ReceiveFunc, opts ...PropsOption) *Props {
	if f == nil {
		return PropsFromProducer(nil, opts...)
	}
	return PropsFromProducer(func() Actor { return f }, opts...)
}

// Kind returns the kind name used for anonymous PIDs and metrics.
func (p *Props) Kind() string { return p.kind }

func (p *Props) validate() error {
	if p == nil {
		return fmt.Errorf("%w: props is nil", ErrInvalidProps)
	}
	if p.producer == nil {
		return fmt.Errorf("%w: props.producer is nil", ErrInvalidProps)
	}
	return nil
}

// kindOf derives a kind name from an actor value ("*main.counter" → "counter").
func kindOf(a Actor) string {
	var t reflect.Type
	if sa, ok := a.(*serverActor); ok {
		t = reflect.TypeOf(sa.srv) // a Server is named by its own type
	} else {
		t = reflect.TypeOf(a)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "actor"
	}
	name := t.Name()
	if name == "" || name == "ReceiveFunc" {
		return "actor"
	}
	return strings.ToLower(name[:1]) + name[1:]
}

// validName rejects names that would break PID ids.
func validName(name string) error {
	if name == "" {
		return fmt.Errorf("actor: name is empty")
	}
	if strings.ContainsAny(name, "/#@") {
		return fmt.Errorf("actor: name %q must not contain '/', '#' or '@'", name)
	}
	return nil
}
