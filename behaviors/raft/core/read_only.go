package core

import "github.com/distributed-go/distributed/behaviors/raft/raftpb"

// ReadState answers a ReadIndex request: once the application has applied
// the log up to Index, a read of its state is linearizable with respect to
// every write acknowledged before the request was made (§6.4 of the Raft
// thesis).
type ReadState struct {
	// Index is the read index: the leader's commit index when it received
	// the request, confirmed by a quorum still following it.
	Index uint64
	// RequestCtx is the context given to ReadIndex, identifying the request.
	RequestCtx []byte
}

// readIndexStatus is one ReadIndex request waiting for a quorum of
// heartbeat acknowledgements.
type readIndexStatus struct {
	req   *raftpb.Message
	index uint64
	acks  map[uint64]bool
}

// readOnly tracks ReadIndex requests in the order received. A quorum
// acknowledging one request confirms all earlier ones too, since the
// heartbeat carrying it was sent after theirs.
type readOnly struct {
	pending map[string]*readIndexStatus
	queue   []string
}

func newReadOnly() *readOnly {
	return &readOnly{pending: map[string]*readIndexStatus{}}
}

// add records a request at read index index. A request whose context is
// already pending is ignored (its answer will serve both).
func (ro *readOnly) add(index uint64, m *raftpb.Message) {
	ctx := string(m.Context)
	if _, ok := ro.pending[ctx]; ok {
		return
	}
	ro.pending[ctx] = &readIndexStatus{req: m, index: index, acks: map[uint64]bool{}}
	ro.queue = append(ro.queue, ctx)
}

// ack records that id acknowledged the heartbeat carrying ctx and returns
// the acknowledgements so far (nil for an unknown ctx).
func (ro *readOnly) ack(id uint64, ctx []byte) map[uint64]bool {
	rs, ok := ro.pending[string(ctx)]
	if !ok {
		return nil
	}
	rs.acks[id] = true
	return rs.acks
}

// advance removes and returns the requests up to and including ctx.
func (ro *readOnly) advance(ctx []byte) []*readIndexStatus {
	key := string(ctx)
	for i, c := range ro.queue {
		if c == key {
			out := make([]*readIndexStatus, 0, i+1)
			for _, k := range ro.queue[:i+1] {
				out = append(out, ro.pending[k])
				delete(ro.pending, k)
			}
			ro.queue = ro.queue[i+1:]
			return out
		}
	}
	return nil
}

// lastCtx returns the context of the newest pending request.
func (ro *readOnly) lastCtx() []byte {
	if len(ro.queue) == 0 {
		return nil
	}
	return []byte(ro.queue[len(ro.queue)-1])
}
