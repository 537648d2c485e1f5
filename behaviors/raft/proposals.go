package raft

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/behaviors/internal/pbwire"
	"github.com/distributed-go/distributed/behaviors/raft/rpcpb"
)

// The leader batches client commands into log entries (rpcpb.Proposals)
// and every member decodes each entry to apply it. Both happen for every
// command, so they are written directly with protowire: no message per
// command, no copy of the commands. Entries in another form than the one
// appendProposal writes (unknown fields, say) are decoded by proto.Unmarshal.

// entryProposal is one command of a log entry. command aliases the entry.
type entryProposal struct {
	id      uint64
	command []byte
}

// appendProposal appends to b, the encoding of an rpcpb.Proposals, one
// rpcpb.Proposal: b stays the encoding of an rpcpb.Proposals, as
// proto.Marshal would write it.
func appendProposal(b []byte, id uint64, command []byte) []byte {
	n := 0
	if id != 0 {
		n += 1 + protowire.SizeVarint(id)
	}
	if len(command) > 0 {
		n += 1 + protowire.SizeBytes(len(command))
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	if id != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, id)
	}
	if len(command) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, command)
	}
	return b
}

// decodeProposals appends the proposals of an encoded rpcpb.Proposals to
// props.
func decodeProposals(b []byte, props []entryProposal) ([]entryProposal, error) {
	if out, ok := decodeProposalsFast(b, props); ok {
		return out, nil
	}
	var m rpcpb.Proposals
	if err := proto.Unmarshal(b, &m); err != nil {
		return props, err
	}
	for _, p := range m.Proposals {
		props = append(props, entryProposal{id: p.Id, command: p.Command})
	}
	return props, nil
}

// decodeProposalsFast decodes b if it is in the form appendProposal writes.
func decodeProposalsFast(b []byte, props []entryProposal) ([]entryProposal, bool) {
	start := len(props)
	for len(b) > 0 {
		num, typ, n := pbwire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return props[:start], false
		}
		b = b[n:]
		p, n := pbwire.ConsumeBytes(b)
		if n < 0 {
			return props[:start], false
		}
		b = b[n:]
		var e entryProposal
		last := protowire.Number(0)
		for len(p) > 0 {
			num, typ, n := pbwire.ConsumeTag(p)
			if n < 0 || num <= last {
				return props[:start], false
			}
			p = p[n:]
			last = num
			switch {
			case num == 1 && typ == protowire.VarintType:
				e.id, n = pbwire.ConsumeVarint(p)
			case num == 2 && typ == protowire.BytesType:
				e.command, n = pbwire.ConsumeBytes(p)
			default:
				return props[:start], false
			}
			if n < 0 {
				return props[:start], false
			}
			p = p[n:]
		}
		if len(e.command) == 0 {
			e.command = nil // as proto.Unmarshal leaves it
		}
		props = append(props, e)
	}
	return props, true
}
