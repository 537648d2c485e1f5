package query

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec this one falls back to
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// flightCodec is the gRPC codec of the Flight SQL server (and, through
// FlightClientOptions, of Go clients). It produces and accepts exactly the
// bytes of the standard protobuf codec — so any Flight client or server is
// a peer — but copies less on the Arrow data path:
//
//   - Marshal of a *flightMessage (what DoGet of a query result sends)
//     writes the FlightData fields before data_body into a small buffer
//     and hands gRPC the record batch's own Arrow buffers as the rest of
//     the message: no copy of the body into an IPC buffer and no second
//     copy into a protobuf buffer. Every other message, including a plain
//     *flight.FlightData, goes through the standard codec: arrow-go's
//     writer reuses its body buffer as soon as Send returns, while gRPC
//     writes the message later, so such a body must be copied.
//   - Unmarshal into a *flight.FlightData copies the received frames into
//     one new buffer that the message's fields (data_body above all) then
//     alias, instead of copying once to join the frames and again into
//     each field. The buffer is garbage-collected memory that nothing
//     reuses, so the Arrow arrays built on data_body may outlive the call.
//     A message with fields FlightData does not know (or with known fields
//     of an unexpected wire type) is decoded by proto.Unmarshal instead.
type flightCodec struct{}

// protoCodec is gRPC's standard codec, for every message flightCodec does
// not handle itself.
var protoCodec = encoding.GetCodecV2("proto")

// Name is "proto": the codec speaks protobuf, so clients and servers keep
// the standard content type.
func (flightCodec) Name() string { return "proto" }

func (flightCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*flightMessage); ok {
		return m.marshal(), nil
	}
	return protoCodec.Marshal(v)
}

func (flightCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if fd, ok := v.(*flight.FlightData); ok {
		return unmarshalFlightData(data.Materialize(), fd)
	}
	return protoCodec.Unmarshal(data, v)
}

// FlightClientOptions are gRPC dial options for a Flight (SQL) client of
// any server, such as flightsql.NewClient's: they make it receive Arrow
// data with less work and change nothing on the wire. The connection
// decodes with flightCodec (one copy of each message instead of two), and
// reads HTTP/2 frames into buffers that are not zeroed first (gRPC zeroes
// pooled buffers by default; a frame buffer is always filled by the read).
func FlightClientOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(flightCodec{})),
		experimental.WithBufferPool(&frameBufferPool{}),
	}
}

// frameBufferPool pools gRPC's receive buffers of up to one HTTP/2 frame
// (16 KiB, the frame size gRPC uses), without zeroing them; larger
// buffers are allocated and left to the garbage collector.
type frameBufferPool struct{ p sync.Pool }

const frameBufferSize = 16 << 10

func (f *frameBufferPool) Get(n int) *[]byte {
	if n <= frameBufferSize {
		if b, ok := f.p.Get().(*[]byte); ok {
			*b = (*b)[:n]
			return b
		}
		b := make([]byte, n, frameBufferSize)
		return &b
	}
	b := make([]byte, n)
	return &b
}

func (f *frameBufferPool) Put(b *[]byte) {
	if cap(*b) == frameBufferSize {
		f.p.Put(b)
	}
}

// FlightData field numbers (Flight.proto).
const (
	fdDescriptor  protowire.Number = 1
	fdDataHeader  protowire.Number = 2
	fdAppMetadata protowire.Number = 3
	fdDataBody    protowire.Number = 1000
)

// unmarshalFlightData decodes b into fd; fd's byte fields alias b, which
// the caller must not reuse.
func unmarshalFlightData(b []byte, fd *flight.FlightData) error {
	fd.Reset()
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return fmt.Errorf("query: flight data: %w", protowire.ParseError(n))
		}
		if typ != protowire.BytesType || (num != fdDescriptor && num != fdDataHeader && num != fdAppMetadata && num != fdDataBody) {
			// Not a field this decoder knows: the general decoder keeps
			// unknown fields and rejects what is malformed.
			fd.Reset()
			return proto.Unmarshal(b, fd)
		}
		rest = rest[n:]
		v, n := protowire.ConsumeBytes(rest)
		if n < 0 {
			return fmt.Errorf("query: flight data field %d: %w", num, protowire.ParseError(n))
		}
		rest = rest[n:]
		v = v[:len(v):len(v)] // an append by the user must not run into the next field
		switch num {
		case fdDescriptor:
			// A repeated message field merges, as in proto.Unmarshal.
			if fd.FlightDescriptor == nil {
				fd.FlightDescriptor = &flight.FlightDescriptor{}
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, fd.FlightDescriptor); err != nil {
				return fmt.Errorf("query: flight data descriptor: %w", err)
			}
		case fdDataHeader:
			fd.DataHeader = v
		case fdAppMetadata:
			fd.AppMetadata = v
		case fdDataBody:
			fd.DataBody = v
		}
	}
	return nil
}

// flightMessage is one FlightData message whose body is kept as the
// pieces the IPC writer produced (mostly the record batch's own buffers).
// flightCodec marshals it to the bytes proto.Marshal gives the equivalent
// *flight.FlightData.
type flightMessage struct {
	head   []byte            // fields 1–3, then data_body's tag and length
	pieces []bodyPiece       // data_body
	small  []byte            // the small pieces, copied
	size   int               // length of data_body
	rec    arrow.RecordBatch // owner of the large pieces (nil: none)
}

// bodyPiece is a large piece of data_body (ref) or a run of small ones
// (small[off:off+n]).
type bodyPiece struct {
	ref    []byte
	off, n int
}

// smallPiece: body pieces shorter than this (padding, small columns) are
// copied, so that gRPC does not handle many tiny buffers; longer ones are
// passed by reference. It is above gRPC's pooling threshold (1 KiB), below
// which mem.NewBuffer would not count references.
const smallPiece = 4 << 10

// Write collects one piece of the IPC body (ipc.Payload.SerializeBody
// calls it). Unlike an ordinary io.Writer it keeps p: p is either a buffer
// of the batch being written, which marshal retains, or memory the IPC
// writer allocated from a Go allocator, which the garbage collector keeps
// alive while it is referenced.
func (m *flightMessage) Write(p []byte) (int, error) {
	switch k := len(m.pieces) - 1; {
	case len(p) == 0:
	case len(p) >= smallPiece:
		m.pieces = append(m.pieces, bodyPiece{ref: p[:len(p):len(p)]})
	case k >= 0 && m.pieces[k].ref == nil:
		m.small = append(m.small, p...)
		m.pieces[k].n += len(p)
	default:
		m.pieces = append(m.pieces, bodyPiece{off: len(m.small), n: len(p)})
		m.small = append(m.small, p...)
	}
	m.size += len(p)
	return len(p), nil
}

// finish appends data_body's tag and length to the head; proto.Marshal
// leaves out an empty body.
func (m *flightMessage) finish() {
	if m.size > 0 {
		m.head = protowire.AppendTag(m.head, fdDataBody, protowire.BytesType)
		m.head = protowire.AppendVarint(m.head, uint64(m.size))
	}
}

// marshal returns the message's bytes as the head, the small runs and
// references to the large pieces. While gRPC holds a reference to any of
// them, m.rec stays retained.
func (m *flightMessage) marshal() mem.BufferSlice {
	out := make(mem.BufferSlice, 0, 1+len(m.pieces))
	out = append(out, mem.SliceBuffer(m.head))
	var rel *flightBodyRelease
	for i := range m.pieces {
		p := &m.pieces[i]
		switch {
		case p.ref == nil:
			out = append(out, mem.SliceBuffer(m.small[p.off:p.off+p.n:p.off+p.n]))
		case m.rec == nil:
			out = append(out, mem.SliceBuffer(p.ref))
		default:
			if rel == nil {
				m.rec.Retain()
				rel = &flightBodyRelease{rec: m.rec}
				rel.refs.Store(1) // marshal's own, dropped below
			}
			rel.refs.Add(1)
			out = append(out, mem.NewBuffer(&p.ref, rel))
		}
	}
	if rel != nil {
		rel.Put(nil)
	}
	return out
}

// flightBodyRelease holds a record batch while gRPC still has buffers that
// alias it: gRPC "returns" each such buffer to this pool when it is done
// with it, and the last return releases the batch.
type flightBodyRelease struct {
	refs atomic.Int32
	rec  arrow.RecordBatch
}

func (r *flightBodyRelease) Get(n int) *[]byte {
	b := make([]byte, n)
	return &b
}

func (r *flightBodyRelease) Put(*[]byte) {
	if r.refs.Add(-1) == 0 {
		r.rec.Release()
	}
}

// flightStreamWriter writes record batches to a Flight data stream as
// *flightMessage values, which flightCodec sends without copying the
// batches' buffers. It does what arrow-go's flight.Writer does for a
// stream of batches.
type flightStreamWriter struct {
	w  *ipc.Writer
	pw *flightPayloads
}

// flightPayloads is the ipc.PayloadWriter under a flightStreamWriter.
type flightPayloads struct {
	send    func(any) error // the stream's SendMsg
	rec     arrow.RecordBatch
	desc    *flight.FlightDescriptor
	appMeta []byte
}

// newFlightStreamWriter writes through send, a gRPC stream's SendMsg,
// which must use flightCodec.
func newFlightStreamWriter(send func(any) error, schema *arrow.Schema) *flightStreamWriter {
	pw := &flightPayloads{send: send}
	// The IPC writer's own buffers (such as re-aligned validity bitmaps
	// of sliced arrays) must come from a Go allocator: messages may still
	// refer to them after the writer has released them.
	w := ipc.NewWriterWithPayloadWriter(pw, ipc.WithSchema(schema), ipc.WithAllocator(memory.NewGoAllocator()))
	return &flightStreamWriter{w: w, pw: pw}
}

// Write sends rec, with the descriptor and application metadata (if any)
// on its data message. A nil rec sends only those.
func (fw *flightStreamWriter) Write(rec arrow.RecordBatch, desc *flight.FlightDescriptor, appMeta []byte) error {
	if rec == nil {
		return fw.pw.send(&flight.FlightData{FlightDescriptor: desc, AppMetadata: appMeta})
	}
	fw.pw.rec, fw.pw.desc, fw.pw.appMeta = rec, desc, appMeta
	defer func() { fw.pw.rec, fw.pw.desc, fw.pw.appMeta = nil, nil, nil }()
	return fw.w.Write(rec)
}

// Close sends the schema if no batch was written.
func (fw *flightStreamWriter) Close() error { return fw.w.Close() }

func (pw *flightPayloads) Start() error { return nil }
func (pw *flightPayloads) Close() error { return nil }

func (pw *flightPayloads) WritePayload(p ipc.Payload) error {
	meta := p.Meta()
	var header []byte
	if meta != nil {
		defer meta.Release()
		header = meta.Bytes()
	}
	head, err := proto.Marshal(&flight.FlightData{FlightDescriptor: pw.desc, DataHeader: header, AppMetadata: pw.appMeta})
	if err != nil {
		return err
	}
	pw.desc = nil // on the first message only, as in arrow-go's writer
	m := &flightMessage{head: head, rec: pw.rec}
	if err := p.SerializeBody(m); err != nil {
		return err
	}
	m.finish()
	return pw.send(m)
}
