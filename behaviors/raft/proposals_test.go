package raft

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/distributed-go/distributed/behaviors/raft/rpcpb"
)

// TestProposalsWire: batches are encoded byte for byte as proto.Marshal
// encodes rpcpb.Proposals, and any entry is decoded as proto.Unmarshal
// decodes it.
func TestProposalsWire(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var m rpcpb.Proposals
		var b []byte
		for range rapid.IntRange(0, 20).Draw(t, "n") {
			p := &rpcpb.Proposal{
				Id:      rapid.OneOf(rapid.Just(uint64(0)), rapid.Uint64()).Draw(t, "id"),
				Command: rapid.OneOf(rapid.Just([]byte(nil)), rapid.SliceOfN(rapid.Byte(), 0, 300)).Draw(t, "cmd"),
			}
			m.Proposals = append(m.Proposals, p)
			b = appendProposal(b, p.Id, p.Command)
		}
		want, err := proto.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("appendProposal wrote %x, proto.Marshal %x", b, want)
		}
		if _, ok := decodeProposalsFast(b, nil); !ok {
			t.Fatalf("%x not decoded directly", b)
		}
		if rapid.Bool().Draw(t, "mutate") && len(b) > 0 {
			for range rapid.IntRange(1, 3).Draw(t, "edits") {
				i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
				if rapid.Bool().Draw(t, "cut") {
					b = b[:i+1]
				} else {
					b[i] = rapid.Byte().Draw(t, "byte")
				}
			}
		}
		var pm rpcpb.Proposals
		perr := proto.Unmarshal(b, &pm)
		got, err := decodeProposals(b, []entryProposal{{id: 42}})
		if (err == nil) != (perr == nil) {
			t.Fatalf("%x: decodeProposals error %v, proto.Unmarshal error %v", b, err, perr)
		}
		if err != nil {
			return
		}
		if len(got) != 1+len(pm.Proposals) || got[0].id != 42 {
			t.Fatalf("%x: decoded %d proposals after the first, protobuf %d", b, len(got)-1, len(pm.Proposals))
		}
		for i, p := range pm.Proposals {
			if g := got[i+1]; g.id != p.Id || !bytes.Equal(g.command, p.Command) || (g.command == nil) != (p.Command == nil) {
				t.Fatalf("%x: proposal %d decoded as %d %x, protobuf %d %x", b, i, g.id, g.command, p.Id, p.Command)
			}
		}
	})
}
