package actor

import (
	"context"
	"errors"
	"fmt"
)

// Server is a gen_server-style behaviour: the actor package runs the message
// loop and the Server only handles requests, keeping its state in its own
// fields (never in globals).
//
//   - Init runs first (the Started message). Returning an error stops the
//     server with that error; StartLink reports it to the spawner.
//   - HandleCall answers a request that has a return address: an Ask (Call)
//     or a Context.Request. Return (reply, nil) to answer; return
//     (nil, ErrNoReply) to answer later through from.Reply (a deferred reply);
//     return (nil, StopServer(...)) to stop; any other error is sent to the
//     caller as the reply and the server carries on.
//   - HandleCast handles a Cast; HandleInfo handles every other message
//     (plain Send, timers, Down, Exit). Returning StopServer(...) stops the
//     server with that reason; any other error crashes it (reason error).
//   - Terminate runs when the server stops for any reason except a kill.
//
// A panic in any callback crashes the server with an error reason: linked
// actors and monitors are told, and the process carries on.
//
// If the server traps exits and its parent (usually its supervisor) sends it
// an exit signal, the server stops with that reason, running Terminate, as
// gen_server does.
type Server interface {
	Init(ctx *Context) error
	HandleCall(ctx *Context, req any, from From) (any, error)
	HandleCast(ctx *Context, msg any) error
	HandleInfo(ctx *Context, msg any) error
	Terminate(ctx *Context, reason Reason)
}

// ServerBase gives a Server default callbacks; embed it and override what
// you need. Unhandled calls get an error reply; unhandled casts and infos are
// ignored (and logged at debug level).
type ServerBase struct{}

// Init does nothing.
func (ServerBase) Init(*Context) error { return nil }

// HandleCall answers with an error naming the request type.
func (ServerBase) HandleCall(_ *Context, req any, _ From) (any, error) {
	return nil, fmt.Errorf("actor: unhandled call %T", req)
}

// HandleCast ignores the message.
func (ServerBase) HandleCast(ctx *Context, msg any) error {
	ctx.Logger().Debug("unhandled cast", zapType(msg))
	return nil
}

// HandleInfo ignores the message.
func (ServerBase) HandleInfo(ctx *Context, msg any) error {
	ctx.Logger().Debug("unhandled info", zapType(msg))
	return nil
}

// Terminate does nothing.
func (ServerBase) Terminate(*Context, Reason) {}

// StopError asks the server loop to stop with Reason, optionally answering
// the current call first. Make one with StopServer or StopServerReply.
type StopError struct {
	Reason   Reason
	Reply    any
	HasReply bool
}

func (e *StopError) Error() string { return "actor: server stops: " + e.Reason.String() }

// StopServer returns an error that stops the server with reason.
func StopServer(reason Reason) error { return &StopError{Reason: reason} }

// StopServerReply returns an error that answers the current call with reply
// and then stops the server with reason.
func StopServerReply(reason Reason, reply any) error {
	return &StopError{Reason: reason, Reply: reply, HasReply: true}
}

// castMsg marks a message sent with Cast.
type castMsg struct{ msg any }

// Cast sends msg to a Server's HandleCast (fire and forget).
func Cast(s *System, pid *PID, msg any) { s.send(pid, &castMsg{msg: msg}) }

// Call sends req to a Server's HandleCall and waits for the reply, until ctx
// is done. It fails fast with ErrDeadActor if the server is dead or dies
// before answering. It is Ask under its gen_server name.
func Call[R any](ctx context.Context, s *System, pid *PID, req any) (R, error) {
	return Ask[R](ctx, s, pid, req)
}

// ServerProps returns Props that run the Server made by newServer.
func ServerProps(newServer func() Server, opts ...PropsOption) *Props {
	if newServer == nil {
		return PropsFromProducer(nil, opts...)
	}
	return PropsFromProducer(func() Actor {
		srv := newServer()
		if srv == nil {
			return nil
		}
		return &serverActor{srv: srv}
	}, opts...)
}

type serverActor struct{ srv Server }

func (a *serverActor) Receive(c *Context) {
	switch m := c.Message().(type) {
	case *Started:
		a.stopOn(c, a.srv.Init(c))
	case *Stopping:
		a.srv.Terminate(c, m.Reason)
	case *castMsg:
		a.stopOn(c, a.srv.HandleCast(c, m.msg))
	case *Exit:
		if c.TrapsExit() && m.From != nil && m.From.Equal(c.Parent()) {
			c.Exit(m.Reason)
			return
		}
		a.stopOn(c, a.srv.HandleInfo(c, m))
	default:
		from := c.From()
		if !from.Valid() {
			a.stopOn(c, a.srv.HandleInfo(c, m))
			return
		}
		reply, err := a.srv.HandleCall(c, m, from)
		var stop *StopError
		switch {
		case err == nil:
			from.Reply(reply)
		case errors.Is(err, ErrNoReply):
		case errors.As(err, &stop):
			if stop.HasReply {
				from.Reply(stop.Reply)
			}
			c.Exit(stop.Reason)
		default:
			from.Reply(err)
		}
	}
}

// stopOn stops the server when a callback returned an error.
func (a *serverActor) stopOn(c *Context, err error) {
	if err == nil {
		return
	}
	var stop *StopError
	if errors.As(err, &stop) {
		c.Exit(stop.Reason)
		return
	}
	c.Exit(ErrorReason(err))
}
