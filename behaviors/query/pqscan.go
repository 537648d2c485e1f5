package query

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// This file decodes Parquet column chunks straight into the engine's
// vectors for the common case: flat columns of INT32, INT64, FLOAT,
// DOUBLE or BYTE_ARRAY (UTF-8) values, PLAIN or dictionary encoded, in
// V1 or V2 data pages, required or optional. It skips building Arrow
// arrays for every batch (pqarrow allocates and zeroes fresh buffers for
// each one), decodes dictionary indices into reused buffers and leaves
// dictionary-encoded strings as codes. Anything else (nested columns,
// other encodings or logical types) is read through pqarrow.

// errPQUnsupported says the direct decoder cannot read a column chunk;
// the scan then uses pqarrow.
var errPQUnsupported = errors.New("query: parquet: not supported by the direct decoder")

// vecScanner is implemented by partitions that can produce the engine's
// vectors directly instead of Arrow record batches.
type vecScanner interface {
	// scanVecs reads the columns cols (as types) and calls emit for each
	// batch of at most batchRows rows. With reuse, the batch's vectors
	// may be overwritten once emit returns, so emit must not keep them.
	scanVecs(ctx context.Context, cols []int, types []Type, batchRows int, reuse bool, emit func(*batch) error) error
}

// pqDirectType is the engine type a column chunk decodes to, or false if
// the direct decoder does not handle it.
func pqDirectType(descr columnDescr, dt arrow.DataType) (Type, bool) {
	if descr.maxRep != 0 || descr.maxDef > 1 {
		return Null, false
	}
	switch descr.phys {
	case parquet.Types.Int32:
		switch dt.ID() {
		case arrow.INT32, arrow.INT16, arrow.INT8, arrow.UINT16, arrow.UINT8:
			return Int64, true
		case arrow.DATE32:
			return Date, true
		}
	case parquet.Types.Int64:
		if dt.ID() == arrow.INT64 {
			return Int64, true
		}
	case parquet.Types.Float:
		if dt.ID() == arrow.FLOAT32 {
			return Float64, true
		}
	case parquet.Types.Double:
		if dt.ID() == arrow.FLOAT64 {
			return Float64, true
		}
	case parquet.Types.ByteArray:
		if dt.ID() == arrow.STRING || dt.ID() == arrow.LARGE_STRING {
			return String, true
		}
	}
	return Null, false
}

type columnDescr struct {
	phys           parquet.Type
	maxDef, maxRep int16
}

// pqChunkSupported checks the encodings the chunk's metadata lists.
func pqChunkSupported(cc *metadata.ColumnChunkMetaData) bool {
	for _, e := range cc.Encodings() {
		switch e {
		case parquet.Encodings.Plain, parquet.Encodings.PlainDict, parquet.Encodings.RLEDict, parquet.Encodings.RLE:
		default:
			return false
		}
	}
	return true
}

// ---- buffers reused across batches and partitions ----

var (
	poolI64 = sync.Pool{New: func() any { return new([]int64) }}
	poolF64 = sync.Pool{New: func() any { return new([]float64) }}
	poolI32 = sync.Pool{New: func() any { return new([]int32) }}
)

func getBuf[T any](p *sync.Pool, n int) *[]T {
	b := p.Get().(*[]T)
	if cap(*b) < n {
		*b = make([]T, n)
	}
	*b = (*b)[:n]
	return b
}

// ---- RLE / bit-packed hybrid ----

// hybrid decodes Parquet's RLE/bit-packed hybrid encoding of values of
// width bits.
type hybrid struct {
	data  []byte
	pos   int // next header byte
	width uint
	// the current run
	rle    int    // values left in an RLE run
	rleVal uint32 //
	bp     int    // values left in a bit-packed run
	bpBit  int    // bit offset of the next bit-packed value in data
}

func (h *hybrid) reset(data []byte, width uint) {
	*h = hybrid{data: data, width: width}
}

var errCorrupt = errors.New("query: parquet: corrupt RLE/bit-packed data")

func (h *hybrid) nextRun() error {
	hdr, n := binary.Uvarint(h.data[h.pos:])
	if n <= 0 {
		return errCorrupt
	}
	h.pos += n
	if hdr&1 == 1 {
		groups := hdr >> 1
		if groups == 0 || groups > uint64(len(h.data)) {
			return errCorrupt
		}
		nbytes := int(groups) * int(h.width)
		if h.pos+nbytes > len(h.data) {
			// Writers may end the last run early; keep the values whose
			// bits are all there.
			nbytes = len(h.data) - h.pos
			if h.width == 0 {
				return errCorrupt
			}
			h.bp = nbytes * 8 / int(h.width)
		} else {
			h.bp = int(groups) * 8
		}
		h.bpBit = h.pos * 8
		h.pos += nbytes
		if h.bp == 0 {
			return errCorrupt
		}
		return nil
	}
	count := hdr >> 1
	if count == 0 || count > 1<<31 {
		return errCorrupt
	}
	nb := int(h.width+7) / 8
	if h.pos+nb > len(h.data) {
		return errCorrupt
	}
	var v uint32
	for k := 0; k < nb; k++ {
		v |= uint32(h.data[h.pos+k]) << (8 * k)
	}
	h.pos += nb
	h.rle, h.rleVal = int(count), v
	return nil
}

// decode fills out with the next len(out) values.
func (h *hybrid) decode(out []int32) error {
	for len(out) > 0 {
		if h.rle == 0 && h.bp == 0 {
			if h.pos >= len(h.data) {
				return errCorrupt
			}
			if err := h.nextRun(); err != nil {
				return err
			}
		}
		if h.rle > 0 {
			m := min(h.rle, len(out))
			v := int32(h.rleVal)
			for k := range out[:m] {
				out[k] = v
			}
			h.rle -= m
			out = out[m:]
			continue
		}
		m := min(h.bp, len(out))
		h.unpack(out[:m])
		h.bp -= m
		out = out[m:]
	}
	return nil
}

// unpack reads len(out) bit-packed values starting at h.bpBit.
func (h *hybrid) unpack(out []int32) {
	w := h.width
	if w == 0 {
		clear(out)
		return
	}
	mask := uint64(1)<<w - 1
	bit := h.bpBit
	data := h.data
	k := 0
	if w <= 16 {
		// Eight values starting on a byte boundary take w bytes: for
		// narrow widths (TPC-H's flags, quantities, discounts, taxes)
		// unpack them from one or two 8-byte loads.
		for ; k < len(out) && bit&7 != 0; k++ {
			out[k] = int32(bitsAt(data, bit, w))
			bit += int(w)
		}
		for ; k+8 <= len(out); k += 8 {
			b := bit >> 3
			if b+16 > len(data) {
				break
			}
			lo := binary.LittleEndian.Uint64(data[b:])
			o := out[k : k+8 : k+8]
			if w <= 8 {
				for j := range o {
					o[j] = int32((lo >> (uint(j) * w)) & mask)
				}
			} else {
				// Values 0-3 from the first load; values 4-7 start 4w bits
				// in, at most 4 bits into a byte, and 4w + 4 <= 64 bits
				// hold them for w <= 15 (w = 16 starts on a byte).
				b2 := b + int(4*w)>>3
				hi := binary.LittleEndian.Uint64(data[b2:]) >> ((4 * w) & 7)
				for j := range 4 {
					o[j] = int32((lo >> (uint(j) * w)) & mask)
					o[4+j] = int32((hi >> (uint(j) * w)) & mask)
				}
			}
			bit += 8 * int(w)
		}
	}
	// One unaligned 8-byte load per value (width <= 32, so the value plus
	// a shift of up to 7 bits fits in 64).
	for ; k < len(out); k++ {
		byteOff := bit >> 3
		if byteOff+8 > len(data) {
			break
		}
		x := binary.LittleEndian.Uint64(data[byteOff:])
		out[k] = int32((x >> (uint(bit) & 7)) & mask)
		bit += int(w)
	}
	for ; k < len(out); k++ {
		var x uint64
		byteOff := bit >> 3
		for j := 0; j < 8 && byteOff+j < len(data); j++ {
			x |= uint64(data[byteOff+j]) << (8 * j)
		}
		out[k] = int32((x >> (uint(bit) & 7)) & mask)
		bit += int(w)
	}
	h.bpBit = bit
}

// ---- one column chunk ----

type pqCol struct {
	pr    file.PageReader
	descr columnDescr
	t     Type
	f32   bool // FLOAT stored, DOUBLE wanted

	// the chunk's dictionary
	haveDict bool
	dictI    []int64
	dictF    []float64
	dictS    []string

	// the current data page
	left    int // levels (rows) left in the page
	dictEnc bool
	idx     hybrid
	def     hybrid
	plain   []byte

	sc *pqScratch
}

// pqScratch is the scratch space of one scan, kept for the next.
type pqScratch struct {
	defs  []int32 // definition levels of one read
	tmp   []int32 // dictionary indices of one read or lazy load
	dictF []*[]float64
	dictI []*[]int64
}

var pqScratchPool = sync.Pool{New: func() any { return &pqScratch{} }}

func (s *pqScratch) release() {
	for _, b := range s.dictF {
		poolF64.Put(b)
	}
	for _, b := range s.dictI {
		poolI64.Put(b)
	}
	s.dictF, s.dictI = s.dictF[:0], s.dictI[:0]
	pqScratchPool.Put(s)
}

func (s *pqScratch) floats(n int) []float64 {
	b := getBuf[float64](&poolF64, n)
	s.dictF = append(s.dictF, b)
	return *b
}

func (s *pqScratch) ints(n int) []int64 {
	b := getBuf[int64](&poolI64, n)
	s.dictI = append(s.dictI, b)
	return *b
}

func (c *pqCol) nextPage() (err error) {
	defer func() {
		// arrow-go's page reader can panic on a damaged page header.
		if r := recover(); r != nil {
			err = fmt.Errorf("query: parquet: damaged page: %v", r)
		}
	}()
	for c.pr.Next() {
		pg := c.pr.Page()
		switch p := pg.(type) {
		case *file.DictionaryPage:
			if err := c.readDict(p); err != nil {
				return err
			}
			continue
		case *file.DataPageV1:
			data := p.Data()
			n := int(p.NumValues())
			if n < 0 {
				return errCorrupt
			}
			if c.descr.maxDef > 0 {
				if p.DefinitionLevelEncoding() != parquet.Encodings.RLE {
					return errPQUnsupported
				}
				if len(data) < 4 {
					return errCorrupt
				}
				l := int(binary.LittleEndian.Uint32(data))
				if l < 0 || 4+l > len(data) {
					return errCorrupt
				}
				c.def.reset(data[4:4+l], 1)
				data = data[4+l:]
			}
			return c.startValues(parquet.Encoding(p.Encoding()), data, n)
		case *file.DataPageV2:
			data := p.Data()
			n := int(p.NumValues())
			rl, dl := int(p.RepetitionLevelByteLen()), int(p.DefinitionLevelByteLen())
			if n < 0 || rl < 0 || dl < 0 || rl+dl > len(data) {
				return errCorrupt
			}
			if c.descr.maxDef > 0 {
				c.def.reset(data[rl:rl+dl], 1)
			}
			return c.startValues(parquet.Encoding(p.Encoding()), data[rl+dl:], n)
		default:
			continue // index pages and the like carry no values
		}
	}
	if err := c.pr.Err(); err != nil {
		return err
	}
	return fmt.Errorf("query: parquet: column chunk ended before the row group's last row")
}

func (c *pqCol) startValues(enc parquet.Encoding, data []byte, n int) error {
	c.left = n
	switch enc {
	case parquet.Encodings.Plain:
		c.dictEnc = false
		if c.descr.phys == parquet.Types.ByteArray {
			// Strings point into a copy of the page: the page reader
			// reuses its buffer for the next page.
			data = append([]byte(nil), data...)
		}
		c.plain = data
	case parquet.Encodings.PlainDict, parquet.Encodings.RLEDict:
		if !c.haveDict {
			return fmt.Errorf("query: parquet: dictionary-encoded page without a dictionary")
		}
		if len(data) < 1 || data[0] > 32 {
			return errCorrupt
		}
		c.dictEnc = true
		c.idx.reset(data[1:], uint(data[0]))
	default:
		return errPQUnsupported
	}
	return nil
}

func (c *pqCol) readDict(p *file.DictionaryPage) error {
	if e := parquet.Encoding(p.Encoding()); e != parquet.Encodings.Plain && e != parquet.Encodings.PlainDict {
		return errPQUnsupported
	}
	n := int(p.NumValues())
	data := p.Data()
	if n < 0 {
		return errCorrupt
	}
	if c.haveDict {
		// One dictionary per column chunk: codes already decoded refer
		// to the first.
		return fmt.Errorf("query: parquet: a second dictionary page in a column chunk")
	}
	c.haveDict = true
	switch c.descr.phys {
	case parquet.Types.Int32:
		if len(data) < 4*n {
			return errCorrupt
		}
		c.dictI = c.sc.ints(n)
		for k := range c.dictI {
			c.dictI[k] = int64(int32(binary.LittleEndian.Uint32(data[4*k:])))
		}
	case parquet.Types.Int64:
		if len(data) < 8*n {
			return errCorrupt
		}
		c.dictI = c.sc.ints(n)
		for k := range c.dictI {
			c.dictI[k] = int64(binary.LittleEndian.Uint64(data[8*k:]))
		}
	case parquet.Types.Float:
		if len(data) < 4*n {
			return errCorrupt
		}
		c.dictF = c.sc.floats(n)
		for k := range c.dictF {
			c.dictF[k] = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*k:])))
		}
	case parquet.Types.Double:
		if len(data) < 8*n {
			return errCorrupt
		}
		c.dictF = c.sc.floats(n)
		for k := range c.dictF {
			c.dictF[k] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*k:]))
		}
	case parquet.Types.ByteArray:
		own := append([]byte(nil), data...)
		c.dictS = make([]string, n)
		pos := 0
		for k := range c.dictS {
			s, next, err := plainBytes(own, pos)
			if err != nil {
				return err
			}
			c.dictS[k], pos = s, next
		}
	default:
		return errPQUnsupported
	}
	return nil
}

// plainBytes reads one length-prefixed PLAIN BYTE_ARRAY value at pos as a
// string that shares buf's memory.
func plainBytes(buf []byte, pos int) (string, int, error) {
	if pos+4 > len(buf) {
		return "", 0, errCorrupt
	}
	l := int(binary.LittleEndian.Uint32(buf[pos:]))
	pos += 4
	if l < 0 || l > len(buf)-pos {
		return "", 0, errCorrupt
	}
	if l == 0 {
		return "", pos, nil
	}
	return unsafe.String(&buf[pos], l), pos + l, nil
}

// read decodes the next n rows of the column into v (which it resets).
func (c *pqCol) read(n int, v *vec, reuse bool, pooled *[]any) error {
	*v = vec{t: c.t, n: n}
	alloc := func(kind Type) {
		switch kind {
		case Int64, Date:
			if reuse {
				b := getBuf[int64](&poolI64, n)
				*pooled = append(*pooled, b)
				v.i = *b
			} else {
				v.i = make([]int64, n)
			}
		case Float64:
			if reuse {
				b := getBuf[float64](&poolF64, n)
				*pooled = append(*pooled, b)
				v.f = *b
			} else {
				v.f = make([]float64, n)
			}
		}
	}
	switch c.t {
	case String:
		if reuse {
			b := getBuf[int32](&poolI32, n)
			*pooled = append(*pooled, b)
			v.codes = *b
		} else {
			v.codes = make([]int32, n)
		}
	default:
		alloc(c.t)
		if reuse && c.descr.maxDef == 0 {
			// Leave the values encoded until something reads them.
			for c.left == 0 {
				if err := c.nextPage(); err != nil {
					return err
				}
			}
			if lz, ok := c.planLazy(n); ok {
				v.lazy = lz
				return nil
			}
		}
	}
	got := 0
	for got < n {
		if c.left == 0 {
			if err := c.nextPage(); err != nil {
				return err
			}
			continue
		}
		k := min(n-got, c.left)
		if err := c.readRun(v, got, k); err != nil {
			return err
		}
		got += k
		c.left -= k
	}
	if v.codes != nil {
		v.dict = c.dictS
	}
	return nil
}

// readRun decodes k rows of the current page into v at row off.
func (c *pqCol) readRun(v *vec, off, k int) error {
	m := k // values present
	var defs []int32
	if c.descr.maxDef > 0 {
		c.sc.defs = growTo(c.sc.defs, k)[:k]
		defs = c.sc.defs
		if err := c.def.decode(defs); err != nil {
			return err
		}
		m = 0
		for _, d := range defs {
			if d == int32(c.descr.maxDef) {
				m++
			} else if d != 0 {
				return errCorrupt
			}
		}
		if m < k && v.null == nil {
			v.null = make([]bool, v.n)
		}
	}
	if err := c.values(v, off, m); err != nil {
		return err
	}
	if m < k {
		// Spread the m dense values to their rows, from the back.
		j := off + m - 1
		for r := off + k - 1; r >= off; r-- {
			if defs[r-off] == int32(c.descr.maxDef) {
				if j != r {
					v.move(r, j)
				}
				j--
			} else {
				v.null[r] = true
				v.clearAt(r)
			}
		}
	}
	return nil
}

// move copies row from to row to (to > from).
func (v *vec) move(to, from int) {
	switch {
	case v.i != nil:
		v.i[to] = v.i[from]
	case v.f != nil:
		v.f[to] = v.f[from]
	}
	if v.s != nil {
		v.s[to] = v.s[from]
	}
	if v.codes != nil {
		v.codes[to] = v.codes[from]
	}
}

// clearAt zeroes row k (a NULL row).
func (v *vec) clearAt(k int) {
	switch {
	case v.i != nil:
		v.i[k] = 0
	case v.f != nil:
		v.f[k] = 0
	}
	if v.s != nil {
		v.s[k] = ""
	}
	if v.codes != nil {
		v.codes[k] = 0
	}
}

// values decodes m present values into v at row off.
func (c *pqCol) values(v *vec, off, m int) error {
	if m == 0 {
		return nil
	}
	if c.dictEnc {
		c.sc.tmp = growTo(c.sc.tmp, m)[:m]
		idx := c.sc.tmp
		if c.t == String && v.s == nil {
			idx = v.codes[off : off+m]
		}
		if err := c.idx.decode(idx); err != nil {
			return err
		}
		switch c.t {
		case String:
			nd := uint32(len(c.dictS))
			for _, j := range idx {
				if uint32(j) >= nd {
					return errCorrupt
				}
			}
			if v.s != nil {
				// This batch already holds PLAIN strings.
				for q, j := range idx {
					v.s[off+q] = c.dictS[j]
				}
			}
		case Float64:
			d, out := c.dictF, v.f[off:off+m]
			nd := uint32(len(d))
			for q, j := range idx {
				if uint32(j) >= nd {
					return errCorrupt
				}
				out[q] = d[j]
			}
		default:
			d, out := c.dictI, v.i[off:off+m]
			nd := uint32(len(d))
			for q, j := range idx {
				if uint32(j) >= nd {
					return errCorrupt
				}
				out[q] = d[j]
			}
		}
		return nil
	}
	data := c.plain
	switch c.descr.phys {
	case parquet.Types.Int32:
		if len(data) < 4*m {
			return errCorrupt
		}
		out := v.i[off : off+m]
		for q := range out {
			out[q] = int64(int32(binary.LittleEndian.Uint32(data[4*q:])))
		}
		c.plain = data[4*m:]
	case parquet.Types.Int64:
		if len(data) < 8*m {
			return errCorrupt
		}
		out := v.i[off : off+m]
		for q := range out {
			out[q] = int64(binary.LittleEndian.Uint64(data[8*q:]))
		}
		c.plain = data[8*m:]
	case parquet.Types.Float:
		if len(data) < 4*m {
			return errCorrupt
		}
		out := v.f[off : off+m]
		for q := range out {
			out[q] = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*q:])))
		}
		c.plain = data[4*m:]
	case parquet.Types.Double:
		if len(data) < 8*m {
			return errCorrupt
		}
		out := v.f[off : off+m]
		for q := range out {
			out[q] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*q:]))
		}
		c.plain = data[8*m:]
	case parquet.Types.ByteArray:
		if v.s == nil {
			// Strings from here on: the rows decoded so far become
			// strings too, and the vector stops being coded.
			v.s = make([]string, v.n)
			for r := 0; r < off; r++ {
				if v.null == nil || !v.null[r] {
					v.s[r] = c.dictS[v.codes[r]]
				}
			}
			v.codes, v.dict = nil, nil
		}
		pos := 0
		for q := 0; q < m; q++ {
			s, next, err := plainBytes(data, pos)
			if err != nil {
				return err
			}
			v.s[off+q], pos = s, next
		}
		c.plain = data[pos:]
	default:
		return errPQUnsupported
	}
	return nil
}

// ---- the partition scan ----

func (p *parquetPartition) scanVecs(ctx context.Context, cols []int, types []Type, batchRows int, reuse bool, emit func(*batch) error) error {
	props := parquet.NewReaderProperties(pageAllocator{})
	// Pages are read straight into the pooled buffers; only page headers
	// go through the stream's small buffer (reading each column chunk
	// whole would allocate it afresh).
	props.BufferedStreamEnabled = true
	pf, err := p.open(file.WithReadProps(props))
	if err != nil {
		return err
	}
	defer pf.Close()
	md := pf.MetaData()
	if p.rowGroup >= md.NumRowGroups() {
		return fmt.Errorf("query: parquet %s: row group %d missing", p, p.rowGroup)
	}
	rgMeta := md.RowGroup(p.rowGroup)
	direct := len(cols) > 0
	descrs := make([]columnDescr, len(cols))
	for k, c := range cols {
		if c < 0 || c >= md.Schema.NumColumns() || c >= len(p.fields) {
			direct = false
			break
		}
		col := md.Schema.Column(c)
		descrs[k] = columnDescr{phys: col.PhysicalType(), maxDef: col.MaxDefinitionLevel(), maxRep: col.MaxRepetitionLevel()}
		t, ok := pqDirectType(descrs[k], p.fields[c].Type)
		if !ok || t != types[k] {
			direct = false
			break
		}
		cc, err := rgMeta.ColumnChunk(c)
		if err != nil || !pqChunkSupported(cc) {
			direct = false
			break
		}
	}
	if !direct {
		pf.Close()
		return p.scanArrow(ctx, cols, types, batchRows, emit)
	}
	rg := pf.RowGroup(p.rowGroup)
	pcs := make([]*pqCol, len(cols))
	sc := pqScratchPool.Get().(*pqScratch)
	defer sc.release()
	for k, c := range cols {
		pr, err := rg.GetColumnPageReader(c)
		if err != nil {
			return fmt.Errorf("query: parquet %s: %w", p, err)
		}
		defer pr.Close()
		pcs[k] = &pqCol{pr: pr, descr: descrs[k], t: types[k], sc: sc}
	}
	total := rg.NumRows()
	var pooled []any
	release := func() {
		for _, b := range pooled {
			switch x := b.(type) {
			case *[]int64:
				poolI64.Put(x)
			case *[]float64:
				poolF64.Put(x)
			case *[]int32:
				poolI32.Put(x)
			}
		}
		pooled = pooled[:0]
	}
	defer release()
	vecs := make([]vec, len(cols))
	for off := int64(0); off < total; off += int64(batchRows) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(batchRows), total-off))
		b := &batch{n: n, cols: make([]*vec, len(cols))}
		for k, c := range pcs {
			if err := c.read(n, &vecs[k], reuse, &pooled); err != nil {
				if errors.Is(err, errPQUnsupported) {
					return fmt.Errorf("query: parquet %s: column %d: a page's encoding is not among those the column chunk's metadata lists", p, cols[k])
				}
				return fmt.Errorf("query: parquet %s: column %d: %w", p, cols[k], err)
			}
			b.cols[k] = &vecs[k]
			if !reuse {
				vv := vecs[k]
				b.cols[k] = &vv
			}
		}
		if err := emit(b); err != nil {
			return err
		}
		if reuse {
			release()
		}
	}
	return nil
}

// ---- page buffers ----

// pageAllocator is the memory.Allocator of the direct decoder's page
// readers: a buffer freed when a page reader closes serves a later one, so
// scanning a row group does not allocate (and the runtime zero) a
// megabyte per column. Buffers are handed out unzeroed; the page reader
// writes every byte it reads back (it checks that decompression and reads
// fill the lengths the page headers give).
type pageAllocator struct{}

const pagePoolMin = 1 << 12

var pagePools [48]sync.Pool

func pageClass(n int) int { return bits.Len(uint(n - 1)) }

func (pageAllocator) Allocate(size int) []byte {
	if size < pagePoolMin {
		return make([]byte, size)
	}
	c := pageClass(size)
	if c >= len(pagePools) {
		return make([]byte, size)
	}
	if b, ok := pagePools[c].Get().(*[]byte); ok {
		return (*b)[:size]
	}
	return make([]byte, size, 1<<c)
}

func (a pageAllocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

func (pageAllocator) Free(b []byte) {
	c := cap(b)
	if c < pagePoolMin || c&(c-1) != 0 {
		return
	}
	if k := pageClass(c); k < len(pagePools) {
		b = b[:c]
		pagePools[k].Put(&b)
	}
}
