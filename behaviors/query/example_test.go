package query_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/distributed-go/distributed/behaviors/query"
)

// A CSV file with inferred types, queried on one node.
func ExampleEngine_Query() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "taxi.csv")
	_ = os.WriteFile(path, []byte("passenger_count,fare\n1,7.5\n2,12\n1,3.25\n3,20\n1,9\n"), 0o644)

	tbl, err := query.NewCSVTable(path, query.CSVOptions{})
	if err != nil {
		panic(err)
	}
	cat := query.NewCatalog()
	_ = cat.Register("taxi", tbl)
	e := &query.Engine{Catalog: cat}
	_, batches, err := e.Query(context.Background(),
		"SELECT passenger_count, COUNT(*), SUM(fare) FROM taxi GROUP BY 1 ORDER BY 1")
	if err != nil {
		panic(err)
	}
	for _, b := range batches {
		pc, n, sum := b.Column(0).(*array.Int64), b.Column(1).(*array.Int64), b.Column(2).(*array.Float64)
		for r := 0; r < int(b.NumRows()); r++ {
			fmt.Println(pc.Value(r), n.Value(r), sum.Value(r))
		}
	}
	_, _, err = e.Query(context.Background(), "SELECT fare FROM taxi WHERE fare >")
	fmt.Println(err)
	_, _, err = e.Query(context.Background(), "SELECT tip FROM taxi")
	fmt.Println(err)
	// Output:
	// 1 3 19.75
	// 2 1 12
	// 3 1 20
	// query: syntax error at position 35
	// query: unknown name: column "tip" does not exist in table taxi
}

// The physical plan of TPC-H Q6-like query: only the used columns are
// scanned, the filter runs first, each partition aggregates partially.
func ExamplePlan_Explain() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "t.csv")
	_ = os.WriteFile(path, []byte("a,b,c,d\n1,2.5,x,2024-01-02\n"), 0o644)
	tbl, _ := query.NewCSVTable(path, query.CSVOptions{})
	cat := query.NewCatalog()
	_ = cat.Register("t", tbl)
	p, err := query.Prepare(cat, "SELECT SUM(b * 2) AS s FROM t WHERE d < DATE '2024-01-01' + INTERVAL '1' MONTH AND a BETWEEN 0.5 - 0.5 AND 3")
	if err != nil {
		panic(err)
	}
	fmt.Print(p.Explain())
	// Output:
	// Scan t columns=[d, a, b] partitions=1
	// Filter ((d < DATE '2024-02-01') AND ((CAST(a AS DOUBLE) >= 0.0) AND (a <= 3)))
	// PartialAggregate keys=[] aggs=[SUM((b * 2.0))]
	// -- exchange to coordinator --
	// FinalAggregate
	// Project [SUM((b * 2.0)) AS s]
}
