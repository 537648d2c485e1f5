package core

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestScenarios runs the scripts in testdata/. Each is a sequence of
// commands and the output they must produce; regenerate the outputs with
// -rewrite after a deliberate change, and review the diff.
//
// Commands:
//
//	cluster n=3 [prevote] [checkquorum] [chunk=N]
//	                                      start n fresh nodes 1..n (chunk: MaxSnapshotChunkSize)
//	campaign <id>                         start an election on a node
//	tick <id>... [n=1]                    tick nodes n times (no delivery)
//	propose <id> <data>                   a client proposal
//	read-index <id> <ctx>                 a linearizable read request
//	transfer-leader <id> <to>             hand leadership from a leader to a voter
//	isolate <id>...                       drop all traffic to and from these nodes
//	heal                                  stop dropping traffic
//	restart <id>                          crash a node and restart it from storage
//	stabilize                             deliver until quiet, printing each message
//	status                                every node's role, term, leader, commit, log
//	reads <id>                            read states the node has served
//	compact <id> [index]                  snapshot the node's state at its applied index and
//	                                      compact its log up to index (default: the applied index)
//	conf-change <id> [transition=auto|implicit|explicit] [v<id>] [l<id>] [r<id>]...
//	                                      propose a membership change: add voter, add learner,
//	                                      remove; no changes means leave the joint configuration
//	add-node <id>                         start a node that joins (knows only the bootstrap voters)
//	config                                every node's applied configuration
//	state <id>                            the commands in the node's state machine
//	drop <type>...                        drop every message of these types (e.g. snap)
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var nw *network
		var opts []option
		var delivered strings.Builder // messages seen since the last stabilize
		var dropTypes map[raftpb.MessageType]bool
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var out strings.Builder
			idArg := func(i int) uint64 {
				if len(d.CmdArgs) <= i {
					d.Fatalf(t, "%s: missing node id", d.Cmd)
				}
				id, err := strconv.ParseUint(d.CmdArgs[i].Key, 10, 64)
				if err != nil || nw.nodes[id] == nil {
					d.Fatalf(t, "%s: bad node id %q", d.Cmd, d.CmdArgs[i].Key)
				}
				return id
			}
			switch d.Cmd {
			case "cluster":
				n := 3
				opts = nil
				for _, a := range d.CmdArgs {
					switch a.Key {
					case "n":
						a.Scan(t, 0, &n)
					case "chunk":
						var c uint64
						a.Scan(t, 0, &c)
						opts = append(opts, withSnapChunk(c))
					case "prevote":
						opts = append(opts, withPreVote)
					case "checkquorum":
						opts = append(opts, withCheckQuorum)
					}
				}
				nw = newCluster(t, n, opts...)
				dropTypes = nil
				nw.drop = func(m *raftpb.Message) bool { return dropTypes[m.Type] }
				nw.trace = func(m *raftpb.Message, dropped bool) {
					if dropped {
						delivered.WriteString("dropped ")
					}
					delivered.WriteString(describe(m))
					delivered.WriteByte('\n')
				}
				return "ok"
			case "campaign":
				nw.nodes[idArg(0)].rn.Campaign()
				return "ok"
			case "tick":
				k := 1
				var targets []uint64
				for i, a := range d.CmdArgs {
					if a.Key == "n" {
						a.Scan(t, 0, &k)
						continue
					}
					targets = append(targets, idArg(i))
				}
				for _, id := range targets {
					nw.nodes[id].tick(k)
				}
				return "ok"
			case "propose":
				id := idArg(0)
				if err := nw.nodes[id].rn.Propose([]byte(d.CmdArgs[1].Key)); err != nil {
					return err.Error()
				}
				return "ok"
			case "read-index":
				id := idArg(0)
				if err := nw.nodes[id].rn.ReadIndex([]byte(d.CmdArgs[1].Key)); err != nil {
					return err.Error()
				}
				return "ok"
			case "transfer-leader":
				id, to := idArg(0), idArg(1)
				if err := nw.nodes[id].rn.TransferLeader(to); err != nil {
					return err.Error()
				}
				return "ok"
			case "isolate":
				cut := map[uint64]bool{}
				for i := range d.CmdArgs {
					cut[idArg(i)] = true
				}
				nw.drop = func(m *raftpb.Message) bool { return cut[m.From] || cut[m.To] }
				return "ok"
			case "heal":
				nw.heal()
				dropTypes = nil
				return "ok"
			case "drop":
				dropTypes = map[raftpb.MessageType]bool{}
				for _, a := range d.CmdArgs {
					typ, ok := raftpb.MessageType_value["MESSAGE_TYPE_"+strings.ToUpper(a.Key)]
					if !ok {
						d.Fatalf(t, "drop: unknown message type %q", a.Key)
					}
					dropTypes[raftpb.MessageType(typ)] = true
				}
				nw.drop = func(m *raftpb.Message) bool { return dropTypes[m.Type] }
				return "ok"
			case "compact":
				n := nw.nodes[idArg(0)]
				at := n.status().Applied
				if len(d.CmdArgs) > 1 {
					v, err := strconv.ParseUint(d.CmdArgs[1].Key, 10, 64)
					if err != nil {
						d.Fatalf(t, "compact: bad index %q", d.CmdArgs[1].Key)
					}
					at = v
				}
				snap := n.snapshotAndCompact(t, at)
				first, _ := n.st.FirstIndex()
				return fmt.Sprintf("snapshot %d@%d (%d bytes), first index %d", snap.Metadata.Index, snap.Metadata.Term, len(snap.Data), first)
			case "conf-change":
				id := idArg(0)
				cc := &raftpb.ConfChange{}
				for _, a := range d.CmdArgs[1:] {
					if a.Key == "transition" {
						switch a.Vals[0] {
						case "auto":
							cc.Transition = ccAuto
						case "implicit":
							cc.Transition = ccJointImplicit
						case "explicit":
							cc.Transition = ccJointExplicit
						default:
							d.Fatalf(t, "bad transition %q", a.Vals[0])
						}
						continue
					}
					typ := map[byte]raftpb.ConfChangeType{'v': ccAddNode, 'l': ccAddLearner, 'r': ccRemoveNode}[a.Key[0]]
					nid, err := strconv.ParseUint(a.Key[1:], 10, 64)
					if err != nil || !strings.ContainsRune("vlr", rune(a.Key[0])) {
						d.Fatalf(t, "bad change %q", a.Key)
					}
					cc.Changes = append(cc.Changes, &raftpb.ConfChangeSingle{Type: typ, NodeId: nid})
				}
				if err := nw.nodes[id].rn.ProposeConfChange(cc); err != nil {
					return err.Error()
				}
				return "ok"
			case "add-node":
				id, err := strconv.ParseUint(d.CmdArgs[0].Key, 10, 64)
				if err != nil || nw.nodes[id] != nil {
					d.Fatalf(t, "add-node: bad or existing id %q", d.CmdArgs[0].Key)
				}
				nw.addNode(id, opts...)
				return "ok"
			case "config":
				for _, id := range nw.ids {
					fmt.Fprintf(&out, "%d: %v\n", id, nw.nodes[id].rn.r.cfg)
				}
				return strings.TrimSuffix(out.String(), "\n")
			case "state":
				n := nw.nodes[idArg(0)]
				return fmt.Sprintf("%v", n.state())
			case "restart":
				id := idArg(0)
				nw.restart(id, opts...)
				return "ok"
			case "stabilize":
				delivered.Reset()
				nw.settle()
				if delivered.Len() == 0 {
					return "(no messages)"
				}
				return strings.TrimSuffix(delivered.String(), "\n")
			case "status":
				for _, id := range nw.ids {
					n := nw.nodes[id]
					s := n.status()
					log := fmt.Sprint(termsOf(n.entries()))
					if first := n.rn.r.log.firstIndex(); first > 1 {
						log = fmt.Sprintf("(%d compacted)%s", first-1, log)
					}
					fmt.Fprintf(&out, "%d: %s term=%d lead=%d commit=%d applied=%d log=%s\n",
						id, s.Role, s.Term, s.Lead, s.Commit, s.Applied, log)
				}
				return strings.TrimSuffix(out.String(), "\n")
			case "reads":
				n := nw.nodes[idArg(0)]
				if len(n.reads) == 0 {
					return "(none)"
				}
				for _, rs := range n.reads {
					fmt.Fprintf(&out, "%s at index %d\n", rs.RequestCtx, rs.Index)
				}
				return strings.TrimSuffix(out.String(), "\n")
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

// describe renders a message on one line, showing only the fields its type
// uses.
func describe(m *raftpb.Message) string {
	typ := strings.ToLower(strings.TrimPrefix(m.Type.String(), "MESSAGE_TYPE_"))
	var b strings.Builder
	fmt.Fprintf(&b, "%d->%d %s term=%d", m.From, m.To, typ, m.Term)
	switch m.Type {
	case msgVote, msgPreVote:
		fmt.Fprintf(&b, " last=%d@%d", m.Index, m.LogTerm)
	case msgVoteResp, msgPreVoteResp:
		if m.Reject {
			b.WriteString(" rejected")
		} else {
			b.WriteString(" granted")
		}
	case msgApp:
		fmt.Fprintf(&b, " prev=%d@%d commit=%d", m.Index, m.LogTerm, m.Commit)
		if len(m.Entries) > 0 {
			var es []string
			for _, e := range m.Entries {
				es = append(es, entryString(e))
			}
			fmt.Fprintf(&b, " entries=[%s]", strings.Join(es, " "))
		}
	case msgAppResp:
		if m.Reject {
			fmt.Fprintf(&b, " rejected index=%d hint=%d conflict-term=%d", m.Index, m.RejectHint, m.ConflictTerm)
		} else {
			fmt.Fprintf(&b, " index=%d", m.Index)
		}
	case msgHeartbeat:
		fmt.Fprintf(&b, " commit=%d", m.Commit)
	case msgProp:
		var ds []string
		for _, e := range m.Entries {
			if e.Type == raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE {
				ds = append(ds, ccString(e.Data))
			} else {
				ds = append(ds, string(e.Data))
			}
		}
		fmt.Fprintf(&b, " data=%v", ds)
	case msgReadIndexResp:
		fmt.Fprintf(&b, " index=%d", m.Index)
	case msgSnap:
		md := m.Snapshot.GetMetadata()
		fmt.Fprintf(&b, " snap=%d@%d %v offset=%d len=%d", md.GetIndex(), md.GetTerm(), confString(md.GetConfState()), m.SnapOffset, len(m.SnapData))
		if m.SnapDone {
			b.WriteString(" done")
		}
	case msgSnapResp:
		fmt.Fprintf(&b, " snap=%d offset=%d", m.Index, m.SnapOffset)
		if m.Reject {
			b.WriteString(" rejected")
		}
	}
	if len(m.Context) > 0 {
		fmt.Fprintf(&b, " ctx=%s", m.Context)
	}
	return b.String()
}

func entryString(e *raftpb.Entry) string {
	s := fmt.Sprintf("%d@%d", e.Index, e.Term)
	switch {
	case e.Type == raftpb.EntryType_ENTRY_TYPE_CONF_CHANGE:
		s += ":" + ccString(e.Data)
	case len(e.Data) > 0:
		s += ":" + string(e.Data)
	}
	return s
}

// ccString renders an encoded ConfChange as conf(v4 l5 r2 explicit), or
// conf(leave) for leaving a joint configuration.
func ccString(data []byte) string {
	cc := &raftpb.ConfChange{}
	if err := proto.Unmarshal(data, cc); err != nil {
		return "conf(bad)"
	}
	var parts []string
	for _, ch := range cc.Changes {
		p := map[raftpb.ConfChangeType]string{ccAddNode: "v", ccAddLearner: "l", ccRemoveNode: "r"}[ch.Type]
		parts = append(parts, fmt.Sprintf("%s%d", p, ch.NodeId))
	}
	if len(parts) == 0 {
		parts = append(parts, "leave")
	}
	switch cc.Transition {
	case ccJointImplicit:
		parts = append(parts, "implicit")
	case ccJointExplicit:
		parts = append(parts, "explicit")
	}
	return "conf(" + strings.Join(parts, " ") + ")"
}

func confString(cs *raftpb.ConfState) string {
	c, err := membershipFrom(cs)
	if err != nil {
		return "conf=bad"
	}
	return strings.ReplaceAll(c.String(), " ", ",")
}
