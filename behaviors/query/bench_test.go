package query

import (
	"context"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
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

// BenchmarkFlightDoGet streams 8 numeric columns of 1M in-memory rows
// through the Flight SQL endpoint on loopback; it reports bytes/s of Arrow
// data received.
func BenchmarkFlightDoGet(b *testing.B) {
	cat := NewCatalog()
	const cols = "l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax"
	src := NewCatalog()
	_ = src.Register("lineitem", lineitemTable(b, 1<<20, 1<<16))
	schema, recs, err := (&Engine{Catalog: src}).Query(context.Background(), "SELECT "+cols+" FROM lineitem")
	if err != nil {
		b.Fatal(err)
	}
	mem, err := NewMemTable(schema, recs)
	if err != nil {
		b.Fatal(err)
	}
	_ = cat.Register("lineitem", mem)
	fs := NewFlightSQLServer(cat, nil)
	srv, err := fs.Serve("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	cl, err := flightsql.NewClient(srv.Addr().String(), nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var total int64
	b.ResetTimer()
	for b.Loop() {
		info, err := cl.Execute(ctx, "SELECT "+cols+" FROM lineitem")
		if err != nil {
			b.Fatal(err)
		}
		rd, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err != nil {
			b.Fatal(err)
		}
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
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds()/1e9, "GB/s")
}
