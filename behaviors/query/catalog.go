package query

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowcsv "github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// DefaultBatchRows is the number of rows per batch a scan produces.
const DefaultBatchRows = 64 * 1024

// Table is a registered relation: a schema and the partitions it is split
// into. Partitions are the unit of parallelism and of distribution: each is
// scanned by one goroutine or one executor.
type Table interface {
	// Schema is the table's Arrow schema, as the files store it.
	Schema() *arrow.Schema
	// Partitions lists the table's partitions. The list must be the same on
	// every node that registers the same table, since executors are told
	// which partitions to scan by their index.
	Partitions() []Partition
}

// Partition is one independently scannable piece of a table.
type Partition interface {
	// Scan reads the columns cols (indexes into the table's schema, in that
	// order) and calls emit for each batch of at most batchRows rows. The
	// batch is only valid during the call.
	Scan(ctx context.Context, cols []int, batchRows int, emit func(arrow.RecordBatch) error) error
	// String describes the partition (file, byte range or row group).
	String() string
}

// Catalog is a set of named tables. It is safe for concurrent use. Names are
// case-insensitive.
type Catalog struct {
	mu     sync.RWMutex
	tables map[string]Table
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog { return &Catalog{tables: map[string]Table{}} }

// Register adds (or replaces) a table.
func (c *Catalog) Register(name string, t Table) error {
	if name == "" {
		return errors.New("query: empty table name")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tables[strings.ToLower(name)] = t
	return nil
}

// Table returns the table registered under name.
func (c *Catalog) Table(name string) (Table, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.tables[strings.ToLower(name)]
	return t, ok
}

// Tables lists the registered table names in sorted order.
func (c *Catalog) Tables() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.tables))
	for n := range c.tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ---- in-memory tables ----

// MemTable is a table held in memory as record batches; each batch is one
// partition.
type MemTable struct {
	schema  *arrow.Schema
	batches []arrow.RecordBatch
}

// NewMemTable makes a table of the given batches, which must all have the
// given schema. The table keeps a reference to each batch.
func NewMemTable(schema *arrow.Schema, batches []arrow.RecordBatch) (*MemTable, error) {
	for i, b := range batches {
		if !b.Schema().Equal(schema) {
			return nil, fmt.Errorf("query: batch %d has schema %s, want %s", i, b.Schema(), schema)
		}
		b.Retain()
	}
	return &MemTable{schema: schema, batches: batches}, nil
}

// Schema implements Table.
func (m *MemTable) Schema() *arrow.Schema { return m.schema }

// Partitions implements Table: one partition per batch.
func (m *MemTable) Partitions() []Partition {
	ps := make([]Partition, len(m.batches))
	for i, b := range m.batches {
		ps[i] = memPartition{i: i, b: b}
	}
	return ps
}

type memPartition struct {
	i int
	b arrow.RecordBatch
}

func (p memPartition) String() string { return fmt.Sprintf("batch %d", p.i) }

func (p memPartition) Scan(ctx context.Context, cols []int, batchRows int, emit func(arrow.RecordBatch) error) error {
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	for k, c := range cols {
		fields[k] = p.b.Schema().Field(c)
		arrs[k] = p.b.Column(c)
	}
	schema := arrow.NewSchema(fields, nil)
	n := p.b.NumRows()
	for off := int64(0); off < n || (n == 0 && off == 0); off += int64(batchRows) {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(off+int64(batchRows), n)
		sl := make([]arrow.Array, len(arrs))
		for k, a := range arrs {
			sl[k] = array.NewSlice(a, off, end)
		}
		rec := array.NewRecordBatch(schema, sl, end-off)
		for _, a := range sl {
			a.Release()
		}
		err := emit(rec)
		rec.Release()
		if err != nil || n == 0 {
			return err
		}
	}
	return nil
}

// ---- CSV ----

// CSVOptions configures a CSV table.
//
// Files are read as RFC 4180 text, as encoding/csv reads it: a field that
// starts with a double quote may hold the delimiter, line breaks and
// doubled double quotes; CRLF and LF line ends; empty lines are skipped;
// every record has one field per column. An empty field is NULL. Values
// are read as strconv.ParseInt (BIGINT), strconv.ParseFloat (DOUBLE),
// strconv.ParseBool (BOOLEAN) and YYYY-MM-DD (DATE) read them. A value
// that does not convert, a record with the wrong number of fields or a
// broken quote fails the scan with an error that names the file, the line
// (or its byte offset, in a byte range after the first), the column and
// the value. Columns of those five types are decoded straight from the
// file's bytes, and only those the query reads; other Arrow column types
// and delimiters of more than one byte are read through arrow-go's CSV
// reader.
type CSVOptions struct {
	// Schema gives the columns and their types. When nil, the header names
	// the columns and the types are inferred from the first InferRows rows.
	Schema *arrow.Schema
	// Header says that the first line of each file is a header (default
	// true when Schema is nil; set NoHeader to read headerless files).
	NoHeader bool
	// Comma is the field delimiter (default ',').
	Comma rune
	// InferRows is how many data rows type inference samples (default
	// 10000). A column is BIGINT if every sampled value is an integer,
	// DOUBLE if every one is a number, DATE if every one is YYYY-MM-DD,
	// BOOLEAN if every one is true or false, and VARCHAR otherwise; empty
	// values are NULL and do not vote.
	InferRows int
	// PartitionBytes splits files into byte ranges of about this size, each
	// a partition (default 64 MiB; negative: one partition per file). Byte
	// ranges are cut at line ends, so quoted fields must not contain line
	// breaks when a file is split: a scan that meets one fails (a file
	// read whole allows them).
	PartitionBytes int64
}

// CSVTable is a table over one or more CSV files with the same layout.
type CSVTable struct {
	schema *arrow.Schema
	parts  []Partition
}

// NewCSVTable opens the CSV files named by path: a file, a directory (every
// *.csv file in it, sorted by name) or a glob pattern.
func NewCSVTable(path string, opts CSVOptions) (*CSVTable, error) {
	files, err := listFiles(path, ".csv")
	if err != nil {
		return nil, err
	}
	if opts.Comma == 0 {
		opts.Comma = ','
	}
	if !validCSVDelim(opts.Comma) {
		return nil, fmt.Errorf("query: csv %s: %q cannot be the field delimiter", path, opts.Comma)
	}
	if opts.InferRows <= 0 {
		opts.InferRows = 10000
	}
	if opts.PartitionBytes == 0 {
		opts.PartitionBytes = 64 << 20
	}
	schema := opts.Schema
	if schema == nil {
		schema, err = inferCSV(files[0], opts)
		if err != nil {
			return nil, err
		}
	}
	for _, f := range schema.Fields() {
		if _, ok := typeOfArrow(f.Type); !ok || f.Type.ID() == arrow.NULL {
			return nil, fmt.Errorf("query: csv %s: unsupported: column %q of type %s", path, f.Name, f.Type)
		}
	}
	t := &CSVTable{schema: schema}
	for _, name := range files {
		st, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("query: csv: %w", err)
		}
		size := st.Size()
		step := opts.PartitionBytes
		if step < 0 || step > size {
			step = max(size, 1)
		}
		for start := int64(0); start < size || start == 0; start += step {
			end := min(start+step, size)
			t.parts = append(t.parts, &csvPartition{file: name, start: start, end: end, schema: schema, opts: opts})
			if size == 0 {
				break
			}
		}
	}
	return t, nil
}

// Schema implements Table.
func (t *CSVTable) Schema() *arrow.Schema { return t.schema }

// Partitions implements Table.
func (t *CSVTable) Partitions() []Partition { return t.parts }

func listFiles(path, ext string) ([]string, error) {
	st, err := os.Stat(path)
	var files []string
	switch {
	case err == nil && st.IsDir():
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		for _, e := range ents {
			if !e.IsDir() && strings.HasSuffix(strings.ToLower(e.Name()), ext) {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	case err == nil:
		files = []string{path}
	default:
		files, _ = filepath.Glob(path)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("query: no %s files at %s", ext, path)
	}
	sort.Strings(files)
	return files, nil
}

func inferCSV(name string, opts CSVOptions) (*arrow.Schema, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("query: csv: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.Comma = opts.Comma
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	var names []string
	first, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("query: csv %s: reading the first line: %w", name, err)
	}
	if opts.NoHeader {
		for k := range first {
			names = append(names, fmt.Sprintf("column%d", k+1))
		}
	} else {
		names = append(names, first...)
		first = nil
	}
	const (
		canInt = 1 << iota
		canFloat
		canDate
		canBool
	)
	state := make([]int, len(names))
	seen := make([]bool, len(names))
	for k := range state {
		state[k] = canInt | canFloat | canDate | canBool
	}
	vote := func(rec []string) {
		for k := 0; k < len(rec) && k < len(names); k++ {
			s := rec[k]
			if s == "" {
				continue
			}
			seen[k] = true
			if state[k]&canInt != 0 {
				if _, err := strconv.ParseInt(s, 10, 64); err != nil {
					state[k] &^= canInt
				}
			}
			if state[k]&canFloat != 0 {
				if _, err := strconv.ParseFloat(s, 64); err != nil {
					state[k] &^= canFloat
				}
			}
			if state[k]&canDate != 0 {
				if _, ok := parseDate(s); !ok {
					state[k] &^= canDate
				}
			}
			if state[k]&canBool != 0 {
				if l := strings.ToLower(s); l != "true" && l != "false" {
					state[k] &^= canBool
				}
			}
		}
	}
	if first != nil {
		vote(first)
	}
	for n := 0; n < opts.InferRows; n++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("query: csv %s: %w", name, err)
		}
		vote(rec)
	}
	fields := make([]arrow.Field, len(names))
	for k, n := range names {
		var dt arrow.DataType = arrow.BinaryTypes.String
		switch {
		case !seen[k]:
		case state[k]&canInt != 0:
			dt = arrow.PrimitiveTypes.Int64
		case state[k]&canFloat != 0:
			dt = arrow.PrimitiveTypes.Float64
		case state[k]&canDate != 0:
			dt = arrow.FixedWidthTypes.Date32
		case state[k]&canBool != 0:
			dt = arrow.FixedWidthTypes.Boolean
		}
		fields[k] = arrow.Field{Name: n, Type: dt, Nullable: true}
	}
	return arrow.NewSchema(fields, nil), nil
}

type csvPartition struct {
	file       string
	start, end int64
	schema     *arrow.Schema
	opts       CSVOptions
}

func (p *csvPartition) String() string {
	return fmt.Sprintf("%s[%d:%d]", filepath.Base(p.file), p.start, p.end)
}

// scanArrowGo reads the partition through arrow-go's CSV reader (which
// sits on encoding/csv). Scan uses it for what the direct decoder
// (csvscan.go) does not read: column types other than BIGINT, DOUBLE,
// DATE, BOOLEAN and VARCHAR, and delimiters that are not one byte. Tests
// use it as the reference the direct decoder must agree with.
func (p *csvPartition) scanArrowGo(ctx context.Context, cols []int, batchRows int, emit func(arrow.RecordBatch) error) error {
	f, err := os.Open(p.file)
	if err != nil {
		return fmt.Errorf("query: csv: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, int(min(max(p.end-p.start, 0)+4096, 1<<20)))
	pos := p.start
	if p.start > 0 {
		if _, err := f.Seek(p.start-1, io.SeekStart); err != nil {
			return fmt.Errorf("query: csv: %w", err)
		}
		br.Reset(f)
		// Skip the line that started before this range: it belongs to the
		// previous partition. Starting one byte early makes a range that
		// begins exactly at a line start keep that line.
		skipped, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			var more []byte
			more, err = br.ReadSlice('\n')
			skipped = append(skipped[:len(skipped):len(skipped)], more...)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("query: csv: %w", err)
		}
		pos = p.start - 1 + int64(len(skipped))
	}
	if p.start == 0 && !p.opts.NoHeader {
		// Drop the file's header: the reader gets one made from the schema,
		// so that every partition names the columns the same way.
		line, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			var more []byte
			more, err = br.ReadSlice('\n')
			line = append(line[:len(line):len(line)], more...)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("query: csv: %w", err)
		}
		pos += int64(len(line))
	}
	if pos >= p.end {
		return nil // no line starts in this range
	}
	if _, err := br.Peek(1); err == io.EOF {
		return nil // arrow's CSV reader fails on a header with no rows
	}
	lr := &lineRangeReader{r: br, pos: pos, end: p.end}
	var header strings.Builder
	types := map[string]arrow.DataType{}
	for k, f := range p.schema.Fields() {
		if k > 0 {
			header.WriteRune(p.opts.Comma)
		}
		header.WriteString(csvQuote(f.Name, p.opts.Comma))
		types[f.Name] = f.Type
	}
	header.WriteByte('\n')
	names := make([]string, len(cols))
	for k, c := range cols {
		names[k] = p.schema.Field(c).Name
	}
	include := names
	if len(cols) == 0 {
		// COUNT(*) only: read the first column, as text so that no value
		// can fail to convert (counting rows checks only the layout).
		include = []string{p.schema.Field(0).Name}
		types[include[0]] = arrow.BinaryTypes.String
	}
	rd := arrowcsv.NewInferringReader(io.MultiReader(strings.NewReader(header.String()), lr),
		arrowcsv.WithComma(p.opts.Comma),
		arrowcsv.WithHeader(true),
		arrowcsv.WithChunk(batchRows),
		arrowcsv.WithNullReader(true, ""),
		arrowcsv.WithAllocator(memory.DefaultAllocator),
		arrowcsv.WithColumnTypes(types),
		arrowcsv.WithIncludeColumns(include),
	)
	defer rd.Release()
	out := arrow.NewSchema(func() []arrow.Field {
		fs := make([]arrow.Field, len(cols))
		for k, c := range cols {
			fs[k] = p.schema.Field(c)
		}
		return fs
	}(), nil)
	// arrow-go's reader dereferences a nil record builder when the first
	// record it reads fails or is not there (a range of empty lines): the
	// error is then in Err, and no record means no rows. A panic after the
	// first batch is an error, not the end of the rows.
	batches := 0
	var panicked error
	next := func() (ok bool) {
		defer func() {
			if r := recover(); r != nil {
				ok = false
				if batches > 0 {
					panicked = fmt.Errorf("query: csv %s: arrow-go's CSV reader failed: %v", p, r)
				}
			}
		}()
		return rd.Next()
	}
	for next() {
		batches++
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := rd.RecordBatch()
		// Put the columns in the order asked for.
		arrs := make([]arrow.Array, len(cols))
		for k, name := range names {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) == 0 {
				return fmt.Errorf("query: csv %s: column %q missing", p, name)
			}
			arrs[k] = rec.Column(idx[0])
		}
		batch := array.NewRecordBatch(out, arrs, rec.NumRows())
		err := emit(batch)
		batch.Release()
		if err != nil {
			return err
		}
	}
	if err := rd.Err(); err != nil {
		return fmt.Errorf("query: csv %s: %w", p, err)
	}
	return panicked
}

func csvQuote(s string, comma rune) string {
	if strings.ContainsRune(s, comma) || strings.ContainsAny(s, "\"\r\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// lineRangeReader passes bytes through until the end of the line that
// crosses end, so a partition reads exactly the lines that start inside its
// range: a line starting at end or later belongs to the next partition.
type lineRangeReader struct {
	r    *bufio.Reader
	pos  int64
	end  int64
	last byte
	rest []byte
	done bool
}

func (l *lineRangeReader) Read(b []byte) (int, error) {
	if len(l.rest) > 0 {
		n := copy(b, l.rest)
		l.rest = l.rest[n:]
		return n, nil
	}
	if l.done {
		return 0, io.EOF
	}
	if l.pos < l.end {
		lim := min(int64(len(b)), l.end-l.pos)
		n, err := l.r.Read(b[:lim])
		if n > 0 {
			l.last = b[n-1]
		}
		l.pos += int64(n)
		return n, err
	}
	if l.pos == 0 || l.last == '\n' {
		l.done = true
		return 0, io.EOF
	}
	line, err := l.r.ReadSlice('\n')
	switch err {
	case nil, io.EOF:
		l.done = true
	case bufio.ErrBufferFull:
	default:
		return 0, err
	}
	if len(line) > 0 {
		l.last = line[len(line)-1]
	}
	l.pos += int64(len(line))
	l.rest = append(l.rest[:0], line...)
	n := copy(b, l.rest)
	l.rest = l.rest[n:]
	if n == 0 && l.done {
		return 0, io.EOF
	}
	return n, nil
}

// ---- Parquet ----

// ParquetTable is a table over one Parquet file or a directory of them;
// each row group is a partition. Scans read only the projected columns.
type ParquetTable struct {
	schema *arrow.Schema
	parts  []Partition
}

// NewParquetTable opens the Parquet files named by path: a file, a
// directory (every *.parquet file in it, sorted by name) or a glob pattern.
// All files must have the same schema.
func NewParquetTable(path string) (*ParquetTable, error) {
	files, err := listFiles(path, ".parquet")
	if err != nil {
		return nil, err
	}
	t := &ParquetTable{}
	for _, name := range files {
		pf, err := file.OpenParquetFile(name, false)
		if err != nil {
			return nil, fmt.Errorf("query: parquet %s: %w", name, err)
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			pf.Close()
			return nil, fmt.Errorf("query: parquet %s: %w", name, err)
		}
		s, err := fr.Schema()
		if err != nil {
			pf.Close()
			return nil, fmt.Errorf("query: parquet %s: %w", name, err)
		}
		if t.schema == nil {
			t.schema = s
		} else if !t.schema.Equal(s) {
			pf.Close()
			return nil, fmt.Errorf("query: parquet %s: schema %s differs from %s", name, s, t.schema)
		}
		for _, f := range s.Fields() {
			if f.Type.ID() == arrow.STRUCT || f.Type.ID() == arrow.LIST || f.Type.ID() == arrow.MAP {
				pf.Close()
				return nil, fmt.Errorf("query: parquet %s: unsupported: nested column %q", name, f.Name)
			}
		}
		st, err := os.Stat(name)
		if err != nil {
			pf.Close()
			return nil, fmt.Errorf("query: parquet %s: %w", name, err)
		}
		meta := &parquetMeta{file: name, size: st.Size(), mtime: st.ModTime().UnixNano(), md: pf.MetaData()}
		for rg := 0; rg < pf.NumRowGroups(); rg++ {
			t.parts = append(t.parts, &parquetPartition{file: name, rowGroup: rg, meta: meta, fields: s.Fields()})
		}
		pf.Close()
	}
	return t, nil
}

// Schema implements Table.
func (t *ParquetTable) Schema() *arrow.Schema { return t.schema }

// Partitions implements Table: one per row group.
func (t *ParquetTable) Partitions() []Partition { return t.parts }

type parquetPartition struct {
	file     string
	rowGroup int
	meta     *parquetMeta
	fields   []arrow.Field // the table's columns
}

// parquetMeta is a file's footer, parsed once when the table is made and
// used while the file keeps its size and modification time, so that a
// scan of one row group does not parse the footer of every row group.
type parquetMeta struct {
	file  string
	mu    sync.Mutex
	size  int64
	mtime int64
	md    *metadata.FileMetaData
}

// open opens the partition's file, reusing the parsed footer when the
// file has not changed since it was parsed.
func (p *parquetPartition) open(opts ...file.ReadOption) (*file.Reader, error) {
	m := p.meta
	if m == nil {
		pf, err := file.OpenParquetFile(p.file, false, opts...)
		if err != nil {
			return nil, fmt.Errorf("query: parquet %s: %w", p.file, err)
		}
		return pf, nil
	}
	st, err := os.Stat(p.file)
	if err != nil {
		return nil, fmt.Errorf("query: parquet %s: %w", p.file, err)
	}
	m.mu.Lock()
	md := m.md
	if st.Size() != m.size || st.ModTime().UnixNano() != m.mtime {
		md = nil
	}
	m.mu.Unlock()
	if md != nil {
		pf, err := file.OpenParquetFile(p.file, false, append(opts, file.WithMetadata(md))...)
		if err != nil {
			return nil, fmt.Errorf("query: parquet %s: %w", p.file, err)
		}
		return pf, nil
	}
	pf, err := file.OpenParquetFile(p.file, false, opts...)
	if err != nil {
		return nil, fmt.Errorf("query: parquet %s: %w", p.file, err)
	}
	m.mu.Lock()
	m.md, m.size, m.mtime = pf.MetaData(), st.Size(), st.ModTime().UnixNano()
	m.mu.Unlock()
	return pf, nil
}

// scanArrow reads through pqarrow and converts each batch.
func (p *parquetPartition) scanArrow(ctx context.Context, cols []int, types []Type, batchRows int, emit func(*batch) error) error {
	return p.Scan(ctx, cols, batchRows, func(rec arrow.RecordBatch) error {
		b, err := batchFromRecord(rec, types)
		if err != nil {
			return err
		}
		return emit(b)
	})
}

func (p *parquetPartition) String() string {
	return fmt.Sprintf("%s#rg%d", filepath.Base(p.file), p.rowGroup)
}

func (p *parquetPartition) Scan(ctx context.Context, cols []int, batchRows int, emit func(arrow.RecordBatch) error) error {
	pf, err := p.open()
	if err != nil {
		return err
	}
	defer pf.Close()
	if p.rowGroup >= pf.NumRowGroups() {
		return fmt.Errorf("query: parquet %s: row group %d missing", p, p.rowGroup)
	}
	if len(cols) == 0 {
		// COUNT(*) only: the row group's row count is in the metadata.
		n := pf.MetaData().RowGroup(p.rowGroup).NumRows()
		for off := int64(0); off < n; off += int64(batchRows) {
			rec := array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, min(int64(batchRows), n-off))
			err := emit(rec)
			rec.Release()
			if err != nil {
				return err
			}
		}
		return nil
	}
	props := pqarrow.ArrowReadProperties{BatchSize: int64(batchRows)}
	// Read string columns as dictionaries: TPC-H-like files store them
	// dictionary-encoded, and decoding the indices is far cheaper than
	// building a string array value by value.
	for _, c := range cols {
		if f := pf.MetaData().Schema.Column(c); f.PhysicalType() == parquet.Types.ByteArray {
			props.SetReadDict(c, true)
		}
	}
	fr, err := pqarrow.NewFileReader(pf, props, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("query: parquet %s: %w", p.file, err)
	}
	rr, err := fr.GetRecordReader(ctx, cols, []int{p.rowGroup})
	if err != nil {
		return fmt.Errorf("query: parquet %s: %w", p, err)
	}
	defer rr.Release()
	for rr.Next() {
		if err := emit(rr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && err != io.EOF {
		return fmt.Errorf("query: parquet %s: %w", p, err)
	}
	return nil
}
