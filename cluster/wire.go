package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	pa "github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// The actor transport's frames. A connection carries, after the handshake
// (handshake.go), a stream of frames in one direction:
//
//	frame   = length:u32le body                 length = len(body) ≤ MaxFrameSize
//	body    = flags:u8 [typedef] type:uvarint target [sender] payload
//	typedef = name:string                        if flags&frameTypeDef: type number `type` is this name
//	target  = id:string                          the receiver's local process id
//	sender  = [address:string] id:string         if flags&frameSender; no address if flags&frameSenderLocal
//	string  = len:uvarint bytes
//	payload = the message's protobuf encoding (the rest of the body)
//
// Type names are sent once per connection: the first frame of a type
// defines its number (the next unused one, from 0), later frames give only
// the number. The receiver looks names up in the process's protobuf
// registry, so both nodes must link the message types they exchange.

// MaxFrameSize is the largest frame body the actor transport sends or
// accepts: a message whose encoding is larger is dropped (and counted) at
// the sender; a peer announcing a larger frame is disconnected.
const MaxFrameSize = 8 << 20

const (
	frameSystem      = 1 << iota // a protoactor system message
	frameSender                  // a sender PID follows the target
	frameSenderLocal             // the sender lives on the sending node: its address is omitted
	frameTypeDef                 // the frame defines its type number
	frameKnownFlags  = frameSystem | frameSender | frameSenderLocal | frameTypeDef
)

// frameHeaderMax bounds the bytes a header adds before the payload, without
// the type name and ids (which are counted separately).
const frameHeaderMax = 4 + 1 + 3*binary.MaxVarintLen64

// appendString appends a uvarint-length-prefixed string.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errFrame is wrapped by every error about a malformed frame: the peer
// speaks the protocol wrongly and the connection is closed.
var errFrame = errors.New("malformed frame")

// frameReader parses one frame body.
type frameReader struct {
	b   []byte
	err error
}

func (r *frameReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: bad varint", errFrame)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *frameReader) string(what string) string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: %s of %d bytes overruns the frame", errFrame, what, n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// inFrame is a decoded frame.
type inFrame struct {
	system  bool
	target  *pa.PID
	sender  *pa.PID
	msg     proto.Message
	typeErr error // the message could not be decoded; the frame is dropped, the connection stays
}

// inTypes is a connection's table of type numbers.
type inTypes struct {
	names []protoreflect.FullName
	types []protoreflect.MessageType // nil where the name is not linked in this process
}

// maxTypesPerConn bounds a connection's type table (a peer defining types
// without end would otherwise grow it without bound).
const maxTypesPerConn = 1 << 16

// decodeFrame decodes a frame body from a peer whose actor transport
// address is peerAddr, for the node at selfAddr. A malformed frame returns
// an error wrapping errFrame; a well-formed frame whose message cannot be
// decoded returns a frame with typeErr set. body is not retained.
func decodeFrame(body []byte, selfAddr, peerAddr string, types *inTypes) (inFrame, error) {
	var f inFrame
	if len(body) == 0 {
		return f, fmt.Errorf("%w: empty", errFrame)
	}
	flags := body[0]
	if flags&^frameKnownFlags != 0 {
		return f, fmt.Errorf("%w: unknown flags %#x", errFrame, flags)
	}
	r := frameReader{b: body[1:]}
	if flags&frameTypeDef != 0 {
		name := r.string("type name")
		if r.err != nil {
			return f, r.err
		}
		if len(types.names) >= maxTypesPerConn {
			return f, fmt.Errorf("%w: more than %d message types", errFrame, maxTypesPerConn)
		}
		fn := protoreflect.FullName(name)
		mt, _ := protoregistry.GlobalTypes.FindMessageByName(fn)
		types.names = append(types.names, fn)
		types.types = append(types.types, mt)
	}
	typ := r.uvarint()
	target := r.string("target id")
	var senderAddr, senderID string
	if flags&frameSender != 0 {
		senderAddr = peerAddr
		if flags&frameSenderLocal == 0 {
			senderAddr = r.string("sender address")
		}
		senderID = r.string("sender id")
	}
	if r.err != nil {
		return f, r.err
	}
	if typ >= uint64(len(types.names)) {
		return f, fmt.Errorf("%w: type number %d was never defined", errFrame, typ)
	}
	if target == "" {
		return f, fmt.Errorf("%w: no target", errFrame)
	}
	f.system = flags&frameSystem != 0
	f.target = &pa.PID{Address: selfAddr, Id: target}
	if flags&frameSender != 0 {
		f.sender = &pa.PID{Address: senderAddr, Id: senderID}
	}
	mt := types.types[typ]
	if mt == nil {
		f.typeErr = fmt.Errorf("message type %q is not linked in this node", types.names[typ])
		return f, nil
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(r.b, m); err != nil {
		f.typeErr = fmt.Errorf("message %s: %w", types.names[typ], err)
		return f, nil
	}
	f.msg = m
	return f, nil
}

// outTypes is an outbound connection's table of type numbers.
type outTypes map[protoreflect.FullName]uint64

// appendFrame appends a whole frame (length prefix included) for msg, whose
// protobuf encoding is payload, to b. selfAddr is the sending node's
// address (a sender there is sent without its address).
func appendFrame(b []byte, types outTypes, name protoreflect.FullName, target, sender *pa.PID, selfAddr string, system bool, payload []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0) // length, flags
	var flags byte
	if system {
		flags |= frameSystem
	}
	num, ok := types[name]
	if !ok {
		num = uint64(len(types))
		types[name] = num
		flags |= frameTypeDef
		b = appendString(b, string(name))
	}
	b = binary.AppendUvarint(b, num)
	b = appendString(b, target.Id)
	if sender != nil {
		flags |= frameSender
		if sender.Address == selfAddr {
			flags |= frameSenderLocal
		} else {
			b = appendString(b, sender.Address)
		}
		b = appendString(b, sender.Id)
	}
	b = append(b, payload...)
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	b[start+4] = flags
	return b
}
