package query

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// batch is a set of equally long columns in the engine's representation.
type batch struct {
	cols []*vec
	n    int
	// memo, when set, keeps the value of each arithmetic expression
	// evaluated on the whole batch, so a subexpression shared by several
	// aggregates (TPC-H Q1's l_extendedprice * (1 - l_discount)) is
	// computed once.
	memo map[string]*vec
	// scratch, when set, lends the buffers of computed columns; they are
	// given back (and so must not be kept) once the batch is done.
	scratch *scratch
}

// scratch is the set of pooled buffers a batch's computed columns use.
type scratch struct {
	f   []*[]float64
	i   []*[]int64
	sel []*[]int32
}

func (s *scratch) release() {
	for _, b := range s.f {
		poolF64.Put(b)
	}
	for _, b := range s.i {
		poolI64.Put(b)
	}
	for _, b := range s.sel {
		poolI32.Put(b)
	}
	s.f, s.i, s.sel = s.f[:0], s.i[:0], s.sel[:0]
}

// floats returns room for n values; every element must be written.
func (b *batch) floats(n int) []float64 {
	if b.scratch == nil {
		return make([]float64, n)
	}
	buf := getBuf[float64](&poolF64, n)
	b.scratch.f = append(b.scratch.f, buf)
	return *buf
}

// selBuf returns an empty selection with room for n rows.
func (b *batch) selBuf(n int) []int32 {
	if b.scratch == nil {
		return make([]int32, 0, n)
	}
	buf := getBuf[int32](&poolI32, n)
	b.scratch.sel = append(b.scratch.sel, buf)
	return (*buf)[:0]
}

// ints returns room for n values; every element must be written.
func (b *batch) ints(n int) []int64 {
	if b.scratch == nil {
		return make([]int64, n)
	}
	buf := getBuf[int64](&poolI64, n)
	b.scratch.i = append(b.scratch.i, buf)
	return *buf
}

// expr is a bound, typed scalar expression evaluated a batch at a time.
// eval returns one value per selected row (len(sel), or b.n if sel is nil).
type expr interface {
	typ() Type
	eval(b *batch, sel []int32) *vec
	String() string
}

func rows(b *batch, sel []int32) int {
	if sel == nil {
		return b.n
	}
	return len(sel)
}

// colExpr reads column idx of the batch.
type colExpr struct {
	idx  int
	t    Type
	name string
}

func (c *colExpr) typ() Type      { return c.t }
func (c *colExpr) String() string { return c.name }
func (c *colExpr) eval(b *batch, sel []int32) *vec {
	v := b.cols[c.idx]
	if v.lazy != nil && sel != nil {
		return v.gather(sel) // decodes only the selected rows
	}
	v.materialize()
	if sel == nil {
		return v
	}
	return v.gather(sel)
}

// litExpr is a constant. exact is 1 + the number of decimal digits of a
// constant known to be an exact decimal (a literal such as 0.06, or
// arithmetic on such literals), 0 otherwise: folding 0.06 + 0.01 then
// rounds to 0.07 as a decimal engine would, instead of 0.06999999999999999.
type litExpr struct {
	v     value
	exact int8
}

func (l *litExpr) typ() Type { return l.v.t }
func (l *litExpr) String() string {
	switch {
	case l.v.null:
		return "NULL"
	case l.v.t == String:
		return "'" + strings.ReplaceAll(l.v.s, "'", "''") + "'"
	case l.v.t == Date:
		return "DATE '" + formatDate(l.v.i) + "'"
	}
	return l.v.String()
}
func (l *litExpr) eval(b *batch, sel []int32) *vec { return constVec(l.v, rows(b, sel)) }

// castExpr converts between numeric types, and from strings to dates.
type castExpr struct {
	e  expr
	to Type
}

func (c *castExpr) typ() Type      { return c.to }
func (c *castExpr) String() string { return fmt.Sprintf("CAST(%s AS %s)", c.e, c.to) }
func (c *castExpr) eval(b *batch, sel []int32) *vec {
	in := c.e.eval(b, sel)
	n := in.n
	out := &vec{t: c.to, n: n, null: in.null}
	switch {
	case in.t == c.to:
		return in
	case in.t == Null:
		return constVec(value{t: c.to, null: true}, n)
	case in.t == Int64 && c.to == Float64:
		out.f = make([]float64, n)
		for k, x := range in.i[:n] {
			out.f[k] = float64(x)
		}
	case in.t == Float64 && c.to == Int64:
		out.i = make([]int64, n)
		for k, x := range in.f[:n] {
			out.i[k] = int64(x)
		}
	case in.t == Bool && c.to == Int64:
		out.i = make([]int64, n)
		for k, x := range in.b[:n] {
			if x {
				out.i[k] = 1
			}
		}
	case c.to == String:
		out.s = make([]string, n)
		for k := 0; k < n; k++ {
			out.s[k] = in.get(k).String()
		}
	case in.t == String:
		out.null = make([]bool, n)
		switch c.to {
		case Date:
			out.i = make([]int64, n)
		case Int64:
			out.i = make([]int64, n)
		case Float64:
			out.f = make([]float64, n)
		case Bool:
			out.b = make([]bool, n)
		}
		for k := 0; k < n; k++ {
			if in.isNull(k) {
				out.null[k] = true
				continue
			}
			x, ok := parseAs(in.s[k], c.to)
			if !ok {
				out.null[k] = true
				continue
			}
			switch c.to {
			case Date, Int64:
				out.i[k] = x.i
			case Float64:
				out.f[k] = x.f
			case Bool:
				out.b[k] = x.b
			}
		}
	default:
		return constVec(value{t: c.to, null: true}, n)
	}
	return out
}

func parseAs(s string, t Type) (value, bool) {
	s = strings.TrimSpace(s)
	switch t {
	case Date:
		d, ok := parseDate(s)
		return value{t: Date, i: d}, ok
	case Int64:
		i, err := strconv.ParseInt(s, 10, 64)
		return value{t: Int64, i: i}, err == nil
	case Float64:
		f, err := strconv.ParseFloat(s, 64)
		return value{t: Float64, f: f}, err == nil
	case Bool:
		b, err := strconv.ParseBool(s)
		return value{t: Bool, b: b}, err == nil
	case String:
		return value{t: String, s: s}, true
	}
	return value{}, false
}

// orNulls merges two null masks.
func orNulls(a, b []bool, n int) []bool {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := make([]bool, n)
	for k := range out {
		out[k] = a[k] || b[k]
	}
	return out
}

// arithExpr is + - * / % over two operands of the same numeric type, or
// date ± days and date - date.
type arithExpr struct {
	op   byte
	l, r expr
	t    Type
}

func (a *arithExpr) typ() Type      { return a.t }
func (a *arithExpr) String() string { return fmt.Sprintf("(%s %c %s)", a.l, a.op, a.r) }
func (a *arithExpr) eval(b *batch, sel []int32) *vec {
	if b.memo != nil && sel == nil {
		key := a.String()
		if v, ok := b.memo[key]; ok {
			return v
		}
		v := a.compute(b, nil)
		b.memo[key] = v
		return v
	}
	return a.compute(b, sel)
}

func (a *arithExpr) compute(b *batch, sel []int32) *vec {
	// Constant operands are common (x * 0.5, 1 - x): avoid building a
	// constant vector for them.
	if lit, ok := a.l.(*litExpr); ok && !lit.v.null && a.l.typ() == Float64 && a.r.typ() == Float64 && (a.op == '+' || a.op == '-' || a.op == '*') {
		r := a.r.eval(b, sel)
		n := r.n
		out := &vec{t: a.t, n: n, null: r.null}
		out.f = b.floats(n)
		arithFloatConst(a.op, r.f[:n], lit.v.f, out.f, true)
		return out
	}
	l := a.l.eval(b, sel)
	n := l.n
	if lit, ok := a.r.(*litExpr); ok && !lit.v.null && a.l.typ() == a.r.typ() {
		out := &vec{t: a.t, n: n, null: l.null}
		switch a.l.typ() {
		case Float64:
			if a.op == '%' || (a.op == '/' && lit.v.f == 0) {
				break // the general loop makes these NULL where SQL says so
			}
			out.f = b.floats(n)
			arithFloatConst(a.op, l.f[:n], lit.v.f, out.f, false)
			return out
		case Int64, Date:
			if a.op != '/' && a.op != '%' {
				out.i = b.ints(n)
				arithIntConst(a.op, l.i[:n], lit.v.i, out.i)
				return out
			}
		}
	}
	r := a.r.eval(b, sel)
	out := &vec{t: a.t, n: n, null: orNulls(l.null, r.null, n)}
	if l.t == Null || r.t == Null {
		return constVec(value{t: a.t, null: true}, n)
	}
	switch {
	case a.t == Float64 && l.t == Float64:
		out.f = b.floats(n)
		lf, rf, of := l.f[:n], r.f[:n], out.f
		switch a.op {
		case '+':
			for k := range of {
				of[k] = lf[k] + rf[k]
			}
		case '-':
			for k := range of {
				of[k] = lf[k] - rf[k]
			}
		case '*':
			for k := range of {
				of[k] = lf[k] * rf[k]
			}
		case '/', '%':
			out.null = make([]bool, n)
			for k := range of {
				if l.isNull(k) || r.isNull(k) || rf[k] == 0 {
					out.null[k] = true
					of[k] = 0
					continue
				}
				if a.op == '/' {
					of[k] = lf[k] / rf[k]
				} else {
					of[k] = math.Mod(lf[k], rf[k])
				}
			}
		}
	default: // integer and date arithmetic
		out.i = b.ints(n)
		li, ri, oi := l.i[:n], r.i[:n], out.i
		switch a.op {
		case '+':
			for k := range oi {
				oi[k] = li[k] + ri[k]
			}
		case '-':
			for k := range oi {
				oi[k] = li[k] - ri[k]
			}
		case '*':
			for k := range oi {
				oi[k] = li[k] * ri[k]
			}
		case '%':
			out.null = make([]bool, n)
			for k := range oi {
				if l.isNull(k) || r.isNull(k) || ri[k] == 0 {
					out.null[k] = true
					oi[k] = 0
					continue
				}
				oi[k] = li[k] % ri[k]
			}
		}
	}
	return out
}

func arithFloatConst(op byte, x []float64, c float64, out []float64, constLeft bool) {
	switch {
	case op == '+':
		for k, v := range x {
			out[k] = v + c
		}
	case op == '*':
		for k, v := range x {
			out[k] = v * c
		}
	case op == '-' && !constLeft:
		for k, v := range x {
			out[k] = v - c
		}
	case op == '-':
		for k, v := range x {
			out[k] = c - v
		}
	case op == '/' && !constLeft:
		for k, v := range x {
			out[k] = v / c
		}
	case op == '/':
		for k, v := range x {
			out[k] = c / v
		}
	}
}

func arithIntConst(op byte, x []int64, c int64, out []int64) {
	switch op {
	case '+':
		for k, v := range x {
			out[k] = v + c
		}
	case '-':
		for k, v := range x {
			out[k] = v - c
		}
	case '*':
		for k, v := range x {
			out[k] = v * c
		}
	}
}

// negExpr is unary minus.
type negExpr struct{ e expr }

func (g *negExpr) typ() Type      { return g.e.typ() }
func (g *negExpr) String() string { return fmt.Sprintf("(-%s)", g.e) }
func (g *negExpr) eval(b *batch, sel []int32) *vec {
	in := g.e.eval(b, sel)
	out := &vec{t: in.t, n: in.n, null: in.null}
	if in.t == Float64 {
		out.f = make([]float64, in.n)
		for k, x := range in.f[:in.n] {
			out.f[k] = -x
		}
	} else {
		out.i = make([]int64, in.n)
		for k, x := range in.i[:in.n] {
			out.i[k] = -x
		}
	}
	return out
}

// addMonthsExpr adds a constant number of months to a date.
type addMonthsExpr struct {
	e      expr
	months int64
}

func (m *addMonthsExpr) typ() Type { return Date }
func (m *addMonthsExpr) String() string {
	return fmt.Sprintf("(%s + INTERVAL %d MONTH)", m.e, m.months)
}
func (m *addMonthsExpr) eval(b *batch, sel []int32) *vec {
	in := m.e.eval(b, sel)
	out := &vec{t: Date, n: in.n, null: in.null, i: make([]int64, in.n)}
	for k, d := range in.i[:in.n] {
		out.i[k] = addMonths(d, m.months)
	}
	return out
}

// Comparison operators.
const (
	opEQ = iota
	opNE
	opLT
	opLE
	opGT
	opGE
)

var cmpNames = [...]string{"=", "<>", "<", "<=", ">", ">="}

// cmpExpr compares two operands of the same type.
type cmpExpr struct {
	op   int
	l, r expr
}

func (c *cmpExpr) typ() Type { return Bool }
func (c *cmpExpr) String() string {
	return fmt.Sprintf("(%s %s %s)", c.l, cmpNames[c.op], c.r)
}

func cmpResult(op int, c int) bool {
	switch op {
	case opEQ:
		return c == 0
	case opNE:
		return c != 0
	case opLT:
		return c < 0
	case opLE:
		return c <= 0
	case opGT:
		return c > 0
	}
	return c >= 0
}

func (c *cmpExpr) eval(b *batch, sel []int32) *vec {
	l := c.l.eval(b, sel)
	r := c.r.eval(b, sel)
	n := l.n
	out := &vec{t: Bool, n: n, b: make([]bool, n), null: orNulls(l.null, r.null, n)}
	if l.t == Null || r.t == Null {
		return constVec(value{t: Bool, null: true}, n)
	}
	switch l.t {
	case Int64, Date:
		cmpSlices(c.op, l.i[:n], r.i[:n], out.b)
	case Float64:
		cmpSlices(c.op, l.f[:n], r.f[:n], out.b)
	case String:
		cmpSlices(c.op, l.s[:n], r.s[:n], out.b)
	case Bool:
		for k := range out.b {
			out.b[k] = cmpResult(c.op, boolCmp(l.b[k], r.b[k]))
		}
	}
	return out
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func cmpSlices[T int64 | float64 | string](op int, l, r []T, out []bool) {
	switch op {
	case opEQ:
		for k := range out {
			out[k] = l[k] == r[k]
		}
	case opNE:
		for k := range out {
			out[k] = l[k] != r[k]
		}
	case opLT:
		for k := range out {
			out[k] = l[k] < r[k]
		}
	case opLE:
		for k := range out {
			out[k] = l[k] <= r[k]
		}
	case opGT:
		for k := range out {
			out[k] = l[k] > r[k]
		}
	case opGE:
		for k := range out {
			out[k] = l[k] >= r[k]
		}
	}
}

// Boolean connectives with SQL's three-valued logic.
type andExpr struct{ l, r expr }
type orExpr struct{ l, r expr }
type notExpr struct{ e expr }

func (a *andExpr) typ() Type      { return Bool }
func (a *andExpr) String() string { return fmt.Sprintf("(%s AND %s)", a.l, a.r) }
func (a *andExpr) eval(b *batch, sel []int32) *vec {
	l, r := a.l.eval(b, sel), a.r.eval(b, sel)
	out := &vec{t: Bool, n: l.n, b: make([]bool, l.n)}
	if l.null != nil || r.null != nil {
		out.null = make([]bool, l.n)
	}
	for k := range out.b {
		lf := !l.isNull(k) && !l.b[k]
		rf := !r.isNull(k) && !r.b[k]
		switch {
		case lf || rf:
		case l.isNull(k) || r.isNull(k):
			out.null[k] = true
		default:
			out.b[k] = true
		}
	}
	return out
}

func (o *orExpr) typ() Type      { return Bool }
func (o *orExpr) String() string { return fmt.Sprintf("(%s OR %s)", o.l, o.r) }
func (o *orExpr) eval(b *batch, sel []int32) *vec {
	l, r := o.l.eval(b, sel), o.r.eval(b, sel)
	out := &vec{t: Bool, n: l.n, b: make([]bool, l.n)}
	if l.null != nil || r.null != nil {
		out.null = make([]bool, l.n)
	}
	for k := range out.b {
		lt := !l.isNull(k) && l.b[k]
		rt := !r.isNull(k) && r.b[k]
		switch {
		case lt || rt:
			out.b[k] = true
		case l.isNull(k) || r.isNull(k):
			out.null[k] = true
		}
	}
	return out
}

func (x *notExpr) typ() Type      { return Bool }
func (x *notExpr) String() string { return fmt.Sprintf("(NOT %s)", x.e) }
func (x *notExpr) eval(b *batch, sel []int32) *vec {
	in := x.e.eval(b, sel)
	out := &vec{t: Bool, n: in.n, b: make([]bool, in.n), null: in.null}
	for k, v := range in.b[:in.n] {
		out.b[k] = !v
	}
	return out
}

// isNullExpr is IS [NOT] NULL.
type isNullExpr struct {
	e   expr
	not bool
}

func (x *isNullExpr) typ() Type { return Bool }
func (x *isNullExpr) String() string {
	if x.not {
		return fmt.Sprintf("(%s IS NOT NULL)", x.e)
	}
	return fmt.Sprintf("(%s IS NULL)", x.e)
}
func (x *isNullExpr) eval(b *batch, sel []int32) *vec {
	in := x.e.eval(b, sel)
	out := &vec{t: Bool, n: in.n, b: make([]bool, in.n)}
	for k := range out.b {
		out.b[k] = (in.t == Null || in.isNull(k)) != x.not
	}
	return out
}

// inExpr is [NOT] IN (constant list).
type inExpr struct {
	e       expr
	list    []value
	hasNull bool
	not     bool
	ints    map[int64]struct{}
	floats  map[float64]struct{}
	strs    map[string]struct{}
}

func newInExpr(e expr, list []value, not bool) *inExpr {
	x := &inExpr{e: e, list: list, not: not}
	switch e.typ() {
	case Int64, Date:
		x.ints = map[int64]struct{}{}
	case Float64:
		x.floats = map[float64]struct{}{}
	default:
		x.strs = map[string]struct{}{}
	}
	for _, v := range list {
		switch {
		case v.null:
			x.hasNull = true
		case x.ints != nil:
			x.ints[v.i] = struct{}{}
		case x.floats != nil:
			x.floats[v.f] = struct{}{}
		default:
			x.strs[v.String()] = struct{}{}
		}
	}
	return x
}

func (x *inExpr) typ() Type { return Bool }
func (x *inExpr) String() string {
	parts := make([]string, len(x.list))
	for k, v := range x.list {
		parts[k] = (&litExpr{v: v}).String()
	}
	not := ""
	if x.not {
		not = "NOT "
	}
	return fmt.Sprintf("(%s %sIN (%s))", x.e, not, strings.Join(parts, ", "))
}
func (x *inExpr) eval(b *batch, sel []int32) *vec {
	in := x.e.eval(b, sel)
	out := &vec{t: Bool, n: in.n, b: make([]bool, in.n), null: make([]bool, in.n)}
	for k := 0; k < in.n; k++ {
		if in.t == Null || in.isNull(k) {
			out.null[k] = true
			continue
		}
		var found bool
		switch {
		case x.ints != nil:
			_, found = x.ints[in.i[k]]
		case x.floats != nil:
			_, found = x.floats[in.f[k]]
		default:
			_, found = x.strs[in.get(k).String()]
		}
		switch {
		case found:
			out.b[k] = !x.not
		case x.hasNull:
			out.null[k] = true
		default:
			out.b[k] = x.not
		}
	}
	return out
}

// likeExpr is [NOT] LIKE with a constant pattern (% and _; backslash
// escapes).
type likeExpr struct {
	e       expr
	pattern string
	not     bool
	match   func(string) bool
}

func newLikeExpr(e expr, pattern string, not bool) *likeExpr {
	x := &likeExpr{e: e, pattern: pattern, not: not}
	// Fast paths for the common shapes; a regular expression otherwise.
	body := strings.Trim(pattern, "%")
	plain := !strings.ContainsAny(body, "%_\\")
	switch {
	case plain && pattern == body:
		x.match = func(s string) bool { return s == body }
	case plain && pattern == body+"%":
		x.match = func(s string) bool { return strings.HasPrefix(s, body) }
	case plain && pattern == "%"+body:
		x.match = func(s string) bool { return strings.HasSuffix(s, body) }
	case plain && pattern == "%"+body+"%":
		x.match = func(s string) bool { return strings.Contains(s, body) }
	default:
		var re strings.Builder
		re.WriteString("(?s)^")
		for k := 0; k < len(pattern); k++ {
			switch c := pattern[k]; c {
			case '%':
				re.WriteString(".*")
			case '_':
				re.WriteString(".")
			case '\\':
				if k+1 < len(pattern) {
					k++
					re.WriteString(regexp.QuoteMeta(pattern[k : k+1]))
				}
			default:
				re.WriteString(regexp.QuoteMeta(pattern[k : k+1]))
			}
		}
		re.WriteString("$")
		rx := regexp.MustCompile(re.String())
		x.match = rx.MatchString
	}
	return x
}

func (x *likeExpr) typ() Type { return Bool }
func (x *likeExpr) String() string {
	not := ""
	if x.not {
		not = "NOT "
	}
	return fmt.Sprintf("(%s %sLIKE %s)", x.e, not, (&litExpr{v: value{t: String, s: x.pattern}}).String())
}
func (x *likeExpr) eval(b *batch, sel []int32) *vec {
	in := x.e.eval(b, sel)
	out := &vec{t: Bool, n: in.n, b: make([]bool, in.n), null: in.null}
	if in.t == Null {
		return constVec(value{t: Bool, null: true}, in.n)
	}
	for k, s := range in.s[:in.n] {
		out.b[k] = x.match(s) != x.not
	}
	return out
}

// ---- filtering ----

// filter narrows sel (nil: all rows) to the rows where e is TRUE.
func filter(e expr, b *batch, sel []int32) []int32 {
	switch x := e.(type) {
	case *andExpr:
		if sel == nil {
			if out, rest, ok := filterDict(x, b); ok {
				for _, c := range rest {
					out = filter(c, b, out)
				}
				return out
			}
		}
		return filter(x.r, b, filter(x.l, b, sel))
	case *cmpExpr:
		if c, ok := x.l.(*colExpr); ok {
			if lit, ok := x.r.(*litExpr); ok && !lit.v.null {
				if sel == nil && b.cols[c.idx].lazy != nil {
					if out, _, ok := filterDict(x, b); ok {
						return out
					}
				}
				col := b.cols[c.idx]
				if col.lazy != nil {
					col.load(sel) // only the rows still selected
				} else {
					col.materialize()
				}
				if col.null == nil {
					switch col.t {
					case Int64, Date:
						return selectCmp(x.op, col.i, lit.v.i, b, sel)
					case Float64:
						return selectCmp(x.op, col.f, lit.v.f, b, sel)
					case String:
						return selectCmp(x.op, col.s, lit.v.s, b, sel)
					}
				}
			}
		}
	}
	if sel != nil && len(sel) == 0 {
		return sel
	}
	v := e.eval(b, sel)
	out := b.selBuf(v.n)
	for k := 0; k < v.n; k++ {
		if v.b[k] && !v.isNull(k) {
			if sel == nil {
				out = append(out, int32(k))
			} else {
				out = append(out, sel[k])
			}
		}
	}
	return out
}

// filterDict starts a conjunction on a batch whose columns are still
// encoded: the comparisons of one dictionary-encoded column with
// constants (TPC-H Q6's two bounds on l_shipdate) are judged together on
// the dictionary's entries, and the rows whose entries pass are selected
// without decoding the column's values. It returns that selection and the
// other conjuncts, or false when no conjunct qualifies.
func filterDict(e expr, b *batch) ([]int32, []expr, bool) {
	var conj []expr
	var flatten func(expr)
	flatten = func(e expr) {
		if a, ok := e.(*andExpr); ok {
			flatten(a.l)
			flatten(a.r)
			return
		}
		conj = append(conj, e)
	}
	flatten(e)
	onLazy := func(e expr) (*cmpExpr, int) {
		c, ok := e.(*cmpExpr)
		if !ok {
			return nil, -1
		}
		col, ok := c.l.(*colExpr)
		if !ok {
			return nil, -1
		}
		if lit, ok := c.r.(*litExpr); !ok || lit.v.null {
			return nil, -1
		}
		if v := b.cols[col.idx]; v.lazy == nil || v.t == String {
			return nil, -1
		}
		return c, col.idx
	}
	for _, first := range conj {
		_, idx := onLazy(first)
		if idx < 0 {
			continue
		}
		var preds []*cmpExpr
		var rest []expr
		for _, c := range conj {
			if p, at := onLazy(c); at == idx {
				preds = append(preds, p)
			} else {
				rest = append(rest, c)
			}
		}
		v := b.cols[idx]
		pass := v.lazy.dictPass(v, preds)
		if pass == nil {
			return nil, nil, false
		}
		out, ok := v.lazy.selectDict(pass, b.selBuf(b.n))
		if !ok {
			return nil, nil, false
		}
		return out, rest, true
	}
	return nil, nil, false
}

// selectCmp keeps the rows of sel where col op c holds.
func selectCmp[T int64 | float64 | string](op int, col []T, c T, b *batch, sel []int32) []int32 {
	if sel == nil {
		n := b.n
		out := b.selBuf(n)
		col = col[:n]
		switch op {
		case opEQ:
			for k, v := range col {
				if v == c {
					out = append(out, int32(k))
				}
			}
		case opNE:
			for k, v := range col {
				if v != c {
					out = append(out, int32(k))
				}
			}
		case opLT:
			for k, v := range col {
				if v < c {
					out = append(out, int32(k))
				}
			}
		case opLE:
			for k, v := range col {
				if v <= c {
					out = append(out, int32(k))
				}
			}
		case opGT:
			for k, v := range col {
				if v > c {
					out = append(out, int32(k))
				}
			}
		case opGE:
			for k, v := range col {
				if v >= c {
					out = append(out, int32(k))
				}
			}
		}
		return out
	}
	// Narrowing in place is safe: each kept index is written at or before
	// the position it was read from.
	out := sel[:0:len(sel)]
	switch op {
	case opEQ:
		for _, r := range sel {
			if col[r] == c {
				out = append(out, r)
			}
		}
	case opNE:
		for _, r := range sel {
			if col[r] != c {
				out = append(out, r)
			}
		}
	case opLT:
		for _, r := range sel {
			if col[r] < c {
				out = append(out, r)
			}
		}
	case opLE:
		for _, r := range sel {
			if col[r] <= c {
				out = append(out, r)
			}
		}
	case opGT:
		for _, r := range sel {
			if col[r] > c {
				out = append(out, r)
			}
		}
	case opGE:
		for _, r := range sel {
			if col[r] >= c {
				out = append(out, r)
			}
		}
	}
	return out
}
