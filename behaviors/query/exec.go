package query

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ErrExecutorLost: an executor died while its rows were already part of the
// result, so its partitions could not be re-run without counting rows
// twice, and no other executor was left to run them.
var ErrExecutorLost = errors.New("query: executor lost")

// errEnough stops a scan early once a LIMIT is satisfied.
var errEnough = errors.New("query: limit reached")

// Runner runs the partition fragments of a plan somewhere (goroutines of
// this process, or executor actors on cluster nodes) and hands every batch
// they produce to emit, one call at a time. A batch passed to emit belongs
// to a partition that will not be re-run, so it is counted exactly once.
// When emit returns an error, the runner stops all fragments and returns it.
type Runner interface {
	RunFragments(ctx context.Context, p *Plan, emit func(arrow.RecordBatch) error) error
}

// LocalRunner scans partitions on goroutines of this process.
type LocalRunner struct {
	// Parallelism is the number of partitions scanned at once (default
	// GOMAXPROCS).
	Parallelism int
}

// RunFragments implements Runner.
func (r LocalRunner) RunFragments(ctx context.Context, p *Plan, emit func(arrow.RecordBatch) error) error {
	n := p.Partitions()
	par := r.Parallelism
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	par = min(par, max(n, 1))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		next     int
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := firstErr != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				err := p.RunPartition(ctx, i, func(rec arrow.RecordBatch) error {
					mu.Lock()
					defer mu.Unlock()
					if firstErr != nil {
						return firstErr
					}
					return emit(rec)
				})
				if err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// RunPartition runs the plan's fragment over partition i and passes its
// output batches (laid out as FragmentSchema) to emit.
func (p *Plan) RunPartition(ctx context.Context, i int, emit func(arrow.RecordBatch) error) (err error) {
	parts := p.table.Partitions()
	if i < 0 || i >= len(parts) {
		return fmt.Errorf("query: partition %d out of range (table %s has %d)", i, p.tableName, len(parts))
	}
	defer func() {
		if r := recover(); r != nil {
			if le, ok := r.(lazyError); ok {
				err = fmt.Errorf("query: partition %d of %s: %w", i, p.tableName, le.err)
				return
			}
			err = fmt.Errorf("query: internal error in partition %d of %q: %v", i, p.SQL, r)
		}
	}()
	var (
		aggr    *aggregator
		sorter  *rowSet
		emitted int64
	)
	if p.agg && !p.rawAgg {
		aggr = newAggregator(typesOf(p.groupBy), p.aggs)
	}
	k := p.limit + p.offset
	if !p.agg && len(p.order) > 0 {
		sorter = &rowSet{}
	}
	out := func(cols []*vec) error {
		rec := p.toRecord(p.fragment, cols)
		defer rec.Release()
		return emit(rec)
	}
	process := func(b *batch) error {
		var sc *scratch
		if aggr != nil {
			// Computed columns and selections borrow pooled buffers: the
			// aggregation keeps nothing of them.
			sc = &scratch{}
			defer sc.release()
			b.scratch = sc
		}
		var sel []int32
		if p.where != nil {
			sel = filter(p.where, b, nil)
			if len(sel) == 0 {
				return nil
			}
		}
		if aggr != nil {
			if sel != nil && len(sel) > b.n/2 {
				// Most rows passed: aggregate the full batch's columns
				// through the selection instead of copying them.
				b.memo, b.scratch = map[string]*vec{}, sc
				keys := make([]*vec, len(p.groupBy))
				for j, g := range p.groupBy {
					if c, ok := g.(*colExpr); ok {
						keys[j] = b.cols[c.idx]
						keys[j].load(nil)
					} else {
						keys[j] = g.eval(b, nil)
					}
				}
				args := make([]*vec, len(p.aggs))
				for j, a := range p.aggs {
					if a.arg != nil {
						args[j] = a.arg.eval(b, nil)
					}
				}
				aggr.updateSel(keys, args, sel)
				return nil
			}
			if sel != nil {
				b = b.compact(sel, p.afterFilter)
				sel = nil
			}
			b.scratch = sc
		}
		if sel != nil {
			// Compact once: later expressions then read dense columns
			// instead of gathering through the selection each time.
			// Columns only the filter read are left out.
			b = b.compact(sel, p.afterFilter)
			sel = nil
		}
		b.memo = map[string]*vec{}
		m := rows(b, sel)
		switch {
		case aggr != nil:
			keys := make([]*vec, len(p.groupBy))
			for j, g := range p.groupBy {
				if c, ok := g.(*colExpr); ok && sel == nil {
					keys[j] = b.cols[c.idx] // dictionary codes stay codes
					keys[j].load(nil)
				} else {
					keys[j] = g.eval(b, sel)
				}
			}
			args := make([]*vec, len(p.aggs))
			for j, a := range p.aggs {
				if a.arg != nil {
					args[j] = a.arg.eval(b, sel)
				}
			}
			aggr.update(keys, args, m)
			return nil
		case p.agg: // raw rows for COUNT(DISTINCT)
			cols := evalAll(p.groupBy, b, sel)
			for _, a := range p.aggs {
				if a.arg != nil {
					cols = append(cols, a.arg.eval(b, sel))
				}
			}
			return out(cols)
		}
		cols := evalAll(p.outputs, b, sel)
		for _, o := range p.order {
			cols = append(cols, o.e.eval(b, sel))
		}
		if sorter != nil {
			sorter.add(cols)
			if p.limit >= 0 && int64(sorter.n) > max(2*k, 8192) {
				sorter.topK(p.order, len(p.outputs), k)
			}
			return nil
		}
		if p.limit >= 0 && emitted+int64(m) >= k {
			cols = sliceVecs(cols, 0, int(k-emitted))
			if err := out(cols); err != nil {
				return err
			}
			return errEnough
		}
		emitted += int64(m)
		return out(cols)
	}
	if vs, ok := parts[i].(vecScanner); ok {
		// Only a partial aggregation keeps nothing of a batch once it is
		// folded in, so only then may the scan reuse its buffers.
		err = vs.scanVecs(ctx, p.scanCols, p.scanTypes, scanBatchRows, aggr != nil, process)
	} else {
		err = parts[i].Scan(ctx, p.scanCols, scanBatchRows, func(rec arrow.RecordBatch) error {
			b, err := p.toBatch(rec)
			if err != nil {
				return err
			}
			return process(b)
		})
	}
	if errors.Is(err, errEnough) {
		err = nil
	}
	if err != nil {
		return err
	}
	switch {
	case aggr != nil:
		return out(aggr.partialVecs())
	case sorter != nil:
		if p.limit >= 0 {
			sorter.topK(p.order, len(p.outputs), k)
		}
		if sorter.n > 0 {
			return out(sorter.cols)
		}
	}
	return nil
}

// FragmentSchema is the layout of the batches RunPartition produces.
func (p *Plan) FragmentSchema() *arrow.Schema { return p.fragment }

// compact returns the selected rows of the columns marked in need.
func (b *batch) compact(sel []int32, need []bool) *batch {
	out := &batch{n: len(sel), cols: make([]*vec, len(b.cols))}
	for k, c := range b.cols {
		if need[k] {
			out.cols[k] = c.gather(sel)
		}
	}
	return out
}

// columnsOf marks the scan columns that the expressions read.
func columnsOf(mark []bool, es ...expr) {
	for _, e := range es {
		switch x := e.(type) {
		case nil:
		case *colExpr:
			mark[x.idx] = true
		case *castExpr:
			columnsOf(mark, x.e)
		case *arithExpr:
			columnsOf(mark, x.l, x.r)
		case *negExpr:
			columnsOf(mark, x.e)
		case *addMonthsExpr:
			columnsOf(mark, x.e)
		case *cmpExpr:
			columnsOf(mark, x.l, x.r)
		case *andExpr:
			columnsOf(mark, x.l, x.r)
		case *orExpr:
			columnsOf(mark, x.l, x.r)
		case *notExpr:
			columnsOf(mark, x.e)
		case *isNullExpr:
			columnsOf(mark, x.e)
		case *inExpr:
			columnsOf(mark, x.e)
		case *likeExpr:
			columnsOf(mark, x.e)
		case *litExpr:
		default:
			// An expression kind this walk does not know: keep every
			// column rather than risk leaving one out.
			for k := range mark {
				mark[k] = true
			}
		}
	}
}

func typesOf(es []expr) []Type {
	ts := make([]Type, len(es))
	for k, e := range es {
		ts[k] = e.typ()
	}
	return ts
}

func evalAll(es []expr, b *batch, sel []int32) []*vec {
	out := make([]*vec, len(es))
	for k, e := range es {
		out[k] = e.eval(b, sel)
	}
	return out
}

func (p *Plan) toBatch(rec arrow.RecordBatch) (*batch, error) {
	if int(rec.NumCols()) != len(p.scanCols) {
		return nil, fmt.Errorf("query: scan of %s returned %d columns, want %d", p.tableName, rec.NumCols(), len(p.scanCols))
	}
	return batchFromRecord(rec, p.scanTypes)
}

// batchFromRecord converts a scanned record batch whose columns have the
// given engine types.
func batchFromRecord(rec arrow.RecordBatch, types []Type) (*batch, error) {
	if int(rec.NumCols()) != len(types) {
		return nil, fmt.Errorf("query: scan returned %d columns, want %d", rec.NumCols(), len(types))
	}
	b := &batch{n: int(rec.NumRows()), cols: make([]*vec, len(types))}
	for k := range types {
		v, err := vecFromArrow(rec.Column(k), types[k])
		if err != nil {
			return nil, err
		}
		b.cols[k] = v
	}
	return b, nil
}

// toRecord builds a record batch of schema s from cols.
func (p *Plan) toRecord(s *arrow.Schema, cols []*vec) arrow.RecordBatch {
	n := 0
	if len(cols) > 0 {
		n = cols[0].n
	}
	arrs := make([]arrow.Array, len(cols))
	for k, c := range cols {
		if c.t == Null {
			c = constVec(value{t: Int64, null: true}, c.n)
		}
		arrs[k] = c.toArrow(memory.DefaultAllocator)
	}
	rec := array.NewRecordBatch(s, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

func fromRecord(s *arrow.Schema, rec arrow.RecordBatch) ([]*vec, error) {
	if int(rec.NumCols()) != s.NumFields() {
		return nil, fmt.Errorf("query: fragment batch has %d columns, want %d", rec.NumCols(), s.NumFields())
	}
	cols := make([]*vec, rec.NumCols())
	for k := range cols {
		t, _ := typeOfArrow(s.Field(k).Type)
		if !arrow.TypeEqual(rec.Column(k).DataType(), s.Field(k).Type) {
			return nil, fmt.Errorf("query: fragment column %d has type %s, want %s", k, rec.Column(k).DataType(), s.Field(k).Type)
		}
		v, err := vecFromArrow(rec.Column(k), t)
		if err != nil {
			return nil, err
		}
		cols[k] = v
	}
	return cols, nil
}

func sliceVecs(cols []*vec, from, to int) []*vec {
	out := make([]*vec, len(cols))
	for k, c := range cols {
		c.materialize()
		v := &vec{t: c.t, n: to - from}
		switch c.t {
		case Int64, Date:
			v.i = c.i[from:to]
		case Float64:
			v.f = c.f[from:to]
		case String:
			v.s = c.s[from:to]
		case Bool:
			v.b = c.b[from:to]
		}
		if c.null != nil {
			v.null = c.null[from:to]
		}
		out[k] = v
	}
	return out
}

// rowSet accumulates rows for sorting.
type rowSet struct {
	cols []*vec
	n    int
}

func (r *rowSet) add(cols []*vec) {
	if r.cols == nil {
		r.cols = make([]*vec, len(cols))
		for k, c := range cols {
			r.cols[k] = newVec(c.t, c.n)
		}
	}
	for k, c := range cols {
		appendVec(r.cols[k], c)
	}
	if len(cols) > 0 {
		r.n += cols[0].n
	}
}

func appendVec(dst, src *vec) {
	src.materialize()
	if src.null != nil && dst.null == nil {
		dst.null = make([]bool, dst.n, dst.n+src.n)
	}
	if dst.null != nil {
		if src.null != nil {
			dst.null = append(dst.null, src.null[:src.n]...)
		} else {
			dst.null = append(dst.null, make([]bool, src.n)...)
		}
	}
	switch dst.t {
	case Int64, Date:
		if src.t == Null {
			dst.i = append(dst.i, make([]int64, src.n)...)
		} else {
			dst.i = append(dst.i, src.i[:src.n]...)
		}
	case Float64:
		if src.t == Null {
			dst.f = append(dst.f, make([]float64, src.n)...)
		} else {
			dst.f = append(dst.f, src.f[:src.n]...)
		}
	case String:
		if src.t == Null {
			dst.s = append(dst.s, make([]string, src.n)...)
		} else {
			dst.s = append(dst.s, src.s[:src.n]...)
		}
	case Bool:
		if src.t == Null {
			dst.b = append(dst.b, make([]bool, src.n)...)
		} else {
			dst.b = append(dst.b, src.b[:src.n]...)
		}
	}
	dst.n += src.n
}

// sortIndex returns the row order for the keys, which are the columns
// after the first nOut. NULLs sort last ascending and first descending.
func (r *rowSet) sortIndex(order []orderKey, nOut int) []int32 {
	idx := make([]int32, r.n)
	for k := range idx {
		idx[k] = int32(k)
	}
	keys := r.cols[nOut:]
	sort.SliceStable(idx, func(a, b int) bool {
		return lessRows(keys, order, int(idx[a]), int(idx[b]))
	})
	return idx
}

func lessRows(keys []*vec, order []orderKey, a, b int) bool {
	for k, o := range order {
		c := compareCells(keys[k], a, b)
		if o.desc {
			c = -c
		}
		if c != 0 {
			return c < 0
		}
	}
	return false
}

// compareCells orders rows a and b of v ascending with NULLs last.
func compareCells(v *vec, a, b int) int {
	na, nb := v.t == Null || v.isNull(a), v.t == Null || v.isNull(b)
	switch {
	case na && nb:
		return 0
	case na:
		return 1
	case nb:
		return -1
	}
	switch v.t {
	case Int64, Date:
		return cmp3(v.i[a], v.i[b])
	case Float64:
		return cmp3(v.f[a], v.f[b])
	case String:
		return cmp3(v.s[a], v.s[b])
	case Bool:
		return boolCmp(v.b[a], v.b[b])
	}
	return 0
}

func (r *rowSet) topK(order []orderKey, nOut int, k int64) {
	if r.cols == nil {
		return
	}
	idx := r.sortIndex(order, nOut)
	if int64(len(idx)) > k {
		idx = idx[:k]
	}
	for c, v := range r.cols {
		r.cols[c] = v.gather(idx)
	}
	r.n = len(idx)
}

// ---- the final stage ----

// Execute runs a plan with the runner and passes the result batches, laid
// out as p.Schema(), to emit. Rows reach emit while partitions are still
// being scanned when the query has neither aggregates nor ORDER BY.
func Execute(ctx context.Context, p *Plan, r Runner, emit func(arrow.RecordBatch) error) error {
	if r == nil {
		r = LocalRunner{}
	}
	fin := newFinal(p, emit)
	err := r.RunFragments(ctx, p, fin.add)
	if errors.Is(err, errEnough) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fin.finish()
}

type final struct {
	p       *Plan
	emit    func(arrow.RecordBatch) error
	aggr    *aggregator
	rows    *rowSet
	skipped int64
	sent    int64
}

func newFinal(p *Plan, emit func(arrow.RecordBatch) error) *final {
	f := &final{p: p, emit: emit}
	if p.agg {
		f.aggr = newAggregator(typesOf(p.groupBy), p.aggs)
	} else if len(p.order) > 0 {
		f.rows = &rowSet{}
	}
	return f
}

func (f *final) add(rec arrow.RecordBatch) error {
	p := f.p
	cols, err := fromRecord(p.fragment, rec)
	if err != nil {
		return err
	}
	m := int(rec.NumRows())
	switch {
	case p.agg && p.rawAgg:
		nk := len(p.groupBy)
		args := make([]*vec, len(p.aggs))
		at := nk
		for j, a := range p.aggs {
			if a.arg != nil {
				args[j] = cols[at]
				at++
			}
		}
		f.aggr.update(cols[:nk], args, m)
	case p.agg:
		f.aggr.merge(cols, m)
	case f.rows != nil:
		f.rows.add(cols)
		k := p.limit + p.offset
		if p.limit >= 0 && f.rows.n > max(2*int(k), 8192) {
			f.rows.topK(p.order, len(p.outputs), k)
		}
	default:
		return f.stream(cols, m)
	}
	return nil
}

// stream applies OFFSET and LIMIT to rows that need no further work.
func (f *final) stream(cols []*vec, m int) error {
	p := f.p
	from, to := 0, m
	if f.skipped < p.offset {
		skip := int(min(p.offset-f.skipped, int64(m)))
		f.skipped += int64(skip)
		from = skip
	}
	if p.limit >= 0 {
		to = from + int(min(int64(to-from), p.limit-f.sent))
	}
	if to > from {
		f.sent += int64(to - from)
		rec := p.toRecord(p.schema, sliceVecs(cols, from, to)[:len(p.outputs)])
		err := f.emit(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	if p.limit >= 0 && f.sent >= p.limit {
		return errEnough
	}
	return nil
}

func (f *final) finish() error {
	p := f.p
	if f.aggr != nil {
		cols := f.aggr.finalVecs()
		b := &batch{cols: cols, n: f.aggr.table.n}
		var sel []int32
		if p.having != nil {
			sel = filter(p.having, b, nil)
		}
		out := evalAll(p.outputs, b, sel)
		if len(p.order) == 0 {
			return f.streamChunks(out)
		}
		for _, o := range p.order {
			out = append(out, o.e.eval(b, sel))
		}
		f.rows = &rowSet{}
		f.rows.add(out)
		if rows(b, sel) == 0 {
			f.rows.n = 0
		}
	}
	if f.rows != nil {
		if f.rows.cols == nil {
			return nil
		}
		idx := f.rows.sortIndex(p.order, len(p.outputs))
		cols := make([]*vec, len(p.outputs))
		for c := range cols {
			cols[c] = f.rows.cols[c].gather(idx)
		}
		return f.streamChunks(cols)
	}
	return nil
}

func (f *final) streamChunks(cols []*vec) error {
	n := 0
	if len(cols) > 0 {
		n = cols[0].n
	}
	for from := 0; from < n; from += DefaultBatchRows {
		err := f.stream(sliceVecs(cols, from, min(from+DefaultBatchRows, n)), min(DefaultBatchRows, n-from))
		if errors.Is(err, errEnough) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- convenience ----

// Engine runs SQL against a catalog with a runner.
type Engine struct {
	Catalog *Catalog
	// Runner runs partition fragments (default: LocalRunner{}).
	Runner Runner
}

// Query plans and runs sql and returns the whole result.
func (e *Engine) Query(ctx context.Context, sql string) (*arrow.Schema, []arrow.RecordBatch, error) {
	p, err := Prepare(e.Catalog, sql)
	if err != nil {
		return nil, nil, err
	}
	var out []arrow.RecordBatch
	err = Execute(ctx, p, e.Runner, func(rec arrow.RecordBatch) error {
		rec.Retain()
		out = append(out, rec)
		return nil
	})
	if err != nil {
		for _, r := range out {
			r.Release()
		}
		return nil, nil, err
	}
	return p.Schema(), out, nil
}

// scanBatchRows is the batch size scans are asked for; tests lower it to
// exercise many batches per partition.
var scanBatchRows = DefaultBatchRows
