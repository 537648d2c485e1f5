package actor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/actor/actorpb"
)

// remotePID builds a PID as if decoded from another node's protoactor PID.
func remotePID(t testing.TB, address, id string) *actor.PID {
	t.Helper()
	p, err := actor.PIDFromProtoactor(&pa.PID{Address: address, Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// viaWire marshals m and unmarshals it into a fresh message of the same type,
// as a peer would receive it.
func viaWire[M proto.Message](t *testing.T, m M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := m.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

type spawnChild struct{}

func TestPIDWireRoundTrip(t *testing.T) {
	s := newSystem(t)
	anon, err := s.Spawn(actor.PropsFromFunc(func(*actor.Context) {}))
	if err != nil {
		t.Fatal(err)
	}
	named, err := s.SpawnNamed(actor.PropsFromFunc(func(*actor.Context) {}), "named")
	if err != nil {
		t.Fatal(err)
	}
	parent, err := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if _, ok := c.Message().(spawnChild); ok {
			child, err := c.SpawnNamed(actor.PropsFromFunc(func(*actor.Context) {}), "child")
			if err != nil {
				c.Reply(err)
				return
			}
			c.Reply(child)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	child, err := actor.Ask[*actor.PID](ctx, s, parent, spawnChild{})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		pid  *actor.PID
	}{
		{"anonymous", anon},
		{"named", named},
		{"child", child},
		{"remote", remotePID(t, "10.0.0.7:8090", "sup#2s/worker#1a2b")},
		{"max incarnation", remotePID(t, "nonhost", "x#3w5e11264sgsf")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := viaWire(t, tt.pid.ToProto())
			got, err := actor.PIDFromProto(m)
			if err != nil {
				t.Fatalf("PIDFromProto(%v): %v", m, err)
			}
			if !got.Equal(tt.pid) {
				t.Errorf("got %s, want %s", got, tt.pid)
			}
			if got.Name() != tt.pid.Name() || got.Incarnation() != tt.pid.Incarnation() ||
				got.Address() != tt.pid.Address() || got.ID() != tt.pid.ID() {
				t.Errorf("got (%q, %q, %q, %d), want (%q, %q, %q, %d)",
					got.Address(), got.ID(), got.Name(), got.Incarnation(),
					tt.pid.Address(), tt.pid.ID(), tt.pid.Name(), tt.pid.Incarnation())
			}
		})
	}
}

func TestPIDWireDecodedIsRoutable(t *testing.T) {
	s := newSystem(t)
	echo, err := s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(string); ok {
			c.Reply(m)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := actor.PIDFromProto(viaWire(t, echo.ToProto()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := actor.Ask[string](ctx, s, decoded, "hi"); err != nil || got != "hi" {
		t.Fatalf("Ask through a decoded PID = %q, %v; want hi, nil", got, err)
	}
}

func TestPIDToProtoNil(t *testing.T) {
	var p *actor.PID
	if m := p.ToProto(); m != nil {
		t.Fatalf("nil PID encodes as %v, want nil", m)
	}
}

func TestPIDFromProtoRejects(t *testing.T) {
	tests := []struct {
		name string
		in   *actorpb.PID
		want string // in the error message
	}{
		{"nil", nil, "pid is missing"},
		{"empty id", &actorpb.PID{Address: "nonhost", Name: "x", Incarnation: 1}, "id is empty"},
		{"zero incarnation", &actorpb.PID{Address: "nonhost", Id: "x#1", Name: "x"}, "incarnation 0"},
		{"empty address", &actorpb.PID{Id: "x#1", Name: "x", Incarnation: 1}, "empty address"},
		{"no incarnation in id", &actorpb.PID{Address: "nonhost", Id: "x", Incarnation: 1}, "has no incarnation"},
		{"zero incarnation in id", &actorpb.PID{Address: "nonhost", Id: "x#0", Incarnation: 1}, "malformed incarnation"},
		{"garbage incarnation in id", &actorpb.PID{Address: "nonhost", Id: "x#!", Incarnation: 1}, "malformed incarnation"},
		{"incarnation mismatch", &actorpb.PID{Address: "nonhost", Id: "x#2", Incarnation: 1}, "does not encode incarnation 1"},
		{"upper-case incarnation", &actorpb.PID{Address: "nonhost", Id: "x#A", Incarnation: 10}, "does not encode incarnation 10"},
		{"leading zero incarnation", &actorpb.PID{Address: "nonhost", Id: "x#01", Incarnation: 1}, "does not encode incarnation 1"},
		{"empty name in id", &actorpb.PID{Address: "nonhost", Id: "p#1/#2", Incarnation: 2}, "empty name"},
		{"name mismatch", &actorpb.PID{Address: "nonhost", Id: "x#1", Name: "y", Incarnation: 1}, `has name "y", want "x"`},
		{"long address", &actorpb.PID{Address: strings.Repeat("a", 2000), Id: "x#1", Incarnation: 1}, "address is 2000 bytes"},
		{"long id", &actorpb.PID{Address: "nonhost", Id: strings.Repeat("a", 5000) + "#1", Incarnation: 1}, "id is 5002 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := actor.PIDFromProto(tt.in)
			if err == nil {
				t.Fatalf("PIDFromProto(%v) = %s, want an error", tt.in, p)
			}
			if !errors.Is(err, actor.ErrMalformed) {
				t.Errorf("error %q does not match ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestReasonWireRoundTrip(t *testing.T) {
	tests := []actor.Reason{
		actor.Normal,
		actor.Shutdown,
		actor.Killed,
		actor.NoProc,
		actor.NoConnection,
		actor.ErrorReason(errors.New("disk full")),
		actor.ErrorReason(nil),
		actor.Errorf("bad %s", "state"),
		actor.ShutdownWith("draining"),
	}
	for _, r := range tests {
		t.Run(r.String(), func(t *testing.T) {
			got, err := actor.ReasonFromProto(viaWire(t, r.ToProto()))
			if err != nil {
				t.Fatal(err)
			}
			if got != r {
				t.Errorf("got %v, want %v", got, r)
			}
		})
	}
}

// The enum values must line up with the Go kinds by name, not only by number.
func TestReasonKindNamesMatch(t *testing.T) {
	for k := actor.KindNormal; k <= actor.KindNoConnection; k++ {
		got := actor.Reason{Kind: k}.ToProto().Kind.String()
		if want := "REASON_KIND_" + strings.ToUpper(k.String()); got != want {
			t.Errorf("kind %s encodes as %s, want %s", k, got, want)
		}
	}
}

func TestReasonFromProtoRejects(t *testing.T) {
	tests := []struct {
		name string
		in   *actorpb.Reason
		want string
	}{
		{"nil", nil, "reason is missing"},
		{"unspecified kind", &actorpb.Reason{}, "kind REASON_KIND_UNSPECIFIED is not a known kind"},
		{"unknown kind", &actorpb.Reason{Kind: 42}, "kind 42 is not a known kind"},
		{"negative kind", &actorpb.Reason{Kind: -1}, "kind -1 is not a known kind"},
		{"undefined Go kind", actor.Reason{Kind: 200}.ToProto(), "REASON_KIND_UNSPECIFIED"},
		{"long detail", &actorpb.Reason{Kind: actorpb.ReasonKind_REASON_KIND_ERROR, Detail: strings.Repeat("x", 70000)}, "detail is 70000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := actor.ReasonFromProto(tt.in)
			if err == nil {
				t.Fatalf("ReasonFromProto(%v) = %v, want an error", tt.in, r)
			}
			if !errors.Is(err, actor.ErrMalformed) {
				t.Errorf("error %q does not match ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestExitAndDownWireRoundTrip(t *testing.T) {
	from := remotePID(t, "10.0.0.7:8090", "worker#7")
	for _, e := range []*actor.Exit{
		{From: from, Reason: actor.ErrorReason(errors.New("boom"))},
		{Reason: actor.Killed}, // from outside any actor
	} {
		got, err := actor.ExitFromProto(viaWire(t, e.ToProto()))
		if err != nil {
			t.Fatal(err)
		}
		if !got.From.Equal(e.From) || got.Reason != e.Reason {
			t.Errorf("exit: got {%s %v}, want {%s %v}", got.From, got.Reason, e.From, e.Reason)
		}
	}
	d := &actor.Down{Ref: 99, PID: from, Reason: actor.NoConnection}
	got, err := actor.DownFromProto(viaWire(t, d.ToProto()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != d.Ref || !got.PID.Equal(d.PID) || got.Reason != d.Reason {
		t.Errorf("down: got %+v, want %+v", got, d)
	}
}

func TestExitAndDownFromProtoRejects(t *testing.T) {
	good := remotePID(t, "nonhost", "w#1").ToProto()
	reason := actor.Normal.ToProto()
	tests := []struct {
		name   string
		decode func() error
		want   string
	}{
		{"nil exit", func() error { _, err := actor.ExitFromProto(nil); return err }, "exit is missing"},
		{"exit without reason", func() error {
			_, err := actor.ExitFromProto(&actorpb.Exit{From: good})
			return err
		}, "exit: reason is missing"},
		{"exit from a bad pid", func() error {
			_, err := actor.ExitFromProto(&actorpb.Exit{From: &actorpb.PID{Address: "nonhost"}, Reason: reason})
			return err
		}, "exit from: pid id is empty"},
		{"nil down", func() error { _, err := actor.DownFromProto(nil); return err }, "down is missing"},
		{"down with ref 0", func() error {
			_, err := actor.DownFromProto(&actorpb.Down{Pid: good, Reason: reason})
			return err
		}, "monitor ref 0"},
		{"down without pid", func() error {
			_, err := actor.DownFromProto(&actorpb.Down{Ref: 1, Reason: reason})
			return err
		}, "down pid: pid is missing"},
		{"down with unknown kind", func() error {
			_, err := actor.DownFromProto(&actorpb.Down{Ref: 1, Pid: good, Reason: &actorpb.Reason{Kind: 9}})
			return err
		}, "down: reason kind 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode()
			if err == nil {
				t.Fatal("decoded, want an error")
			}
			if !errors.Is(err, actor.ErrMalformed) {
				t.Errorf("error %q does not match ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func mustMarshal(f *testing.F, m proto.Message) []byte {
	f.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzPIDFromProto feeds arbitrary bytes to the PID decoder, as a hostile
// peer could. It must never panic, and whatever it accepts must survive
// another round trip unchanged.
func FuzzPIDFromProto(f *testing.F) {
	f.Add(mustMarshal(f, &actorpb.PID{Address: "127.0.0.1:8090", Id: "sup#2s/worker#1a2b", Name: "worker", Incarnation: 0x1a2b}))
	f.Add(mustMarshal(f, &actorpb.PID{Address: "nonhost", Id: "x#1", Incarnation: 1}))
	f.Add(mustMarshal(f, &actorpb.PID{Address: "nonhost", Id: "x#A", Incarnation: 10}))
	f.Add(mustMarshal(f, &actorpb.PID{Id: "#"}))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m actorpb.PID
		if err := proto.Unmarshal(b, &m); err != nil {
			return
		}
		p, err := actor.PIDFromProto(&m)
		if err != nil {
			if !errors.Is(err, actor.ErrMalformed) {
				t.Fatalf("error %q does not match ErrMalformed", err)
			}
			return
		}
		again, err := actor.PIDFromProto(p.ToProto())
		if err != nil {
			t.Fatalf("accepted %v, then rejected its re-encoding: %v", &m, err)
		}
		if !again.Equal(p) || again.Name() != p.Name() || again.Incarnation() != p.Incarnation() {
			t.Fatalf("round trip changed %s (%q, %d) into %s (%q, %d)",
				p, p.Name(), p.Incarnation(), again, again.Name(), again.Incarnation())
		}
	})
}

// FuzzDownFromProto does the same for Down, which nests a PID and a reason.
func FuzzDownFromProto(f *testing.F) {
	f.Add(mustMarshal(f, &actorpb.Down{
		Ref:    7,
		Pid:    &actorpb.PID{Address: "nonhost", Id: "x#1", Name: "x", Incarnation: 1},
		Reason: &actorpb.Reason{Kind: actorpb.ReasonKind_REASON_KIND_ERROR, Detail: "boom"},
	}))
	f.Add(mustMarshal(f, &actorpb.Down{Ref: 1, Reason: &actorpb.Reason{Kind: 77}}))
	f.Add([]byte{0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m actorpb.Down
		if err := proto.Unmarshal(b, &m); err != nil {
			return
		}
		d, err := actor.DownFromProto(&m)
		if err != nil {
			if !errors.Is(err, actor.ErrMalformed) {
				t.Fatalf("error %q does not match ErrMalformed", err)
			}
			return
		}
		again, err := actor.DownFromProto(d.ToProto())
		if err != nil {
			t.Fatalf("accepted %v, then rejected its re-encoding: %v", &m, err)
		}
		if again.Ref != d.Ref || !again.PID.Equal(d.PID) || again.Reason != d.Reason {
			t.Fatalf("round trip changed %+v into %+v", d, again)
		}
	})
}
