package query

import (
	"encoding/binary"
	"math"
)

// Aggregate functions.
type aggKind uint8

const (
	aggCountStar aggKind = iota
	aggCount
	aggSum
	aggAvg
	aggMin
	aggMax
	aggCountDistinct
)

var aggNames = [...]string{"COUNT", "COUNT", "SUM", "AVG", "MIN", "MAX", "COUNT"}

// aggSpec is one aggregate call of a query.
type aggSpec struct {
	kind aggKind
	arg  expr // nil for COUNT(*)
}

func (a *aggSpec) String() string {
	switch a.kind {
	case aggCountStar:
		return "COUNT(*)"
	case aggCountDistinct:
		return "COUNT(DISTINCT " + a.arg.String() + ")"
	}
	return aggNames[a.kind] + "(" + a.arg.String() + ")"
}

// resultType is the type of the aggregate's final value.
func (a *aggSpec) resultType() Type {
	switch a.kind {
	case aggCountStar, aggCount, aggCountDistinct:
		return Int64
	case aggAvg:
		return Float64
	}
	return a.arg.typ()
}

// stateTypes are the column types of the aggregate's partial state.
func (a *aggSpec) stateTypes() []Type {
	switch a.kind {
	case aggCountStar, aggCount:
		return []Type{Int64}
	case aggSum:
		return []Type{a.arg.typ(), Int64}
	case aggAvg:
		return []Type{Float64, Int64}
	case aggMin, aggMax:
		return []Type{a.arg.typ()}
	}
	return nil // COUNT(DISTINCT) has no partial state; see plan.rawAgg
}

// ---- group table ----

// groupTable maps group keys to dense group ids 0..n-1 and keeps the key
// values of each group. Written for this engine: arrow-go has no hash
// aggregation kernels.
type groupTable struct {
	types []Type
	keys  []*vec
	n     int
	ints  map[int64]int32 // one BIGINT or DATE key
	strs  map[string]int32
	null  int32 // group of the NULL key for single-key tables, or -1
	buf   []byte
	// Several keys of small cardinality (TPC-H Q1's two flags) take a
	// faster path: each key column's values get dense codes, and the codes
	// packed into one uint64 find the group.
	fast   bool
	coders []keyCoder
	comp   map[uint64]int32
	// codedTab is idsCoded's table, kept between batches.
	codedTab []int32
}

// keyCoder gives the distinct values of one key column dense codes from 1
// (0 is NULL). Few distinct strings are found by a linear scan, which beats
// a map lookup for short lists.
type keyCoder struct {
	strs []string
	smap map[string]uint32
	ints map[int64]uint32
}

func (c *keyCoder) code(v *vec, k int) uint32 {
	if v.isNull(k) {
		return 0
	}
	switch v.t {
	case String:
		s := v.strAt(k)
		if c.smap == nil {
			for j, x := range c.strs {
				if x == s {
					return uint32(j + 1)
				}
			}
			c.strs = append(c.strs, s)
			if len(c.strs) > 16 {
				c.smap = map[string]uint32{}
				for j, x := range c.strs {
					c.smap[x] = uint32(j + 1)
				}
			}
			return uint32(len(c.strs))
		}
		if code, ok := c.smap[s]; ok {
			return code
		}
		c.strs = append(c.strs, s)
		c.smap[s] = uint32(len(c.strs))
		return uint32(len(c.strs))
	case Bool:
		if v.b[k] {
			return 2
		}
		return 1
	default:
		if c.ints == nil {
			c.ints = map[int64]uint32{}
		}
		if code, ok := c.ints[v.i[k]]; ok {
			return code
		}
		code := uint32(len(c.ints) + 1)
		c.ints[v.i[k]] = code
		return code
	}
}

func newGroupTable(types []Type) *groupTable {
	g := &groupTable{types: types, null: -1}
	for _, t := range types {
		g.keys = append(g.keys, newVec(t, 16))
	}
	if len(types) == 1 && (types[0] == Int64 || types[0] == Date) {
		g.ints = map[int64]int32{}
	} else {
		g.strs = map[string]int32{}
	}
	if len(types) >= 2 && len(types) <= 4 {
		g.fast = true
		for _, t := range types {
			if t == Float64 || t == Null {
				g.fast = false
			}
		}
		g.coders = make([]keyCoder, len(types))
		g.comp = map[uint64]int32{}
	}
	return g
}

// slow leaves the packed-code path (a key column has more than 65535
// distinct values) for the general one, carrying the groups over.
func (g *groupTable) slow() {
	g.fast = false
	for id := 0; id < g.n; id++ {
		g.buf = encodeKey(g.buf[:0], g.keys, id)
		g.strs[string(g.buf)] = int32(id)
	}
	g.coders, g.comp = nil, nil
}

func (g *groupTable) add(kv []*vec, k int) int32 {
	id := int32(g.n)
	for c, v := range kv {
		g.keys[c].appendValue(v.get(k))
	}
	g.n++
	return id
}

// ids assigns each of the m rows of the key vectors its group id.
func (g *groupTable) ids(kv []*vec, m int, out []int32) { g.idsSel(kv, m, nil, out) }

// idsSel assigns group ids to rows sel[0..m) of the key vectors (rows
// 0..m when sel is nil); out[q] is the id of the q-th of those rows.
func (g *groupTable) idsSel(kv []*vec, m int, sel []int32, out []int32) {
	row := func(q int) int {
		if sel == nil {
			return q
		}
		return int(sel[q])
	}
	if len(kv) == 0 {
		if g.n == 0 {
			g.n = 1
		}
		for q := range out[:m] {
			out[q] = 0
		}
		return
	}
	if g.ints != nil {
		v := kv[0]
		for q := 0; q < m; q++ {
			k := row(q)
			if v.isNull(k) {
				if g.null < 0 {
					g.null = g.add(kv, k)
				}
				out[q] = g.null
				continue
			}
			id, ok := g.ints[v.i[k]]
			if !ok {
				id = g.add(kv, k)
				g.ints[v.i[k]] = id
			}
			out[q] = id
		}
		return
	}
	if len(kv) == 1 && kv[0].t == String {
		v := kv[0]
		v.materialize()
		for q := 0; q < m; q++ {
			k := row(q)
			if v.isNull(k) {
				if g.null < 0 {
					g.null = g.add(kv, k)
				}
				out[q] = g.null
				continue
			}
			id, ok := g.strs[v.s[k]]
			if !ok {
				id = g.add(kv, k)
				g.strs[v.s[k]] = id
			}
			out[q] = id
		}
		return
	}
	q := 0
	if g.fast {
		if g.idsCoded(kv, m, sel, out) {
			return
		}
		var lastComp uint64 = 1<<64 - 1
		var lastID int32
		// Dictionary-encoded columns: translate each dictionary word once,
		// then rows map through their codes.
		tr := make([][]uint32, len(kv))
		for c, v := range kv {
			if v.codes != nil && len(v.dict) <= 4096 {
				t := make([]uint32, len(v.dict))
				for j := range t {
					t[j] = 1<<32 - 1 // not seen yet
				}
				tr[c] = t
			}
		}
	rows:
		for ; q < m; q++ {
			k := row(q)
			var comp uint64
			for c, v := range kv {
				var code uint32
				if t := tr[c]; t != nil && !v.isNull(k) {
					j := v.codes[k]
					code = t[j]
					if code == 1<<32-1 {
						code = g.coders[c].code(v, k)
						t[j] = code
					}
				} else {
					code = g.coders[c].code(v, k)
				}
				if code > 0xFFFF {
					g.slow()
					break rows
				}
				comp |= uint64(code) << (16 * c)
			}
			if comp == lastComp {
				out[q] = lastID
				continue
			}
			id, ok := g.comp[comp]
			if !ok {
				id = g.add(kv, k)
				g.comp[comp] = id
			}
			out[q], lastComp, lastID = id, comp, id
		}
		if g.fast {
			return
		}
	}
	for ; q < m; q++ {
		k := row(q)
		g.buf = encodeKey(g.buf[:0], kv, k)
		id, ok := g.strs[string(g.buf)]
		if !ok {
			id = g.add(kv, k)
			g.strs[string(g.buf)] = id
		}
		out[q] = id
	}
}

// idsCoded is the path for keys that are all dictionary codes with small
// dictionaries and no NULLs (TPC-H Q1's flags): the codes of a row index
// one table of group ids, filled the first time each combination shows
// up. It returns false, having done nothing, for other keys.
func (g *groupTable) idsCoded(kv []*vec, m int, sel []int32, out []int32) bool {
	size := 1
	for _, v := range kv {
		if v.codes == nil || v.null != nil || len(v.dict) == 0 {
			return false
		}
		size *= len(v.dict)
		if size > 1<<12 {
			return false
		}
	}
	if cap(g.codedTab) < size {
		g.codedTab = make([]int32, size)
	}
	tab := g.codedTab[:size]
	for j := range tab {
		tab[j] = -1
	}
	var one [1]int32
	for q := 0; q < m; q++ {
		k := q
		if sel != nil {
			k = int(sel[q])
		}
		at := 0
		for _, v := range kv {
			at = at*len(v.dict) + int(v.codes[k])
		}
		id := tab[at]
		if id < 0 {
			// The general path finds (or makes) the group, once per
			// combination and batch.
			g.idsSlowRow(kv, k, one[:])
			id = one[0]
			tab[at] = id
		}
		out[q] = id
	}
	return true
}

// idsSlowRow finds the group of row k through the per-column coders.
func (g *groupTable) idsSlowRow(kv []*vec, k int, out []int32) {
	if !g.fast { // a key outgrew the packed codes (see slow)
		g.idsSel(kv, 1, []int32{int32(k)}, out)
		return
	}
	var comp uint64
	for c, v := range kv {
		code := g.coders[c].code(v, k)
		if code > 0xFFFF {
			g.slow()
			g.idsSel(kv, 1, []int32{int32(k)}, out)
			return
		}
		comp |= uint64(code) << (16 * c)
	}
	id, ok := g.comp[comp]
	if !ok {
		id = g.add(kv, k)
		g.comp[comp] = id
	}
	out[0] = id
}

// encodeKey appends an unambiguous encoding of row k of kv to buf.
func encodeKey(buf []byte, kv []*vec, k int) []byte {
	for _, v := range kv {
		if v.t == Null || v.isNull(k) {
			buf = append(buf, 0)
			continue
		}
		buf = append(buf, 1)
		switch v.t {
		case Int64, Date:
			buf = binary.LittleEndian.AppendUint64(buf, uint64(v.i[k]))
		case Float64:
			f := v.f[k]
			if f == 0 {
				f = 0 // -0 and +0 are one group
			}
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(f))
		case String:
			str := v.strAt(k)
			buf = binary.AppendUvarint(buf, uint64(len(str)))
			buf = append(buf, str...)
		case Bool:
			if v.b[k] {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
		}
	}
	return buf
}

// ---- accumulators ----

// accum holds one aggregate's state for every group.
type accum interface {
	// update folds raw argument values (nil for COUNT(*)) into groups.
	update(gids []int32, arg *vec, groups int)
	// merge folds partial states (as produced by states) into groups.
	merge(gids []int32, st []*vec, groups int)
	states(groups int) []*vec
	final(groups int) *vec
}

func newAccum(a *aggSpec) accum {
	switch a.kind {
	case aggCountStar, aggCount:
		return &countAcc{star: a.kind == aggCountStar}
	case aggSum, aggAvg:
		return &sumAcc{t: a.arg.typ(), avg: a.kind == aggAvg}
	case aggMin, aggMax:
		return &minMaxAcc{t: a.arg.typ(), max: a.kind == aggMax}
	case aggCountDistinct:
		return &distinctAcc{}
	}
	return nil
}

func growTo[T any](s []T, n int) []T {
	if len(s) >= n {
		return s
	}
	if cap(s) >= n {
		return s[:n]
	}
	out := make([]T, n, max(n, 2*cap(s)))
	copy(out, s)
	return out
}

type countAcc struct {
	star bool
	c    []int64
}

func (a *countAcc) update(gids []int32, arg *vec, groups int) {
	a.c = growTo(a.c, groups)
	c := a.c
	if a.star || arg.null == nil {
		for _, g := range gids {
			c[g]++
		}
		return
	}
	for k, g := range gids {
		if !arg.null[k] {
			c[g]++
		}
	}
}

func (a *countAcc) merge(gids []int32, st []*vec, groups int) {
	a.c = growTo(a.c, groups)
	for k, g := range gids {
		a.c[g] += st[0].i[k]
	}
}

func (a *countAcc) states(groups int) []*vec { return []*vec{a.final(groups)} }
func (a *countAcc) final(groups int) *vec {
	a.c = growTo(a.c, groups)
	return &vec{t: Int64, n: groups, i: a.c[:groups]}
}

type sumAcc struct {
	t   Type
	avg bool
	f   []float64
	i   []int64
	cnt []int64
}

func (a *sumAcc) ints() bool { return a.t == Int64 && !a.avg }

func (a *sumAcc) grow(groups int) {
	a.cnt = growTo(a.cnt, groups)
	if a.ints() {
		a.i = growTo(a.i, groups)
	} else {
		a.f = growTo(a.f, groups)
	}
}

func (a *sumAcc) update(gids []int32, arg *vec, groups int) {
	a.grow(groups)
	cnt := a.cnt
	switch {
	case arg.t == Null:
	case arg.t == Float64:
		f, x := a.f, arg.f
		if arg.null == nil {
			for k, g := range gids {
				f[g] += x[k]
				cnt[g]++
			}
			return
		}
		for k, g := range gids {
			if !arg.null[k] {
				f[g] += x[k]
				cnt[g]++
			}
		}
	case a.avg: // AVG of integers sums in float64
		f, x := a.f, arg.i
		for k, g := range gids {
			if !arg.isNull(k) {
				f[g] += float64(x[k])
				cnt[g]++
			}
		}
	default:
		s, x := a.i, arg.i
		if arg.null == nil {
			for k, g := range gids {
				s[g] += x[k]
				cnt[g]++
			}
			return
		}
		for k, g := range gids {
			if !arg.null[k] {
				s[g] += x[k]
				cnt[g]++
			}
		}
	}
}

func (a *sumAcc) merge(gids []int32, st []*vec, groups int) {
	a.grow(groups)
	for k, g := range gids {
		if !a.ints() {
			a.f[g] += st[0].f[k]
		} else {
			a.i[g] += st[0].i[k]
		}
		a.cnt[g] += st[1].i[k]
	}
}

func (a *sumAcc) states(groups int) []*vec {
	a.grow(groups)
	s := &vec{t: Float64, n: groups}
	if !a.ints() {
		s.f = a.f[:groups]
	} else {
		s.t, s.i = Int64, a.i[:groups]
	}
	return []*vec{s, {t: Int64, n: groups, i: a.cnt[:groups]}}
}

func (a *sumAcc) final(groups int) *vec {
	a.grow(groups)
	out := &vec{n: groups}
	var null []bool
	for g := 0; g < groups; g++ {
		if a.cnt[g] == 0 {
			if null == nil {
				null = make([]bool, groups)
			}
			null[g] = true
		}
	}
	out.null = null
	switch {
	case a.avg:
		out.t = Float64
		out.f = make([]float64, groups)
		for g := range out.f {
			if a.cnt[g] > 0 {
				out.f[g] = a.f[g] / float64(a.cnt[g])
			}
		}
	case !a.ints():
		out.t, out.f = Float64, a.f[:groups]
	default:
		out.t, out.i = Int64, a.i[:groups]
	}
	return out
}

type minMaxAcc struct {
	t    Type
	max  bool
	v    *vec
	have []bool
}

func (a *minMaxAcc) grow(groups int) {
	if a.v == nil {
		a.v = newVec(a.t, groups)
	}
	for a.v.n < groups {
		a.v.appendValue(value{t: a.t, null: true})
	}
	a.have = growTo(a.have, groups)
}

func (a *minMaxAcc) better(x value, g int32) bool {
	if !a.have[g] {
		return true
	}
	c := compareValues(x, a.v.get(int(g)))
	if a.max {
		return c > 0
	}
	return c < 0
}

func (a *minMaxAcc) set(g int32, x value) {
	a.have[g] = true
	a.v.null[g] = false
	switch a.t {
	case Int64, Date:
		a.v.i[g] = x.i
	case Float64:
		a.v.f[g] = x.f
	case String:
		a.v.s[g] = x.s
	case Bool:
		a.v.b[g] = x.b
	}
}

func (a *minMaxAcc) update(gids []int32, arg *vec, groups int) {
	a.grow(groups)
	if arg.t == Null {
		return
	}
	if arg.t == Float64 && arg.null == nil {
		f := a.v.f
		for k, g := range gids {
			x := arg.f[k]
			if !a.have[g] || (a.max && x > f[g]) || (!a.max && x < f[g]) {
				a.have[g] = true
				a.v.null[g] = false
				f[g] = x
			}
		}
		return
	}
	for k, g := range gids {
		if arg.isNull(k) {
			continue
		}
		x := arg.get(k)
		if a.better(x, g) {
			a.set(g, x)
		}
	}
}

func (a *minMaxAcc) merge(gids []int32, st []*vec, groups int) { a.update(gids, st[0], groups) }
func (a *minMaxAcc) states(groups int) []*vec                  { return []*vec{a.final(groups)} }
func (a *minMaxAcc) final(groups int) *vec {
	a.grow(groups)
	return a.v
}

type distinctAcc struct {
	sets []map[string]struct{}
	buf  []byte
}

func (a *distinctAcc) update(gids []int32, arg *vec, groups int) {
	for len(a.sets) < groups {
		a.sets = append(a.sets, map[string]struct{}{})
	}
	one := []*vec{arg}
	for k, g := range gids {
		if arg.t == Null || arg.isNull(k) {
			continue
		}
		a.buf = encodeKey(a.buf[:0], one, k)
		if _, ok := a.sets[g][string(a.buf)]; !ok {
			a.sets[g][string(a.buf)] = struct{}{}
		}
	}
}

func (a *distinctAcc) merge([]int32, []*vec, int) {}
func (a *distinctAcc) states(int) []*vec          { return nil }
func (a *distinctAcc) final(groups int) *vec {
	out := &vec{t: Int64, n: groups, i: make([]int64, groups)}
	for g := 0; g < groups && g < len(a.sets); g++ {
		out.i[g] = int64(len(a.sets[g]))
	}
	return out
}

// compareValues orders two non-null values of the same type.
func compareValues(a, b value) int {
	switch a.t {
	case Int64, Date:
		return cmp3(a.i, b.i)
	case Float64:
		return cmp3(a.f, b.f)
	case String:
		return cmp3(a.s, b.s)
	case Bool:
		return boolCmp(a.b, b.b)
	}
	return 0
}

func cmp3[T int64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ---- aggregator ----

// aggregator is a hash aggregation: a group table and one accumulator per
// aggregate.
type aggregator struct {
	specs  []*aggSpec
	table  *groupTable
	accs   []accum
	gids   []int32
	counts []int64
}

func newAggregator(keyTypes []Type, specs []*aggSpec) *aggregator {
	a := &aggregator{specs: specs, table: newGroupTable(keyTypes)}
	for _, s := range specs {
		a.accs = append(a.accs, newAccum(s))
	}
	if len(keyTypes) == 0 {
		a.table.n = 1 // a global aggregate has one group, even over no rows
	}
	return a
}

// update folds m raw rows: key values and one argument vector per
// aggregate (nil for COUNT(*)).
func (a *aggregator) update(keys []*vec, args []*vec, m int) {
	a.gids = growTo(a.gids, m)[:m]
	a.table.ids(keys, m, a.gids)
	for k, acc := range a.accs {
		acc.update(a.gids, args[k], a.table.n)
	}
}

// updateSel folds the rows sel of full-batch key and argument vectors:
// rows outside sel (those the filter dropped) are skipped, so a filter
// that keeps most rows needs no compacted copy of the batch.
func (a *aggregator) updateSel(keys []*vec, args []*vec, sel []int32) {
	m := len(sel)
	a.gids = growTo(a.gids, m)[:m]
	a.table.idsSel(keys, m, sel, a.gids)
	groups := a.table.n
	// Rows per group, counted once for every COUNT, SUM and AVG whose
	// argument has no NULLs.
	a.counts = growTo(a.counts, groups)[:groups]
	clear(a.counts)
	for _, g := range a.gids {
		a.counts[g]++
	}
	for k, acc := range a.accs {
		if s, ok := acc.(selUpdater); ok {
			s.updateSel(a.gids, sel, args[k], groups, a.counts)
			continue
		}
		var arg *vec
		if args[k] != nil {
			arg = args[k].gather(sel)
		}
		acc.update(a.gids, arg, groups)
	}
}

// selUpdater is implemented by accumulators that fold rows sel of a
// full-batch argument (gids[q] is the group of row sel[q]) directly;
// counts[g] is the number of those rows in group g.
type selUpdater interface {
	updateSel(gids, sel []int32, arg *vec, groups int, counts []int64)
}

func (a *countAcc) updateSel(gids, sel []int32, arg *vec, groups int, counts []int64) {
	a.c = growTo(a.c, groups)
	c := a.c
	if a.star || arg.null == nil {
		for g, n := range counts[:groups] {
			c[g] += n
		}
		return
	}
	for q, r := range sel {
		if !arg.null[r] {
			c[gids[q]]++
		}
	}
}

// sumLanes is how many groups the interleaved summation handles.
const sumLanes = 64

func (a *sumAcc) updateSel(gids, sel []int32, arg *vec, groups int, counts []int64) {
	if arg.t != Float64 || arg.null != nil {
		a.update(gids, arg.gather(sel), groups)
		return
	}
	a.grow(groups)
	f, cnt, x := a.f, a.cnt, arg.f
	for g, n := range counts[:groups] {
		cnt[g] += n
	}
	if groups > sumLanes {
		for q, r := range sel {
			f[gids[q]] += x[r]
		}
		return
	}
	// Few groups: consecutive rows mostly hit the same group, and adding
	// into one memory cell row after row waits on the previous add. Four
	// independent partial sums per group take turns instead.
	var lanes [4][sumLanes]float64
	q := 0
	for ; q+4 <= len(sel); q += 4 {
		lanes[0][gids[q]&(sumLanes-1)] += x[sel[q]]
		lanes[1][gids[q+1]&(sumLanes-1)] += x[sel[q+1]]
		lanes[2][gids[q+2]&(sumLanes-1)] += x[sel[q+2]]
		lanes[3][gids[q+3]&(sumLanes-1)] += x[sel[q+3]]
	}
	for ; q < len(sel); q++ {
		lanes[0][gids[q]&(sumLanes-1)] += x[sel[q]]
	}
	for g := 0; g < groups; g++ {
		f[g] += (lanes[0][g] + lanes[1][g]) + (lanes[2][g] + lanes[3][g])
	}
}

// merge folds m rows of partial states (laid out as partialVecs makes them).
func (a *aggregator) merge(cols []*vec, m int) {
	nk := len(a.table.types)
	a.gids = growTo(a.gids, m)[:m]
	a.table.ids(cols[:nk], m, a.gids)
	off := nk
	for k, acc := range a.accs {
		w := len(a.specs[k].stateTypes())
		acc.merge(a.gids, cols[off:off+w], a.table.n)
		off += w
	}
}

// partialVecs returns the keys followed by every aggregate's state.
func (a *aggregator) partialVecs() []*vec {
	n := a.table.n
	out := a.keyVecs()
	for _, acc := range a.accs {
		out = append(out, acc.states(n)...)
	}
	return out
}

// finalVecs returns the keys followed by every aggregate's value.
func (a *aggregator) finalVecs() []*vec {
	n := a.table.n
	out := a.keyVecs()
	for _, acc := range a.accs {
		out = append(out, acc.final(n))
	}
	return out
}

func (a *aggregator) keyVecs() []*vec {
	out := make([]*vec, 0, len(a.table.keys)+2*len(a.accs))
	for _, k := range a.table.keys {
		k.n = a.table.n
		if k.null != nil {
			k.null = growTo(k.null, k.n)
		}
		out = append(out, k)
	}
	return out
}
