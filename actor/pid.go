package actor

import (
	"fmt"
	"strconv"
	"strings"

	pa "github.com/asynkron/protoactor-go/actor"
)

// PID is a location-transparent handle to one incarnation of an actor.
//
// Unlike a protoactor PID, which is only a name, a PID carries an
// incarnation number that is unique on its node: a message addressed to an
// actor that has died is never delivered to a new actor spawned later under
// the same name. PIDs are immutable and safe to share between goroutines.
type PID struct {
	raw   *pa.PID
	name  string
	inc   uint64
	local *process // set for PIDs made by a local spawn: the fast path
}

// newPID builds a PID for a local spawn. The protoactor id encodes the
// incarnation, so the protoactor registry itself refuses stale deliveries.
func newPID(raw *pa.PID, name string, inc uint64) *PID {
	return &PID{raw: raw, name: name, inc: inc}
}

// idFor is the protoactor id of a new incarnation ("name#inc" in base 36).
func idFor(name string, inc uint64) string {
	return name + "#" + strconv.FormatUint(inc, 36)
}

// PIDFromProtoactor converts a protoactor PID that was produced by this
// package (on any node) back into a PID. It returns an error for PIDs that
// lack an incarnation, such as protoactor's own system actors.
func PIDFromProtoactor(raw *pa.PID) (*PID, error) {
	if raw == nil {
		return nil, fmt.Errorf("actor: nil pid")
	}
	last := raw.Id
	if i := strings.LastIndexByte(last, '/'); i >= 0 {
		last = last[i+1:]
	}
	i := strings.LastIndexByte(last, '#')
	if i < 0 {
		return nil, fmt.Errorf("actor: pid %q has no incarnation", raw.Id)
	}
	inc, err := strconv.ParseUint(last[i+1:], 36, 64)
	if err != nil || inc == 0 {
		return nil, fmt.Errorf("actor: pid %q has a malformed incarnation", raw.Id)
	}
	return &PID{raw: &pa.PID{Address: raw.Address, Id: raw.Id}, name: last[:i], inc: inc}, nil
}

// Address is the address of the node that hosts the actor ("nonhost" for a
// system without remoting).
func (p *PID) Address() string {
	if p == nil {
		return ""
	}
	return p.raw.Address
}

// Name is the name the actor was spawned under (for anonymous actors, the
// kind of its props).
func (p *PID) Name() string {
	if p == nil {
		return ""
	}
	return p.name
}

// Incarnation is the number that tells this actor apart from every other
// actor spawned under the same name on the same node.
func (p *PID) Incarnation() uint64 {
	if p == nil {
		return 0
	}
	return p.inc
}

// ID is the actor's unique id on its node, including the path of its parents
// and its incarnation.
func (p *PID) ID() string {
	if p == nil {
		return ""
	}
	return p.raw.Id
}

// Protoactor returns the underlying protoactor PID. It is the seam for the
// cluster layer; application code should not need it.
func (p *PID) Protoactor() *pa.PID {
	if p == nil {
		return nil
	}
	return p.raw
}

// Equal reports whether p and o denote the same incarnation of the same actor.
func (p *PID) Equal(o *PID) bool {
	if p == nil || o == nil {
		return p == o
	}
	return p.raw.Id == o.raw.Id && p.raw.Address == o.raw.Address
}

// fresh returns a copy of the protoactor PID for a protoactor send.
// protoactor caches the resolved process inside a PID value; a PID shared
// by several systems of one process (in-process clusters) would otherwise
// route one system's sends through another system's transport.
func (p *PID) fresh() *pa.PID { return &pa.PID{Address: p.raw.Address, Id: p.raw.Id} }

// key is a string that identifies the incarnation, for maps.
func (p *PID) key() string { return p.raw.Address + "/" + p.raw.Id }

// String renders the PID as "id@address".
func (p *PID) String() string {
	if p == nil {
		return "<nil>"
	}
	return p.raw.Id + "@" + p.raw.Address
}
