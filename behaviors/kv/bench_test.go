package kv

import (
	"strconv"
	"testing"
)

// BenchmarkStoreApply applies puts of 128-byte values to 1000 keys from 64
// clients, as bench/raftbench does, to one store (encoding each command
// is part of the loop).
//
//	go test ./behaviors/kv -run '^$' -bench StoreApply -benchmem
func BenchmarkStoreApply(b *testing.B) {
	s := NewStore()
	value := make([]byte, 128)
	var keys [][]byte
	for i := range 1000 {
		keys = append(keys, []byte("key-"+strconv.Itoa(i)))
	}
	var buf []byte
	for i := 0; b.Loop(); i++ {
		seq := uint64(i/64 + 1)
		c := command{clientID: uint64(i%64 + 1), seq: seq, ackedBelow: seq, op: opPut, key: keys[i*7919%1000], value: value}
		buf = appendCommand(buf[:0], &c)
		s.Apply(uint64(i+1), buf)
	}
}
