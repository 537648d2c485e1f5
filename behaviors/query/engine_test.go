package query

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/distributed-go/distributed/behaviors/query/tpch"
)

var randSchema = arrow.NewSchema([]arrow.Field{
	{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "b", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "g", Type: arrow.PrimitiveTypes.Int32},
	{Name: "f", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
}, nil)

var randStrings = []string{"x", "y", "z", "xy", "", "ab%", "zz_z"}

// randTable makes a table of several batches (partitions) of random rows.
// Floats are multiples of 0.5, so sums are exact in any order.
func randTable(rng *rand.Rand, parts int) *MemTable {
	var recs []arrow.RecordBatch
	for p := 0; p < parts; p++ {
		b := array.NewRecordBuilder(memory.DefaultAllocator, randSchema)
		n := rng.IntN(300)
		for r := 0; r < n; r++ {
			if rng.IntN(10) == 0 {
				b.Field(0).AppendNull()
			} else {
				b.Field(0).(*array.Int64Builder).Append(int64(rng.IntN(41) - 20))
			}
			if rng.IntN(10) == 0 {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.Float64Builder).Append(float64(rng.IntN(200)-100) / 2)
			}
			if rng.IntN(10) == 0 {
				b.Field(2).AppendNull()
			} else {
				b.Field(2).(*array.StringBuilder).Append(randStrings[rng.IntN(len(randStrings))])
			}
			if rng.IntN(10) == 0 {
				b.Field(3).AppendNull()
			} else {
				b.Field(3).(*array.Date32Builder).Append(arrow.Date32(8766 + rng.IntN(1000))) // 1994..1996
			}
			b.Field(4).(*array.Int32Builder).Append(int32(rng.IntN(5)))
			if rng.IntN(10) == 0 {
				b.Field(5).AppendNull()
			} else {
				b.Field(5).(*array.BooleanBuilder).Append(rng.IntN(2) == 0)
			}
		}
		recs = append(recs, b.NewRecordBatch())
		b.Release()
	}
	t, err := NewMemTable(randSchema, recs)
	if err != nil {
		panic(err)
	}
	return t
}

func randPred(rng *rand.Rand, depth int) string {
	if depth > 0 && rng.IntN(3) == 0 {
		switch rng.IntN(3) {
		case 0:
			return "(" + randPred(rng, depth-1) + " AND " + randPred(rng, depth-1) + ")"
		case 1:
			return "(" + randPred(rng, depth-1) + " OR " + randPred(rng, depth-1) + ")"
		default:
			return "NOT " + randPred(rng, depth-1)
		}
	}
	ops := []string{"=", "<>", "<", "<=", ">", ">="}
	op := ops[rng.IntN(len(ops))]
	switch rng.IntN(14) {
	case 0:
		return fmt.Sprintf("a %s %d", op, rng.IntN(41)-20)
	case 1:
		return fmt.Sprintf("b %s %.1f", op, float64(rng.IntN(200)-100)/2)
	case 2:
		return fmt.Sprintf("s %s '%s'", op, randStrings[rng.IntN(len(randStrings))])
	case 3:
		return fmt.Sprintf("d %s date '199%d-0%d-1%d'", op, 4+rng.IntN(3), 1+rng.IntN(9), rng.IntN(10))
	case 4:
		return fmt.Sprintf("a BETWEEN %d AND %d", rng.IntN(20)-20, rng.IntN(20))
	case 5:
		return fmt.Sprintf("a IN (%d, %d, NULL)", rng.IntN(41)-20, rng.IntN(41)-20)
	case 6:
		return fmt.Sprintf("s NOT IN ('%s', '%s')", randStrings[rng.IntN(len(randStrings))], randStrings[rng.IntN(len(randStrings))])
	case 7:
		pats := []string{"x%", "%y", "%z%", "_", "ab\\%", "z_%"}
		return fmt.Sprintf("s LIKE '%s'", pats[rng.IntN(len(pats))])
	case 8:
		return []string{"a IS NULL", "b IS NOT NULL", "s IS NULL", "d IS NOT NULL"}[rng.IntN(4)]
	case 9:
		return fmt.Sprintf("a + g %s b * 2", op)
	case 10:
		return fmt.Sprintf("d < date '1995-01-01' + interval '%d' month", rng.IntN(24))
	case 11:
		return "f"
	case 12:
		return fmt.Sprintf("a %% 3 %s %d", op, rng.IntN(3))
	default:
		return fmt.Sprintf("%d %s a", rng.IntN(41)-20, op)
	}
}

func randQuery(rng *rand.Rand) string {
	where := ""
	if rng.IntN(5) > 0 {
		where = " WHERE " + randPred(rng, 2)
	}
	switch rng.IntN(5) {
	case 0:
		keys := [][]string{{"g"}, {"s"}, {"g", "s"}, {"d"}, {"a"}, {"f", "g"}, {"b"}}[rng.IntN(7)]
		aggs := []string{"COUNT(*)", "SUM(a)", "AVG(b)", "MIN(d)", "MAX(s)", "COUNT(a)", "COUNT(DISTINCT a)", "SUM(b * 2 - a)", "MIN(b)", "MAX(a)", "AVG(a)", "SUM(b % 3.5)", "MAX(b / 0.0)", "MIN(2.5 - b)", "SUM(a / 4)"}
		rng.Shuffle(len(aggs), func(i, j int) { aggs[i], aggs[j] = aggs[j], aggs[i] })
		aggs = aggs[:1+rng.IntN(4)]
		sel := append(append([]string{}, keys...), aggs...)
		q := "SELECT " + strings.Join(sel, ", ") + " FROM t" + where + " GROUP BY " + strings.Join(keys, ", ")
		if rng.IntN(3) == 0 {
			q += fmt.Sprintf(" HAVING COUNT(*) > %d", rng.IntN(5))
		}
		ords := make([]string, len(sel))
		for k := range sel {
			ords[k] = fmt.Sprint(k + 1)
			if rng.IntN(2) == 0 {
				ords[k] += " DESC"
			}
		}
		q += " ORDER BY " + strings.Join(ords, ", ")
		if rng.IntN(3) == 0 {
			q += fmt.Sprintf(" LIMIT %d", rng.IntN(10))
		}
		return q
	case 1:
		return "SELECT COUNT(*), SUM(b), MIN(a), MAX(d), AVG(a), COUNT(DISTINCT s) FROM t" + where
	case 2:
		q := "SELECT a, b * 2 AS b2, s, d - 3, g FROM t" + where + " ORDER BY 1, 2 DESC, 3, 4, 5"
		if rng.IntN(2) == 0 {
			q += fmt.Sprintf(" LIMIT %d", rng.IntN(50))
			if rng.IntN(2) == 0 {
				q += fmt.Sprintf(" OFFSET %d", rng.IntN(20))
			}
		}
		return q
	case 3:
		return "SELECT a, s FROM t" + where
	default:
		return fmt.Sprintf("SELECT a, s, b FROM t%s LIMIT %d", where, rng.IntN(40))
	}
}

func TestDifferentialRandomQueries(t *testing.T) {
	old := scanBatchRows
	scanBatchRows = 37 // many batches per partition
	defer func() { scanBatchRows = old }()
	n := 300
	if testing.Short() {
		n = 60
	}
	for seed := 0; seed < 4; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 99))
		tbl := randTable(rng, 1+rng.IntN(8))
		all := tableRows(t, tbl)
		// The same rows from memory and from a Parquet file (read by the
		// direct decoder, and through pqarrow for the BOOLEAN column).
		for k, src := range []Table{tbl, parquetCopy(t, tbl, seed)} {
			cat := NewCatalog()
			_ = cat.Register("t", src)
			differential(t, rng, cat, all, fmt.Sprintf("seed %d, %s", seed, []string{"memory", "parquet"}[k]), n/4)
		}
	}
}

// parquetCopy writes the rows of tbl to a Parquet file with small row
// groups and pages (V2 pages and no dictionaries for some seeds).
func parquetCopy(t *testing.T, tbl *MemTable, seed int) *ParquetTable {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	props := []parquet.WriterProperty{parquet.WithMaxRowGroupLength(int64(50 + 70*seed)), parquet.WithDataPageSize(512)}
	if seed%2 == 1 {
		props = append(props, parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithCompression(compress.Codecs.Snappy))
	}
	if seed == 2 {
		props = append(props, parquet.WithDictionaryDefault(false))
	}
	w, err := pqarrow.NewFileWriter(tbl.Schema(), f, parquet.NewWriterProperties(props...), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range tbl.batches {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pt, err := NewParquetTable(path)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

// differential runs n random queries on cat and compares each result
// with the reference evaluation over all.
func differential(t *testing.T, rng *rand.Rand, cat *Catalog, all [][]value, what string, n int) {
	t.Helper()
	{
		for q := 0; q < n; q++ {
			sql := randQuery(rng)
			p, err := Prepare(cat, sql)
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			want := refRun(p, all)
			for _, par := range []int{1, 3} {
				e := &Engine{Catalog: cat, Runner: LocalRunner{Parallelism: par}}
				_, recs, err := e.Query(context.Background(), sql)
				if err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				got := rowsOf(t, recs)
				upper := strings.ToUpper(sql)
				switch {
				case !strings.Contains(upper, "ORDER BY") && strings.Contains(upper, "LIMIT"):
					// Any rows of the full result will do: check the count
					// and that each row is one of the full result's rows.
					full := refRun(&Plan{}, nil)
					_ = full
					p2 := *p
					p2.limit = -1
					all := refRun(&p2, all)
					if len(got) != min(len(all), int(p.limit)) {
						t.Fatalf("%s: %d rows, want %d", sql, len(got), min(len(all), int(p.limit)))
					}
					counts := map[string]int{}
					for _, r := range all {
						counts[keyString(r)]++
					}
					for _, r := range got {
						if counts[keyString(r)] == 0 {
							t.Fatalf("%s: row %v is not in the result", sql, r)
						}
						counts[keyString(r)]--
					}
					continue
				case !strings.Contains(upper, "ORDER BY"):
					sortRows(got)
					sortRows(want)
				}
				if err := sameRows(got, want); err != nil {
					t.Fatalf("%s, parallelism %d, %s\nplan:\n%s%v", what, par, sql, p.Explain(), err)
				}
			}
		}
	}
}

// lineitemTable is a table of synthetic lineitem rows, partitions of
// partRows rows.
func lineitemTable(t testing.TB, rows, partRows int) *MemTable {
	t.Helper()
	return genTable(t, tpch.SyntheticGen(rows, 42), partRows)
}

func genTable(t testing.TB, gen tpch.Generator, partRows int) *MemTable {
	t.Helper()
	var recs []arrow.RecordBatch
	err := gen(partRows, func(rec arrow.RecordBatch) error {
		rec.Retain()
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := NewMemTable(tpch.Schema, recs)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func TestTPCHQ1Q6AgainstReference(t *testing.T) {
	tbl := lineitemTable(t, 30000, 5000)
	cat := NewCatalog()
	_ = cat.Register("lineitem", tbl)
	all := tableRows(t, tbl)
	if len(all) < 20000 {
		t.Fatalf("only %d lineitem rows", len(all))
	}
	for _, q := range []struct{ name, sql string }{{"Q1", tpch.Q1}, {"Q6", tpch.Q6}} {
		p, err := Prepare(cat, q.sql)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		want := refRun(p, all)
		e := &Engine{Catalog: cat}
		_, recs, err := e.Query(context.Background(), q.sql)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		got := rowsOf(t, recs)
		if err := sameRows(got, want); err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		if q.name == "Q1" && len(got) != 4 {
			t.Fatalf("Q1 has %d groups, want 4 (A|F, N|F, N|O, R|F)", len(got))
		}
		t.Logf("%s:\n%s%v", q.name, p.Explain(), got)
	}
}

// TestTPCHSF1KnownAnswers checks the official SF1 answers; it generates
// 6 million rows, so it runs only with QUERY_TPCH_SF1=1.
func TestTPCHSF1KnownAnswers(t *testing.T) {
	if os.Getenv("QUERY_TPCH_SF1") == "" {
		t.Skip("set QUERY_TPCH_SF1=1 to generate SF1 and check the official answers")
	}
	tbl := genTable(t, tpch.DbGen(1, 0), 1<<17)
	cat := NewCatalog()
	_ = cat.Register("lineitem", tbl)
	e := &Engine{Catalog: cat}
	_, recs, err := e.Query(context.Background(), tpch.Q1)
	if err != nil {
		t.Fatal(err)
	}
	got := rowsOf(t, recs)
	if err := CheckQ1(got); err != nil {
		t.Fatal(err)
	}
	_, recs, err = e.Query(context.Background(), tpch.Q6)
	if err != nil {
		t.Fatal(err)
	}
	rev := rowsOf(t, recs)[0][0].f
	if fmt.Sprintf("%.2f", rev) != fmt.Sprintf("%.2f", tpch.Q6SF1) {
		t.Fatalf("Q6 = %.4f, want %.2f", rev, tpch.Q6SF1)
	}
}

// CheckQ1 compares Q1 result rows with the official SF1 answer, rounded to
// two decimals as the specification prints it.
func CheckQ1(got [][]value) error {
	if len(got) != len(tpch.Q1SF1) {
		return fmt.Errorf("Q1: %d rows, want %d", len(got), len(tpch.Q1SF1))
	}
	for k, w := range tpch.Q1SF1 {
		r := got[k]
		want := fmt.Sprintf("%s %s %.2f %.2f %.2f %.2f %.2f %.2f %.2f %d", w.ReturnFlag, w.LineStatus, w.SumQty, w.SumBasePrice, w.SumDiscPrice, w.SumCharge, w.AvgQty, w.AvgPrice, w.AvgDisc, w.CountOrder)
		have := fmt.Sprintf("%s %s %.2f %.2f %.2f %.2f %.2f %.2f %.2f %d", r[0].s, r[1].s, r[2].f, r[3].f, r[4].f, r[5].f, r[6].f, r[7].f, r[8].f, r[9].i)
		if have != want {
			return fmt.Errorf("Q1 row %d:\n got %s\nwant %s", k, have, want)
		}
	}
	return nil
}

func writeFile(t testing.TB, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTaxiGroupByFromCSV(t *testing.T) {
	var b strings.Builder
	b.WriteString("vendor_id,passenger_count,trip_distance,pickup_date,store_and_fwd\n")
	want := map[int64]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	for r := 0; r < 5000; r++ {
		pc := int64(rng.IntN(6) + 1)
		want[pc]++
		// The first rows carry whole distances: one-row inference would
		// take the column for BIGINT and fail later.
		dist := fmt.Sprintf("%d", rng.IntN(20))
		if r > 100 {
			dist = fmt.Sprintf("%.2f", rng.Float64()*20)
		}
		fmt.Fprintf(&b, "%d,%d,%s,2019-01-%02d,%s\n", 1+rng.IntN(2), pc, dist, 1+rng.IntN(28), []string{"N", "Y"}[rng.IntN(2)])
	}
	path := writeFile(t, "taxi.csv", b.String())
	tbl, err := NewCSVTable(path, CSVOptions{PartitionBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.Schema().String(); !strings.Contains(got, "trip_distance: type=float64") || !strings.Contains(got, "pickup_date: type=date32") || !strings.Contains(got, "passenger_count: type=int64") {
		t.Fatalf("inferred schema:\n%s", got)
	}
	if len(tbl.Partitions()) < 5 {
		t.Fatalf("%d partitions for a %d byte file in 16 KiB ranges", len(tbl.Partitions()), b.Len())
	}
	cat := NewCatalog()
	_ = cat.Register("taxi", tbl)
	e := &Engine{Catalog: cat}
	_, recs, err := e.Query(context.Background(), "SELECT passenger_count, COUNT(*) FROM taxi GROUP BY 1")
	if err != nil {
		t.Fatal(err)
	}
	got := rowsOf(t, recs)
	if len(got) != len(want) {
		t.Fatalf("got %d groups, want %d: %v", len(got), len(want), got)
	}
	total := int64(0)
	for _, r := range got {
		if want[r[0].i] != r[1].i {
			t.Fatalf("passenger_count %d: count %d, want %d", r[0].i, r[1].i, want[r[0].i])
		}
		total += r[1].i
	}
	if total != 5000 {
		t.Fatalf("total %d rows, want 5000 (byte-range partitions lost or duplicated lines)", total)
	}
}

func TestCSVByteRangesCoverEveryLineOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,name\n")
	for r := 0; r < 2000; r++ {
		fmt.Fprintf(&b, "%d,%s\n", r, strings.Repeat("n", r%37))
	}
	path := writeFile(t, "ids.csv", b.String())
	for _, step := range []int64{50, 333, 4096, -1} {
		tbl, err := NewCSVTable(path, CSVOptions{PartitionBytes: step})
		if err != nil {
			t.Fatal(err)
		}
		cat := NewCatalog()
		_ = cat.Register("ids", tbl)
		_, recs, err := (&Engine{Catalog: cat}).Query(context.Background(), "SELECT COUNT(*), SUM(id), COUNT(DISTINCT id), MIN(id), MAX(id) FROM ids")
		if err != nil {
			t.Fatal(err)
		}
		got := rowsOf(t, recs)[0]
		if got[0].i != 2000 || got[1].i != 1999*2000/2 || got[2].i != 2000 || got[3].i != 0 || got[4].i != 1999 {
			t.Fatalf("step %d: %v", step, got)
		}
	}
}

func TestParquetRowGroupsAndProjection(t *testing.T) {
	dir := t.TempDir()
	path, err := tpch.WriteParquet(dir, tpch.SyntheticGen(12000, 42), 4000, true)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := NewParquetTable(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(pt.Partitions()) < 3 {
		t.Fatalf("%d row groups", len(pt.Partitions()))
	}
	mem := lineitemTable(t, 12000, 4000)
	for _, sql := range []string{tpch.Q1, tpch.Q6, "SELECT COUNT(*) FROM lineitem", "SELECT l_orderkey, l_comment FROM lineitem WHERE l_orderkey < 10 ORDER BY 1, 2"} {
		var res [2][][]value
		for k, tbl := range []Table{pt, mem} {
			cat := NewCatalog()
			_ = cat.Register("lineitem", tbl)
			_, recs, err := (&Engine{Catalog: cat}).Query(context.Background(), sql)
			if err != nil {
				t.Fatal(err)
			}
			res[k] = rowsOf(t, recs)
		}
		if err := sameRows(res[0], res[1]); err != nil {
			t.Fatalf("%s: parquet vs memory: %v", sql, err)
		}
	}
	cat := NewCatalog()
	_ = cat.Register("lineitem", pt)
	p, err := Prepare(cat, tpch.Q6)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.scanCols) != 4 {
		t.Fatalf("Q6 scans %d columns, want 4 (projection pushdown):\n%s", len(p.scanCols), p.Explain())
	}
}

func TestErrors(t *testing.T) {
	cat := NewCatalog()
	_ = cat.Register("t", randTable(rand.New(rand.NewPCG(1, 1)), 2))
	cases := []struct {
		sql  string
		is   error
		text string
	}{
		{"SELECT a FROM t WHERE a >", ErrSyntax, "position 26"},
		{"SELECT a FROM t WHERE a > 1 1", ErrSyntax, `near "1"`},
		{"SELEC a FROM t", ErrSyntax, `near "SELEC"`},
		{"", ErrSyntax, "position"},
		{"SELECT a FROM nope", ErrUnknown, `table "nope"`},
		{"SELECT zz FROM t", ErrUnknown, `column "zz"`},
		{"SELECT a FROM t WHERE s > 3", ErrType, "VARCHAR"},
		{"SELECT SUM(s) FROM t", ErrType, "SUM needs a number"},
		{"SELECT a, COUNT(*) FROM t", ErrUnsupported, `"a" must appear in GROUP BY`},
		{"SELECT a FROM t WHERE COUNT(*) > 1", ErrUnsupported, "aggregate function"},
		{"SELECT * FROM t, u", ErrUnsupported, "joins"},
		{"INSERT INTO t VALUES (1)", ErrUnsupported, "INSERT"},
		{"SELECT CASE WHEN a > 1 THEN 1 END FROM t", ErrUnsupported, "CASE"},
		{"SELECT upper(s) FROM t", ErrUnsupported, "function upper"},
		{"SELECT a FROM t WHERE a IN (SELECT a FROM t)", ErrUnsupported, "IN with"},
		{"SELECT a FROM t ORDER BY 9", ErrUnknown, "ORDER BY position 9"},
		{"SELECT a FROM t WHERE d < date '1995-13-45'", ErrType, "not a date"},
		{"SELECT DISTINCT a FROM t", ErrUnsupported, "DISTINCT"},
	}
	for _, c := range cases {
		_, err := Prepare(cat, c.sql)
		if err == nil {
			t.Errorf("%q: no error", c.sql)
			continue
		}
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%q: got %v, want %v containing %q", c.sql, err, c.is, c.text)
		}
	}
	var se *SyntaxError
	_, err := Prepare(cat, "SELECT a FROM t WHERE a > 1 1")
	if !errors.As(err, &se) || se.Pos == 0 || se.Token != "1" {
		t.Fatalf("syntax error fields: %#v", se)
	}
}

func TestCancel(t *testing.T) {
	tbl := lineitemTable(t, 8000, 1000)
	cat := NewCatalog()
	_ = cat.Register("lineitem", tbl)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Prepare(cat, tpch.Q1)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	runner := runnerFunc(func(ctx context.Context, p *Plan, emit func(arrow.RecordBatch) error) error {
		return LocalRunner{Parallelism: 1}.RunFragments(ctx, p, func(rec arrow.RecordBatch) error {
			calls++
			cancel() // cancel after the first partition's result
			return emit(rec)
		})
	})
	err = Execute(ctx, p, runner, func(arrow.RecordBatch) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if calls >= p.Partitions() {
		t.Fatalf("all %d partitions ran despite the cancel", calls)
	}
}

type runnerFunc func(ctx context.Context, p *Plan, emit func(arrow.RecordBatch) error) error

func (f runnerFunc) RunFragments(ctx context.Context, p *Plan, emit func(arrow.RecordBatch) error) error {
	return f(ctx, p, emit)
}

func FuzzPrepare(f *testing.F) {
	for _, s := range []string{tpch.Q1, tpch.Q6, "SELECT passenger_count, COUNT(*) FROM t GROUP BY 1", "SELECT a FROM t WHERE s LIKE 'x%' ORDER BY 1 LIMIT 3", "SELECT -a, b / 0, d + interval '1' month FROM t"} {
		f.Add(s)
	}
	cat := NewCatalog()
	_ = cat.Register("t", randTable(rand.New(rand.NewPCG(3, 3)), 2))
	_ = cat.Register("lineitem", lineitemTable(f, 200, 100))
	f.Fuzz(func(t *testing.T, sql string) {
		p, err := Prepare(cat, sql)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%q: %v", sql, err)
			}
			return
		}
		ctx := context.Background()
		err = Execute(ctx, p, LocalRunner{Parallelism: 2}, func(arrow.RecordBatch) error { return nil })
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("%q: %v", sql, err)
		}
	})
}

func TestDecimalConstantFolding(t *testing.T) {
	cat := NewCatalog()
	_ = cat.Register("lineitem", lineitemTable(t, 100, 100))
	p, err := Prepare(cat, "SELECT COUNT(*) FROM lineitem WHERE l_discount BETWEEN 0.06 - 0.01 AND 0.06 + 0.01 AND l_tax < 0.1 * 3")
	if err != nil {
		t.Fatal(err)
	}
	got := p.where.String()
	for _, want := range []string{"(l_discount >= 0.05)", "(l_discount <= 0.07)", "(l_tax < 0.3)"} {
		if !strings.Contains(got, want) {
			t.Fatalf("filter %s lacks %s", got, want)
		}
	}
}

func FuzzDecodeIPC(f *testing.F) {
	tbl := lineitemTable(f, 10, 10)
	rec := tbl.batches[0]
	good, err := encodeIPC(rec)
	if err != nil {
		f.Fatal(err)
	}
	schemaMsg, err := schemaMessage(rec.Schema())
	if err != nil {
		f.Fatal(err)
	}
	back, err := decodeIPC(schemaMsg, good, 1<<20)
	if err != nil || back.NumRows() != rec.NumRows() {
		f.Fatalf("round trip: %v", err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeIPC(schemaMsg, b, 1<<20)
		if err == nil {
			rec.Release()
		}
	})
}
