//go:build !race

package query

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-adbc/go/adbc"
	adbcflightsql "github.com/apache/arrow-adbc/go/adbc/driver/flightsql"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestADBCFetchesEndpointsOnPeers: ADBC follows the endpoints' locations
// and fetches the shares in parallel. Built without -race: ADBC v1.11.0
// passes the same grpc.Header/grpc.Trailer call options to its parallel
// DoGet streams, a data race inside the driver.
func TestADBCFetchesEndpointsOnPeers(t *testing.T) {
	addrA, q, want := peersSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// ADBC follows the locations.
	db, err := adbcflightsql.NewDriver(memory.DefaultAllocator).NewDatabase(map[string]string{adbc.OptionKeyURI: "grpc://" + addrA})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cn, err := db.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	st, err := cn.NewStatement()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.SetSqlQuery(q)
	rd, _, err := st.ExecuteQuery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []arrow.RecordBatch
	for rd.Next() {
		rec := rd.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	rd.Release()
	got := rowsOf(t, out)
	sortRows(got)
	if err := sameRows(got, want); err != nil {
		t.Fatalf("ADBC over 3 endpoints: %v", err)
	}

}
