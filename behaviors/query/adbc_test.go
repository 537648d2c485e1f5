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
