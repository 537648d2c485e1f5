package query

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/distributed-go/distributed/behaviors/query/tpch"
)

// csvTestSchema has a column of each type the direct decoder reads.
var csvTestSchema = arrow.NewSchema([]arrow.Field{
	{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "t", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// csvRows is the result of scanning partitions: the rows, and the first
// error.
type csvRows struct {
	rows [][]value
	err  error
}

// collectCSVRows runs scan on every partition of tbl; scan hands the
// columns of each batch of n rows to add, which keeps the rows (strings
// cloned, since a reused batch's bytes are written over).
func collectCSVRows(tbl *CSVTable, scan func(p *csvPartition, add func(vs []*vec, n int)) error) csvRows {
	var out csvRows
	for _, part := range tbl.Partitions() {
		err := scan(part.(*csvPartition), func(vs []*vec, n int) {
			for r := 0; r < n; r++ {
				row := make([]value, len(vs))
				for k, v := range vs {
					row[k] = v.get(r)
					if row[k].t == String {
						row[k].s = strings.Clone(row[k].s)
					}
				}
				out.rows = append(out.rows, row)
			}
		})
		if err != nil {
			out.err = err
			break
		}
	}
	return out
}

// scanCSVRows scans every partition of tbl with scan and collects the rows.
func scanCSVRows(tbl *CSVTable, cols []int, batchRows int, scan func(p *csvPartition, emit func(arrow.RecordBatch) error) error) csvRows {
	return collectCSVRows(tbl, func(p *csvPartition, add func(vs []*vec, n int)) error {
		return scan(p, func(rec arrow.RecordBatch) error {
			if int(rec.NumCols()) != len(cols) {
				return fmt.Errorf("%d columns, want %d", rec.NumCols(), len(cols))
			}
			if rec.NumRows() > int64(batchRows) {
				return fmt.Errorf("batch of %d rows, asked for %d", rec.NumRows(), batchRows)
			}
			vs := make([]*vec, len(cols))
			for k := range cols {
				want := p.schema.Field(cols[k]).Type
				if !arrow.TypeEqual(rec.Column(k).DataType(), want) || !arrow.TypeEqual(rec.Schema().Field(k).Type, want) {
					return fmt.Errorf("column %d has type %s, want %s", k, rec.Column(k).DataType(), want)
				}
				t, _ := typeOfArrow(want)
				v, err := vecFromArrow(rec.Column(k), t)
				if err != nil {
					return err
				}
				vs[k] = v
			}
			add(vs, int(rec.NumRows()))
			return nil
		})
	})
}

func refCSV(tbl *CSVTable, cols []int, batchRows int) csvRows {
	return scanCSVRows(tbl, cols, batchRows, func(p *csvPartition, emit func(arrow.RecordBatch) error) error {
		return p.scanArrowGo(context.Background(), cols, batchRows, emit)
	})
}

func oursCSV(tbl *CSVTable, cols []int, batchRows int) csvRows {
	return scanCSVRows(tbl, cols, batchRows, func(p *csvPartition, emit func(arrow.RecordBatch) error) error {
		if !p.direct(cols) {
			return fmt.Errorf("the direct decoder does not read columns %v of %s", cols, p.schema)
		}
		return p.Scan(context.Background(), cols, batchRows, emit)
	})
}

// oursCSVVecs scans through scanVecs, as the engine does.
func oursCSVVecs(tbl *CSVTable, cols []int, batchRows int, reuse bool) csvRows {
	types := make([]Type, len(cols))
	for k, c := range cols {
		types[k], _ = typeOfArrow(tbl.Schema().Field(c).Type)
	}
	return collectCSVRows(tbl, func(p *csvPartition, add func(vs []*vec, n int)) error {
		return p.scanVecs(context.Background(), cols, types, batchRows, reuse, func(b *batch) error {
			if len(b.cols) != len(cols) || b.n > batchRows {
				return fmt.Errorf("batch of %d columns and %d rows", len(b.cols), b.n)
			}
			add(b.cols, b.n)
			return nil
		})
	})
}

func sameCSVValue(a, b value) bool {
	if a.t != b.t || a.null != b.null {
		return false
	}
	if a.null {
		return true
	}
	switch a.t {
	case Float64:
		// Bit for bit (0 and -0 differ), but any NaN is NaN: sums of
		// NaNs keep one operand's payload.
		return math.Float64bits(a.f) == math.Float64bits(b.f) || math.IsNaN(a.f) && math.IsNaN(b.f)
	case String:
		return a.s == b.s
	case Bool:
		return a.b == b.b
	}
	return a.i == b.i
}

// diffRows describes the first difference between two results, or is "".
func diffRows(got, want [][]value) string {
	for r := 0; r < len(got) && r < len(want); r++ {
		if len(got[r]) != len(want[r]) {
			return fmt.Sprintf("row %d: %d columns, want %d", r, len(got[r]), len(want[r]))
		}
		for k := range got[r] {
			if !sameCSVValue(got[r][k], want[r][k]) {
				return fmt.Sprintf("row %d column %d: got %#v, want %#v", r, k, got[r][k], want[r][k])
			}
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	return ""
}

// csvGen writes random CSV text for csvTestSchema: every type, NULLs,
// quoted fields (with commas and doubled quotes), numbers and dates in
// every form the readers accept, CRLF line ends, empty lines.
type csvGen struct {
	rng *rand.Rand
	// crlf, empty and quoted are the chances of a CRLF line end, an
	// empty line and a quoted field; nl of a line break inside a quoted
	// string.
	crlf, empty, quoted, nl float64
}

func (g *csvGen) field(col int) string {
	r := g.rng
	if r.IntN(12) == 0 {
		return ""
	}
	var s string
	switch col {
	case 0:
		switch r.IntN(6) {
		case 0:
			s = strconv.FormatInt(r.Int64()-r.Int64(), 10)
		case 1:
			s = "+" + strconv.Itoa(r.IntN(1000))
		case 2:
			s = fmt.Sprintf("%07d", r.IntN(100000))
		case 3:
			s = []string{"-9223372036854775808", "9223372036854775807", "-0", "0"}[r.IntN(4)]
		default:
			s = strconv.Itoa(r.IntN(2000000) - 1000000)
		}
	case 1:
		switch r.IntN(8) {
		case 0:
			s = strconv.FormatFloat(r.NormFloat64()*1e6, 'g', -1, 64)
		case 1:
			s = strconv.FormatFloat(r.Float64(), 'e', r.IntN(20), 64)
		case 2:
			s = []string{"inf", "-Inf", "NaN", "1e308", "4.9e-324", "-0", "-0.0", ".5", "5.", "0x1p-2", "1_000.5", "00012.50"}[r.IntN(12)]
		case 3:
			s = strconv.FormatFloat(float64(r.IntN(1e8))/100, 'f', -1, 64)
		case 4:
			s = fmt.Sprintf("%d.%0*d", r.IntN(1e7), r.IntN(9)+1, r.IntN(1e8))
		default:
			s = strconv.FormatFloat(float64(r.IntN(10000))/100, 'f', 2, 64)
		}
	case 2:
		d := time.Date(r.IntN(10000), 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(366))
		s = d.Format("2006-01-02")
		if d.Year() < 1000 || d.Year() > 9999 {
			s = "1970-01-01"
		}
	case 3:
		s = []string{"true", "false", "1", "0", "t", "F", "TRUE", "False"}[r.IntN(8)]
	default:
		words := []string{"a", "b,c", `say "hi"`, "x y", "é", ",", `""`, "tab\there", "cr\rin"}
		var b strings.Builder
		for k := r.IntN(4); k >= 0; k-- {
			b.WriteString(words[r.IntN(len(words))])
		}
		if g.nl > 0 && r.Float64() < g.nl {
			b.WriteString([]string{"\n", "\r\n", "\n\n"}[r.IntN(3)])
		}
		s = b.String()
	}
	if strings.ContainsAny(s, ",\"\n") || r.Float64() < g.quoted {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// file makes a header and rows lines of CSV text.
func (g *csvGen) file(rows int, finalNewline bool) string {
	var b strings.Builder
	for k, f := range csvTestSchema.Fields() {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.Name)
	}
	b.WriteString("\n")
	for r := 0; r < rows; r++ {
		if g.rng.Float64() < g.empty {
			b.WriteString([]string{"\n", "\r\n"}[g.rng.IntN(2)])
		}
		for k := range csvTestSchema.Fields() {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString(g.field(k))
		}
		if r < rows-1 || finalNewline {
			if g.rng.Float64() < g.crlf {
				b.WriteString("\r\n")
			} else {
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

func newCSVTestTable(t testing.TB, path string, step int64) *CSVTable {
	t.Helper()
	tbl, err := NewCSVTable(path, CSVOptions{Schema: csvTestSchema, PartitionBytes: step})
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// csvProjections are the column lists the tests read: all, some in
// another order, and none (COUNT(*)).
var csvProjections = [][]int{{0, 1, 2, 3, 4, 5}, {5, 2, 0}, {4}, {1, 3}, {3, 1}, {}}

func TestCSVScanMatchesArrowReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for trial := 0; trial < 6; trial++ {
		g := &csvGen{rng: rng, crlf: []float64{0, 0.5, 1}[trial%3], empty: 0.02 * float64(trial%2), quoted: 0.1}
		rows := []int{0, 1, 3, 150, 600, 1500}[trial]
		body := g.file(rows, trial%2 == 0)
		path := writeFile(t, fmt.Sprintf("t%d.csv", trial), body)
		whole := refCSV(newCSVTestTable(t, path, -1), []int{0, 1, 2, 3, 4, 5}, 1000)
		if whole.err != nil {
			t.Fatalf("trial %d: reference: %v", trial, whole.err)
		}
		if len(whole.rows) != rows {
			t.Fatalf("trial %d: reference read %d rows, want %d", trial, len(whole.rows), rows)
		}
		// Byte ranges from one byte to more than the file, at most ~150
		// of them.
		steps := []int64{-1, int64(len(body))/150 + 1, int64(len(body))/7 + 1, 1 << 20}
		if rows < 10 {
			steps = append(steps, 1, 7)
		}
		for _, step := range steps {
			tbl := newCSVTestTable(t, path, step)
			for pi, cols := range csvProjections {
				for _, batchRows := range []int{1, 7, 1000} {
					if batchRows == 1 && rows > 10 || batchRows == 7 && pi%2 == 1 && rows > 10 {
						continue
					}
					want := refCSV(tbl, cols, batchRows)
					if want.err != nil {
						t.Fatalf("trial %d step %d cols %v: reference: %v", trial, step, cols, want.err)
					}
					got := oursCSV(tbl, cols, batchRows)
					if got.err != nil {
						t.Fatalf("trial %d step %d cols %v batch %d: %v", trial, step, cols, batchRows, got.err)
					}
					if d := diffRows(got.rows, want.rows); d != "" {
						t.Fatalf("trial %d step %d cols %v batch %d: Scan: %s", trial, step, cols, batchRows, d)
					}
					for _, reuse := range []bool{false, true} {
						got := oursCSVVecs(tbl, cols, batchRows, reuse)
						if got.err != nil {
							t.Fatalf("trial %d step %d cols %v batch %d reuse %v: %v", trial, step, cols, batchRows, reuse, got.err)
						}
						if d := diffRows(got.rows, want.rows); d != "" {
							t.Fatalf("trial %d step %d cols %v batch %d reuse %v: scanVecs: %s", trial, step, cols, batchRows, reuse, d)
						}
					}
				}
			}
		}
	}
}

// Every line is read by exactly one partition, however the file is cut.
func TestCSVScanPartitionsReadEveryLineOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("i,f,d,b,s,t\n")
	for r := 0; r < 1500; r++ {
		fmt.Fprintf(&b, "%d,,,,%s,\"%s\"\n", r, strings.Repeat("x", r%41), strings.Repeat("y", r%13))
	}
	path := writeFile(t, "ids.csv", b.String())
	for _, step := range []int64{1, 2, 14, 53, 54, 200, 1001} {
		tbl := newCSVTestTable(t, path, step)
		got := oursCSV(tbl, []int{0}, 100)
		if got.err != nil {
			t.Fatal(got.err)
		}
		if len(got.rows) != 1500 {
			t.Fatalf("step %d: %d rows, want 1500", step, len(got.rows))
		}
		for r, row := range got.rows {
			if row[0].i != int64(r) {
				t.Fatalf("step %d: row %d is line %d", step, r, row[0].i)
			}
		}
	}
}

// A quoted field may hold line breaks when one partition reads the whole
// file; when the file is split, that is an error, never wrong rows.
func TestCSVScanLineBreaksInQuotes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	g := &csvGen{rng: rng, crlf: 0.3, quoted: 0.1, nl: 0.2}
	body := g.file(500, true)
	path := writeFile(t, "nl.csv", body)
	tbl := newCSVTestTable(t, path, -1)
	for _, cols := range csvProjections {
		want := refCSV(tbl, cols, 64)
		if want.err != nil {
			t.Fatal(want.err)
		}
		got := oursCSV(tbl, cols, 64)
		if got.err != nil {
			t.Fatal(got.err)
		}
		if d := diffRows(got.rows, want.rows); d != "" {
			t.Fatalf("cols %v: %s", cols, d)
		}
	}
	split := oursCSV(newCSVTestTable(t, path, 1000), []int{0}, 64)
	if split.err == nil || !strings.Contains(split.err.Error(), "PartitionBytes") || !strings.Contains(split.err.Error(), path) {
		t.Fatalf("split file with line breaks in quotes: err %v, rows %d", split.err, len(split.rows))
	}
}

// Records longer than the read buffer (which starts at the partition's
// size) make it grow, plain or quoted, split or whole.
func TestCSVScanLongRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	var b strings.Builder
	b.WriteString("i,f,d,b,s,t\n")
	for r := 0; r < 40; r++ {
		long := strings.Repeat(string(rune('a'+r%26)), rng.IntN(1<<16))
		if r%3 == 0 {
			long = `"` + strings.Repeat(`x""y,`, rng.IntN(1<<13)) + `"`
		}
		fmt.Fprintf(&b, "%d,%d.5,2001-02-03,true,%s,%s\n", r, r, long, strings.Repeat("t", rng.IntN(1<<15)))
	}
	path := writeFile(t, "long.csv", b.String())
	for _, step := range []int64{-1, 5000, 100000} {
		tbl := newCSVTestTable(t, path, step)
		for _, cols := range [][]int{{4, 0}, {}} {
			want := refCSV(tbl, cols, 7)
			got := oursCSV(tbl, cols, 7)
			if got.err != nil || want.err != nil {
				t.Fatalf("step %d: ours: %v; arrow-go: %v", step, got.err, want.err)
			}
			if d := diffRows(got.rows, want.rows); d != "" || len(got.rows) != 40 {
				t.Fatalf("step %d cols %v: %d rows: %s", step, cols, len(got.rows), d)
			}
		}
	}
}

// Bad input gets an error naming the file, the line, the column and the
// value.
func TestCSVScanErrors(t *testing.T) {
	good := "1,2.5,2020-01-02,true,x,y\n"
	cases := []struct {
		name, line string
		cols       []int
		want       []string
	}{
		{"bigint", "abc,2.5,2020-01-02,true,x,y", []int{0}, []string{"line 3", `column "i" (BIGINT)`, `"abc" is not a valid BIGINT`}},
		{"bigint range", "99999999999999999999,2.5,2020-01-02,true,x,y", []int{0, 1}, []string{"line 3", `"99999999999999999999" is out of range for BIGINT`}},
		{"double", "1,2.5x,2020-01-02,true,x,y", []int{1}, []string{"line 3", `column "f" (DOUBLE)`, `"2.5x"`}},
		{"date", "1,2.5,2020-02-30,true,x,y", []int{2}, []string{"line 3", `column "d" (DATE)`, `"2020-02-30"`}},
		{"bool", "1,2.5,2020-01-02,yes,x,y", []int{3}, []string{"line 3", `column "b" (BOOLEAN)`, `"yes"`}},
		{"quoted bigint", `"12 ",2.5,2020-01-02,true,x,y`, []int{0}, []string{"line 3", `"12 "`}},
		{"too few fields", "1,2.5,2020-01-02,true,x", []int{4}, []string{"line 3", "5 fields, want 6"}},
		{"too many fields", "1,2.5,2020-01-02,true,x,y,z", []int{}, []string{"line 3", "7 fields, want 6"}},
		{"unterminated quote", `1,2.5,2020-01-02,true,"x,y`, []int{0}, []string{"line 3", `column "s"`, "not terminated"}},
		{"bare quote", `1,2.5,2020-01-02,true,x"x,y`, []int{5}, []string{"line 3", `column "s"`, "double quote inside an unquoted field", `"x\"x"`}},
		{"text after quote", `1,2.5,2020-01-02,true,"x"x,y`, []int{5}, []string{"line 3", `column "s"`, "after the closing double quote"}},
	}
	for _, c := range cases {
		for _, step := range []int64{-1, 10} {
			path := writeFile(t, "bad.csv", "i,f,d,b,s,t\n"+good+c.line+"\n"+good)
			tbl := newCSVTestTable(t, path, step)
			got := oursCSV(tbl, c.cols, 100)
			if got.err == nil {
				t.Fatalf("%s (step %d): no error", c.name, step)
			}
			msg := got.err.Error()
			want := append([]string{path}, c.want...)
			if step > 0 {
				// Later partitions do not know line numbers: they give
				// the line's byte offset.
				want = append([]string{path, "byte 38"}, c.want[1:]...)
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s (step %d): error %q does not contain %q", c.name, step, msg, w)
				}
			}
			if ref := refCSV(tbl, c.cols, 100); ref.err == nil {
				t.Errorf("%s: arrow-go's reader reads it", c.name)
			}
		}
	}
}

// The value parsers give exactly what strconv and time give.
func TestCSVValueParsers(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	ints := []string{"0", "-0", "+0", "+", "-", "12a", "1 ", "007", "999999999999999999", "-999999999999999999",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "1_0", "0x10"}
	for k := 0; k < 2000; k++ {
		ints = append(ints, strconv.FormatInt(rng.Int64()>>rng.IntN(63), 10), strconv.FormatInt(-rng.Int64()>>rng.IntN(63), 10))
	}
	for _, s := range ints {
		got, gerr := parseCSVInt([]byte(s))
		want, werr := strconv.ParseInt(s, 10, 64)
		if (gerr == nil) != (werr == nil) || got != want && werr == nil {
			t.Fatalf("parseCSVInt(%q) = %d, %v; strconv: %d, %v", s, got, gerr, want, werr)
		}
	}
	floats := []string{"0", "-0", "0.", ".0", ".", "-.5", "+.5", "1.", "1.5.", "1e5", "1E-5", "inf", "-Inf", "NaN", "nan", "0x1p3",
		"1_0.5", "123456789012345", "1234567890123456", "0.000000000000001", "9007199254740993", "1e400", "-1e400", "4.9e-324",
		"00000000000000001.5", "1.00000000000000000000001", "--1", "1-", "1.2e", " 1"}
	for k := 0; k < 20000; k++ {
		x := math.Float64frombits(rng.Uint64())
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		floats = append(floats,
			strconv.FormatFloat(x, 'g', -1, 64),
			strconv.FormatFloat(float64(rng.Int64N(1e15))/math.Pow10(rng.IntN(16)), 'f', -1, 64),
			fmt.Sprintf("%d.%0*d", rng.IntN(1e7), rng.IntN(9)+1, rng.IntN(1e8)),
			"-"+strconv.Itoa(rng.IntN(1e6))+"."+strconv.Itoa(rng.IntN(1e9)))
	}
	for _, s := range floats {
		got, gerr := parseCSVFloat([]byte(s))
		want, werr := strconv.ParseFloat(s, 64)
		if (gerr == nil) != (werr == nil) || (werr == nil && math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want))) {
			t.Fatalf("parseCSVFloat(%q) = %v, %v; strconv: %v, %v", s, got, gerr, want, werr)
		}
	}
	dates := []string{"0000-01-01", "0000-02-29", "0001-02-29", "1900-02-29", "2000-02-29", "2100-02-29", "9999-12-31", "2020-13-01",
		"2020-00-10", "2020-01-00", "2020-01-32", "2020-1-01", "2020-01-1", "20200101", "2020/01/01", "+020-01-01", "2020-01-01 ",
		"２020-01-01", "1969-12-31", "1970-01-01", "0x20-01-01"}
	for k := 0; k < 5000; k++ {
		dates = append(dates, fmt.Sprintf("%04d-%02d-%02d", rng.IntN(10000), rng.IntN(14), rng.IntN(33)))
	}
	for _, s := range dates {
		got, gerr := parseCSVDate([]byte(s))
		tm, werr := time.Parse("2006-01-02", s)
		if (gerr == nil) != (werr == nil) || werr == nil && got != int64(arrow.Date32FromTime(tm)) {
			t.Fatalf("parseCSVDate(%q) = %d, %v; time.Parse: %v, %v", s, got, gerr, tm, werr)
		}
	}
}

// The engine gives the same answers over the direct decoder as over
// arrow-go's reader.
func TestCSVScanQueries(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	g := &csvGen{rng: rng, crlf: 0.2, quoted: 0.05}
	path := writeFile(t, "q.csv", g.file(3000, true))
	queries := []string{
		"SELECT COUNT(*), COUNT(i), SUM(i), MIN(f), MAX(d), COUNT(DISTINCT s), MIN(t), MAX(t) FROM t",
		"SELECT b, COUNT(*), SUM(f), MIN(d) FROM t GROUP BY b ORDER BY b",
		"SELECT s, i FROM t WHERE d > DATE '5000-01-01' ORDER BY i, s LIMIT 20",
		"SELECT COUNT(*) FROM t",
	}
	for _, step := range []int64{-1, 2000, 100000} {
		ours := NewCatalog()
		_ = ours.Register("t", newCSVTestTable(t, path, step))
		ref := NewCatalog()
		_ = ref.Register("t", arrowGoTable{newCSVTestTable(t, path, step)})
		for _, q := range queries {
			_, got, err := (&Engine{Catalog: ours}).Query(context.Background(), q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			_, want, err := (&Engine{Catalog: ref}).Query(context.Background(), q)
			if err != nil {
				t.Fatalf("%s (reference): %v", q, err)
			}
			if d := diffRows(rowsOf(t, got), rowsOf(t, want)); d != "" {
				t.Fatalf("step %d: %s: %s", step, q, d)
			}
		}
	}
}

// arrowGoTable reads a CSV table's partitions through arrow-go's reader.
type arrowGoTable struct{ *CSVTable }

func (t arrowGoTable) Partitions() []Partition {
	ps := t.CSVTable.Partitions()
	out := make([]Partition, len(ps))
	for k, p := range ps {
		out[k] = arrowGoPartition{p.(*csvPartition)}
	}
	return out
}

type arrowGoPartition struct{ p *csvPartition }

func (a arrowGoPartition) String() string { return a.p.String() }
func (a arrowGoPartition) Scan(ctx context.Context, cols []int, batchRows int, emit func(arrow.RecordBatch) error) error {
	return a.p.scanArrowGo(ctx, cols, batchRows, emit)
}

// FuzzCSVScan: the direct decoder fails where arrow-go's reader fails and
// otherwise gives the same rows, for the whole file in one partition; cut
// into byte ranges, it either fails or gives the same rows too.
func FuzzCSVScan(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	for k := 0; k < 8; k++ {
		g := &csvGen{rng: rng, crlf: 0.3, empty: 0.05, quoted: 0.2, nl: 0.05 * float64(k%2)}
		f.Add([]byte(g.file(1+k, k%3 != 0))[len("i,f,d,b,s,t\n"):], uint8(k))
	}
	f.Add([]byte("1,2,2020-01-01,t,\"a\nb\",\"\"\"\"\r\n"), uint8(3))
	f.Add([]byte("1,2,2020-01-01,t,a\"b,c\n"), uint8(0))
	f.Add([]byte("1,2,2020-01-01,t,\"a\"b,c\n"), uint8(0))
	f.Add([]byte("1,2,2020-01-01,t,\"abc\n\r"), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		if len(body) > 1<<16 {
			return
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "f.csv")
		if err := os.WriteFile(path, append([]byte("i,f,d,b,s,t\n"), body...), 0o644); err != nil {
			t.Fatal(err)
		}
		cols := csvProjections[int(mode)%len(csvProjections)]
		batchRows := 1 + int(mode>>3)%5
		whole := newCSVTestTable(t, path, -1)
		want := refCSV(whole, cols, batchRows)
		got := oursCSV(whole, cols, batchRows)
		if (got.err == nil) != (want.err == nil) {
			t.Fatalf("cols %v: ours: %v; arrow-go: %v", cols, got.err, want.err)
		}
		if got.err == nil {
			if d := diffRows(got.rows, want.rows); d != "" {
				t.Fatalf("cols %v: %s", cols, d)
			}
		}
		vecs := oursCSVVecs(whole, cols, batchRows, mode&1 == 0)
		if (vecs.err == nil) != (want.err == nil) {
			t.Fatalf("cols %v: scanVecs: %v; arrow-go: %v", cols, vecs.err, want.err)
		}
		if vecs.err == nil {
			if d := diffRows(vecs.rows, want.rows); d != "" {
				t.Fatalf("cols %v: scanVecs: %s", cols, d)
			}
		}
		step := int64(1 + int(mode)%37)
		split := oursCSV(newCSVTestTable(t, path, step), cols, batchRows)
		switch {
		case split.err == nil && want.err != nil:
			t.Fatalf("step %d cols %v: no error cut into ranges; arrow-go on the whole file: %v", step, cols, want.err)
		case split.err == nil:
			if d := diffRows(split.rows, want.rows); d != "" {
				t.Fatalf("step %d cols %v: %s", step, cols, d)
			}
		case want.err == nil && !bytes.Contains(body, []byte{'"'}):
			// Only quoted fields can read differently in byte ranges.
			t.Fatalf("step %d cols %v: %v", step, cols, split.err)
		}
	})
}

// ---- benchmarks ----

var (
	benchCSVOnce sync.Once
	benchCSVPath string
	benchCSVErr  error
)

// benchCSVFile is $QUERY_BENCH_CSV (a lineitem CSV such as bench/query
// writes) or a dbgen lineitem CSV of 20,000 orders (about 10 MB) made
// once per process.
func benchCSVFile(b *testing.B) string {
	if p := os.Getenv("QUERY_BENCH_CSV"); p != "" {
		return p
	}
	benchCSVOnce.Do(func() {
		dir, err := os.MkdirTemp("", "csvbench")
		if err != nil {
			benchCSVErr = err
			return
		}
		benchCSVPath = filepath.Join(dir, "lineitem.csv")
		f, err := os.Create(benchCSVPath)
		if err != nil {
			benchCSVErr = err
			return
		}
		defer f.Close()
		benchCSVErr = tpch.WriteCSV(f, tpch.DbGen(1, 20000))
	})
	if benchCSVErr != nil {
		b.Fatal(benchCSVErr)
	}
	return benchCSVPath
}

const benchCSVQuery = "SELECT COUNT(*), SUM(l_quantity), MAX(l_shipdate), MIN(l_comment) FROM lineitem"

// BenchmarkCSVScan runs bench/query's CSV query on one core over
// lineitem CSV in 16 MiB byte ranges; "ours" reads through the direct
// decoder, "arrowgo" through arrow-go's CSV reader. MB/s is of the file.
func BenchmarkCSVScan(b *testing.B) {
	path := benchCSVFile(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := NewCSVTable(path, CSVOptions{Schema: tpch.Schema, PartitionBytes: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	for _, peer := range []struct {
		name string
		t    Table
	}{{"ours", tbl}, {"arrowgo", arrowGoTable{tbl}}} {
		b.Run(peer.name, func(b *testing.B) {
			cat := NewCatalog()
			_ = cat.Register("lineitem", peer.t)
			p, err := Prepare(cat, benchCSVQuery)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(st.Size())
			for b.Loop() {
				if err := Execute(context.Background(), p, LocalRunner{Parallelism: 1}, func(arrow.RecordBatch) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCSVScanArrow reads all 16 lineitem columns as Arrow record
// batches (Partition.Scan): "ours" through the direct decoder, "arrowgo"
// through arrow-go's reader.
func BenchmarkCSVScanArrow(b *testing.B) {
	path := benchCSVFile(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := NewCSVTable(path, CSVOptions{Schema: tpch.Schema, PartitionBytes: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	cols := make([]int, tpch.Schema.NumFields())
	for k := range cols {
		cols[k] = k
	}
	for _, peer := range []string{"ours", "arrowgo"} {
		b.Run(peer, func(b *testing.B) {
			b.SetBytes(st.Size())
			for b.Loop() {
				for _, part := range tbl.Partitions() {
					p := part.(*csvPartition)
					scan := p.Scan
					if peer == "arrowgo" {
						scan = p.scanArrowGo
					}
					if err := scan(context.Background(), cols, DefaultBatchRows, func(arrow.RecordBatch) error { return nil }); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
