package query

import (
	"context"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

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
