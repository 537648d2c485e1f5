package query

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/distributed-go/distributed/behaviors/query/tpch"
)

func startFlight(t *testing.T, cat *Catalog, r Runner) *flightsql.Client {
	cl, _ := startFlightServer(t, cat, r)
	return cl
}

func startFlightClient(t *testing.T, addr string) *flightsql.Client {
	t.Helper()
	cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func startFlightServer(t *testing.T, cat *Catalog, r Runner) (*flightsql.Client, *FlightSQLServer) {
	t.Helper()
	fs := NewFlightSQLServer(cat, r)
	srv, err := fs.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	cl, err := flightsql.NewClient(srv.Addr().String(), nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, fs
}

// fetch reads every endpoint of info.
func fetch(t *testing.T, ctx context.Context, cl *flightsql.Client, info *flight.FlightInfo) [][]value {
	t.Helper()
	var recs []arrow.RecordBatch
	for _, ep := range info.Endpoint {
		rd, err := cl.DoGet(ctx, ep.Ticket)
		if err != nil {
			t.Fatal(err)
		}
		for rd.Next() {
			rec := rd.RecordBatch()
			rec.Retain()
			recs = append(recs, rec)
		}
		if err := rd.Err(); err != nil {
			t.Fatal(err)
		}
		rd.Release()
	}
	return rowsOf(t, recs)
}

func TestFlightSQLStatementAndPrepared(t *testing.T) {
	cat := NewCatalog()
	_ = cat.Register("lineitem", lineitemTable(t, 20000, 3000))
	cl, fs := startFlightServer(t, cat, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, recs, err := (&Engine{Catalog: cat}).Query(ctx, tpch.Q1)
	if err != nil {
		t.Fatal(err)
	}
	want := rowsOf(t, recs)

	info, err := cl.Execute(ctx, tpch.Q1)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := flight.DeserializeSchema(info.Schema, nil)
	if err != nil || schema.Field(2).Name != "sum_qty" {
		t.Fatalf("schema %v, %v", schema, err)
	}
	if err := sameRows(fetch(t, ctx, cl, info), want); err != nil {
		t.Fatalf("statement: %v", err)
	}

	stmt, err := cl.Prepare(ctx, tpch.Q1)
	if err != nil {
		t.Fatal(err)
	}
	if stmt.DatasetSchema().NumFields() != 10 {
		t.Fatalf("prepared schema %v", stmt.DatasetSchema())
	}
	for run := 0; run < 2; run++ {
		info, err := stmt.Execute(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameRows(fetch(t, ctx, cl, info), want); err != nil {
			t.Fatalf("prepared run %d: %v", run, err)
		}
	}
	if err := stmt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	open := len(fs.prepared)
	fs.mu.Unlock()
	if open != 0 {
		t.Fatalf("%d prepared statements left on the server after Close", open)
	}
}

func TestFlightSQLErrorsAndBigResults(t *testing.T) {
	cat := NewCatalog()
	_ = cat.Register("lineitem", lineitemTable(t, 60000, 30000))
	_ = cat.Register("t", randTable(rand.New(rand.NewPCG(5, 5)), 3))
	cl := startFlight(t, cat, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		sql  string
		code codes.Code
		text string
	}{
		{"SELECT FROM", codes.InvalidArgument, "syntax error at position"},
		{"SELECT x FROM nope", codes.NotFound, `table "nope"`},
		{"SELECT upper(s) FROM t", codes.Unimplemented, "function upper"},
	} {
		_, err := cl.Execute(ctx, c.sql)
		if status.Code(err) != c.code || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%q: %v, want %v containing %q", c.sql, err, c.code, c.text)
		}
	}
	// 60000 rows of every column are larger than gRPC's 4 MiB default
	// message limit: the server must cut them into smaller messages.
	info, err := cl.Execute(ctx, "SELECT * FROM lineitem")
	if err != nil {
		t.Fatal(err)
	}
	got := fetch(t, ctx, cl, info)
	if len(got) != 60000 {
		t.Fatalf("got %d rows, want 60000", len(got))
	}
	// Tables are listed with their schemas.
	tinfo, err := cl.GetTables(ctx, &flightsql.GetTablesOpts{IncludeSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := cl.DoGet(ctx, tinfo.Endpoint[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	n := 0
	for rd.Next() {
		n += int(rd.RecordBatch().NumRows())
	}
	if n != 2 {
		t.Fatalf("listed %d tables, want 2", n)
	}
}

// TestFlightSQLClientCancel: a client that goes away mid-stream stops the
// query (the producer sees the stream's context end).
func TestFlightSQLClientCancel(t *testing.T) {
	cat := NewCatalog()
	_ = cat.Register("lineitem", lineitemTable(t, 60000, 1000))
	done := make(chan error, 1)
	r := runnerFunc(func(ctx context.Context, p *Plan, emit func(arrow.RecordBatch) error) error {
		err := LocalRunner{Parallelism: 1}.RunFragments(ctx, p, emit)
		done <- err
		return err
	})
	cl := startFlight(t, cat, r)
	ctx, cancel := context.WithCancel(context.Background())
	info, err := cl.Execute(ctx, "SELECT l_comment FROM lineitem")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if !rd.Next() {
		t.Fatal(rd.Err())
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("runner ended with %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the query kept running after the client cancelled")
	}
	rd.Release()
}
