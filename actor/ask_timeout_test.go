package actor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
)

// TestAskTimeout: the call's own limit ends a wait for an actor that does
// not answer, with an error that says the deadline passed, while an answer
// within the limit is returned as Ask would.
func TestAskTimeout(t *testing.T) {
	s := newSystem(t)
	silent, err := s.Spawn(actor.PropsFromFunc(func(*actor.Context) {}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background() // no deadline of its own
	_, err = actor.AskTimeout[*wrapperspb.StringValue](ctx, s, silent, wrapperspb.String("x"), 20*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ask of a silent actor: %v, want DeadlineExceeded", err)
	}
	echo, err := s.Spawn(remoteEchoLocal())
	if err != nil {
		t.Fatal(err)
	}
	got, err := actor.AskTimeout[*wrapperspb.StringValue](ctx, s, echo, wrapperspb.String("hi"), 5*time.Second)
	if err != nil || got.GetValue() != "echo hi" {
		t.Fatalf("%v %v", got, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := actor.AskTimeout[*wrapperspb.StringValue](cctx, s, echo, wrapperspb.String("x"), time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("ask with a cancelled context: %v", err)
	}
}
