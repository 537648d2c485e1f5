package query

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// codecTestBatch has fixed-width, boolean and string columns with nulls;
// at 3000 rows its int64 and float64 buffers are passed by reference.
func codecTestBatch(mem memory.Allocator, rows int) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := range rows {
		if i%7 == 3 {
			b.Field(0).AppendNull()
			b.Field(3).AppendNull()
		} else {
			b.Field(0).(*array.Int64Builder).Append(int64(i) * 31)
			b.Field(3).(*array.StringBuilder).Append(fmt.Sprintf("row %d", i))
		}
		b.Field(1).(*array.Float64Builder).Append(float64(i) / 3)
		b.Field(2).(*array.BooleanBuilder).Append(i%3 == 0)
	}
	return b.NewRecordBatch()
}

type chunkIn struct {
	rec     arrow.RecordBatch
	desc    *flight.FlightDescriptor
	appMeta []byte
}

// wireOfStock is what arrow-go's Flight writer and gRPC's proto codec put
// on the wire for chunks: one proto.Marshal'ed FlightData per message.
func wireOfStock(t *testing.T, schema *arrow.Schema, chunks []chunkIn) [][]byte {
	t.Helper()
	var out [][]byte
	w := flight.NewRecordWriter(sendFunc(func(fd *flight.FlightData) error {
		b, err := proto.Marshal(fd)
		out = append(out, b)
		return err
	}), ipc.WithSchema(schema))
	for _, c := range chunks {
		w.SetFlightDescriptor(c.desc)
		if err := w.WriteWithAppMetadata(c.rec, c.appMeta); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

type sendFunc func(*flight.FlightData) error

func (f sendFunc) Send(fd *flight.FlightData) error { return f(fd) }

// wireOfCodec is what flightStreamWriter and flightCodec produce; it also
// returns the gRPC buffers, not yet freed.
func wireOfCodec(t *testing.T, schema *arrow.Schema, chunks []chunkIn) ([][]byte, []mem.BufferSlice) {
	t.Helper()
	var (
		out  [][]byte
		held []mem.BufferSlice
	)
	w := newFlightStreamWriter(func(m any) error {
		bs, err := flightCodec{}.Marshal(m)
		if err != nil {
			return err
		}
		out = append(out, bs.Materialize())
		held = append(held, bs)
		return nil
	}, schema)
	for _, c := range chunks {
		if err := w.Write(c.rec, c.desc, c.appMeta); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out, held
}

// TestFlightCodecWireIsStandard: result streams written by
// flightStreamWriter through flightCodec are byte for byte the messages
// of arrow-go's writer with gRPC's proto codec; a batch stays retained
// until gRPC frees the last buffer that refers to it.
func TestFlightCodecWireIsStandard(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	full := codecTestBatch(alloc, 3000)
	sliced := full.NewSlice(3, 2901) // unaligned validity bitmaps
	empty := full.NewSlice(0, 0)
	small := codecTestBatch(alloc, 5) // only small pieces
	desc := &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("cmd")}
	cases := map[string][]chunkIn{
		"batches":          {{rec: full}, {rec: sliced}, {rec: small}, {rec: empty}},
		"descriptor, meta": {{rec: full, desc: desc, appMeta: []byte("meta")}, {rec: sliced, appMeta: []byte("m2")}},
		"no batches":       nil,
	}
	for name, chunks := range cases {
		t.Run(name, func(t *testing.T) {
			want := wireOfStock(t, full.Schema(), chunks)
			got, held := wireOfCodec(t, full.Schema(), chunks)
			if len(got) != len(want) {
				t.Fatalf("%d messages, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("message %d differs: %d bytes, want %d", i, len(got[i]), len(want[i]))
				}
			}
			for _, bs := range held {
				bs.Free()
			}
		})
	}
	small.Release()
	empty.Release()
	sliced.Release()

	// gRPC's references keep the batch's memory after its owner lets go.
	_, held := wireOfCodec(t, full.Schema(), []chunkIn{{rec: full}})
	full.Release()
	if alloc.CurrentAlloc() == 0 {
		t.Fatal("batch released while gRPC still refers to its buffers")
	}
	for _, bs := range held {
		bs.Free()
	}
}

// TestFlightCodecDecodesStreams: the messages decode, through
// flightCodec, to the batches that were written.
func TestFlightCodecDecodesStreams(t *testing.T) {
	full := codecTestBatch(memory.DefaultAllocator, 3000)
	defer full.Release()
	sliced := full.NewSlice(5, 2000)
	defer sliced.Release()
	msgs, held := wireOfCodec(t, full.Schema(), []chunkIn{{rec: full}, {rec: sliced}})
	for _, bs := range held {
		bs.Free()
	}
	rd, err := flight.NewRecordReader(&codecRecv{msgs: msgs, rng: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	for _, want := range []arrow.RecordBatch{full, sliced} {
		if !rd.Next() {
			t.Fatalf("stream ended early: %v", rd.Err())
		}
		if !array.RecordEqual(rd.RecordBatch(), want) {
			t.Fatal("decoded batch differs")
		}
	}
	if rd.Next() || rd.Err() != nil {
		t.Fatalf("extra batch or error %v", rd.Err())
	}
}

// codecRecv hands out msgs decoded by flightCodec from randomly cut
// buffers, as gRPC's frames would be, freed after decoding.
type codecRecv struct {
	msgs [][]byte
	rng  *rand.Rand
}

func (r *codecRecv) Recv() (*flight.FlightData, error) {
	if len(r.msgs) == 0 {
		return nil, io.EOF
	}
	var fd flight.FlightData
	err := flightCodec{}.Unmarshal(cutBuffers(r.rng, r.msgs[0]), &fd)
	r.msgs = r.msgs[1:]
	return &fd, err
}

// cutBuffers copies b into pooled buffers of random sizes, which Unmarshal
// must not keep: they are overwritten after it returns.
func cutBuffers(rng *rand.Rand, b []byte) mem.BufferSlice {
	var bs mem.BufferSlice
	for len(b) > 0 {
		n := min(len(b), 1+rng.IntN(20000))
		p := make([]byte, n)
		copy(p, b[:n])
		bs = append(bs, mem.SliceBuffer(p))
		b = b[n:]
	}
	return bs
}

func scribble(bs mem.BufferSlice) {
	for _, b := range bs {
		p := b.ReadOnlyData()
		for i := range p {
			p[i] = 0xAA
		}
	}
}

// TestFlightCodecMessages: any FlightData, with and without body, encodes
// as proto.Marshal does and decodes as proto.Unmarshal does, whatever the
// cut of the received buffers; the decoded fields do not alias gRPC's
// buffers. Other message types take the standard codec.
func TestFlightCodecMessages(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	body := make([]byte, 100_000)
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	msgs := []proto.Message{
		&flight.FlightData{},
		&flight.FlightData{DataHeader: []byte("header")},
		&flight.FlightData{DataHeader: []byte("h"), DataBody: body},
		&flight.FlightData{DataBody: body[:1]},
		&flight.FlightData{AppMetadata: []byte("app")},
		&flight.FlightData{FlightDescriptor: &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"a", "b"}}, DataHeader: []byte("h"), AppMetadata: []byte("m"), DataBody: body},
		&flight.Ticket{Ticket: []byte("ticket")},
		&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: body[:50]},
	}
	for i, m := range msgs {
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := flightCodec{}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := bs.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("message %d: encoded %x, want %x", i, got, want)
		}
		bs.Free()
		for range 5 {
			got := m.ProtoReflect().New().Interface()
			in := cutBuffers(rng, want)
			if err := (flightCodec{}).Unmarshal(in, got); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			scribble(in)
			if !proto.Equal(got, m) {
				t.Fatalf("message %d decoded differently (%d bytes, want %d)", i, proto.Size(got), proto.Size(m))
			}
		}
	}
}

// TestFlightCodecUnusualInput: unknown fields, known fields of another
// wire type, repeated fields and malformed bytes are decoded (or
// rejected) as proto.Unmarshal does.
func TestFlightCodecUnusualInput(t *testing.T) {
	base, _ := proto.Marshal(&flight.FlightData{DataHeader: []byte("h"), DataBody: []byte("body")})
	desc1, _ := proto.Marshal(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"a"}})
	desc2, _ := proto.Marshal(&flight.FlightDescriptor{Path: []string{"b"}})
	badUTF8, _ := proto.Marshal(&flight.FlightDescriptor{Cmd: []byte("x")})
	badUTF8 = protowire.AppendBytes(protowire.AppendTag(badUTF8, 3, protowire.BytesType), []byte{0xff, 0xfe})
	inputs := map[string][]byte{
		"unknown field":      protowire.AppendVarint(protowire.AppendTag(bytes.Clone(base), 7, protowire.VarintType), 9),
		"unknown bytes":      protowire.AppendBytes(protowire.AppendTag(bytes.Clone(base), 2000, protowire.BytesType), []byte("x")),
		"header as varint":   protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 5),
		"body twice":         protowire.AppendBytes(protowire.AppendTag(bytes.Clone(base), 1000, protowire.BytesType), []byte("later")),
		"descriptor twice":   protowire.AppendBytes(protowire.AppendTag(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), desc1), 1, protowire.BytesType), desc2),
		"descriptor invalid": protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), badUTF8),
		"truncated body":     base[:len(base)-2],
		"truncated tag":      {0x80},
		"field zero":         {0x02, 0x00},
		"length too long":    {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x'},
		"end group":          {0x0c},
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) { checkLikeProto(t, in) })
	}
}

// checkLikeProto: flightCodec decodes in as proto.Unmarshal does.
func checkLikeProto(t *testing.T, in []byte) {
	t.Helper()
	var want, got flight.FlightData
	wantErr := proto.Unmarshal(in, &want)
	err := flightCodec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bytes.Clone(in))}, &got)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("error %v, proto.Unmarshal's %v", err, wantErr)
	}
	if err == nil && !proto.Equal(&got, &want) {
		t.Fatalf("decoded %v, proto.Unmarshal %v", &got, &want)
	}
}

func FuzzFlightCodecUnmarshal(f *testing.F) {
	base, _ := proto.Marshal(&flight.FlightData{
		FlightDescriptor: &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("c")},
		DataHeader:       []byte("h"), AppMetadata: []byte("m"), DataBody: []byte("body"),
	})
	f.Add(base)
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) { checkLikeProto(t, in) })
}

// TestFlightClientsAndServers: a plain client and one dialled with
// FlightClientOptions get the same rows, statement and prepared, from
// this server and from arrow-go's stock Flight SQL server over the same
// catalog (so each side works with a standard peer).
func TestFlightClientsAndServers(t *testing.T) {
	cat := NewCatalog()
	_ = cat.Register("lineitem", lineitemTable(t, 60000, 30000))
	const sql = "SELECT * FROM lineitem WHERE l_quantity > 10"
	_, recs, err := (&Engine{Catalog: cat}).Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	want := rowsOf(t, recs)
	sortRows(want) // partitions run in parallel: compare as sets
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	servers := map[string]func(*FlightSQLServer, string, ...grpc.ServerOption) (flight.Server, error){
		"ours": (*FlightSQLServer).Serve, "stock": serveStock,
	}
	clients := map[string][]grpc.DialOption{"plain": nil, "options": FlightClientOptions()}
	for sname, serve := range servers {
		srv, err := serve(NewFlightSQLServer(cat, nil), "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		for cname, opts := range clients {
			cl, err := flightsql.NewClient(srv.Addr().String(), nil, nil, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			info, err := cl.Execute(ctx, sql)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameRowSet(fetch(t, ctx, cl, info), want); err != nil {
				t.Errorf("%s server, %s client: %v", sname, cname, err)
			}
			prep, err := cl.Prepare(ctx, sql)
			if err != nil {
				t.Fatal(err)
			}
			info, err = prep.Execute(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameRowSet(fetch(t, ctx, cl, info), want); err != nil {
				t.Errorf("%s server, %s client, prepared: %v", sname, cname, err)
			}
			_ = prep.Close(ctx)
		}
	}
}

// sameRowSet: got, in any order, is want (sorted).
func sameRowSet(got, want [][]value) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d rows, want %d", len(got), len(want))
	}
	sortRows(got)
	return sameRows(got, want)
}
