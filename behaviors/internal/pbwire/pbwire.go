// Package pbwire has protowire's decoding helpers with their one-byte cases
// inlined, for the hand-written protobuf decoders on hot paths (the Raft
// member's batched entries, the key-value store's commands and results).
package pbwire

import "google.golang.org/protobuf/encoding/protowire"

// ConsumeTag is protowire.ConsumeTag with the one-byte case inlined.
func ConsumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	if len(b) > 0 && b[0] < 0x80 && b[0] >= 1<<3 {
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	return protowire.ConsumeTag(b)
}

// ConsumeVarint is protowire.ConsumeVarint with the one-byte case inlined.
func ConsumeVarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return protowire.ConsumeVarint(b)
}

// ConsumeBytes is protowire.ConsumeBytes over ConsumeVarint.
func ConsumeBytes(b []byte) ([]byte, int) {
	m, n := ConsumeVarint(b)
	if n < 0 {
		return nil, n
	}
	if m > uint64(len(b)-n) {
		return nil, -1
	}
	return b[n : n+int(m)], n + int(m)
}
