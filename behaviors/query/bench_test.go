package query

import (
	"context"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/distributed-go/distributed/behaviors/query/tpch"
)

// benchCatalog is lineitem from $QUERY_BENCH_PARQUET (a file or directory,
// such as the one bench/query generates), or 1M synthetic rows in memory.
func benchCatalog(b *testing.B) *Catalog {
	b.Helper()
	cat := NewCatalog()
	if path := os.Getenv("QUERY_BENCH_PARQUET"); path != "" {
		t, err := NewParquetTable(path)
		if err != nil {
			b.Fatal(err)
		}
		_ = cat.Register("lineitem", t)
		return cat
	}
	_ = cat.Register("lineitem", lineitemTable(b, 1<<20, 1<<17))
	return cat
}

func benchQuery(b *testing.B, sql string) {
	cat := benchCatalog(b)
	p, err := Prepare(cat, sql)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := Execute(ctx, p, LocalRunner{}, func(arrow.RecordBatch) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTPCHQ1(b *testing.B) { benchQuery(b, tpch.Q1) }
func BenchmarkTPCHQ6(b *testing.B) { benchQuery(b, tpch.Q6) }

func flightBenchData(b *testing.B) (*arrow.Schema, []arrow.RecordBatch) {
	const cols = "l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax"
	src := NewCatalog()
	_ = src.Register("lineitem", lineitemTable(b, 1<<20, 1<<16))
	schema, recs, err := (&Engine{Catalog: src}).Query(context.Background(), "SELECT "+cols+" FROM lineitem")
	if err != nil {
		b.Fatal(err)
	}
	return schema, recs
}

func drain(b *testing.B, rd *flight.Reader) int64 {
	var total int64
	for rd.Next() {
		for _, c := range rd.RecordBatch().Columns() {
			for _, buf := range c.Data().Buffers() {
				if buf != nil {
					total += int64(buf.Len())
				}
			}
		}
	}
	if err := rd.Err(); err != nil {
		b.Fatal(err)
	}
	rd.Release()
	return total
}

// rawFlight is arrow-go's plain Flight server writing prepared batches:
// the peer that BenchmarkFlightDoGet is compared with.
type rawFlight struct {
	flight.BaseFlightServer
	schema *arrow.Schema
	recs   []arrow.RecordBatch
}

func (r *rawFlight) DoGet(_ *flight.Ticket, fs flight.FlightService_DoGetServer) error {
	w := flight.NewRecordWriter(fs, ipc.WithSchema(r.schema))
	defer w.Close()
	for _, rec := range r.recs {
		for _, piece := range splitRecord(rec, MaxFlightMessageBytes) {
			err := w.Write(piece)
			piece.Release()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// BenchmarkFlightDoGetRaw: the same rows through a bare arrow-go Flight
// DoGet, with no query engine; the ceiling for BenchmarkFlightDoGet.
func BenchmarkFlightDoGetRaw(b *testing.B) {
	schema, recs := flightBenchData(b)
	srv := flight.NewServerWithMiddleware(nil)
	srv.RegisterFlightService(&rawFlight{schema: schema, recs: recs})
	if err := srv.Init("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	defer srv.Shutdown()
	cl, err := flight.NewClientWithMiddleware(srv.Addr().String(), nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	measureDoGets(b, func() int64 {
		st, err := cl.DoGet(ctx, &flight.Ticket{Ticket: []byte("x")})
		if err != nil {
			b.Fatal(err)
		}
		rd, err := flight.NewRecordReader(st)
		if err != nil {
			b.Fatal(err)
		}
		return drain(b, rd)
	})
}

// measureDoGets runs one result stream untimed, so that the process's
// buffer pools and heap are warm, as in a server and client that have run
// before (the first stream in a fresh process is slower: 0.55-0.91 GB/s
// against about 1 GB/s after it); then it times get and reports the Arrow
// bytes received per second and the CPU time per stream.
func measureDoGets(b *testing.B, get func() int64) {
	get()
	var total int64
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		total += get()
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds()/1e9, "GB/s")
	// CPU time of server and client together: steadier than GB/s when
	// other work competes for the cores.
	b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
}

// BenchmarkFlightDoGet streams 8 numeric columns of 1M in-memory rows
// through the Flight SQL endpoint on loopback; it reports bytes/s of Arrow
// data received. The client is a plain flightsql.Client, as a third-party
// client would be: only server-side gains show.
func BenchmarkFlightDoGet(b *testing.B) { benchFlightDoGet(b, (*FlightSQLServer).Serve) }

// BenchmarkFlightDoGetOurClient is BenchmarkFlightDoGet with the client
// dialled with FlightClientOptions: server- plus client-side gains.
func BenchmarkFlightDoGetOurClient(b *testing.B) {
	benchFlightDoGet(b, (*FlightSQLServer).Serve, FlightClientOptions()...)
}

// BenchmarkFlightDoGetStock is BenchmarkFlightDoGet with the server as
// arrow-go serves it, through its Flight writer and gRPC's proto codec:
// the server before flightCodec, for comparisons in one run.
func BenchmarkFlightDoGetStock(b *testing.B) { benchFlightDoGet(b, serveStock) }

func serveStock(s *FlightSQLServer, addr string, _ ...grpc.ServerOption) (flight.Server, error) {
	srv := flight.NewServerWithMiddleware(nil)
	srv.RegisterFlightService(flightsql.NewFlightServer(s))
	if err := srv.Init(addr); err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve() }()
	return srv, nil
}

// BenchmarkFlightDoGetNewConnection is BenchmarkFlightDoGet with a new
// connection for every stream, as a client that connects, queries once and
// leaves: each stream starts on a fresh HTTP/2 connection with gRPC's
// initial flow-control window.
func BenchmarkFlightDoGetNewConnection(b *testing.B) {
	addr := flightBenchServer(b, (*FlightSQLServer).Serve)
	measureDoGets(b, func() int64 {
		cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		return flightBenchStream(b, cl)
	})
}

func benchFlightDoGet(b *testing.B, serve func(*FlightSQLServer, string, ...grpc.ServerOption) (flight.Server, error), dialOpts ...grpc.DialOption) {
	addr := flightBenchServer(b, serve)
	dialOpts = append(dialOpts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	cl, err := flightsql.NewClient(addr, nil, nil, dialOpts...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	measureDoGets(b, func() int64 { return flightBenchStream(b, cl) })
}

// flightBenchServer serves the benchmark's in-memory lineitem columns with
// serve on a loopback port until the benchmark ends, and returns its address.
func flightBenchServer(b *testing.B, serve func(*FlightSQLServer, string, ...grpc.ServerOption) (flight.Server, error)) string {
	cat := NewCatalog()
	schema, recs := flightBenchData(b)
	mem, err := NewMemTable(schema, recs)
	if err != nil {
		b.Fatal(err)
	}
	_ = cat.Register("lineitem", mem)
	srv, err := serve(NewFlightSQLServer(cat, nil), "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	return srv.Addr().String()
}

// flightBenchStream runs the benchmark's query through cl and drains its
// result, returning the Arrow bytes received.
func flightBenchStream(b *testing.B, cl *flightsql.Client) int64 {
	const cols = "l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax"
	ctx := context.Background()
	info, err := cl.Execute(ctx, "SELECT "+cols+" FROM lineitem")
	if err != nil {
		b.Fatal(err)
	}
	rd, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		b.Fatal(err)
	}
	return drain(b, rd)
}
