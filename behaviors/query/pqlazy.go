package query

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/parquet"
)

// Late materialization: a numeric column of a Parquet batch can be left
// encoded (its dictionary indices or PLAIN bytes still in the page) and
// decoded only for the rows something reads. The filter decodes its
// first column for every row, the next conjunct only for the rows the
// first kept, and the aggregate arguments only for the rows that passed:
// TPC-H Q6 decodes l_extendedprice for 2% of the rows.

// lazyVals says where the values of each row of a vector are.
type lazyVals struct {
	runs  []lazyRun
	dictI []int64
	dictF []float64
	phys  parquet.Type
	sc    *pqScratch
}

type lazyKind uint8

const (
	runRLE   lazyKind = iota // every row has dictionary index val
	runBits                  // bit-packed dictionary indices
	runPlain                 // PLAIN values
)

// lazyRun covers rows [row0, row0+n) of the batch.
type lazyRun struct {
	kind  lazyKind
	row0  int
	n     int
	val   uint32
	data  []byte
	bit0  int // runBits: bit offset of row0's index; runPlain: byte offset
	width uint
}

// lazyError is a decoding error found while loading lazily; RunPartition
// turns it back into an error.
type lazyError struct{ err error }

func (e lazyError) Error() string { return e.err.Error() }

// plan records, without decoding, where the next n values of the current
// page are. It returns false (having consumed nothing) when the column
// cannot be read lazily.
func (c *pqCol) planLazy(n int) (*lazyVals, bool) {
	if c.descr.maxDef != 0 || c.t == String || c.left < n {
		return nil, false
	}
	lz := &lazyVals{phys: c.descr.phys, dictI: c.dictI, dictF: c.dictF, sc: c.sc}
	if !c.dictEnc {
		size := 8
		if c.descr.phys == parquet.Types.Int32 || c.descr.phys == parquet.Types.Float {
			size = 4
		}
		if len(c.plain) < size*n {
			return nil, false // the eager path reports the damage
		}
		lz.runs = append(lz.runs, lazyRun{kind: runPlain, n: n, data: c.plain})
		c.plain = c.plain[size*n:]
		c.left -= n
		return lz, true
	}
	saved := c.idx
	h := &c.idx
	row := 0
	for row < n {
		if h.rle == 0 && h.bp == 0 {
			if h.pos >= len(h.data) || h.nextRun() != nil {
				c.idx = saved
				return nil, false
			}
		}
		if h.rle > 0 {
			m := min(h.rle, n-row)
			lz.runs = append(lz.runs, lazyRun{kind: runRLE, row0: row, n: m, val: h.rleVal})
			h.rle -= m
			row += m
			continue
		}
		m := min(h.bp, n-row)
		lz.runs = append(lz.runs, lazyRun{kind: runBits, row0: row, n: m, data: h.data, bit0: h.bpBit, width: h.width})
		h.bpBit += m * int(h.width)
		h.bp -= m
		row += m
	}
	c.left -= n
	return lz, true
}

// load decodes the rows in sel (ascending), or every row if sel is nil,
// into v.i or v.f. After a full load the vector is an ordinary one.
func (v *vec) load(sel []int32) {
	lz := v.lazy
	if lz == nil {
		return
	}
	if sel == nil || len(sel) > v.n/4 {
		// Decoding runs in bulk beats row by row when many rows are read.
		for k := range lz.runs {
			lz.loadRun(v, &lz.runs[k])
		}
		v.lazy = nil
		return
	}
	ri := 0
	runs := lz.runs
	for _, r32 := range sel {
		r := int(r32)
		for ri < len(runs) && runs[ri].row0+runs[ri].n <= r {
			ri++
		}
		if ri == len(runs) {
			panic(lazyError{fmt.Errorf("query: parquet: row %d beyond the batch", r)})
		}
		run := &runs[ri]
		off := r - run.row0
		switch run.kind {
		case runPlain:
			lz.plainAt(v, run, off, r)
		case runRLE:
			lz.dictAt(v, run.val, r)
		case runBits:
			bit := run.bit0 + off*int(run.width)
			lz.dictAt(v, bitsAt(run.data, bit, run.width), r)
		}
	}
}

func bitsAt(data []byte, bit int, w uint) uint32 {
	if w == 0 {
		return 0
	}
	b := bit >> 3
	var x uint64
	if b+8 <= len(data) {
		x = binary.LittleEndian.Uint64(data[b:])
	} else {
		for j := 0; j < 8 && b+j < len(data); j++ {
			x |= uint64(data[b+j]) << (8 * j)
		}
	}
	return uint32((x >> (uint(bit) & 7)) & (1<<w - 1))
}

func (lz *lazyVals) dictAt(v *vec, j uint32, r int) {
	if v.f != nil {
		if int(j) >= len(lz.dictF) {
			panic(lazyError{errCorrupt})
		}
		v.f[r] = lz.dictF[j]
		return
	}
	if int(j) >= len(lz.dictI) {
		panic(lazyError{errCorrupt})
	}
	v.i[r] = lz.dictI[j]
}

func (lz *lazyVals) plainAt(v *vec, run *lazyRun, off, r int) {
	d := run.data
	switch lz.phys {
	case parquet.Types.Int32:
		v.i[r] = int64(int32(binary.LittleEndian.Uint32(d[4*off:])))
	case parquet.Types.Int64:
		v.i[r] = int64(binary.LittleEndian.Uint64(d[8*off:]))
	case parquet.Types.Float:
		v.f[r] = float64(math.Float32frombits(binary.LittleEndian.Uint32(d[4*off:])))
	case parquet.Types.Double:
		v.f[r] = math.Float64frombits(binary.LittleEndian.Uint64(d[8*off:]))
	}
}

// loadRun decodes every row of one run.
func (lz *lazyVals) loadRun(v *vec, run *lazyRun) {
	switch run.kind {
	case runPlain:
		for off := 0; off < run.n; off++ {
			lz.plainAt(v, run, off, run.row0+off)
		}
	case runRLE:
		j := run.val
		if v.f != nil {
			if int(j) >= len(lz.dictF) {
				panic(lazyError{errCorrupt})
			}
			x, out := lz.dictF[j], v.f[run.row0:run.row0+run.n]
			for k := range out {
				out[k] = x
			}
			return
		}
		if int(j) >= len(lz.dictI) {
			panic(lazyError{errCorrupt})
		}
		x, out := lz.dictI[j], v.i[run.row0:run.row0+run.n]
		for k := range out {
			out[k] = x
		}
	case runBits:
		lz.sc.tmp = growTo(lz.sc.tmp, run.n)[:run.n]
		idx := lz.sc.tmp
		h := hybrid{data: run.data, width: run.width, bpBit: run.bit0}
		h.unpack(idx)
		if v.f != nil {
			d, out := lz.dictF, v.f[run.row0:run.row0+run.n]
			nd := uint32(len(d))
			for q, j := range idx {
				if uint32(j) >= nd {
					panic(lazyError{errCorrupt})
				}
				out[q] = d[j]
			}
			return
		}
		d, out := lz.dictI, v.i[run.row0:run.row0+run.n]
		nd := uint32(len(d))
		for q, j := range idx {
			if uint32(j) >= nd {
				panic(lazyError{errCorrupt})
			}
			out[q] = d[j]
		}
	}
}

// dictPass judges the dictionary entries of a lazy vector against the
// conjunction of comparisons with constants: pass[j] says whether entry j
// satisfies all of them. It returns nil when the vector cannot be
// filtered this way: some rows are not dictionary-encoded, or the
// dictionary is larger than the batch.
func (lz *lazyVals) dictPass(v *vec, preds []*cmpExpr) []bool {
	nd := len(lz.dictI)
	if v.t == Float64 {
		nd = len(lz.dictF)
	}
	if nd == 0 || nd > v.n {
		return nil
	}
	for k := range lz.runs {
		if lz.runs[k].kind == runPlain {
			return nil
		}
	}
	pass := make([]bool, nd)
	one := make([]bool, nd)
	for k, p := range preds {
		c := p.r.(*litExpr).v
		dst := one
		if k == 0 {
			dst = pass
		}
		if v.t == Float64 {
			cmpConst(p.op, lz.dictF, c.f, dst)
		} else {
			cmpConst(p.op, lz.dictI, c.i, dst)
		}
		if k > 0 {
			for j := range pass {
				pass[j] = pass[j] && one[j]
			}
		}
	}
	return pass
}

// selectDict appends to out the rows whose dictionary entry passes. It
// returns false when an index is out of range (the ordinary path then
// reports the damage).
func (lz *lazyVals) selectDict(pass []bool, out []int32) ([]int32, bool) {
	nd := uint32(len(pass))
	for k := range lz.runs {
		run := &lz.runs[k]
		if run.kind == runRLE {
			if run.val >= nd {
				return nil, false
			}
			if pass[run.val] {
				for r := run.row0; r < run.row0+run.n; r++ {
					out = append(out, int32(r))
				}
			}
			continue
		}
		lz.sc.tmp = growTo(lz.sc.tmp, run.n)[:run.n]
		idx := lz.sc.tmp
		h := hybrid{data: run.data, width: run.width, bpBit: run.bit0}
		h.unpack(idx)
		for q, j := range idx {
			if uint32(j) >= nd {
				return nil, false
			}
			if pass[j] {
				out = append(out, int32(run.row0+q))
			}
		}
	}
	return out, true
}

// cmpConst sets out[k] to vals[k] op c.
func cmpConst[T int64 | float64](op int, vals []T, c T, out []bool) {
	for k, x := range vals {
		switch op {
		case opEQ:
			out[k] = x == c
		case opNE:
			out[k] = x != c
		case opLT:
			out[k] = x < c
		case opLE:
			out[k] = x <= c
		case opGT:
			out[k] = x > c
		default:
			out[k] = x >= c
		}
	}
}
