package query

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// pqTestSchema has every column type the direct decoder reads, nullable
// and not.
var pqTestSchema = arrow.NewSchema([]arrow.Field{
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64},
	{Name: "i64n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "i16", Type: arrow.PrimitiveTypes.Int16},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64},
	{Name: "f64n", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String},
	{Name: "sn", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "sbig", Type: arrow.BinaryTypes.String, Nullable: true},   // many distinct values: dictionary fallback
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true}, // read through pqarrow
}, nil)

func writePQTest(t *testing.T, path string, rows int, seed int64, props ...parquet.WriterProperty) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(pqTestSchema, f, parquet.NewWriterProperties(props...), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.DefaultAllocator
	bld := array.NewRecordBuilder(mem, pqTestSchema)
	defer bld.Release()
	null := func(p float64) bool { return rng.Float64() < p }
	for off := 0; off < rows; off += 1000 {
		for r := off; r < min(off+1000, rows); r++ {
			bld.Field(0).(*array.Int64Builder).Append(int64(rng.Intn(50)) - 25)
			if null(0.2) {
				bld.Field(1).AppendNull()
			} else {
				bld.Field(1).(*array.Int64Builder).Append(rng.Int63() - rng.Int63())
			}
			if null(0.5) {
				bld.Field(2).AppendNull()
			} else {
				bld.Field(2).(*array.Int32Builder).Append(int32(rng.Intn(7)) - 3)
			}
			bld.Field(3).(*array.Int16Builder).Append(int16(rng.Intn(60000) - 30000))
			bld.Field(4).(*array.Float64Builder).Append(float64(rng.Intn(1000)) / 8)
			if null(0.05) {
				bld.Field(5).AppendNull()
			} else {
				bld.Field(5).(*array.Float64Builder).Append(rng.NormFloat64())
			}
			if null(0.99) {
				bld.Field(6).AppendNull()
			} else {
				bld.Field(6).(*array.Float32Builder).Append(float32(rng.Intn(9)) / 4)
			}
			if null(0.1) {
				bld.Field(7).AppendNull()
			} else {
				bld.Field(7).(*array.Date32Builder).Append(arrow.Date32(8000 + rng.Intn(3000)))
			}
			bld.Field(8).(*array.StringBuilder).Append([]string{"A", "N", "R", ""}[rng.Intn(4)])
			if null(0.3) {
				bld.Field(9).AppendNull()
			} else {
				bld.Field(9).(*array.StringBuilder).Append(fmt.Sprintf("v%d", rng.Intn(20)))
			}
			if null(0.1) {
				bld.Field(10).AppendNull()
			} else {
				bld.Field(10).(*array.StringBuilder).Append(fmt.Sprintf("long distinct value %d %d", r, rng.Int63()))
			}
			if null(0.1) {
				bld.Field(11).AppendNull()
			} else {
				bld.Field(11).(*array.BooleanBuilder).Append(rng.Intn(2) == 0)
			}
		}
		rec := bld.NewRecordBatch()
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// scanBoth reads every partition of tbl with the direct decoder and
// through pqarrow and returns the rows of each.
func scanBoth(t *testing.T, tbl *ParquetTable, cols []int, batchRows int) (direct, viaArrow [][]value) {
	t.Helper()
	types := make([]Type, len(cols))
	for k, c := range cols {
		types[k], _ = typeOfArrow(tbl.Schema().Field(c).Type)
	}
	collect := func(out *[][]value) func(*batch) error {
		return func(b *batch) error {
			for _, v := range b.cols {
				if v.lazy == nil {
					continue
				}
				// Filtering on dictionary entries keeps the rows that
				// filtering decoded values keeps.
				var c value
				switch {
				case v.t == Float64 && len(v.lazy.dictF) > 0:
					c = value{t: Float64, f: v.lazy.dictF[len(v.lazy.dictF)/2]}
				case v.t != Float64 && len(v.lazy.dictI) > 0:
					c = value{t: v.t, i: v.lazy.dictI[len(v.lazy.dictI)/2]}
				}
				var byDict [6][]int32
				var judged [6]bool
				col := &colExpr{idx: 0, t: v.t, name: "x"}
				for op := opEQ; op <= opGE; op++ {
					if pass := v.lazy.dictPass(v, []*cmpExpr{{op: op, l: col, r: &litExpr{v: c}}}); pass != nil {
						byDict[op], judged[op] = v.lazy.selectDict(pass, nil)
					}
				}
				cp := *v
				cp.materialize()
				bb := &batch{n: b.n, cols: []*vec{&cp}}
				for op := opEQ; op <= opGE; op++ {
					if !judged[op] {
						continue
					}
					want := filter(&cmpExpr{op: op, l: col, r: &litExpr{v: c}}, bb, nil)
					if fmt.Sprint(want) != fmt.Sprint(byDict[op]) {
						return fmt.Errorf("op %s %v: dictionary filter keeps %d rows, value filter %d", cmpNames[op], c, len(byDict[op]), len(want))
					}
				}
				// Rows decoded one by one equal rows decoded in bulk.
				var sel []int32
				for r := 1; r < b.n; r += 3 {
					sel = append(sel, int32(r))
				}
				v.load(sel)
				some := make([]value, len(sel))
				for k, r := range sel {
					some[k] = v.get(int(r))
				}
				v.materialize()
				for k, r := range sel {
					if v.get(int(r)) != some[k] {
						return fmt.Errorf("row %d: %v loaded alone, %v in bulk", r, some[k], v.get(int(r)))
					}
				}
			}
			for r := 0; r < b.n; r++ {
				row := make([]value, len(b.cols))
				for k, v := range b.cols {
					row[k] = v.get(r)
				}
				*out = append(*out, row)
			}
			return nil
		}
	}
	ctx := context.Background()
	for _, part := range tbl.Partitions() {
		p := part.(*parquetPartition)
		for _, reuse := range []bool{false, true} {
			var got [][]value
			if err := p.scanVecs(ctx, cols, types, batchRows, reuse, collect(&got)); err != nil {
				t.Fatalf("%s direct: %v", p, err)
			}
			if !reuse {
				direct = append(direct, got...)
			} else if fmt.Sprint(got) != fmt.Sprint(direct[len(direct)-len(got):]) {
				t.Fatalf("%s: reusing buffers changes the rows", p)
			}
		}
		if err := p.scanArrow(ctx, cols, types, batchRows, collect(&viaArrow)); err != nil {
			t.Fatalf("%s arrow: %v", p, err)
		}
	}
	return direct, viaArrow
}

func TestParquetDirectDecoderMatchesPqarrow(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		props []parquet.WriterProperty
	}{
		{"dict-snappy", []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(3000)}},
		{"plain", []parquet.WriterProperty{parquet.WithDictionaryDefault(false), parquet.WithMaxRowGroupLength(2500)}},
		{"v2-small-pages", []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDataPageSize(700), parquet.WithCompression(compress.Codecs.Zstd)}},
		{"dict-fallback", []parquet.WriterProperty{parquet.WithDictionaryPageSizeLimit(2000), parquet.WithDataPageSize(1500), parquet.WithBatchSize(300)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".parquet")
			writePQTest(t, path, 7001, 7, tc.props...)
			tbl, err := NewParquetTable(path)
			if err != nil {
				t.Fatal(err)
			}
			all := make([]int, tbl.Schema().NumFields()-1)
			for k := range all {
				all[k] = k
			}
			for _, cols := range [][]int{all, {10, 0, 8}, {2}, {9}} {
				for _, br := range []int{97, 1 << 16} {
					d, a := scanBoth(t, tbl, cols, br)
					if len(d) != 7001 || fmt.Sprint(d) != fmt.Sprint(a) {
						t.Fatalf("cols %v batch %d: direct decoder (%d rows) and pqarrow (%d rows) differ", cols, br, len(d), len(a))
					}
				}
			}
			// The engine end to end: the same answers as from memory.
			cat := NewCatalog()
			_ = cat.Register("t", tbl)
			for _, q := range []string{
				"SELECT s, sn, COUNT(*), SUM(i64), SUM(i64n), MIN(f64n), MAX(d), COUNT(f32), SUM(i16), COUNT(sbig), MAX(sbig) FROM t GROUP BY s, sn ORDER BY s, sn",
				"SELECT SUM(f64 * i32) FROM t WHERE d >= DATE '1993-01-01' AND i32 < 2",
				"SELECT i64, sbig FROM t WHERE sn = 'v3' ORDER BY sbig LIMIT 5",
				"SELECT b, COUNT(*) FROM t GROUP BY b ORDER BY b",
			} {
				if _, _, err := (&Engine{Catalog: cat}).Query(context.Background(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		})
	}
}

// A damaged file gives errors (or, where the damage hits only values,
// different values), never a panic.
func TestParquetDirectDecoderDamagedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "good.parquet")
	writePQTest(t, path, 3000, 3, parquet.WithCompression(compress.Codecs.Uncompressed), parquet.WithDictionaryPageSizeLimit(4000))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := NewParquetTable(path)
	if err != nil {
		t.Fatal(err)
	}
	parts := tbl.Partitions()
	rng := rand.New(rand.NewSource(1))
	cols := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	types := make([]Type, len(cols))
	for k, c := range cols {
		types[k], _ = typeOfArrow(tbl.Schema().Field(c).Type)
	}
	for trial := 0; trial < 300; trial++ {
		bad := append([]byte(nil), good...)
		// Damage the data, not the footer (the table keeps the footer it
		// read; a changed footer is a different file).
		for k := 0; k < 1+rng.Intn(8); k++ {
			bad[4+rng.Intn(len(bad)/2)] = byte(rng.Intn(256))
		}
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, part := range parts {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("trial %d: panic: %v\n%s", trial, r, debug.Stack())
					}
				}()
				_ = part.(*parquetPartition).scanVecs(context.Background(), cols, types, 500, true, func(b *batch) error {
					defer func() {
						if r := recover(); r != nil {
							if _, ok := r.(lazyError); !ok {
								panic(r)
							}
						}
					}()
					for _, v := range b.cols {
						v.load([]int32{0, int32(b.n / 2), int32(b.n - 1)})
						v.materialize()
					}
					return nil
				})
			}()
		}
	}
}

// TestHybridUnpackWidths: bit-packed values of every width, read from
// every starting offset and in pieces of every length, equal the values
// packed.
func TestHybridUnpackWidths(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for w := uint(0); w <= 32; w++ {
		const n = 200
		want := make([]uint32, n)
		data := make([]byte, (n*int(w)+7)/8)
		for k := range want {
			if w > 0 {
				want[k] = uint32(rng.Uint64() & (1<<w - 1))
			}
			for b := uint(0); b < w; b++ {
				if want[k]>>b&1 == 1 {
					bit := k*int(w) + int(b)
					data[bit/8] |= 1 << (bit % 8)
				}
			}
		}
		for start := 0; start < 20; start++ {
			for piece := 1; piece <= 37; piece += 6 {
				h := hybrid{data: data, width: w, bpBit: start * int(w)}
				got := make([]int32, 0, n)
				for len(got) < n-start {
					m := min(piece, n-start-len(got))
					buf := make([]int32, m)
					h.unpack(buf)
					got = append(got, buf...)
				}
				for k, v := range got {
					if uint32(v) != want[start+k] {
						t.Fatalf("width %d, start %d, pieces of %d: value %d = %d, want %d", w, start, piece, start+k, v, want[start+k])
					}
				}
			}
		}
	}
}
