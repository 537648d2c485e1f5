package actor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	pa "github.com/asynkron/protoactor-go/actor"

	"github.com/distributed-go/distributed/actor/actorpb"
)

// Conversions between the actor package's values and their protobuf wire
// forms (package actorpb). Encoders never fail. Decoders read input from the
// network, so they check every field, bound every string, and return an
// error matching ErrMalformed that names the problem; they never panic.

// ErrMalformed is matched (errors.Is) by every error a wire decoder returns.
var ErrMalformed = errors.New("actor: malformed wire message")

// Size bounds for decoded strings. They are far above anything this package
// produces and exist so that a hostile peer cannot make a node keep
// arbitrarily large values in link tables, monitors and logs.
const (
	maxWireAddress = 1 << 10 // "host:port"
	maxWireID      = 1 << 12 // a path of "name#inc" segments
	maxWireDetail  = 1 << 16 // an error message
)

// wireError is a decoding error: "actor: malformed wire message: <problem>".
type wireError struct{ problem string }

func (e *wireError) Error() string        { return ErrMalformed.Error() + ": " + e.problem }
func (e *wireError) Is(target error) bool { return target == ErrMalformed }

func malformed(format string, args ...any) error {
	return &wireError{problem: fmt.Sprintf(format, args...)}
}

// within puts the name of the field being decoded in front of a decoding
// error: "exit from: pid id is empty".
func within(field string, err error) error {
	if we, ok := err.(*wireError); ok {
		return &wireError{problem: field + ": " + we.problem}
	}
	return err
}

// ToProto returns the wire form of the PID; nil for a nil PID.
func (p *PID) ToProto() *actorpb.PID {
	if p == nil {
		return nil
	}
	return &actorpb.PID{Address: p.raw.Address, Id: p.raw.Id, Name: p.name, Incarnation: p.inc}
}

// PIDFromProto decodes a PID received from another node. The address and id
// must be non-empty; the incarnation must be non-zero and equal the one
// encoded in the id (in canonical form), and the name, when set, must equal
// the one encoded in the id. The result is not bound to any local process:
// System routes it by address and id.
func PIDFromProto(m *actorpb.PID) (*PID, error) {
	if m == nil {
		return nil, malformed("pid is missing")
	}
	switch {
	case m.Address == "":
		return nil, malformed("pid %q has an empty address", m.Id)
	case len(m.Address) > maxWireAddress:
		return nil, malformed("pid address is %d bytes, more than %d", len(m.Address), maxWireAddress)
	case m.Id == "":
		return nil, malformed("pid id is empty")
	case len(m.Id) > maxWireID:
		return nil, malformed("pid id is %d bytes, more than %d", len(m.Id), maxWireID)
	case m.Incarnation == 0:
		return nil, malformed("pid %q has incarnation 0", m.Id)
	}
	p, err := PIDFromProtoactor(&pa.PID{Address: m.Address, Id: m.Id})
	if err != nil {
		return nil, malformed("%s", strings.TrimPrefix(err.Error(), "actor: "))
	}
	// The id is what routes messages and what Equal compares, so it must be
	// the one canonical spelling of (name, incarnation): "x#A" and "x#0a"
	// parse like "x#a" but would name a different actor.
	if !strings.HasSuffix(m.Id, "#"+strconv.FormatUint(m.Incarnation, 36)) {
		return nil, malformed("pid %q does not encode incarnation %d", m.Id, m.Incarnation)
	}
	if p.name == "" {
		return nil, malformed("pid %q has an empty name", m.Id)
	}
	if m.Name != "" && m.Name != p.name {
		return nil, malformed("pid %q has name %q, want %q", m.Id, m.Name, p.name)
	}
	return p, nil
}

// ToProto returns the wire form of the reason. A kind this package does not
// define is sent as REASON_KIND_UNSPECIFIED, which receivers reject.
func (r Reason) ToProto() *actorpb.Reason {
	k := actorpb.ReasonKind_REASON_KIND_UNSPECIFIED
	if r.Kind <= KindNoConnection {
		// ReasonKind is the Go kind plus one: zero is the unset value.
		k = actorpb.ReasonKind(r.Kind) + 1
	}
	return &actorpb.Reason{Kind: k, Detail: r.Detail}
}

// ReasonFromProto decodes an exit reason received from another node. It
// rejects a missing reason, an unset or unknown kind, and an oversized
// detail.
func ReasonFromProto(m *actorpb.Reason) (Reason, error) {
	if m == nil {
		return Reason{}, malformed("reason is missing")
	}
	k := m.Kind
	if k < actorpb.ReasonKind_REASON_KIND_NORMAL || k > actorpb.ReasonKind_REASON_KIND_NOCONNECTION {
		// String names a known enum value, and prints the number of an unknown one.
		return Reason{}, malformed("reason kind %s is not a known kind", k)
	}
	if len(m.Detail) > maxWireDetail {
		return Reason{}, malformed("reason detail is %d bytes, more than %d", len(m.Detail), maxWireDetail)
	}
	return Reason{Kind: ReasonKind(k - 1), Detail: m.Detail}, nil
}

// ToProto returns the wire form of the Exit message; nil for a nil Exit.
func (e *Exit) ToProto() *actorpb.Exit {
	if e == nil {
		return nil
	}
	return &actorpb.Exit{From: e.From.ToProto(), Reason: e.Reason.ToProto()}
}

// ExitFromProto decodes an Exit message. From may be unset (an exit signal
// sent from outside any actor); the reason is required.
func ExitFromProto(m *actorpb.Exit) (*Exit, error) {
	if m == nil {
		return nil, malformed("exit is missing")
	}
	var from *PID
	if m.From != nil {
		var err error
		if from, err = PIDFromProto(m.From); err != nil {
			return nil, within("exit from", err)
		}
	}
	r, err := ReasonFromProto(m.Reason)
	if err != nil {
		return nil, within("exit", err)
	}
	return &Exit{From: from, Reason: r}, nil
}

// ToProto returns the wire form of the Down message; nil for a nil Down.
func (d *Down) ToProto() *actorpb.Down {
	if d == nil {
		return nil
	}
	return &actorpb.Down{Ref: uint64(d.Ref), Pid: d.PID.ToProto(), Reason: d.Reason.ToProto()}
}

// DownFromProto decodes a Down message. The ref must be non-zero; the PID
// and the reason are required.
func DownFromProto(m *actorpb.Down) (*Down, error) {
	if m == nil {
		return nil, malformed("down is missing")
	}
	if m.Ref == 0 {
		return nil, malformed("down has monitor ref 0")
	}
	pid, err := PIDFromProto(m.Pid)
	if err != nil {
		return nil, within("down pid", err)
	}
	r, err := ReasonFromProto(m.Reason)
	if err != nil {
		return nil, within("down", err)
	}
	return &Down{Ref: MonitorRef(m.Ref), PID: pid, Reason: r}, nil
}
