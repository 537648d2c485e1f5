package kv

import (
	"bytes"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/distributed-go/distributed/behaviors/kv/kvpb"
)

func genBytes(t *rapid.T, label string) []byte {
	return rapid.OneOf(rapid.Just([]byte(nil)), rapid.Just([]byte{}), rapid.SliceOfN(rapid.Byte(), 0, 300)).Draw(t, label)
}

func genCommand(t *rapid.T) *kvpb.Command {
	m := &kvpb.Command{
		ClientId:   rapid.OneOf(rapid.Just(uint64(0)), rapid.Uint64()).Draw(t, "client"),
		Seq:        rapid.OneOf(rapid.Just(uint64(0)), rapid.Uint64()).Draw(t, "seq"),
		AckedBelow: rapid.OneOf(rapid.Just(uint64(0)), rapid.Uint64()).Draw(t, "acked"),
	}
	key := rapid.OneOf(rapid.Just(""), rapid.String(), rapid.StringN(0, 5000, -1)).Draw(t, "key")
	switch rapid.IntRange(0, 3).Draw(t, "op") {
	case 1:
		m.Op = &kvpb.Command_Put{Put: &kvpb.Put{Key: key, Value: genBytes(t, "value")}}
	case 2:
		m.Op = &kvpb.Command_Delete{Delete: &kvpb.Delete{Key: key}}
	case 3:
		m.Op = &kvpb.Command_Cas{Cas: &kvpb.CompareAndSwap{Key: key, Expected: genBytes(t, "expected"),
			ExpectAbsent: rapid.Bool().Draw(t, "absent"), Value: genBytes(t, "value")}}
	}
	return m
}

func sameCommand(a, b command) bool {
	return a.clientID == b.clientID && a.seq == b.seq && a.ackedBelow == b.ackedBelow && a.op == b.op &&
		string(a.key) == string(b.key) && bytes.Equal(a.value, b.value) && bytes.Equal(a.expected, b.expected) &&
		a.expectAbsent == b.expectAbsent && (a.value == nil) == (b.value == nil) && (a.expected == nil) == (b.expected == nil)
}

// TestCommandWire: the direct encoding and decoding of commands agree with
// protobuf's on every command.
func TestCommandWire(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genCommand(t)
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		c := commandOf(m)
		if got := appendCommand(nil, &c); !bytes.Equal(got, want) {
			t.Fatalf("appendCommand = %x, proto.Marshal = %x", got, want)
		}
		if n := commandSize(&c); n != len(want) {
			t.Fatalf("commandSize = %d, want %d", n, len(want))
		}
		var back kvpb.Command
		if err := proto.Unmarshal(want, &back); err != nil {
			t.Fatal(err)
		}
		var d command
		if !decodeCommandFast(want, &d) {
			t.Fatalf("canonical encoding %x not decoded directly", want)
		}
		if !sameCommand(d, commandOf(&back)) {
			t.Fatalf("decoded %+v, protobuf decodes %+v", d, commandOf(&back))
		}
	})
}

// TestCommandDecodeArbitrary: on any input, decodeCommand reaches the
// verdict proto.Unmarshal reaches.
func TestCommandDecodeArbitrary(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var b []byte
		if rapid.Bool().Draw(t, "mutate") {
			b, _ = proto.Marshal(genCommand(t))
			for range rapid.IntRange(1, 4).Draw(t, "edits") {
				if len(b) == 0 {
					break
				}
				i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
				switch rapid.IntRange(0, 2).Draw(t, "edit") {
				case 0:
					b[i] = rapid.Byte().Draw(t, "byte")
				case 1:
					b = b[:i]
				case 2:
					b = append(b, b[i:]...) // repeat a tail
				}
			}
		} else {
			b = rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "raw")
		}
		var m kvpb.Command
		perr := proto.Unmarshal(b, &m)
		var c command
		err := decodeCommand(b, &c)
		if (err == nil) != (perr == nil) {
			t.Fatalf("%x: decodeCommand error %v, proto.Unmarshal error %v", b, err, perr)
		}
		if err == nil && !sameCommand(c, commandOf(&m)) {
			t.Fatalf("%x: decoded %+v, protobuf decodes %+v", b, c, commandOf(&m))
		}
	})
}

// TestResultWire: results are encoded byte for byte as proto.Marshal
// (deterministic) does, and decoded as proto.Unmarshal does.
func TestResultWire(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := result{
			found:   rapid.Bool().Draw(t, "found"),
			swapped: rapid.Bool().Draw(t, "swapped"),
			value:   genBytes(t, "value"),
			err:     rapid.OneOf(rapid.Just(""), rapid.String()).Draw(t, "err"),
			index:   rapid.OneOf(rapid.Just(uint64(0)), rapid.Uint64()).Draw(t, "index"),
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(r.proto())
		if err != nil {
			t.Fatal(err)
		}
		got := encodeResult(&r)
		if !bytes.Equal(got, want) {
			t.Fatalf("encodeResult = %x, proto.Marshal = %x", got, want)
		}
		if cap(got) != len(got) {
			t.Fatalf("encodeResult sized its buffer %d for %d bytes", cap(got), len(got))
		}
		b := want
		if rapid.Bool().Draw(t, "mutate") && len(b) > 0 {
			b = append([]byte{}, b...)
			b[rapid.IntRange(0, len(b)-1).Draw(t, "at")] = rapid.Byte().Draw(t, "byte")
		}
		var m kvpb.Result
		perr := proto.Unmarshal(b, &m)
		var d result
		derr := decodeResult(b, &d)
		if (derr == nil) != (perr == nil) {
			t.Fatalf("%x: decodeResult error %v, proto.Unmarshal error %v", b, derr, perr)
		}
		if o := resultOf(&m); derr == nil && (d.found != o.found || d.swapped != o.swapped || d.err != o.err ||
			d.index != o.index || !bytes.Equal(d.value, o.value)) {
			t.Fatalf("%x: decoded %+v, protobuf decodes %+v", b, d, o)
		}
	})
}

// TestSessionOutOfOrder: commands of one client applied out of seq order
// are each deduplicated, and acknowledging drops exactly the results below.
func TestSessionOutOfOrder(t *testing.T) {
	s := NewStore()
	put := func(index, seq, acked uint64, v string) result {
		t.Helper()
		c := command{clientID: 7, seq: seq, ackedBelow: acked, op: opCas, key: []byte("k"), expectAbsent: v == "a", expected: []byte("a"), value: []byte(v)}
		var r result
		if err := decodeResult(s.Apply(index, appendCommand(nil, &c)), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := put(1, 3, 1, "a"); !r.swapped || r.index != 1 {
		t.Fatalf("seq 3: %+v", r)
	}
	if r := put(2, 2, 1, "b"); !r.swapped || r.index != 2 {
		t.Fatalf("seq 2: %+v", r)
	}
	if r := put(3, 3, 1, "a"); !r.swapped || r.index != 1 {
		t.Fatalf("retry of seq 3 got %+v, want the first result", r)
	}
	if r := put(4, 2, 1, "b"); !r.swapped || r.index != 2 {
		t.Fatalf("retry of seq 2 got %+v, want the first result", r)
	}
	if r := put(5, 4, 3, "c"); r.swapped || r.err != "" {
		t.Fatalf("seq 4: %+v", r)
	}
	if r := put(6, 2, 3, "b"); r.err == "" {
		t.Fatalf("acknowledged seq 2 applied again: %+v", r)
	}
	if got := s.sessions[7].results; len(got) != 2 || got[0].seq != 3 || got[1].seq != 4 {
		t.Fatalf("results kept: %+v", got)
	}
}

// TestSessionFind: find agrees with a binary search on short and long
// result lists.
func TestSessionFind(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seqs := rapid.SliceOfNDistinct(rapid.Uint64Range(1, 60), 0, 30, rapid.ID).Draw(t, "seqs")
		slices.Sort(seqs)
		var x session
		for _, s := range seqs {
			x.results = append(x.results, seqResult{seq: s})
		}
		seq := rapid.Uint64Range(0, 61).Draw(t, "seq")
		i, ok := x.find(seq)
		wi, wok := slices.BinarySearch(seqs, seq)
		if i != wi || ok != wok {
			t.Fatalf("find(%d) in %v = %d %v, want %d %v", seq, seqs, i, ok, wi, wok)
		}
	})
}
