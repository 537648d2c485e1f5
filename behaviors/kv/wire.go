package kv

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/behaviors/internal/pbwire"
	"github.com/distributed-go/distributed/behaviors/kv/kvpb"
)

// The Store applies every command on every member, so decoding commands and
// encoding results is on the hot path of each write. protobuf-go decodes a
// oneof through reflection and allocates each message; the functions here
// read and write the same wire format directly (protowire), without copying
// the command's bytes. They handle the encoding proto.Marshal produces; any
// other (unknown or repeated fields, other field order) falls back to
// proto.Unmarshal, so the verdict on a command is the same as
// proto.Unmarshal's. The tests compare both ways on many inputs.

// Operations of a command: the field numbers of kvpb.Command's oneof.
const (
	opNone   = 0
	opPut    = 4
	opDelete = 5
	opCas    = 6
)

// command is a decoded kvpb.Command. Its byte slices may alias the encoded
// command: the Store copies what it keeps.
type command struct {
	clientID, seq, ackedBelow uint64
	op                        int
	key                       []byte
	value, expected           []byte
	expectAbsent              bool
}

// result is a kvpb.Result.
type result struct {
	found, swapped bool
	value          []byte
	err            string
	index          uint64
}

// decodeCommand decodes an encoded kvpb.Command.
func decodeCommand(b []byte, c *command) error {
	if decodeCommandFast(b, c) {
		return nil
	}
	var m kvpb.Command
	if err := proto.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = commandOf(&m)
	return nil
}

// commandOf converts a kvpb.Command.
func commandOf(m *kvpb.Command) command {
	c := command{clientID: m.ClientId, seq: m.Seq, ackedBelow: m.AckedBelow}
	switch op := m.Op.(type) {
	case *kvpb.Command_Put:
		c.op, c.key, c.value = opPut, []byte(op.Put.GetKey()), op.Put.GetValue()
	case *kvpb.Command_Delete:
		c.op, c.key = opDelete, []byte(op.Delete.GetKey())
	case *kvpb.Command_Cas:
		c.op, c.key, c.expected, c.value, c.expectAbsent = opCas, []byte(op.Cas.GetKey()),
			op.Cas.GetExpected(), op.Cas.GetValue(), op.Cas.GetExpectAbsent()
	}
	return c
}

// decodeCommandFast decodes b when it is in the canonical encoding (each
// known field at most once, in field order, nothing unknown) and reports
// whether it was.
func decodeCommandFast(b []byte, c *command) bool {
	*c = command{}
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, n := pbwire.ConsumeTag(b)
		if n < 0 || num <= last {
			return false
		}
		b = b[n:]
		last = num
		switch num {
		case 1, 2, 3:
			if typ != protowire.VarintType {
				return false
			}
			v, n := pbwire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			switch num {
			case 1:
				c.clientID = v
			case 2:
				c.seq = v
			default:
				c.ackedBelow = v
			}
		case opPut, opDelete, opCas:
			if typ != protowire.BytesType || c.op != opNone {
				return false
			}
			v, n := pbwire.ConsumeBytes(b)
			if n < 0 || !decodeOpFast(v, int(num), c) {
				return false
			}
			b = b[n:]
			c.op = int(num)
		default:
			return false
		}
	}
	return true
}

// decodeOpFast decodes the Put, Delete or CompareAndSwap message of a
// command (op is its field number).
func decodeOpFast(b []byte, op int, c *command) bool {
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, n := pbwire.ConsumeTag(b)
		if n < 0 || num <= last {
			return false
		}
		b = b[n:]
		last = num
		if op == opCas && num == 3 {
			if typ != protowire.VarintType {
				return false
			}
			v, n := pbwire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			c.expectAbsent = v != 0
			continue
		}
		if typ != protowire.BytesType {
			return false
		}
		v, n := pbwire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == 1: // key, a string: proto.Unmarshal rejects invalid UTF-8
			if !utf8.Valid(v) {
				return false
			}
			c.key = v
		case num == 2 && op == opPut:
			c.value = v
		case num == 2 && op == opCas:
			c.expected = v
		case num == 4 && op == opCas:
			c.value = v
		default:
			return false
		}
	}
	// proto.Unmarshal leaves an empty bytes field nil.
	if len(c.value) == 0 {
		c.value = nil
	}
	if len(c.expected) == 0 {
		c.expected = nil
	}
	return true
}

// appendCommand appends the encoding of c (as proto.Marshal encodes the
// equivalent kvpb.Command) to b.
func appendCommand(b []byte, c *command) []byte {
	if c.clientID != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, c.clientID)
	}
	if c.seq != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, c.seq)
	}
	if c.ackedBelow != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, c.ackedBelow)
	}
	if c.op == opNone {
		return b
	}
	b = protowire.AppendTag(b, protowire.Number(c.op), protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(opSize(c)))
	b = appendBytesField(b, 1, c.key)
	switch c.op {
	case opPut:
		b = appendBytesField(b, 2, c.value)
	case opCas:
		b = appendBytesField(b, 2, c.expected)
		if c.expectAbsent {
			b = protowire.AppendTag(b, 3, protowire.VarintType)
			b = protowire.AppendVarint(b, 1)
		}
		b = appendBytesField(b, 4, c.value)
	}
	return b
}

// commandSize is the length of c's encoding.
func commandSize(c *command) int {
	n := 0
	for _, v := range [...]uint64{c.clientID, c.seq, c.ackedBelow} {
		if v != 0 {
			n += 1 + protowire.SizeVarint(v)
		}
	}
	if c.op != opNone {
		n += 1 + protowire.SizeBytes(opSize(c))
	}
	return n
}

// opSize is the length of the encoding of c's operation message.
func opSize(c *command) int {
	n := bytesFieldSize(c.key)
	switch c.op {
	case opPut:
		n += bytesFieldSize(c.value)
	case opCas:
		n += bytesFieldSize(c.expected) + bytesFieldSize(c.value)
		if c.expectAbsent {
			n += 2
		}
	}
	return n
}

func bytesFieldSize(v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return 1 + protowire.SizeBytes(len(v))
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// encodeResult encodes r as proto.Marshal (deterministic) encodes the
// equivalent kvpb.Result.
func encodeResult(r *result) []byte {
	n := 0
	if r.found {
		n += 2
	}
	n += bytesFieldSize(r.value)
	if r.swapped {
		n += 2
	}
	if r.err != "" {
		n += 1 + protowire.SizeBytes(len(r.err))
	}
	if r.index != 0 {
		n += 1 + protowire.SizeVarint(r.index)
	}
	b := make([]byte, 0, n)
	if r.found {
		b = append(b, 1<<3|byte(protowire.VarintType), 1)
	}
	b = appendBytesField(b, 2, r.value)
	if r.swapped {
		b = append(b, 3<<3|byte(protowire.VarintType), 1)
	}
	if r.err != "" {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, r.err)
	}
	if r.index != 0 {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, r.index)
	}
	return b
}

// decodeResult decodes an encoded kvpb.Result. The value aliases b.
func decodeResult(b []byte, r *result) error {
	if decodeResultFast(b, r) {
		return nil
	}
	var m kvpb.Result
	if err := proto.Unmarshal(b, &m); err != nil {
		return err
	}
	*r = resultOf(&m)
	return nil
}

func resultOf(m *kvpb.Result) result {
	return result{found: m.Found, swapped: m.Swapped, value: m.Value, err: m.Error, index: m.Index}
}

func (r *result) proto() *kvpb.Result {
	return &kvpb.Result{Found: r.found, Swapped: r.swapped, Value: r.value, Error: r.err, Index: r.index}
}

// decodeResultFast decodes b when it is in the canonical encoding and
// reports whether it was.
func decodeResultFast(b []byte, r *result) bool {
	*r = result{}
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, n := pbwire.ConsumeTag(b)
		if n < 0 || num <= last || num > 5 {
			return false
		}
		b = b[n:]
		last = num
		if num == 2 || num == 4 {
			if typ != protowire.BytesType {
				return false
			}
			v, n := pbwire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			if num == 2 {
				if len(v) > 0 {
					r.value = v
				}
			} else {
				if !utf8.Valid(v) {
					return false
				}
				r.err = string(v)
			}
			continue
		}
		if typ != protowire.VarintType {
			return false
		}
		v, n := pbwire.ConsumeVarint(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case 1:
			r.found = v != 0
		case 3:
			r.swapped = v != 0
		case 5:
			r.index = v
		}
	}
	return true
}
