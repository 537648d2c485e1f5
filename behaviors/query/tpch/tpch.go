// Package tpch generates TPC-H lineitem data as Arrow record batches (with
// github.com/pingcap/go-tpc's Go port of dbgen 2.4.0), writes it as Parquet
// or CSV, and holds the text and the official scale-factor-1 answers of
// TPC-H queries 1 and 6.
package tpch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/pingcap/go-tpc/tpch/dbgen"
)

// Q1 is TPC-H query 1 (pricing summary report) with its validation
// parameter DELTA = 90.
const Q1 = `select
	l_returnflag,
	l_linestatus,
	sum(l_quantity) as sum_qty,
	sum(l_extendedprice) as sum_base_price,
	sum(l_extendedprice * (1 - l_discount)) as sum_disc_price,
	sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge,
	avg(l_quantity) as avg_qty,
	avg(l_extendedprice) as avg_price,
	avg(l_discount) as avg_disc,
	count(*) as count_order
from
	lineitem
where
	l_shipdate <= date '1998-12-01' - interval '90' day
group by
	l_returnflag,
	l_linestatus
order by
	l_returnflag,
	l_linestatus`

// Q6 is TPC-H query 6 (forecasting revenue change) with its validation
// parameters.
const Q6 = `select
	sum(l_extendedprice * l_discount) as revenue
from
	lineitem
where
	l_shipdate >= date '1994-01-01'
	and l_shipdate < date '1994-01-01' + interval '1' year
	and l_discount between 0.06 - 0.01 and 0.06 + 0.01
	and l_quantity < 24`

// Q1Row is one row of Q1's answer.
type Q1Row struct {
	ReturnFlag, LineStatus                        string
	SumQty, SumBasePrice, SumDiscPrice, SumCharge float64
	AvgQty, AvgPrice, AvgDisc                     float64
	CountOrder                                    int64
}

// Q1SF1 is the official answer of Q1 at scale factor 1 (rounded as the
// specification prints it).
var Q1SF1 = []Q1Row{
	{"A", "F", 37734107.00, 56586554400.73, 53758257134.87, 55909065222.83, 25.52, 38273.13, 0.05, 1478493},
	{"N", "F", 991417.00, 1487504710.38, 1413082168.05, 1469649223.19, 25.52, 38284.47, 0.05, 38854},
	{"N", "O", 74476040.00, 111701729697.74, 106118230307.61, 110367043872.50, 25.50, 38249.12, 0.05, 2920374},
	{"R", "F", 37719753.00, 56568041380.90, 53741292684.60, 55889619119.83, 25.51, 38250.85, 0.05, 1478870},
}

// Q6SF1 is the official answer of Q6 at scale factor 1.
const Q6SF1 = 123141078.23

// Schema is the lineitem schema: DECIMAL columns as float64, dates as
// date32.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "l_orderkey", Type: arrow.PrimitiveTypes.Int64},
	{Name: "l_partkey", Type: arrow.PrimitiveTypes.Int64},
	{Name: "l_suppkey", Type: arrow.PrimitiveTypes.Int64},
	{Name: "l_linenumber", Type: arrow.PrimitiveTypes.Int64},
	{Name: "l_quantity", Type: arrow.PrimitiveTypes.Float64},
	{Name: "l_extendedprice", Type: arrow.PrimitiveTypes.Float64},
	{Name: "l_discount", Type: arrow.PrimitiveTypes.Float64},
	{Name: "l_tax", Type: arrow.PrimitiveTypes.Float64},
	{Name: "l_returnflag", Type: arrow.BinaryTypes.String},
	{Name: "l_linestatus", Type: arrow.BinaryTypes.String},
	{Name: "l_shipdate", Type: arrow.FixedWidthTypes.Date32},
	{Name: "l_commitdate", Type: arrow.FixedWidthTypes.Date32},
	{Name: "l_receiptdate", Type: arrow.FixedWidthTypes.Date32},
	{Name: "l_shipinstruct", Type: arrow.BinaryTypes.String},
	{Name: "l_shipmode", Type: arrow.BinaryTypes.String},
	{Name: "l_comment", Type: arrow.BinaryTypes.String},
}, nil)

// dbgen keeps its state in package variables.
var genMu sync.Mutex

var errStop = errors.New("tpch: enough orders")

// Lineitem generates the lineitem table of scale factor sf (an integer, as
// dbgen's) and calls fn with batches of about batchRows rows. maxOrders > 0
// stops after that many orders (about 4 lines each): a deterministic prefix
// of the full table, for small tests. dbgen prints progress lines to
// standard output.
func Lineitem(sf, maxOrders, batchRows int, fn func(arrow.RecordBatch) error) error {
	if sf < 1 {
		return fmt.Errorf("tpch: scale factor %d (dbgen takes integers >= 1)", sf)
	}
	genMu.Lock()
	defer genMu.Unlock()
	dbgen.InitDbGen(int64(sf))
	b := newBuilder(batchRows, fn)
	ld := &loader{b: b, max: maxOrders}
	err := dbgen.DbGen(map[dbgen.Table]dbgen.Loader{dbgen.TLine: ld}, []dbgen.Table{dbgen.TLine})
	if ld.err != nil && ld.err != errStop {
		return ld.err
	}
	if err != nil && ld.err != errStop {
		return err
	}
	return b.flush()
}

type loader struct {
	b      *builder
	max    int
	orders int
	err    error
}

func (l *loader) Load(item interface{}) error {
	if l.err != nil {
		return l.err
	}
	if l.max > 0 && l.orders >= l.max {
		l.err = errStop
		return l.err
	}
	l.orders++
	o := item.(*dbgen.Order)
	for i := range o.Lines {
		if err := l.b.add(&o.Lines[i]); err != nil {
			l.err = err
			return err
		}
	}
	return nil
}

func (l *loader) Flush() error { return nil }

type builder struct {
	rb    *array.RecordBuilder
	n     int
	limit int
	fn    func(arrow.RecordBatch) error
	dates map[string]arrow.Date32
}

func newBuilder(limit int, fn func(arrow.RecordBatch) error) *builder {
	return &builder{rb: array.NewRecordBuilder(memory.DefaultAllocator, Schema), limit: limit, fn: fn, dates: map[string]arrow.Date32{}}
}

func (b *builder) date(s string) arrow.Date32 {
	if d, ok := b.dates[s]; ok {
		return d
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(fmt.Sprintf("tpch: dbgen produced a bad date %q", s))
	}
	d := arrow.Date32FromTime(t)
	b.dates[s] = d
	return d
}

func (b *builder) add(l *dbgen.LineItem) error {
	f := b.rb.Fields()
	f[0].(*array.Int64Builder).Append(int64(l.OKey))
	f[1].(*array.Int64Builder).Append(int64(l.PartKey))
	f[2].(*array.Int64Builder).Append(int64(l.SuppKey))
	f[3].(*array.Int64Builder).Append(int64(l.LCnt))
	f[4].(*array.Float64Builder).Append(float64(l.Quantity))
	f[5].(*array.Float64Builder).Append(float64(l.EPrice) / 100)
	f[6].(*array.Float64Builder).Append(float64(l.Discount) / 100)
	f[7].(*array.Float64Builder).Append(float64(l.Tax) / 100)
	f[8].(*array.StringBuilder).Append(string(l.RFlag))
	f[9].(*array.StringBuilder).Append(string(l.LStatus))
	f[10].(*array.Date32Builder).Append(b.date(l.SDate))
	f[11].(*array.Date32Builder).Append(b.date(l.CDate))
	f[12].(*array.Date32Builder).Append(b.date(l.RDate))
	f[13].(*array.StringBuilder).Append(l.ShipInstruct)
	f[14].(*array.StringBuilder).Append(l.ShipMode)
	f[15].(*array.StringBuilder).Append(l.Comment)
	b.n++
	if b.n >= b.limit {
		return b.flush()
	}
	return nil
}

func (b *builder) flush() error {
	if b.n == 0 {
		return nil
	}
	rec := b.rb.NewRecordBatch()
	defer rec.Release()
	b.n = 0
	return b.fn(rec)
}

// Generator produces lineitem batches of about batchRows rows; see
// DbGen and SyntheticGen.
type Generator func(batchRows int, fn func(arrow.RecordBatch) error) error

// DbGen is the generator of dbgen's lineitem at scale factor sf
// (maxOrders as in Lineitem).
func DbGen(sf, maxOrders int) Generator {
	return func(batchRows int, fn func(arrow.RecordBatch) error) error {
		return Lineitem(sf, maxOrders, batchRows, fn)
	}
}

// SyntheticGen is the generator of Synthetic rows.
func SyntheticGen(rows int, seed uint64) Generator {
	return func(batchRows int, fn func(arrow.RecordBatch) error) error {
		return Synthetic(rows, batchRows, seed, fn)
	}
}

// WriteParquet writes the generated lineitem rows to dir/lineitem.parquet
// with row groups of rowGroupRows rows, uncompressed (Snappy with
// compressed true). It returns the file's path.
func WriteParquet(dir string, gen Generator, rowGroupRows int, compressed bool) (string, error) {
	path := filepath.Join(dir, "lineitem.parquet")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	codec := compress.Codecs.Uncompressed
	if compressed {
		codec = compress.Codecs.Snappy
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(codec), parquet.WithMaxRowGroupLength(int64(rowGroupRows)))
	w, err := pqarrow.NewFileWriter(Schema, f, props, pqarrow.DefaultWriterProps())
	if err != nil {
		f.Close()
		return "", err
	}
	// Closing the writer closes f.
	err = gen(rowGroupRows, func(rec arrow.RecordBatch) error {
		return w.Write(rec)
	})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return path, nil
}

// WriteCSV writes the generated lineitem rows as CSV with a header line
// to w.
func WriteCSV(w io.Writer, gen Generator) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	for k, f := range Schema.Fields() {
		if k > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(f.Name)
	}
	bw.WriteByte('\n')
	var buf []byte
	err := gen(8192, func(rec arrow.RecordBatch) error {
		n := int(rec.NumRows())
		for r := 0; r < n; r++ {
			buf = buf[:0]
			for c := 0; c < int(rec.NumCols()); c++ {
				if c > 0 {
					buf = append(buf, ',')
				}
				switch a := rec.Column(c).(type) {
				case *array.Int64:
					buf = strconv.AppendInt(buf, a.Value(r), 10)
				case *array.Float64:
					buf = strconv.AppendFloat(buf, a.Value(r), 'f', -1, 64)
				case *array.String:
					v := a.Value(r)
					if strings.ContainsAny(v, ",\"\n") {
						buf = append(buf, '"')
						buf = append(buf, strings.ReplaceAll(v, `"`, `""`)...)
						buf = append(buf, '"')
					} else {
						buf = append(buf, v...)
					}
				case *array.Date32:
					buf = a.Value(r).ToTime().AppendFormat(buf, "2006-01-02")
				}
			}
			buf = append(buf, '\n')
			if _, err := bw.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// Synthetic makes rows lineitem-shaped rows quickly from seed, following
// the TPC-H rules for the columns Q1 and Q6 read (dates, flags, quantity,
// price, discount, tax) with uniform random draws. It is not dbgen: its
// answers are not the official ones. Tests use it because dbgen's start-up
// alone takes seconds.
func Synthetic(rows, batchRows int, seed uint64, fn func(arrow.RecordBatch) error) error {
	rng := rand.New(rand.NewPCG(seed, 0x7c))
	b := newBuilder(batchRows, fn)
	start := arrow.Date32FromTime(time.Date(1992, 1, 1, 0, 0, 0, 0, time.UTC))
	end := arrow.Date32FromTime(time.Date(1998, 8, 2, 0, 0, 0, 0, time.UTC))
	current := arrow.Date32FromTime(time.Date(1995, 6, 17, 0, 0, 0, 0, time.UTC))
	modes := []string{"REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"}
	instr := []string{"DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"}
	f := b.rb.Fields()
	for r := 0; r < rows; r++ {
		order := start + arrow.Date32(rng.IntN(int(end-start)))
		ship := order + arrow.Date32(1+rng.IntN(121))
		commit := order + arrow.Date32(30+rng.IntN(61))
		receipt := ship + arrow.Date32(1+rng.IntN(30))
		qty := 1 + rng.IntN(50)
		price := float64(90000+rng.IntN(110000)) / 100
		flag := "N"
		if receipt <= current {
			flag = []string{"R", "A"}[rng.IntN(2)]
		}
		status := "F"
		if ship > current {
			status = "O"
		}
		f[0].(*array.Int64Builder).Append(int64(r/4 + 1))
		f[1].(*array.Int64Builder).Append(int64(1 + rng.IntN(200000)))
		f[2].(*array.Int64Builder).Append(int64(1 + rng.IntN(10000)))
		f[3].(*array.Int64Builder).Append(int64(r%4 + 1))
		f[4].(*array.Float64Builder).Append(float64(qty))
		f[5].(*array.Float64Builder).Append(math.Round(float64(qty)*price*100) / 100)
		f[6].(*array.Float64Builder).Append(float64(rng.IntN(11)) / 100)
		f[7].(*array.Float64Builder).Append(float64(rng.IntN(9)) / 100)
		f[8].(*array.StringBuilder).Append(flag)
		f[9].(*array.StringBuilder).Append(status)
		f[10].(*array.Date32Builder).Append(ship)
		f[11].(*array.Date32Builder).Append(commit)
		f[12].(*array.Date32Builder).Append(receipt)
		f[13].(*array.StringBuilder).Append(instr[rng.IntN(len(instr))])
		f[14].(*array.StringBuilder).Append(modes[rng.IntN(len(modes))])
		f[15].(*array.StringBuilder).Append("synthetic row")
		b.n++
		if b.n >= b.limit {
			if err := b.flush(); err != nil {
				return err
			}
		}
	}
	return b.flush()
}
