package query

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// This file decodes CSV byte ranges straight into the engine's vectors
// (scanVecs) or into Arrow arrays (Scan). It splits lines and fields in
// the read buffer, converts only the projected columns, from bytes, and
// skips the others without copying them; VARCHAR values are copied once
// into one buffer per batch. It reads what arrow-go's CSV reader (on
// encoding/csv) reads and fails where that reader fails, so both give the
// same rows:
//
//   - RFC 4180 quoting: a field that starts with a double quote runs to
//     the next lone double quote, and "" inside it is one double quote; a
//     double quote anywhere else in a field, or text after a closing
//     quote, is an error.
//   - CRLF line ends are LF line ends; a CR just before the end of the
//     file is dropped; empty lines are skipped; the last line may lack its
//     line end.
//   - An empty field (quoted or not) is NULL. BIGINT is strconv.ParseInt,
//     DOUBLE strconv.ParseFloat, BOOLEAN strconv.ParseBool and DATE
//     time.Parse("2006-01-02"); plain decimal numbers and dates are
//     converted directly with the same results, anything else goes
//     through those functions.
//   - A quoted field may hold line breaks only when the partition is the
//     whole file; in a byte range it is an error, since the ranges are
//     cut at line ends without looking at quotes.
//
// Errors name the file, the line (counted from the start of the file for
// a file's first partition, else given by its byte offset), the column
// and the value.

// csvDirectType is the engine type the direct decoder produces for an
// Arrow column type, or false when the column is read through arrow-go.
func csvDirectType(dt arrow.DataType) (Type, bool) {
	switch dt.ID() {
	case arrow.INT64:
		return Int64, true
	case arrow.FLOAT64:
		return Float64, true
	case arrow.DATE32:
		return Date, true
	case arrow.BOOL:
		return Bool, true
	case arrow.STRING:
		return String, true
	}
	return Null, false
}

// direct says whether the direct decoder reads the columns cols.
func (p *csvPartition) direct(cols []int) bool {
	if p.opts.Comma <= 0 || p.opts.Comma >= 0x80 || !validCSVDelim(p.opts.Comma) {
		return false
	}
	for _, c := range cols {
		if c < 0 || c >= p.schema.NumFields() {
			return false
		}
		if _, ok := csvDirectType(p.schema.Field(c).Type); !ok {
			return false
		}
	}
	return true
}

// validCSVDelim is encoding/csv's rule for a field delimiter.
func validCSVDelim(r rune) bool {
	return r != 0 && r != '"' && r != '\r' && r != '\n' && utf8.ValidRune(r) && r != utf8.RuneError
}

// Scan implements Partition.
func (p *csvPartition) Scan(ctx context.Context, cols []int, batchRows int, emit func(arrow.RecordBatch) error) error {
	if !p.direct(cols) {
		return p.scanArrowGo(ctx, cols, batchRows, emit)
	}
	fields := make([]arrow.Field, len(cols))
	for k, c := range cols {
		fields[k] = p.schema.Field(c)
	}
	out := arrow.NewSchema(fields, nil)
	return p.decode(ctx, cols, batchRows, false, func(d *csvDecoder, n int) error {
		arrs := make([]arrow.Array, len(cols))
		for k, c := range d.cols {
			arrs[k] = c.toArrow(n)
		}
		rec := array.NewRecordBatch(out, arrs, int64(n))
		for _, a := range arrs {
			a.Release()
		}
		err := emit(rec)
		rec.Release()
		return err
	})
}

// scanVecs implements vecScanner.
func (p *csvPartition) scanVecs(ctx context.Context, cols []int, types []Type, batchRows int, reuse bool, emit func(*batch) error) error {
	ok := p.direct(cols) && len(types) == len(cols)
	for k := 0; ok && k < len(cols); k++ {
		t, _ := csvDirectType(p.schema.Field(cols[k]).Type)
		ok = t == types[k]
	}
	if !ok {
		return p.scanArrowGo(ctx, cols, batchRows, func(rec arrow.RecordBatch) error {
			b, err := batchFromRecord(rec, types)
			if err != nil {
				return err
			}
			return emit(b)
		})
	}
	vecs := make([]vec, len(cols))
	return p.decode(ctx, cols, batchRows, reuse, func(d *csvDecoder, n int) error {
		b := &batch{n: n, cols: make([]*vec, len(cols))}
		if !reuse {
			vecs = make([]vec, len(cols))
		}
		for k, c := range d.cols {
			c.toVec(&vecs[k], n, reuse)
			b.cols[k] = &vecs[k]
		}
		return emit(b)
	})
}

// decode runs the direct decoder over the partition and calls batch once
// each batch of rows is in d.cols. With reuse, the columns' buffers are
// written again for the next batch (string bytes never are).
func (p *csvPartition) decode(ctx context.Context, cols []int, batchRows int, reuse bool, batch func(d *csvDecoder, n int) error) error {
	if batchRows <= 0 {
		batchRows = DefaultBatchRows
	}
	f, err := os.Open(p.file)
	if err != nil {
		return fmt.Errorf("query: csv: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("query: csv: %w", err)
	}
	d := newCSVDecoder(p, f, cols, st.Size())
	if err := d.begin(); err != nil {
		return err
	}
	for !d.done {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.reset(batchRows, !reuse)
		n, err := d.fill(batchRows)
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		if err := batch(d, n); err != nil {
			return err
		}
	}
	return nil
}

// ---- the decoder ----

const (
	csvReadSize = 1 << 20
	// csvMaxBatchBytes ends a batch early once a VARCHAR column holds
	// this many bytes (Arrow string offsets are 32-bit).
	csvMaxBatchBytes = 1 << 30
)

// errCSVMore says a record runs past the data read so far.
var errCSVMore = errors.New("query: csv: record continues past the buffer")

type csvDecoder struct {
	p     *csvPartition
	f     *os.File
	comma byte
	nf    int     // fields per record
	slot  []int32 // slot[field] is the output column of the file's field, or -1
	last  int     // the last projected field, -1 when none is
	// whole says the partition is the whole file: quoted fields may then
	// hold line breaks.
	whole bool
	end   int64 // records that start at or after end belong to the next partition

	buf     []byte
	r, w    int   // unread data is buf[r:w]
	base    int64 // file offset of buf[0]
	eof     bool  // nothing is left to read past buf[w]
	readErr error
	done    bool // the partition's last record is decoded
	full    bool // a VARCHAR column of the batch reached csvMaxBatchBytes

	line      int64 // line number of buf[r], counted from the partition's first line
	lineKnown bool  // line counts from the file's first line

	cols   []*csvCol // one per projected column; a column asked for twice shares one
	unique []*csvCol

	fs, fe []int // split: where the record's fields are in buf

	// a quoted record's fields, unescaped
	qbuf  []byte
	qends []int
}

// csvCol collects one projected column of a batch.
type csvCol struct {
	t       Type
	dt      arrow.DataType
	name    string
	rows    int // the batch's capacity
	i       []int64
	f       []float64
	b       []bool
	null    []bool // valid when hasNull
	hasNull bool
	data    []byte  // String: the values' bytes, new for every batch
	offs    []int32 // String: row k is data[offs[k]:offs[k+1]]
	s       []string
	hint    int // String: bytes of the previous batch
}

func newCSVDecoder(p *csvPartition, f *os.File, cols []int, size int64) *csvDecoder {
	nf := p.schema.NumFields()
	d := &csvDecoder{
		p:     p,
		f:     f,
		comma: byte(p.opts.Comma),
		nf:    nf,
		slot:  make([]int32, nf),
		last:  -1,
		whole: p.start == 0 && p.end >= size,
		end:   p.end,
		cols:  make([]*csvCol, len(cols)),
		fs:    make([]int, nf),
		fe:    make([]int, nf),
	}
	if d.whole {
		// Read to the end of the file, as arrow-go's reader does for a
		// partition covering it, even if the file grew.
		d.end = 1<<63 - 1
	}
	for k := range d.slot {
		d.slot[k] = -1
	}
	for k, c := range cols {
		if s := d.slot[c]; s >= 0 {
			d.cols[k] = d.cols[s]
			continue
		}
		fl := p.schema.Field(c)
		t, _ := csvDirectType(fl.Type)
		d.cols[k] = &csvCol{t: t, dt: fl.Type, name: fl.Name}
		d.unique = append(d.unique, d.cols[k])
		d.slot[c] = int32(k)
		d.last = max(d.last, c)
	}
	return d
}

// begin positions the decoder at the partition's first line.
func (d *csvDecoder) begin() error {
	p := d.p
	// Read the range in pieces of up to csvReadSize; the buffer grows if
	// a record is longer.
	d.buf = make([]byte, min(max(p.end-p.start, 0)+4096, csvReadSize))
	d.base = max(p.start-1, 0)
	d.lineKnown = p.start == 0
	d.line = 1
	if p.start > 0 {
		// The line that started before this range belongs to the previous
		// partition. Starting one byte early makes a range that begins
		// exactly at a line start keep that line.
		if !d.skipLine() {
			d.done = true
			return d.readErr
		}
	}
	if p.start == 0 && !p.opts.NoHeader {
		if !d.skipLine() {
			d.done = true
			return d.readErr
		}
		d.line++
	}
	return nil
}

// skipLine moves past the next '\n'. It returns false when the file ends
// first or on a read error.
func (d *csvDecoder) skipLine() bool {
	for {
		if i := bytes.IndexByte(d.buf[d.r:d.w], '\n'); i >= 0 {
			d.r += i + 1
			return true
		}
		d.r = d.w
		if !d.more() {
			return false
		}
	}
}

// more reads more of the file after buf[w], keeping buf[r:w]. It returns
// false when nothing more was read (d.eof or d.readErr say why).
func (d *csvDecoder) more() bool {
	if d.eof || d.readErr != nil {
		return false
	}
	if d.r > 0 {
		n := copy(d.buf, d.buf[d.r:d.w])
		d.base += int64(d.r)
		d.r, d.w = 0, n
	}
	if d.w == len(d.buf) {
		nb := make([]byte, 2*len(d.buf))
		copy(nb, d.buf[:d.w])
		d.buf = nb
	}
	n, err := d.f.ReadAt(d.buf[d.w:], d.base+int64(d.w))
	d.w += n
	if err == io.EOF {
		d.eof = true
	} else if err != nil {
		d.readErr = fmt.Errorf("query: csv %s: %w", d.p.file, err)
	}
	return n > 0
}

// reset readies the columns for a batch of up to n rows; fresh gives them
// new buffers instead of writing over the last batch's.
func (d *csvDecoder) reset(n int, fresh bool) {
	d.full = false
	for _, c := range d.unique {
		c.rows = n
		switch c.t {
		case Int64, Date:
			if fresh || len(c.i) < n {
				c.i = make([]int64, n)
			}
		case Float64:
			if fresh || len(c.f) < n {
				c.f = make([]float64, n)
			}
		case Bool:
			if fresh || len(c.b) < n {
				c.b = make([]bool, n)
			}
		case String:
			if fresh || len(c.offs) < n+1 {
				c.offs = make([]int32, n+1)
			}
			c.data = make([]byte, 0, max(c.hint+c.hint/8, 4096))
		}
		if fresh || len(c.null) < n {
			c.null = nil
		} else if c.hasNull {
			clear(c.null)
		}
		c.hasNull = false
	}
}

// fill decodes up to n records into the columns and returns how many it
// decoded. It sets d.done after the partition's last record.
func (d *csvDecoder) fill(n int) (int, error) {
	row := 0
	for row < n && !d.full {
		if d.base+int64(d.r) >= d.end {
			d.done = true
			break
		}
		nf, next, st := d.split()
		switch st {
		case splitMore:
			if !d.more() && d.readErr != nil {
				return row, d.readErr
			}
			continue
		case splitEnd:
			d.done = true
		case splitEmpty:
			d.r = next
			d.line++
			continue
		case splitSlow:
			if err := d.quoted(row); err != nil {
				return row, err
			}
			row++
			continue
		case splitOK:
			if nf != d.nf {
				return row, d.errf("%d fields, want %d", nf, d.nf)
			}
			buf, fs, fe := d.buf, d.fs, d.fe
			for fi := 0; fi <= d.last; fi++ {
				if s := d.slot[fi]; s >= 0 {
					v := buf[fs[fi]:fe[fi]]
					if err := d.put(d.cols[s], row, v); err != nil {
						return row, d.valueErr(fi, v, err)
					}
				}
			}
			d.r = next
			d.line++
			row++
			continue
		}
		break
	}
	for _, c := range d.unique {
		if c.t == String {
			c.hint = len(c.data)
		}
	}
	return row, nil
}

// What split found at buf[r].
const (
	splitOK    = iota // a record of one line, its fields in fs and fe
	splitEmpty        // an empty line, to skip
	splitEnd          // the end of the file
	splitMore         // the buffer ends inside the record
	splitSlow         // a record tokenize must read: quotes other than around whole fields, "" or line breaks inside quotes
)

const (
	swarOnes = 0x0101010101010101
	swarLow7 = 0x7f7f7f7f7f7f7f7f
)

// zeroBytes has the top bit of each byte of x that is zero set, and no
// other bit.
func zeroBytes(x uint64) uint64 {
	return ^((x&swarLow7 + swarLow7) | x | swarLow7)
}

// split finds the fields of the record at buf[r] when it is one line and
// any quoted field in it is plain ("text", without "" or line breaks):
// field k is buf[fs[k]:fe[k]]. It looks at eight bytes at a time for the
// delimiter, double quotes and line ends. It returns the number of
// fields (fs and fe hold the first nf of them), where the next record
// starts and what it found.
func (d *csvDecoder) split() (nf int, next int, st int) {
	buf, w := d.buf, d.w
	if d.r >= w {
		if d.eof {
			return 0, 0, splitEnd
		}
		return 0, 0, splitMore
	}
	comma := d.comma
	mc, mq, mn := uint64(comma)*swarOnes, uint64('"')*swarOnes, uint64('\n')*swarOnes
	fs, fe := d.fs, d.fe
	p, from := d.r, d.r // next byte to look at; start of the current field
	var x uint64
	for {
		if p+8 <= w {
			x = binary.LittleEndian.Uint64(buf[p:])
		} else {
			if !d.eof {
				return 0, 0, splitMore
			}
			if p >= w {
				// The last line, without a line end: a CR before the
				// end of the file is dropped.
				end := w
				if end > from && buf[end-1] == '\r' {
					end--
				}
				if nf == 0 && end == from {
					return 0, w, splitEmpty
				}
				if nf < len(fs) {
					fs[nf], fe[nf] = from, end
				}
				return nf + 1, w, splitOK
			}
			var tail [8]byte
			copy(tail[:], buf[p:w])
			x = binary.LittleEndian.Uint64(tail[:])
		}
		mcomma := zeroBytes(x ^ mc)
		other := zeroBytes(x^mq) | zeroBytes(x^mn)
		if other == 0 {
			// Only delimiters (or nothing) in these eight bytes.
			for mcomma != 0 {
				q := p + bits.TrailingZeros64(mcomma)>>3
				mcomma &= mcomma - 1
				if nf < len(fs) {
					fs[nf], fe[nf] = from, q
				}
				nf++
				from = q + 1
			}
			p += 8
			continue
		}
		m := mcomma | other
		jumped := false
	bits:
		for m != 0 {
			q := p + bits.TrailingZeros64(m)>>3
			m &= m - 1
			if q >= w {
				// Zero padding of the tail word is never a match.
				break
			}
			switch buf[q] {
			case comma:
				if nf < len(fs) {
					fs[nf], fe[nf] = from, q
				}
				nf++
				from = q + 1
			case '\n':
				end := q
				if end > from && buf[end-1] == '\r' {
					end--
				}
				if nf == 0 && end == from {
					return 0, q + 1, splitEmpty
				}
				if nf < len(fs) {
					fs[nf], fe[nf] = from, end
				}
				return nf + 1, q + 1, splitOK
			default: // '"'
				if q != from {
					return 0, 0, splitSlow // a quote inside an unquoted field
				}
				k := bytes.IndexByte(buf[q+1:w], '"')
				if k < 0 {
					if !d.eof {
						return 0, 0, splitMore
					}
					return 0, 0, splitSlow
				}
				closing := q + 1 + k
				if bytes.IndexByte(buf[q+1:closing], '\n') >= 0 {
					return 0, 0, splitSlow
				}
				if nf < len(fs) {
					fs[nf], fe[nf] = q+1, closing
				}
				after := closing + 1
				if after >= w || (buf[after] == '\r' && after+1 >= w) {
					if !d.eof {
						return 0, 0, splitMore
					}
					return nf + 1, w, splitOK
				}
				switch buf[after] {
				case comma:
					nf++
					from = after + 1
					p, jumped = from, true
					break bits
				case '\n':
					return nf + 1, after + 1, splitOK
				case '\r':
					if buf[after+1] == '\n' {
						return nf + 1, after + 2, splitOK
					}
				}
				return 0, 0, splitSlow
			}
		}
		if !jumped {
			p += 8
		}
	}
}

// quoted decodes the record at buf[r], which has double quotes, as
// record row.
func (d *csvDecoder) quoted(row int) error {
	for {
		n, lines, err := d.tokenize(d.buf[d.r:d.w])
		if err == errCSVMore {
			if !d.more() && d.readErr != nil {
				return d.readErr
			}
			continue
		}
		if err != nil {
			return err
		}
		if len(d.qends) != d.nf {
			return d.errf("%d fields, want %d", len(d.qends), d.nf)
		}
		from := 0
		for fi := 0; fi <= d.last; fi++ {
			v := d.qbuf[from:d.qends[fi]]
			from = d.qends[fi]
			if s := d.slot[fi]; s >= 0 {
				if err := d.put(d.cols[s], row, v); err != nil {
					return d.valueErr(fi, v, err)
				}
			}
		}
		d.r += n
		d.line += int64(lines)
		return nil
	}
}

// tokenize splits the record at the start of data into fields, as
// encoding/csv does, into d.qbuf and d.qends. It returns the bytes and
// lines the record takes, or errCSVMore when data ends inside it before
// the end of the file.
func (d *csvDecoder) tokenize(data []byte) (int, int, error) {
	d.qbuf, d.qends = d.qbuf[:0], d.qends[:0]
	comma := d.comma
	pos, lines := 0, 0
	// nextLine returns the next line without its line end (a CR before
	// the end of the file is dropped, as encoding/csv does), and whether
	// it had one.
	nextLine := func() (line []byte, nl bool, ok bool) {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			if !d.eof {
				return nil, false, false
			}
			line, pos = data[pos:], len(data)
		} else {
			line, nl = data[pos:pos+i], true
			pos += i + 1
		}
		if k := len(line) - 1; k >= 0 && line[k] == '\r' {
			line = line[:k]
		}
		lines++
		return line, nl, true
	}
	line, nl, ok := nextLine()
	if !ok {
		return 0, 0, errCSVMore
	}
	for fi := 0; ; fi++ {
		if len(line) == 0 || line[0] != '"' {
			i := bytes.IndexByte(line, comma)
			field := line
			if i >= 0 {
				field = line[:i]
			}
			if bytes.IndexByte(field, '"') >= 0 {
				return 0, 0, d.fieldErr(fi, lines, "a double quote inside an unquoted field %s (quote the whole field and double the quote)", showValue(field))
			}
			d.qbuf = append(d.qbuf, field...)
			d.qends = append(d.qends, len(d.qbuf))
			if i < 0 {
				return pos, lines, nil
			}
			line = line[i+1:]
			continue
		}
		startLine := lines
		line = line[1:]
		for {
			i := bytes.IndexByte(line, '"')
			if i < 0 {
				d.qbuf = append(d.qbuf, line...)
				if !nl {
					return 0, 0, d.fieldErr(fi, startLine, "quoted field not terminated before the end of the file")
				}
				if !d.whole {
					return 0, 0, d.fieldErr(fi, startLine, "quoted field not terminated on its line; line breaks in quoted fields need the whole file in one partition (CSVOptions.PartitionBytes < 0)")
				}
				d.qbuf = append(d.qbuf, '\n')
				if line, nl, ok = nextLine(); !ok {
					return 0, 0, errCSVMore
				}
				continue
			}
			d.qbuf = append(d.qbuf, line[:i]...)
			line = line[i+1:]
			if len(line) > 0 && line[0] == '"' {
				d.qbuf = append(d.qbuf, '"')
				line = line[1:]
				continue
			}
			d.qends = append(d.qends, len(d.qbuf))
			if len(line) == 0 {
				return pos, lines, nil
			}
			if line[0] != comma {
				return 0, 0, d.fieldErr(fi, lines, "text after the closing double quote of a quoted field: %s", showValue(line))
			}
			line = line[1:]
			break
		}
	}
}

// put converts field value v of the record row into column c.
func (d *csvDecoder) put(c *csvCol, row int, v []byte) error {
	if len(v) == 0 {
		c.setNull(row)
		return nil
	}
	switch c.t {
	case Int64:
		x, err := parseCSVInt(v)
		if err != nil {
			return err
		}
		c.i[row] = x
	case Float64:
		x, err := parseCSVFloat(v)
		if err != nil {
			return err
		}
		c.f[row] = x
	case Date:
		x, err := parseCSVDate(v)
		if err != nil {
			return err
		}
		c.i[row] = x
	case Bool:
		x, err := strconv.ParseBool(bytesString(v))
		if err != nil {
			return err
		}
		c.b[row] = x
	case String:
		c.data = append(c.data, v...)
		c.offs[row+1] = int32(len(c.data))
		if len(c.data) >= csvMaxBatchBytes {
			d.full = true
		}
	}
	return nil
}

func (c *csvCol) setNull(row int) {
	if c.null == nil {
		c.null = make([]bool, c.rows)
	}
	c.null[row], c.hasNull = true, true
	switch c.t {
	case Int64, Date:
		c.i[row] = 0
	case Float64:
		c.f[row] = 0
	case Bool:
		c.b[row] = false
	case String:
		c.offs[row+1] = int32(len(c.data))
	}
}

// ---- errors ----

// errf is an error about the record at buf[r].
func (d *csvDecoder) errf(format string, args ...any) error {
	return d.errAt(0, format, args...)
}

// errAt is an error about line k (from 1) of the record at buf[r].
func (d *csvDecoder) errAt(k int, format string, args ...any) error {
	var where string
	off := d.base + int64(d.r)
	switch {
	case k > 1:
		if d.lineKnown {
			where = fmt.Sprintf("line %d (record from byte %d)", d.line+int64(k-1), off)
		} else {
			where = fmt.Sprintf("line %d of the record at byte %d", k, off)
		}
	case d.lineKnown:
		where = fmt.Sprintf("line %d (byte %d)", d.line, off)
	default:
		where = fmt.Sprintf("line at byte %d", off)
	}
	return fmt.Errorf("query: csv %s: %s: %s", d.p.file, where, fmt.Sprintf(format, args...))
}

// fieldErr is an error about field fi of the record at buf[r], found on
// its line k.
func (d *csvDecoder) fieldErr(fi, k int, format string, args ...any) error {
	return d.errAt(k, "%s: %s", d.fieldName(fi), fmt.Sprintf(format, args...))
}

func (d *csvDecoder) fieldName(fi int) string {
	if fi < d.nf {
		f := d.p.schema.Field(fi)
		t, _ := typeOfArrow(f.Type)
		return fmt.Sprintf("column %q (%s)", f.Name, t)
	}
	return fmt.Sprintf("field %d (the schema has %d columns)", fi+1, d.nf)
}

func (d *csvDecoder) valueErr(fi int, v []byte, err error) error {
	what := "not a valid"
	if errors.Is(err, strconv.ErrRange) {
		what = "out of range for"
	}
	t, _ := typeOfArrow(d.p.schema.Field(fi).Type)
	return d.errf("%s: %s is %s %s", d.fieldName(fi), showValue(v), what, t)
}

// showValue quotes a value for an error message, cut to 64 bytes.
func showValue(v []byte) string {
	if len(v) > 64 {
		return strconv.Quote(string(v[:64])) + "..."
	}
	return strconv.Quote(string(v))
}

// ---- values ----

// bytesString views b as a string; b must not change while it is used.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// parseCSVInt is strconv.ParseInt(v, 10, 64).
func parseCSVInt(v []byte) (int64, error) {
	i, neg := 0, false
	if v[0] == '-' || v[0] == '+' {
		i, neg = 1, v[0] == '-'
	}
	if n := len(v) - i; n > 0 && n <= 18 {
		var x int64
		for ; i < len(v); i++ {
			c := v[i] - '0'
			if c > 9 {
				break
			}
			x = x*10 + int64(c)
		}
		if i == len(v) {
			if neg {
				x = -x
			}
			return x, nil
		}
	}
	return strconv.ParseInt(bytesString(v), 10, 64)
}

var csvPow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseCSVFloat is strconv.ParseFloat(v, 64). Decimals of at most 15
// digits are converted directly: the digits make an integer below 2^53
// and the power of ten is exact, so one division rounds correctly, which
// is what ParseFloat does too.
func parseCSVFloat(v []byte) (float64, error) {
	i, neg := 0, false
	if v[0] == '-' || v[0] == '+' {
		i, neg = 1, v[0] == '-'
	}
	var m uint64
	digits, frac := 0, 0
	for ; i < len(v); i++ {
		c := v[i] - '0'
		if c > 9 {
			break
		}
		m = m*10 + uint64(c)
		digits++
	}
	if i < len(v) && v[i] == '.' && digits > 0 {
		for i++; i < len(v); i++ {
			c := v[i] - '0'
			if c > 9 {
				break
			}
			m = m*10 + uint64(c)
			frac++
		}
		digits += frac
	}
	if i == len(v) && digits > 0 && digits <= 15 && (frac > 0 || v[len(v)-1] != '.') {
		f := float64(m) / csvPow10[frac]
		if neg {
			f = -f
		}
		return f, nil
	}
	return strconv.ParseFloat(bytesString(v), 64)
}

// parseCSVDate is time.Parse("2006-01-02", v) as days since 1970-01-01.
func parseCSVDate(v []byte) (int64, error) {
	if len(v) == 10 && v[4] == '-' && v[7] == '-' {
		y, ok1 := digits4(v[0:4])
		m, ok2 := digits2(v[5:7])
		dd, ok3 := digits2(v[8:10])
		if ok1 && ok2 && ok3 && m >= 1 && m <= 12 && dd >= 1 && dd <= daysInMonth(m, y) {
			return daysFromCivil(y, m, dd), nil
		}
	}
	if d, ok := parseDate(bytesString(v)); ok {
		return d, nil
	}
	return 0, errCSVDate
}

// errCSVDate says a DATE value is not YYYY-MM-DD.
var errCSVDate = errors.New("not a date")

func digits2(b []byte) (int, bool) {
	c0, c1 := b[0]-'0', b[1]-'0'
	return int(c0)*10 + int(c1), c0 <= 9 && c1 <= 9
}

func digits4(b []byte) (int, bool) {
	h, ok1 := digits2(b[0:2])
	l, ok2 := digits2(b[2:4])
	return h*100 + l, ok1 && ok2
}

func daysInMonth(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to the proleptic
// Gregorian date y-m-d (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// ---- batches ----

// toVec makes v row 0..n-1 of the column. With reuse, v keeps pointing
// into the column's buffers, which the next batch writes over.
func (c *csvCol) toVec(v *vec, n int, reuse bool) {
	*v = vec{t: c.t, n: n}
	switch c.t {
	case Int64, Date:
		v.i = c.i[:n]
	case Float64:
		v.f = c.f[:n]
	case Bool:
		v.b = c.b[:n]
	case String:
		if !reuse || len(c.s) < n {
			c.s = make([]string, n)
		}
		s, offs, data := c.s[:n], c.offs, c.data
		for k := range s {
			a, b := offs[k], offs[k+1]
			if a == b {
				s[k] = ""
			} else {
				s[k] = unsafe.String(&data[a], b-a)
			}
		}
		v.s = s
	}
	if c.hasNull {
		v.null = c.null[:n]
	}
}

// toArrow makes an Arrow array of rows 0..n-1 of the column. Strings are
// made over the column's offsets and bytes; other types go through vec's
// conversion.
func (c *csvCol) toArrow(n int) arrow.Array {
	if c.t != String {
		var v vec
		c.toVec(&v, n, false)
		return v.toArrow(memory.DefaultAllocator)
	}
	var null []bool
	if c.hasNull {
		null = c.null
	}
	valid, nulls := validityBitmap(null, n)
	bufs := []*memory.Buffer{valid, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(c.offs[:n+1])), memory.NewBufferBytes(c.data)}
	data := array.NewData(c.dt, n, bufs, nil, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}
