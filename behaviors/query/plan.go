package query

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"vitess.io/vitess/go/vt/sqlparser"
)

// Errors a query can fail with; match them with errors.Is.
var (
	// ErrSyntax: the text is not valid SQL. The error is a *SyntaxError.
	ErrSyntax = errors.New("syntax error")
	// ErrUnsupported: valid SQL that this engine does not run.
	ErrUnsupported = errors.New("unsupported")
	// ErrUnknown: a table or column that does not exist.
	ErrUnknown = errors.New("unknown name")
	// ErrType: operands whose types do not fit the operator or function.
	ErrType = errors.New("type mismatch")
)

// SyntaxError is a parse failure with the byte position (1-based, as the
// parser counts it) and the token it failed near.
type SyntaxError struct {
	Pos   int
	Token string
	Msg   string
}

// Error says where parsing failed and near which token.
func (e *SyntaxError) Error() string {
	if e.Token != "" {
		return fmt.Sprintf("query: syntax error at position %d near %q", e.Pos, e.Token)
	}
	return fmt.Sprintf("query: syntax error at position %d", e.Pos)
}

// Is makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

func unsupported(format string, args ...any) error {
	return fmt.Errorf("query: %w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

func typeErr(format string, args ...any) error {
	return fmt.Errorf("query: %w: %s", ErrType, fmt.Sprintf(format, args...))
}

// syntaxRE picks the position and token out of the parser's message (the
// parser wraps its positioned error in a plain one).
var syntaxRE = regexp.MustCompile(`syntax error at position (\d+)(?: near '((?s).*)')?`)

var parser = func() *sqlparser.Parser {
	p, err := sqlparser.New(sqlparser.Options{MySQLServerVersion: "8.0.40"})
	if err != nil {
		panic(err) // a fixed, valid version string
	}
	return p
}()

// orderKey is one ORDER BY item, evaluated on the same batch as the outputs.
type orderKey struct {
	e    expr
	desc bool
}

// Plan is a planned SELECT. Its physical shape is fixed: a scan of the
// projected columns, the WHERE filter, then either partial aggregation (at
// each partition) merged by a final aggregation, HAVING and projection, or a
// projection at each partition; ORDER BY with LIMIT keeps only the top rows
// at each partition and again at the end.
type Plan struct {
	// SQL is the query text the plan was made from.
	SQL string

	table     Table
	tableName string
	scanCols  []int // table columns read, in scan-batch order
	scanTypes []Type
	where     expr // over the scan batch; nil if none

	agg     bool
	rawAgg  bool   // COUNT(DISTINCT): partitions ship key and argument rows
	groupBy []expr // over the scan batch
	aggs    []*aggSpec
	having  expr // over the aggregate batch (keys, then aggregates)

	outputs []expr // over the aggregate batch or the scan batch
	names   []string
	order   []orderKey
	limit   int64 // -1: none
	offset  int64
	// afterFilter marks the scan columns read after the WHERE filter.
	afterFilter []bool
	schema      *arrow.Schema
	fragment    *arrow.Schema // what one partition produces
}

// Schema is the schema of the query's result.
func (p *Plan) Schema() *arrow.Schema { return p.schema }

// Partitions is the number of partitions the query scans.
func (p *Plan) Partitions() int { return len(p.table.Partitions()) }

// Explain describes the physical plan, one operator per line.
func (p *Plan) Explain() string {
	var b strings.Builder
	names := make([]string, len(p.scanCols))
	for k, c := range p.scanCols {
		names[k] = p.table.Schema().Field(c).Name
	}
	fmt.Fprintf(&b, "Scan %s columns=[%s] partitions=%d\n", p.tableName, strings.Join(names, ", "), p.Partitions())
	if p.where != nil {
		fmt.Fprintf(&b, "Filter %s\n", p.where)
	}
	if p.agg {
		var ks, as []string
		for _, g := range p.groupBy {
			ks = append(ks, g.String())
		}
		for _, a := range p.aggs {
			as = append(as, a.String())
		}
		mode := "PartialAggregate"
		if p.rawAgg {
			mode = "Project(keys, arguments)"
		}
		fmt.Fprintf(&b, "%s keys=[%s] aggs=[%s]\n", mode, strings.Join(ks, ", "), strings.Join(as, ", "))
		b.WriteString("-- exchange to coordinator --\n")
		fmt.Fprintf(&b, "FinalAggregate\n")
		if p.having != nil {
			fmt.Fprintf(&b, "Filter %s\n", p.having)
		}
	}
	var os []string
	for k, o := range p.outputs {
		os = append(os, o.String()+" AS "+p.names[k])
	}
	fmt.Fprintf(&b, "Project [%s]\n", strings.Join(os, ", "))
	if !p.agg {
		b.WriteString("-- exchange to coordinator --\n")
	}
	if len(p.order) > 0 {
		var ks []string
		for _, o := range p.order {
			d := "ASC"
			if o.desc {
				d = "DESC"
			}
			ks = append(ks, o.e.String()+" "+d)
		}
		if p.limit >= 0 {
			fmt.Fprintf(&b, "TopK k=%d [%s]\n", p.limit+p.offset, strings.Join(ks, ", "))
		} else {
			fmt.Fprintf(&b, "Sort [%s]\n", strings.Join(ks, ", "))
		}
	}
	if p.limit >= 0 || p.offset > 0 {
		fmt.Fprintf(&b, "Limit %d offset %d\n", p.limit, p.offset)
	}
	return b.String()
}

// Prepare parses and plans one SELECT statement against the catalog.
func Prepare(cat *Catalog, sql string) (p *Plan, err error) {
	defer func() {
		// The planner must never take a node down on odd input; a panic
		// here is a bug, reported as an error.
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("query: internal error planning %q: %v", sql, r)
		}
	}()
	stmt, err := parser.Parse(sql)
	if err != nil {
		if m := syntaxRE.FindStringSubmatch(err.Error()); m != nil {
			pos, _ := strconv.Atoi(m[1])
			return nil, &SyntaxError{Pos: pos, Token: m[2], Msg: "syntax error"}
		}
		if strings.Contains(err.Error(), "Query was empty") {
			return nil, &SyntaxError{Pos: 1, Msg: "empty query"}
		}
		return nil, fmt.Errorf("query: %w: %v", ErrSyntax, err)
	}
	sel, ok := stmt.(*sqlparser.Select)
	if !ok {
		return nil, unsupported("%s statements (only SELECT)", stmtKind(stmt))
	}
	return planSelect(cat, sql, sel)
}

func stmtKind(s sqlparser.Statement) string {
	name := fmt.Sprintf("%T", s)
	name = strings.TrimPrefix(name, "*sqlparser.")
	return strings.ToUpper(name)
}

type planner struct {
	p      *Plan
	schema *arrow.Schema
	cols   map[string]int // lower-case column name → table index
	scanAt map[int]int    // table index → scan batch index
}

func planSelect(cat *Catalog, sql string, sel *sqlparser.Select) (*Plan, error) {
	switch {
	case sel.With != nil:
		return nil, unsupported("WITH")
	case sel.Distinct:
		return nil, unsupported("SELECT DISTINCT")
	case len(sel.From) != 1:
		return nil, unsupported("joins (FROM lists more than one table)")
	case sel.Windows != nil:
		return nil, unsupported("WINDOW")
	case sel.Into != nil:
		return nil, unsupported("SELECT INTO")
	case sel.Lock != sqlparser.NoLock:
		return nil, unsupported("locking clauses")
	}
	ate, ok := sel.From[0].(*sqlparser.AliasedTableExpr)
	if !ok {
		return nil, unsupported("joins")
	}
	tn, ok := ate.Expr.(sqlparser.TableName)
	if !ok {
		return nil, unsupported("subqueries in FROM")
	}
	name := tn.Name.String()
	if !tn.Qualifier.IsEmpty() {
		name = tn.Qualifier.String() + "." + name
	}
	table, ok := cat.Table(name)
	if !ok {
		return nil, fmt.Errorf("query: %w: table %q does not exist", ErrUnknown, name)
	}
	p := &Plan{SQL: sql, table: table, tableName: name, limit: -1}
	pl := &planner{p: p, schema: table.Schema(), cols: map[string]int{}, scanAt: map[int]int{}}
	for k, f := range pl.schema.Fields() {
		pl.cols[strings.ToLower(f.Name)] = k
	}
	alias := strings.ToLower(ate.As.String())
	if alias == "" {
		alias = strings.ToLower(tn.Name.String())
	}

	scan := &scope{pl: pl, alias: alias}

	// WHERE, bound on the scan batch, no aggregates.
	if sel.Where != nil {
		w, err := scan.bind(sel.Where.Expr)
		if err != nil {
			return nil, err
		}
		if w.typ() != Bool && w.typ() != Null {
			return nil, typeErr("WHERE needs a boolean condition, got %s (%s)", w.typ(), w)
		}
		p.where = w
	}

	// Select list: expand *, remember the ASTs and names.
	var items []sqlparser.Expr
	var names []string
	for _, se := range sel.SelectExprs.Exprs {
		switch x := se.(type) {
		case *sqlparser.StarExpr:
			for _, f := range pl.schema.Fields() {
				items = append(items, &sqlparser.ColName{Name: sqlparser.NewIdentifierCI(f.Name)})
				names = append(names, f.Name)
			}
		case *sqlparser.AliasedExpr:
			items = append(items, x.Expr)
			if !x.As.IsEmpty() {
				names = append(names, x.As.String())
			} else if c, ok := x.Expr.(*sqlparser.ColName); ok {
				names = append(names, c.Name.String())
			} else {
				names = append(names, sqlparser.String(x.Expr))
			}
		default:
			return nil, unsupported("select item %s", sqlparser.String(se))
		}
	}
	p.names = names

	// Is this an aggregate query?
	hasAgg := false
	for _, it := range items {
		hasAgg = hasAgg || containsAgg(it)
	}
	if sel.Having != nil {
		hasAgg = hasAgg || containsAgg(sel.Having.Expr)
	}
	for _, o := range sel.OrderBy {
		hasAgg = hasAgg || containsAgg(o.Expr)
	}
	if sel.GroupBy != nil && len(sel.GroupBy.Exprs) > 0 {
		if sel.GroupBy.WithRollup {
			return nil, unsupported("WITH ROLLUP")
		}
		hasAgg = true
	}
	if sel.Having != nil && !hasAgg {
		return nil, unsupported("HAVING without GROUP BY or aggregates")
	}

	// resolveItem maps an ordinal or a select alias to its select item.
	resolveItem := func(e sqlparser.Expr, clause string) (sqlparser.Expr, int, error) {
		if lit, ok := e.(*sqlparser.Literal); ok && lit.Type == sqlparser.IntVal {
			n, err := strconv.Atoi(lit.Val)
			if err != nil || n < 1 || n > len(items) {
				return nil, -1, fmt.Errorf("query: %w: %s position %s is not in the select list (1..%d)", ErrUnknown, clause, lit.Val, len(items))
			}
			return items[n-1], n - 1, nil
		}
		return e, -1, nil
	}

	var post *scope // the scope select items, HAVING and ORDER BY are bound in
	if hasAgg {
		p.agg = true
		var groupASTs []string
		if sel.GroupBy != nil {
			for _, g := range sel.GroupBy.Exprs {
				ge, _, err := resolveItem(g, "GROUP BY")
				if err != nil {
					return nil, err
				}
				// A bare name that is not a column but is a select alias
				// groups by that item (as MySQL and PostgreSQL allow).
				if c, ok := ge.(*sqlparser.ColName); ok && c.Qualifier.IsEmpty() {
					if _, isCol := pl.cols[c.Name.Lowered()]; !isCol {
						for k, n := range names {
							if strings.EqualFold(n, c.Name.String()) {
								ge = items[k]
								break
							}
						}
					}
				}
				if containsAgg(ge) {
					return nil, unsupported("aggregate functions in GROUP BY")
				}
				b, err := scan.bind(ge)
				if err != nil {
					return nil, err
				}
				p.groupBy = append(p.groupBy, b)
				groupASTs = append(groupASTs, sqlparser.String(ge))
			}
		}
		post = &scope{pl: pl, alias: alias, agg: true, inner: scan, groupASTs: groupASTs}
	} else {
		post = scan
	}

	for _, it := range items {
		e, err := post.bind(it)
		if err != nil {
			return nil, err
		}
		p.outputs = append(p.outputs, e)
	}
	if sel.Having != nil {
		h, err := post.bind(sel.Having.Expr)
		if err != nil {
			return nil, err
		}
		if h.typ() != Bool && h.typ() != Null {
			return nil, typeErr("HAVING needs a boolean condition, got %s", h.typ())
		}
		p.having = h
	}
	for _, o := range sel.OrderBy {
		oe, idx, err := resolveItem(o.Expr, "ORDER BY")
		if err != nil {
			return nil, err
		}
		if idx < 0 {
			if c, ok := oe.(*sqlparser.ColName); ok && c.Qualifier.IsEmpty() {
				for k, n := range names {
					if strings.EqualFold(n, c.Name.String()) {
						idx = k
						break
					}
				}
			}
		}
		var e expr
		if idx >= 0 {
			e = p.outputs[idx]
		} else if e, err = post.bind(oe); err != nil {
			return nil, err
		}
		p.order = append(p.order, orderKey{e: e, desc: o.Direction == sqlparser.DescOrder})
	}
	if sel.Limit != nil {
		if sel.Limit.Rowcount != nil {
			n, err := constInt(sel.Limit.Rowcount, "LIMIT")
			if err != nil {
				return nil, err
			}
			p.limit = n
		}
		if sel.Limit.Offset != nil {
			n, err := constInt(sel.Limit.Offset, "OFFSET")
			if err != nil {
				return nil, err
			}
			p.offset = n
		}
	}
	for _, a := range p.aggs {
		if a.kind == aggCountDistinct {
			p.rawAgg = true
		}
	}

	p.afterFilter = make([]bool, len(p.scanCols))
	if p.agg {
		columnsOf(p.afterFilter, p.groupBy...)
		for _, a := range p.aggs {
			columnsOf(p.afterFilter, a.arg)
		}
	} else {
		columnsOf(p.afterFilter, p.outputs...)
		for _, o := range p.order {
			columnsOf(p.afterFilter, o.e)
		}
	}

	// Output schema.
	fields := make([]arrow.Field, len(p.outputs))
	for k, o := range p.outputs {
		t := o.typ()
		if t == Null {
			t = Int64
		}
		fields[k] = arrow.Field{Name: p.names[k], Type: t.arrowType(), Nullable: true}
	}
	p.schema = arrow.NewSchema(fields, nil)
	p.fragment = arrow.NewSchema(fragmentFields(p), nil)
	return p, nil
}

// fragmentFields is the layout of what one partition produces.
func fragmentFields(p *Plan) []arrow.Field {
	var fs []arrow.Field
	add := func(name string, t Type) {
		if t == Null {
			t = Int64
		}
		fs = append(fs, arrow.Field{Name: name, Type: t.arrowType(), Nullable: true})
	}
	switch {
	case p.agg && p.rawAgg:
		for k, g := range p.groupBy {
			add(fmt.Sprintf("key%d", k), g.typ())
		}
		for k, a := range p.aggs {
			if a.arg != nil {
				add(fmt.Sprintf("arg%d", k), a.arg.typ())
			}
		}
	case p.agg:
		for k, g := range p.groupBy {
			add(fmt.Sprintf("key%d", k), g.typ())
		}
		for k, a := range p.aggs {
			for j, t := range a.stateTypes() {
				add(fmt.Sprintf("agg%d_%d", k, j), t)
			}
		}
	default:
		for k, o := range p.outputs {
			add(fmt.Sprintf("out%d", k), o.typ())
		}
		for k, o := range p.order {
			add(fmt.Sprintf("ord%d", k), o.e.typ())
		}
	}
	return fs
}

func constInt(e sqlparser.Expr, clause string) (int64, error) {
	lit, ok := e.(*sqlparser.Literal)
	if !ok || lit.Type != sqlparser.IntVal {
		return 0, unsupported("%s must be an integer constant, got %s", clause, sqlparser.String(e))
	}
	n, err := strconv.ParseInt(lit.Val, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("query: %w: %s %s is out of range", ErrType, clause, lit.Val)
	}
	return n, nil
}

func containsAgg(e sqlparser.Expr) bool {
	found := false
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch n.(type) {
		case sqlparser.AggrFunc:
			found = true
			return false, nil
		case *sqlparser.Subquery:
			return false, nil
		}
		return true, nil
	}, e)
	return found
}

// scope binds AST expressions: over the scan batch, or (agg) over the
// aggregate batch, whose columns are the group keys then the aggregates.
type scope struct {
	pl        *planner
	alias     string
	agg       bool
	inner     *scope // scan scope, for aggregate arguments
	groupASTs []string
	inAgg     bool
}

func (s *scope) column(c *sqlparser.ColName) (expr, error) {
	if !c.Qualifier.IsEmpty() && !strings.EqualFold(c.Qualifier.Name.String(), s.alias) {
		return nil, fmt.Errorf("query: %w: table %q in column %s is not in FROM", ErrUnknown, c.Qualifier.Name.String(), sqlparser.String(c))
	}
	idx, ok := s.pl.cols[c.Name.Lowered()]
	if !ok {
		return nil, fmt.Errorf("query: %w: column %q does not exist in table %s", ErrUnknown, c.Name.String(), s.pl.p.tableName)
	}
	f := s.pl.schema.Field(idx)
	t, ok := typeOfArrow(f.Type)
	if !ok {
		return nil, unsupported("column %q has type %s", f.Name, f.Type)
	}
	at, ok := s.pl.scanAt[idx]
	if !ok {
		at = len(s.pl.p.scanCols)
		s.pl.scanAt[idx] = at
		s.pl.p.scanCols = append(s.pl.p.scanCols, idx)
		s.pl.p.scanTypes = append(s.pl.p.scanTypes, t)
	}
	return &colExpr{idx: at, t: t, name: f.Name}, nil
}

func (s *scope) bind(e sqlparser.Expr) (expr, error) {
	if s.agg {
		// A whole expression equal to a GROUP BY item is that key.
		str := sqlparser.String(e)
		for k, g := range s.groupASTs {
			if g == str {
				return &colExpr{idx: k, t: s.pl.p.groupBy[k].typ(), name: str}, nil
			}
		}
		if af, ok := e.(sqlparser.AggrFunc); ok {
			return s.bindAgg(af)
		}
		if c, ok := e.(*sqlparser.ColName); ok {
			// Also accept a column that matches a key by name only
			// (GROUP BY t.a, SELECT a).
			for k, g := range s.pl.p.groupBy {
				if ce, ok := g.(*colExpr); ok && strings.EqualFold(ce.name, c.Name.String()) {
					return &colExpr{idx: k, t: ce.t, name: ce.name}, nil
				}
			}
			return nil, fmt.Errorf("query: %w: column %q must appear in GROUP BY or be used in an aggregate function", ErrUnsupported, sqlparser.String(c))
		}
	} else if _, ok := e.(sqlparser.AggrFunc); ok {
		return nil, unsupported("aggregate function %s here (not allowed in WHERE or GROUP BY, or nested)", sqlparser.String(e))
	}
	return s.bindNode(e)
}

func (s *scope) bindAgg(af sqlparser.AggrFunc) (expr, error) {
	var spec *aggSpec
	argOf := func(a sqlparser.Expr) (expr, error) {
		if containsAgg(a) {
			return nil, unsupported("nested aggregate functions")
		}
		return s.inner.bind(a)
	}
	switch x := af.(type) {
	case *sqlparser.CountStar:
		if x.OverClause != nil {
			return nil, unsupported("window functions")
		}
		spec = &aggSpec{kind: aggCountStar}
	case *sqlparser.Count:
		if x.OverClause != nil {
			return nil, unsupported("window functions")
		}
		if len(x.Args) != 1 {
			return nil, unsupported("COUNT with %d arguments", len(x.Args))
		}
		arg, err := argOf(x.Args[0])
		if err != nil {
			return nil, err
		}
		spec = &aggSpec{kind: aggCount, arg: arg}
		if x.Distinct {
			spec.kind = aggCountDistinct
		}
	case *sqlparser.Sum, *sqlparser.Avg, *sqlparser.Min, *sqlparser.Max:
		var a sqlparser.Expr
		var distinct bool
		var over *sqlparser.OverClause
		kind := aggSum
		switch y := x.(type) {
		case *sqlparser.Sum:
			a, distinct, over = y.Arg, y.Distinct, y.OverClause
		case *sqlparser.Avg:
			a, distinct, over, kind = y.Arg, y.Distinct, y.OverClause, aggAvg
		case *sqlparser.Min:
			a, distinct, over, kind = y.Arg, y.Distinct, y.OverClause, aggMin
		case *sqlparser.Max:
			a, distinct, over, kind = y.Arg, y.Distinct, y.OverClause, aggMax
		}
		if over != nil {
			return nil, unsupported("window functions")
		}
		arg, err := argOf(a)
		if err != nil {
			return nil, err
		}
		if distinct && (kind == aggSum || kind == aggAvg) {
			return nil, unsupported("%s(DISTINCT ...)", aggNames[kind])
		}
		if (kind == aggSum || kind == aggAvg) && !arg.typ().numeric() && arg.typ() != Null {
			return nil, typeErr("%s needs a number, got %s (%s)", aggNames[kind], arg.typ(), arg)
		}
		if arg.typ() == Null {
			arg = &castExpr{e: arg, to: Int64}
			if kind == aggAvg {
				arg = &castExpr{e: arg, to: Float64}
			}
		}
		spec = &aggSpec{kind: kind, arg: arg}
	default:
		return nil, unsupported("aggregate function %s", sqlparser.String(af))
	}
	name := spec.String()
	for k, a := range s.pl.p.aggs {
		if a.String() == name {
			return &colExpr{idx: len(s.pl.p.groupBy) + k, t: a.resultType(), name: name}, nil
		}
	}
	s.pl.p.aggs = append(s.pl.p.aggs, spec)
	return &colExpr{idx: len(s.pl.p.groupBy) + len(s.pl.p.aggs) - 1, t: spec.resultType(), name: name}, nil
}

func (s *scope) bindNode(e sqlparser.Expr) (expr, error) {
	switch x := e.(type) {
	case *sqlparser.ColName:
		return s.column(x)
	case *sqlparser.Literal:
		return bindLiteral(x)
	case *sqlparser.NullVal:
		return &litExpr{v: value{t: Null, null: true}}, nil
	case sqlparser.BoolVal:
		return &litExpr{v: value{t: Bool, b: bool(x)}}, nil
	case *sqlparser.AndExpr:
		return s.logical(x.Left, x.Right, true)
	case *sqlparser.OrExpr:
		return s.logical(x.Left, x.Right, false)
	case *sqlparser.NotExpr:
		in, err := s.bind(x.Expr)
		if err != nil {
			return nil, err
		}
		if err := wantBool(in, "NOT"); err != nil {
			return nil, err
		}
		return fold(&notExpr{in}), nil
	case *sqlparser.ComparisonExpr:
		return s.comparison(x)
	case *sqlparser.BetweenExpr:
		l, err := s.bind(x.Left)
		if err != nil {
			return nil, err
		}
		from, err := s.bind(x.From)
		if err != nil {
			return nil, err
		}
		to, err := s.bind(x.To)
		if err != nil {
			return nil, err
		}
		ge, err := makeCmp(opGE, l, from)
		if err != nil {
			return nil, err
		}
		le, err := makeCmp(opLE, l, to)
		if err != nil {
			return nil, err
		}
		var out expr = &andExpr{ge, le}
		if !x.IsBetween {
			out = &notExpr{out}
		}
		return fold(out), nil
	case *sqlparser.IsExpr:
		in, err := s.bind(x.Left)
		if err != nil {
			return nil, err
		}
		switch x.Right {
		case sqlparser.IsNullOp:
			return fold(&isNullExpr{e: in}), nil
		case sqlparser.IsNotNullOp:
			return fold(&isNullExpr{e: in, not: true}), nil
		}
		return nil, unsupported("%s", sqlparser.String(x))
	case *sqlparser.BinaryExpr:
		l, err := s.bind(x.Left)
		if err != nil {
			return nil, err
		}
		r, err := s.bind(x.Right)
		if err != nil {
			return nil, err
		}
		var op byte
		switch x.Operator {
		case sqlparser.PlusOp:
			op = '+'
		case sqlparser.MinusOp:
			op = '-'
		case sqlparser.MultOp:
			op = '*'
		case sqlparser.DivOp:
			op = '/'
		case sqlparser.ModOp:
			op = '%'
		default:
			return nil, unsupported("operator %s", x.Operator.ToString())
		}
		return makeArith(op, l, r)
	case *sqlparser.UnaryExpr:
		in, err := s.bind(x.Expr)
		if err != nil {
			return nil, err
		}
		switch x.Operator {
		case sqlparser.UMinusOp:
			if !in.typ().numeric() && in.typ() != Null {
				return nil, typeErr("cannot negate %s (%s)", in.typ(), in)
			}
			return fold(&negExpr{in}), nil
		case sqlparser.UPlusOp:
			return in, nil
		case sqlparser.BangOp:
			if err := wantBool(in, "!"); err != nil {
				return nil, err
			}
			return fold(&notExpr{in}), nil
		}
		return nil, unsupported("operator %s", x.Operator.ToString())
	case *sqlparser.IntervalDateExpr:
		return s.interval(x)
	case *sqlparser.CastExpr:
		in, err := s.bind(x.Expr)
		if err != nil {
			return nil, err
		}
		return castTo(in, x.Type)
	case *sqlparser.ConvertExpr:
		in, err := s.bind(x.Expr)
		if err != nil {
			return nil, err
		}
		return castTo(in, x.Type)
	case *sqlparser.Subquery, *sqlparser.ExistsExpr:
		return nil, unsupported("subqueries")
	case *sqlparser.CaseExpr:
		return nil, unsupported("CASE")
	case *sqlparser.FuncExpr:
		return nil, unsupported("function %s", x.Name.String())
	case sqlparser.AggrFunc:
		if s.inAgg || !s.agg {
			return nil, unsupported("aggregate function %s here", sqlparser.String(x))
		}
		return s.bindAgg(x)
	}
	return nil, unsupported("expression %s", sqlparser.String(e))
}

func wantBool(e expr, what string) error {
	if e.typ() != Bool && e.typ() != Null {
		return typeErr("%s needs a boolean operand, got %s (%s)", what, e.typ(), e)
	}
	return nil
}

func (s *scope) logical(l, r sqlparser.Expr, and bool) (expr, error) {
	le, err := s.bind(l)
	if err != nil {
		return nil, err
	}
	re, err := s.bind(r)
	if err != nil {
		return nil, err
	}
	what := "OR"
	if and {
		what = "AND"
	}
	if err := wantBool(le, what); err != nil {
		return nil, err
	}
	if err := wantBool(re, what); err != nil {
		return nil, err
	}
	if and {
		return fold(&andExpr{le, re}), nil
	}
	return fold(&orExpr{le, re}), nil
}

func (s *scope) comparison(x *sqlparser.ComparisonExpr) (expr, error) {
	if x.Modifier != 0 {
		return nil, unsupported("ANY/ALL comparisons")
	}
	l, err := s.bind(x.Left)
	if err != nil {
		return nil, err
	}
	switch x.Operator {
	case sqlparser.InOp, sqlparser.NotInOp:
		tuple, ok := x.Right.(sqlparser.ValTuple)
		if !ok {
			return nil, unsupported("IN with %s (only a list of constants)", sqlparser.String(x.Right))
		}
		var list []value
		for _, it := range tuple {
			v, err := s.bind(it)
			if err != nil {
				return nil, err
			}
			lit, ok := v.(*litExpr)
			if !ok {
				return nil, unsupported("IN list item %s (only constants)", sqlparser.String(it))
			}
			cv, err := coerceLit(lit.v, l.typ())
			if err != nil {
				return nil, typeErr("IN list of %s has item %s of type %s", l.typ(), lit, lit.v.t)
			}
			list = append(list, cv)
		}
		return fold(newInExpr(l, list, x.Operator == sqlparser.NotInOp)), nil
	case sqlparser.LikeOp, sqlparser.NotLikeOp:
		if x.Escape != nil {
			return nil, unsupported("LIKE ... ESCAPE")
		}
		r, err := s.bind(x.Right)
		if err != nil {
			return nil, err
		}
		lit, ok := r.(*litExpr)
		if !ok || lit.v.t != String {
			return nil, unsupported("LIKE with a non-constant pattern %s", r)
		}
		if l.typ() != String && l.typ() != Null {
			return nil, typeErr("LIKE needs a VARCHAR operand, got %s (%s)", l.typ(), l)
		}
		return fold(newLikeExpr(l, lit.v.s, x.Operator == sqlparser.NotLikeOp)), nil
	}
	r, err := s.bind(x.Right)
	if err != nil {
		return nil, err
	}
	var op int
	switch x.Operator {
	case sqlparser.EqualOp:
		op = opEQ
	case sqlparser.NotEqualOp:
		op = opNE
	case sqlparser.LessThanOp:
		op = opLT
	case sqlparser.LessEqualOp:
		op = opLE
	case sqlparser.GreaterThanOp:
		op = opGT
	case sqlparser.GreaterEqualOp:
		op = opGE
	default:
		return nil, unsupported("operator %s", x.Operator.ToString())
	}
	return makeCmp(op, l, r)
}

func coerceLit(v value, t Type) (value, error) {
	switch {
	case v.null || v.t == t || t == Null:
		return v, nil
	case v.t == Int64 && t == Float64:
		return value{t: Float64, f: float64(v.i)}, nil
	case v.t == String && t == Date:
		d, ok := parseDate(v.s)
		if !ok {
			return v, typeErr("%q is not a date (YYYY-MM-DD)", v.s)
		}
		return value{t: Date, i: d}, nil
	case v.t == Float64 && t == Int64:
		return v, ErrType
	}
	return v, ErrType
}

// unify makes both operands one type (numbers widen to DOUBLE, string
// literals compared with dates become dates).
func unify(l, r expr) (expr, expr, error) {
	lt, rt := l.typ(), r.typ()
	switch {
	case lt == rt || lt == Null || rt == Null:
		return l, r, nil
	case lt == Int64 && rt == Float64:
		return fold(&castExpr{l, Float64}), r, nil
	case lt == Float64 && rt == Int64:
		return l, fold(&castExpr{r, Float64}), nil
	case lt == Date && rt == String:
		if lit, ok := r.(*litExpr); ok {
			v, err := coerceLit(lit.v, Date)
			return l, &litExpr{v: v}, err
		}
	case lt == String && rt == Date:
		if lit, ok := l.(*litExpr); ok {
			v, err := coerceLit(lit.v, Date)
			return &litExpr{v: v}, r, err
		}
	}
	return nil, nil, typeErr("cannot compare %s with %s (%s, %s)", lt, rt, l, r)
}

func makeCmp(op int, l, r expr) (expr, error) {
	l, r, err := unify(l, r)
	if err != nil {
		return nil, err
	}
	// Keep the column on the left so that filters take the fast path.
	if _, lok := l.(*litExpr); lok {
		if _, rok := r.(*colExpr); rok {
			l, r = r, l
			op = [...]int{opEQ, opNE, opGT, opGE, opLT, opLE}[op]
		}
	}
	return fold(&cmpExpr{op: op, l: l, r: r}), nil
}

func makeArith(op byte, l, r expr) (expr, error) {
	lt, rt := l.typ(), r.typ()
	switch {
	case lt == Null || rt == Null:
		t := lt
		if t == Null {
			t = rt
		}
		if t == Null {
			t = Int64
		}
		return &litExpr{v: value{t: t, null: true}}, nil
	case lt.numeric() && rt.numeric():
		t := Int64
		if lt == Float64 || rt == Float64 || op == '/' {
			t = Float64
		}
		if lt != t {
			l = fold(&castExpr{l, t})
		}
		if rt != t {
			r = fold(&castExpr{r, t})
		}
		return fold(&arithExpr{op: op, l: l, r: r, t: t}), nil
	case lt == Date && rt == Int64 && (op == '+' || op == '-'):
		return fold(&arithExpr{op: op, l: l, r: r, t: Date}), nil
	case lt == Int64 && rt == Date && op == '+':
		return fold(&arithExpr{op: op, l: r, r: l, t: Date}), nil
	case lt == Date && rt == Date && op == '-':
		return fold(&arithExpr{op: op, l: l, r: r, t: Int64}), nil
	}
	return nil, typeErr("operator %c does not apply to %s and %s (%s, %s)", op, lt, rt, l, r)
}

func (s *scope) interval(x *sqlparser.IntervalDateExpr) (expr, error) {
	d, err := s.bind(x.Date)
	if err != nil {
		return nil, err
	}
	if lit, ok := d.(*litExpr); ok && lit.v.t == String {
		v, err := coerceLit(lit.v, Date)
		if err != nil {
			return nil, err
		}
		d = &litExpr{v: v}
	}
	if d.typ() != Date {
		return nil, typeErr("interval arithmetic needs a DATE, got %s (%s)", d.typ(), d)
	}
	iv, err := s.bind(x.Interval)
	if err != nil {
		return nil, err
	}
	lit, ok := iv.(*litExpr)
	if !ok {
		return nil, unsupported("non-constant interval %s", iv)
	}
	var n int64
	switch lit.v.t {
	case Int64:
		n = lit.v.i
	case String:
		n, err = strconv.ParseInt(strings.TrimSpace(lit.v.s), 10, 64)
		if err != nil {
			return nil, typeErr("interval %q is not an integer", lit.v.s)
		}
	default:
		return nil, typeErr("interval must be an integer, got %s", lit.v.t)
	}
	switch x.Syntax {
	case sqlparser.IntervalDateExprBinarySub, sqlparser.IntervalDateExprDateSub, sqlparser.IntervalDateExprSubdate:
		n = -n
	case sqlparser.IntervalDateExprBinaryAdd, sqlparser.IntervalDateExprBinaryAddLeft, sqlparser.IntervalDateExprDateAdd, sqlparser.IntervalDateExprAdddate:
	default:
		return nil, unsupported("%s", sqlparser.String(x))
	}
	switch x.Unit {
	case sqlparser.IntervalDay:
		return makeArith('+', d, &litExpr{v: value{t: Int64, i: n}})
	case sqlparser.IntervalWeek:
		return makeArith('+', d, &litExpr{v: value{t: Int64, i: 7 * n}})
	case sqlparser.IntervalMonth:
		return fold(&addMonthsExpr{d, n}), nil
	case sqlparser.IntervalQuarter:
		return fold(&addMonthsExpr{d, 3 * n}), nil
	case sqlparser.IntervalYear:
		return fold(&addMonthsExpr{d, 12 * n}), nil
	}
	return nil, unsupported("interval unit %s", x.Unit.ToString())
}

func castTo(in expr, ct *sqlparser.ConvertType) (expr, error) {
	var t Type
	switch strings.ToLower(ct.Type) {
	case "signed", "signed integer", "integer", "int", "bigint":
		t = Int64
	case "double", "float", "real", "decimal", "numeric":
		t = Float64
	case "char", "varchar", "text", "string":
		t = String
	case "date":
		t = Date
	case "boolean", "bool":
		t = Bool
	default:
		return nil, unsupported("CAST to %s", ct.Type)
	}
	from := in.typ()
	ok := from == t || from == Null || from == String || t == String ||
		(from.numeric() && t.numeric()) || (from == Bool && t == Int64)
	if !ok {
		return nil, typeErr("cannot cast %s to %s (%s)", from, t, in)
	}
	return fold(&castExpr{in, t}), nil
}

func bindLiteral(x *sqlparser.Literal) (expr, error) {
	switch x.Type {
	case sqlparser.StrVal:
		return &litExpr{v: value{t: String, s: x.Val}}, nil
	case sqlparser.IntVal:
		i, err := strconv.ParseInt(x.Val, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(x.Val, 64)
			if ferr != nil {
				return nil, typeErr("integer %s out of range", x.Val)
			}
			return &litExpr{v: value{t: Float64, f: f}}, nil
		}
		return &litExpr{v: value{t: Int64, i: i}, exact: 1}, nil
	case sqlparser.DecimalVal, sqlparser.FloatVal:
		f, err := strconv.ParseFloat(x.Val, 64)
		if err != nil {
			return nil, typeErr("number %s out of range", x.Val)
		}
		var exact int8
		if x.Type == sqlparser.DecimalVal {
			digits := 0
			if dot := strings.IndexByte(x.Val, '.'); dot >= 0 {
				digits = len(x.Val) - dot - 1
			}
			if digits <= 15 {
				exact = int8(digits + 1)
			}
		}
		return &litExpr{v: value{t: Float64, f: f}, exact: exact}, nil
	case sqlparser.DateVal:
		d, ok := parseDate(x.Val)
		if !ok {
			return nil, typeErr("DATE %q is not a date (YYYY-MM-DD)", x.Val)
		}
		return &litExpr{v: value{t: Date, i: d}}, nil
	}
	return nil, unsupported("literal %s", sqlparser.String(x))
}

// fold evaluates an expression whose operands are all constants.
func fold(e expr) expr {
	var kids []expr
	switch x := e.(type) {
	case *castExpr:
		kids = []expr{x.e}
	case *arithExpr:
		kids = []expr{x.l, x.r}
	case *negExpr:
		kids = []expr{x.e}
	case *addMonthsExpr:
		kids = []expr{x.e}
	case *cmpExpr:
		kids = []expr{x.l, x.r}
	case *andExpr:
		kids = []expr{x.l, x.r}
	case *orExpr:
		kids = []expr{x.l, x.r}
	case *notExpr:
		kids = []expr{x.e}
	case *isNullExpr:
		kids = []expr{x.e}
	case *inExpr:
		kids = []expr{x.e}
	case *likeExpr:
		kids = []expr{x.e}
	default:
		return e
	}
	for _, k := range kids {
		if _, ok := k.(*litExpr); !ok {
			return e
		}
	}
	v := e.eval(&batch{n: 1}, nil)
	out := v.get(0)
	out.t = e.typ()
	lit := &litExpr{v: out}
	// Keep decimal exactness through casts, negation and + - *.
	exact := func(k expr) int8 { return k.(*litExpr).exact }
	switch x := e.(type) {
	case *castExpr:
		if x.to == Float64 || x.to == x.e.typ() {
			lit.exact = exact(x.e)
		}
	case *negExpr:
		lit.exact = exact(x.e)
	case *arithExpr:
		l, r := exact(x.l), exact(x.r)
		if l > 0 && r > 0 {
			switch x.op {
			case '+', '-':
				lit.exact = max(l, r)
			case '*':
				if l+r-1 <= 16 {
					lit.exact = l + r - 1
				}
			}
		}
		if lit.exact > 0 && out.t == Float64 && !out.null {
			lit.v.f, _ = strconv.ParseFloat(strconv.FormatFloat(out.f, 'f', int(lit.exact-1), 64), 64)
		}
	}
	return lit
}
