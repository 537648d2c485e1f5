package query

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// This file is a row-at-a-time reference evaluator: each operator written
// the simplest way, one row and one value at a time, over the same bound
// plan. Differential tests compare it with the vectorized engine.

func refEval(e expr, row []value) value {
	switch x := e.(type) {
	case *colExpr:
		return row[x.idx]
	case *litExpr:
		return x.v
	case *castExpr:
		v := refEval(x.e, row)
		if v.null || v.t == Null {
			return value{t: x.to, null: true}
		}
		switch {
		case v.t == x.to:
			return v
		case v.t == Int64 && x.to == Float64:
			return value{t: Float64, f: float64(v.i)}
		case v.t == Float64 && x.to == Int64:
			return value{t: Int64, i: int64(v.f)}
		case v.t == Bool && x.to == Int64:
			if v.b {
				return value{t: Int64, i: 1}
			}
			return value{t: Int64}
		case x.to == String:
			return value{t: String, s: v.String()}
		case v.t == String:
			out, ok := parseAs(v.s, x.to)
			if !ok {
				return value{t: x.to, null: true}
			}
			return out
		}
		return value{t: x.to, null: true}
	case *arithExpr:
		l, r := refEval(x.l, row), refEval(x.r, row)
		if l.null || r.null || l.t == Null || r.t == Null {
			return value{t: x.t, null: true}
		}
		if x.t == Float64 {
			switch x.op {
			case '+':
				return value{t: Float64, f: l.f + r.f}
			case '-':
				return value{t: Float64, f: l.f - r.f}
			case '*':
				return value{t: Float64, f: l.f * r.f}
			case '/':
				if r.f == 0 {
					return value{t: Float64, null: true}
				}
				return value{t: Float64, f: l.f / r.f}
			case '%':
				if r.f == 0 {
					return value{t: Float64, null: true}
				}
				return value{t: Float64, f: math.Mod(l.f, r.f)}
			}
		}
		switch x.op {
		case '+':
			return value{t: x.t, i: l.i + r.i}
		case '-':
			return value{t: x.t, i: l.i - r.i}
		case '*':
			return value{t: x.t, i: l.i * r.i}
		case '%':
			if r.i == 0 {
				return value{t: x.t, null: true}
			}
			return value{t: x.t, i: l.i % r.i}
		}
	case *negExpr:
		v := refEval(x.e, row)
		if v.null {
			return v
		}
		v.i, v.f = -v.i, -v.f
		return v
	case *addMonthsExpr:
		v := refEval(x.e, row)
		if v.null {
			return v
		}
		return value{t: Date, i: addMonths(v.i, x.months)}
	case *cmpExpr:
		l, r := refEval(x.l, row), refEval(x.r, row)
		if l.null || r.null || l.t == Null || r.t == Null {
			return value{t: Bool, null: true}
		}
		return value{t: Bool, b: cmpResult(x.op, compareValues(l, r))}
	case *andExpr:
		l, r := refEval(x.l, row), refEval(x.r, row)
		switch {
		case (!l.null && !l.b) || (!r.null && !r.b):
			return value{t: Bool}
		case l.null || r.null:
			return value{t: Bool, null: true}
		}
		return value{t: Bool, b: true}
	case *orExpr:
		l, r := refEval(x.l, row), refEval(x.r, row)
		switch {
		case (!l.null && l.b) || (!r.null && r.b):
			return value{t: Bool, b: true}
		case l.null || r.null:
			return value{t: Bool, null: true}
		}
		return value{t: Bool}
	case *notExpr:
		v := refEval(x.e, row)
		if v.null {
			return v
		}
		return value{t: Bool, b: !v.b}
	case *isNullExpr:
		v := refEval(x.e, row)
		return value{t: Bool, b: (v.null || v.t == Null) != x.not}
	case *inExpr:
		v := refEval(x.e, row)
		if v.null || v.t == Null {
			return value{t: Bool, null: true}
		}
		sawNull := false
		for _, it := range x.list {
			if it.null {
				sawNull = true
				continue
			}
			if compareValues(v, it) == 0 {
				return value{t: Bool, b: !x.not}
			}
		}
		if sawNull {
			return value{t: Bool, null: true}
		}
		return value{t: Bool, b: x.not}
	case *likeExpr:
		v := refEval(x.e, row)
		if v.null || v.t == Null {
			return value{t: Bool, null: true}
		}
		return value{t: Bool, b: likeMatch(x.pattern, v.s) != x.not}
	}
	panic(fmt.Sprintf("refEval: %T", e))
}

// likeMatch is LIKE by backtracking, independent of the engine's matcher.
func likeMatch(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '%':
		for k := 0; k <= len(s); k++ {
			if likeMatch(p[1:], s[k:]) {
				return true
			}
		}
		return false
	case '_':
		return s != "" && likeMatch(p[1:], s[1:])
	case '\\':
		if len(p) > 1 {
			return s != "" && s[0] == p[1] && likeMatch(p[2:], s[1:])
		}
	}
	return s != "" && s[0] == p[0] && likeMatch(p[1:], s[1:])
}

func keyString(vs []value) string {
	var b strings.Builder
	for _, v := range vs {
		if v.null {
			b.WriteString("\x00N|")
		} else {
			fmt.Fprintf(&b, "%d:%s|", v.t, v.String())
		}
	}
	return b.String()
}

// refRun evaluates the plan over rows (each a full table row) the slow way.
func refRun(p *Plan, table [][]value) [][]value {
	var scanned [][]value
	for _, full := range table {
		row := make([]value, len(p.scanCols))
		for k, c := range p.scanCols {
			v := full[c]
			v.t = p.scanTypes[k]
			row[k] = v
		}
		if p.where != nil {
			w := refEval(p.where, row)
			if w.null || !w.b {
				continue
			}
		}
		scanned = append(scanned, row)
	}
	var pre [][]value // rows the outputs and order keys are evaluated on
	if p.agg {
		type group struct {
			keys []value
			args [][]value
			n    int
		}
		groups := map[string]*group{}
		var order []string
		if len(p.groupBy) == 0 {
			groups[""] = &group{args: make([][]value, len(p.aggs))}
			order = append(order, "")
		}
		for _, row := range scanned {
			keys := make([]value, len(p.groupBy))
			for k, g := range p.groupBy {
				keys[k] = refEval(g, row)
			}
			ks := keyString(keys)
			if len(p.groupBy) == 0 {
				ks = ""
			}
			g, ok := groups[ks]
			if !ok {
				g = &group{keys: keys, args: make([][]value, len(p.aggs))}
				groups[ks] = g
				order = append(order, ks)
			}
			g.n++
			for k, a := range p.aggs {
				if a.arg != nil {
					g.args[k] = append(g.args[k], refEval(a.arg, row))
				}
			}
		}
		for _, ks := range order {
			g := groups[ks]
			row := append([]value{}, g.keys...)
			for k, a := range p.aggs {
				row = append(row, refAgg(a, g.args[k], g.n))
			}
			if p.having != nil {
				h := refEval(p.having, row)
				if h.null || !h.b {
					continue
				}
			}
			pre = append(pre, row)
		}
	} else {
		pre = scanned
	}
	type outRow struct{ out, keys []value }
	var out []outRow
	for _, row := range pre {
		var r outRow
		for _, o := range p.outputs {
			r.out = append(r.out, refEval(o, row))
		}
		for _, o := range p.order {
			r.keys = append(r.keys, refEval(o.e, row))
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(a, b int) bool {
		for k, o := range p.order {
			c := refCompare(out[a].keys[k], out[b].keys[k])
			if o.desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
	var res [][]value
	for k, r := range out {
		if int64(k) < p.offset {
			continue
		}
		if p.limit >= 0 && int64(len(res)) >= p.limit {
			break
		}
		res = append(res, r.out)
	}
	return res
}

func refCompare(a, b value) int {
	an, bn := a.null || a.t == Null, b.null || b.t == Null
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	return compareValues(a, b)
}

func refAgg(a *aggSpec, args []value, n int) value {
	switch a.kind {
	case aggCountStar:
		return value{t: Int64, i: int64(n)}
	case aggCount:
		c := 0
		for _, v := range args {
			if !v.null {
				c++
			}
		}
		return value{t: Int64, i: int64(c)}
	case aggCountDistinct:
		seen := map[string]bool{}
		for _, v := range args {
			if !v.null {
				seen[keyString([]value{v})] = true
			}
		}
		return value{t: Int64, i: int64(len(seen))}
	case aggSum, aggAvg:
		var si int64
		var sf float64
		c := 0
		for _, v := range args {
			if v.null {
				continue
			}
			c++
			si += v.i
			if v.t == Float64 {
				sf += v.f
			} else {
				sf += float64(v.i)
			}
		}
		t := a.resultType()
		if c == 0 {
			return value{t: t, null: true}
		}
		if a.kind == aggAvg {
			return value{t: Float64, f: sf / float64(c)}
		}
		if t == Float64 {
			return value{t: Float64, f: sf}
		}
		return value{t: Int64, i: si}
	case aggMin, aggMax:
		var best value
		have := false
		for _, v := range args {
			if v.null {
				continue
			}
			c := 0
			if have {
				c = compareValues(v, best)
			}
			if !have || (a.kind == aggMin && c < 0) || (a.kind == aggMax && c > 0) {
				best, have = v, true
			}
		}
		if !have {
			return value{t: a.resultType(), null: true}
		}
		return best
	}
	panic("refAgg")
}

// ---- helpers shared by the tests ----

// rowsOf converts result batches to rows of values.
func rowsOf(t testing.TB, recs []arrow.RecordBatch) [][]value {
	t.Helper()
	var out [][]value
	for _, rec := range recs {
		cols := make([]*vec, rec.NumCols())
		for k := range cols {
			ty, ok := typeOfArrow(rec.Column(k).DataType())
			if !ok {
				t.Fatalf("result column %d has type %s", k, rec.Column(k).DataType())
			}
			v, err := vecFromArrow(rec.Column(k), ty)
			if err != nil {
				t.Fatal(err)
			}
			cols[k] = v
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			row := make([]value, len(cols))
			for k, c := range cols {
				row[k] = c.get(r)
			}
			out = append(out, row)
		}
	}
	return out
}

func sameValue(a, b value) bool {
	if a.null || b.null {
		return a.null == b.null
	}
	if a.t == Float64 || b.t == Float64 {
		af, bf := a.f, b.f
		if a.t == Int64 {
			af = float64(a.i)
		}
		if b.t == Int64 {
			bf = float64(b.i)
		}
		return af == bf || math.Abs(af-bf) <= 1e-9*math.Max(math.Abs(af), math.Abs(bf))
	}
	return compareValues(a, b) == 0
}

func sameRows(got, want [][]value) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d rows, want %d\ngot:  %v\nwant: %v", len(got), len(want), got, want)
	}
	for r := range got {
		if len(got[r]) != len(want[r]) {
			return fmt.Errorf("row %d: got %d columns, want %d", r, len(got[r]), len(want[r]))
		}
		for c := range got[r] {
			if !sameValue(got[r][c], want[r][c]) {
				return fmt.Errorf("row %d column %d: got %v, want %v\ngot row:  %v\nwant row: %v", r, c, got[r][c], want[r][c], got[r], want[r])
			}
		}
	}
	return nil
}

func sortRows(rs [][]value) {
	sort.SliceStable(rs, func(a, b int) bool {
		for c := range rs[a] {
			if x := refCompare(rs[a][c], rs[b][c]); x != 0 {
				return x < 0
			}
		}
		return false
	})
}

// tableRows reads every row of a table through a full scan.
func tableRows(t testing.TB, tb Table) [][]value {
	t.Helper()
	var out [][]value
	s := tb.Schema()
	cols := make([]int, s.NumFields())
	for k := range cols {
		cols[k] = k
	}
	for _, part := range tb.Partitions() {
		err := part.Scan(context.Background(), cols, 1<<20, func(rec arrow.RecordBatch) error {
			vs := make([]*vec, len(cols))
			for k := range cols {
				ty, _ := typeOfArrow(s.Field(k).Type)
				v, err := vecFromArrow(rec.Column(k), ty)
				if err != nil {
					return err
				}
				vs[k] = v
			}
			for r := 0; r < int(rec.NumRows()); r++ {
				row := make([]value, len(vs))
				for k, v := range vs {
					row[k] = v.get(r)
				}
				out = append(out, row)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}
