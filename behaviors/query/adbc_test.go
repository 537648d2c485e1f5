package query

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-adbc/go/adbc"
	adbcflightsql "github.com/apache/arrow-adbc/go/adbc/driver/flightsql"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/distributed-go/distributed/behaviors/query/tpch"
)

// TestADBCFlightSQLDriver queries the endpoint with the ADBC Flight SQL Go
// driver (the one Python's adbc_driver_flightsql wraps): a statement and a
// prepared statement.
func TestADBCFlightSQLDriver(t *testing.T) {
	cat := NewCatalog()
	_ = cat.Register("lineitem", lineitemTable(t, 20000, 3000))
	fs := NewFlightSQLServer(cat, nil)
	srv, err := fs.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, recs, err := (&Engine{Catalog: cat}).Query(ctx, tpch.Q1)
	if err != nil {
		t.Fatal(err)
	}
	want := rowsOf(t, recs)

	db, err := adbcflightsql.NewDriver(memory.DefaultAllocator).NewDatabase(map[string]string{
		adbc.OptionKeyURI: "grpc://" + srv.Addr().String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cn, err := db.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	for _, prepare := range []bool{false, true} {
		st, err := cn.NewStatement()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetSqlQuery(tpch.Q1); err != nil {
			t.Fatal(err)
		}
		if prepare {
			if err := st.Prepare(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rd, _, err := st.ExecuteQuery(ctx)
		if err != nil {
			t.Fatalf("prepare=%v: %v", prepare, err)
		}
		var got []arrow.RecordBatch
		for rd.Next() {
			rec := rd.RecordBatch()
			rec.Retain()
			got = append(got, rec)
		}
		if err := rd.Err(); err != nil {
			t.Fatal(err)
		}
		rd.Release()
		if err := sameRows(rowsOf(t, got), want); err != nil {
			t.Fatalf("prepare=%v: %v", prepare, err)
		}
		st.Close()
	}
}

// peersSetup starts three servers over the same table, the first with the
// other two as Peers, and returns the first's address, the query and its
// rows.
func peersSetup(t *testing.T) (addrA, q string, want [][]value) {
	tbl := lineitemTable(t, 30000, 2000) // 15 partitions
	mk := func() (*FlightSQLServer, string) {
		cat := NewCatalog()
		_ = cat.Register("lineitem", tbl)
		fs := NewFlightSQLServer(cat, nil)
		srv, err := fs.Serve("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		return fs, srv.Addr().String()
	}
	a, addrA := mk()
	_, addrB := mk()
	_, addrC := mk()
	a.Peers = []string{addrB, addrC}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q = "SELECT l_orderkey, l_linenumber, l_comment FROM lineitem WHERE l_quantity < 10"
	cat := NewCatalog()
	_ = cat.Register("lineitem", tbl)
	_, recs, err := (&Engine{Catalog: cat}).Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want = rowsOf(t, recs)
	sortRows(want)
	return addrA, q, want
}

// TestFlightSQLEndpointsOnPeers: with Peers set, a streamable query is
// answered with one endpoint per server, and a client that ignores
// locations gets every row from the first server.
func TestFlightSQLEndpointsOnPeers(t *testing.T) {
	addrA, q, want := peersSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A client that ignores locations: every ticket from server A.
	cl := startFlightClient(t, addrA)
	info, err := cl.Execute(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Endpoint) != 3 || len(info.Endpoint[1].Location) != 1 {
		t.Fatalf("%d endpoints (%v), want 3 with locations for the peers", len(info.Endpoint), info.Endpoint)
	}
	got := fetch(t, ctx, cl, info)
	sortRows(got)
	if err := sameRows(got, want); err != nil {
		t.Fatalf("all tickets from the first server: %v", err)
	}

	// Aggregates still come from one endpoint.
	info, err = cl.Execute(ctx, "SELECT COUNT(*) FROM lineitem")
	if err != nil || len(info.Endpoint) != 1 {
		t.Fatalf("aggregate: %v, %d endpoints", err, len(info.Endpoint))
	}
}
