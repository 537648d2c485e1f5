package query

import (
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Type is the engine's value type. Arrow columns are mapped onto these five
// types when scanned: all integer widths become Int64, float32/float64 and
// decimals become Float64, string and large_string become String, date32 and
// date64 become Date (days since 1970-01-01) and boolean becomes Bool.
type Type uint8

// The engine's value types.
const (
	Null Type = iota // the type of the NULL literal only
	Int64
	Float64
	String
	Date
	Bool
)

// String is the SQL name of the type.
func (t Type) String() string {
	switch t {
	case Null:
		return "NULL"
	case Int64:
		return "BIGINT"
	case Float64:
		return "DOUBLE"
	case String:
		return "VARCHAR"
	case Date:
		return "DATE"
	case Bool:
		return "BOOLEAN"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

func (t Type) numeric() bool { return t == Int64 || t == Float64 }

// arrowType is the Arrow type the engine produces for t.
func (t Type) arrowType() arrow.DataType {
	switch t {
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case Float64:
		return arrow.PrimitiveTypes.Float64
	case String:
		return arrow.BinaryTypes.String
	case Date:
		return arrow.FixedWidthTypes.Date32
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	}
	return arrow.Null
}

// typeOfArrow maps an Arrow type onto an engine type.
func typeOfArrow(dt arrow.DataType) (Type, bool) {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		return Int64, true
	case arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128, arrow.DECIMAL256:
		return Float64, true
	case arrow.STRING, arrow.LARGE_STRING:
		return String, true
	case arrow.DATE32, arrow.DATE64:
		return Date, true
	case arrow.BOOL:
		return Bool, true
	case arrow.NULL:
		return Null, true
	}
	return Null, false
}

// vec is one column of a batch in the engine's own representation: a typed
// Go slice (zero-copy over the Arrow buffer where the layouts agree) plus an
// optional null mask. Kernels are plain loops over these slices.
type vec struct {
	t    Type
	n    int
	i    []int64   // Int64 and Date
	f    []float64 // Float64
	s    []string  // String
	b    []bool    // Bool
	null []bool    // nil when no value is null
	// codes and dict, when set, say that s[k] == dict[codes[k]] for every
	// non-null row (the column was dictionary-encoded); group-by uses the
	// codes instead of comparing strings. Operations that make new values
	// leave them unset.
	codes []int32
	dict  []string
	// lazy, when set, says that i or f are not decoded yet: load decodes
	// the rows something reads (see pqlazy.go).
	lazy *lazyVals
}

func (v *vec) isNull(k int) bool { return v.null != nil && v.null[k] }

// materialize makes s of a dictionary-coded string vector that has only
// its codes.
func (v *vec) materialize() {
	if v.lazy != nil {
		v.load(nil)
	}
	if v.t != String || v.s != nil || v.codes == nil {
		return
	}
	v.s = make([]string, v.n)
	for k, j := range v.codes[:v.n] {
		if v.null == nil || !v.null[k] {
			v.s[k] = v.dict[j]
		}
	}
}

// strAt is row k of a String vector, coded or not.
func (v *vec) strAt(k int) string {
	if v.s == nil && v.codes != nil {
		return v.dict[v.codes[k]]
	}
	return v.s[k]
}

// constVec repeats one value n times.
func constVec(val value, n int) *vec {
	v := &vec{t: val.t, n: n}
	switch val.t {
	case Null:
		v.null = make([]bool, n)
		for k := range v.null {
			v.null[k] = true
		}
		return v
	case Int64, Date:
		v.i = make([]int64, n)
		for k := range v.i {
			v.i[k] = val.i
		}
	case Float64:
		v.f = make([]float64, n)
		for k := range v.f {
			v.f[k] = val.f
		}
	case String:
		v.s = make([]string, n)
		for k := range v.s {
			v.s[k] = val.s
		}
	case Bool:
		v.b = make([]bool, n)
		for k := range v.b {
			v.b[k] = val.b
		}
	}
	if val.null {
		v.null = make([]bool, n)
		for k := range v.null {
			v.null[k] = true
		}
	}
	return v
}

// value is one scalar: a literal, a group key or an aggregate result.
type value struct {
	t    Type
	null bool
	i    int64
	f    float64
	s    string
	b    bool
}

func (v *vec) get(k int) value {
	if v.isNull(k) || v.t == Null {
		return value{t: v.t, null: true}
	}
	switch v.t {
	case Int64, Date:
		return value{t: v.t, i: v.i[k]}
	case Float64:
		return value{t: v.t, f: v.f[k]}
	case String:
		return value{t: v.t, s: v.strAt(k)}
	case Bool:
		return value{t: v.t, b: v.b[k]}
	}
	return value{t: v.t, null: true}
}

// newVec makes an empty vector of type t with room for n values.
func newVec(t Type, n int) *vec {
	v := &vec{t: t}
	switch t {
	case Int64, Date:
		v.i = make([]int64, 0, n)
	case Float64:
		v.f = make([]float64, 0, n)
	case String:
		v.s = make([]string, 0, n)
	case Bool:
		v.b = make([]bool, 0, n)
	}
	return v
}

func (v *vec) appendValue(x value) {
	if x.null || x.t == Null {
		if v.null == nil {
			v.null = make([]bool, v.n, max(v.n, 16))
		}
		v.null = append(v.null, true)
		switch v.t {
		case Int64, Date:
			v.i = append(v.i, 0)
		case Float64:
			v.f = append(v.f, 0)
		case String:
			v.s = append(v.s, "")
		case Bool:
			v.b = append(v.b, false)
		}
		v.n++
		return
	}
	if v.null != nil {
		v.null = append(v.null, false)
	}
	switch v.t {
	case Int64, Date:
		v.i = append(v.i, x.i)
	case Float64:
		v.f = append(v.f, x.f)
	case String:
		v.s = append(v.s, x.s)
	case Bool:
		v.b = append(v.b, x.b)
	}
	v.n++
}

// gather returns the rows of v named by sel, in that order.
func (v *vec) gather(sel []int32) *vec {
	v.load(sel)
	out := &vec{t: v.t, n: len(sel)}
	switch v.t {
	case Int64, Date:
		out.i = make([]int64, len(sel))
		src := v.i
		for k, r := range sel {
			out.i[k] = src[r]
		}
	case Float64:
		out.f = make([]float64, len(sel))
		src := v.f
		for k, r := range sel {
			out.f[k] = src[r]
		}
	case String:
		if v.s != nil {
			out.s = make([]string, len(sel))
			src := v.s
			for k, r := range sel {
				out.s[k] = src[r]
			}
		}
		if v.codes != nil {
			out.dict = v.dict
			out.codes = make([]int32, len(sel))
			for k, r := range sel {
				out.codes[k] = v.codes[r]
			}
		}
	case Bool:
		out.b = make([]bool, len(sel))
		src := v.b
		for k, r := range sel {
			out.b[k] = src[r]
		}
	}
	if v.null != nil {
		out.null = make([]bool, len(sel))
		for k, r := range sel {
			out.null[k] = v.null[r]
		}
	}
	return out
}

// vecFromArrow converts an Arrow array to a vec of type want.
func vecFromArrow(a arrow.Array, want Type) (*vec, error) {
	n := a.Len()
	v := &vec{t: want, n: n}
	if a.NullN() > 0 {
		v.null = make([]bool, n)
		for k := 0; k < n; k++ {
			v.null[k] = a.IsNull(k)
		}
	}
	switch x := a.(type) {
	case *array.Int64:
		v.i = x.Int64Values()
	case *array.Int32:
		v.i = widen(x.Int32Values())
	case *array.Int16:
		v.i = widen(x.Int16Values())
	case *array.Int8:
		v.i = widen(x.Int8Values())
	case *array.Uint32:
		v.i = widen(x.Uint32Values())
	case *array.Uint16:
		v.i = widen(x.Uint16Values())
	case *array.Uint8:
		v.i = widen(x.Uint8Values())
	case *array.Float64:
		v.f = x.Float64Values()
	case *array.Float32:
		src := x.Float32Values()
		v.f = make([]float64, n)
		for k, f := range src {
			v.f[k] = float64(f)
		}
	case *array.Decimal128:
		scale := x.DataType().(*arrow.Decimal128Type).Scale
		v.f = make([]float64, n)
		for k := 0; k < n; k++ {
			v.f[k] = x.Value(k).ToFloat64(scale)
		}
	case *array.String:
		v.s = make([]string, n)
		for k := 0; k < n; k++ {
			v.s[k] = x.Value(k)
		}
	case *array.LargeString:
		v.s = make([]string, n)
		for k := 0; k < n; k++ {
			v.s[k] = x.Value(k)
		}
	case *array.Date32:
		v.i = widen(x.Date32Values())
	case *array.Date64:
		src := x.Date64Values()
		v.i = make([]int64, n)
		for k, d := range src {
			v.i[k] = int64(d) / 86400000
		}
	case *array.Boolean:
		v.b = make([]bool, n)
		for k := 0; k < n; k++ {
			v.b[k] = x.Value(k)
		}
	case *array.Dictionary:
		dict, ok := x.Dictionary().(*array.String)
		if !ok || want != String {
			return nil, fmt.Errorf("unsupported: column type %s", a.DataType())
		}
		words := make([]string, dict.Len())
		for k := range words {
			words[k] = dict.Value(k)
		}
		switch idx := x.Indices().(type) {
		case *array.Int32:
			// Strings are made from the codes only when something reads
			// them (materialize); group-by keys use the codes.
			v.codes, v.dict = idx.Int32Values(), words
		default:
			v.s = make([]string, n)
			for k := 0; k < n; k++ {
				if !x.IsNull(k) {
					v.s[k] = words[x.GetValueIndex(k)]
				}
			}
		}
	case *array.Null:
		v.null = make([]bool, n)
		for k := range v.null {
			v.null[k] = true
		}
	default:
		return nil, fmt.Errorf("unsupported: column type %s", a.DataType())
	}
	return v, nil
}

func widen[T int8 | int16 | int32 | uint8 | uint16 | uint32 | arrow.Date32](src []T) []int64 {
	out := make([]int64, len(src))
	for k, x := range src {
		out[k] = int64(x)
	}
	return out
}

// toArrow builds an Arrow array from v.
func (v *vec) toArrow(mem memory.Allocator) arrow.Array {
	valid, nulls := validityBitmap(v.null, v.n)
	switch v.t {
	case Int64:
		vals := v.i[:v.n:v.n]
		data := array.NewData(arrow.PrimitiveTypes.Int64, v.n,
			[]*memory.Buffer{valid, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(vals))}, nil, nulls, 0)
		defer data.Release()
		return array.NewInt64Data(data)
	case Float64:
		vals := v.f[:v.n:v.n]
		data := array.NewData(arrow.PrimitiveTypes.Float64, v.n,
			[]*memory.Buffer{valid, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(vals))}, nil, nulls, 0)
		defer data.Release()
		return array.NewFloat64Data(data)
	case Date:
		d := make([]arrow.Date32, v.n)
		for k := range d {
			d[k] = arrow.Date32(v.i[k])
		}
		data := array.NewData(arrow.FixedWidthTypes.Date32, v.n,
			[]*memory.Buffer{valid, memory.NewBufferBytes(arrow.Date32Traits.CastToBytes(d))}, nil, nulls, 0)
		defer data.Release()
		return array.NewDate32Data(data)
	case String:
		v.materialize()
		b := array.NewStringBuilder(mem)
		defer b.Release()
		size := 0
		for k := 0; k < v.n; k++ {
			size += len(v.s[k])
		}
		b.Reserve(v.n)
		b.ReserveData(size)
		for k := 0; k < v.n; k++ {
			if v.isNull(k) {
				b.AppendNull()
			} else {
				b.Append(v.s[k])
			}
		}
		return b.NewArray()
	case Bool:
		b := array.NewBooleanBuilder(mem)
		defer b.Release()
		b.Reserve(v.n)
		for k := 0; k < v.n; k++ {
			if v.isNull(k) {
				b.AppendNull()
			} else {
				b.Append(v.b[k])
			}
		}
		return b.NewArray()
	}
	return array.NewNull(v.n)
}

// validityBitmap is the Arrow validity bitmap of n values whose nulls are
// marked in null (nil: none), and the number of nulls; the bitmap is nil
// when there are none.
func validityBitmap(null []bool, n int) (*memory.Buffer, int) {
	if null == nil {
		return nil, 0
	}
	bits := make([]byte, (n+7)/8)
	nulls := 0
	for k, isNull := range null[:n] {
		if isNull {
			nulls++
		} else {
			bits[k/8] |= 1 << (k % 8)
		}
	}
	if nulls == 0 {
		return nil, 0
	}
	return memory.NewBufferBytes(bits), nulls
}

// Date helpers: dates are days since the Unix epoch.

func parseDate(s string) (int64, bool) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, false
	}
	return t.Unix() / 86400, true
}

func formatDate(d int64) string {
	return time.Unix(d*86400, 0).UTC().Format("2006-01-02")
}

func addMonths(d int64, months int64) int64 {
	t := time.Unix(d*86400, 0).UTC()
	y, m, day := t.Date()
	total := int64(y)*12 + int64(m-1) + months
	ny, nm := total/12, time.Month(total%12+1)
	// Clamp to the last day of the month, as SQL engines do.
	last := time.Date(int(ny), nm+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if day > last {
		day = last
	}
	return time.Date(int(ny), nm, day, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func (x value) String() string {
	if x.null || x.t == Null {
		return "NULL"
	}
	switch x.t {
	case Int64:
		return fmt.Sprint(x.i)
	case Float64:
		if x.f == math.Trunc(x.f) && math.Abs(x.f) < 1e15 {
			return fmt.Sprintf("%.1f", x.f)
		}
		return fmt.Sprint(x.f)
	case String:
		return x.s
	case Date:
		return formatDate(x.i)
	case Bool:
		return fmt.Sprint(x.b)
	}
	return "?"
}
