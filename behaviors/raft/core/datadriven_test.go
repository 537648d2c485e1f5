package core

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// TestScenarios runs the scripts in testdata/. Each is a sequence of
// commands and the output they must produce; regenerate the outputs with
// -rewrite after a deliberate change, and review the diff.
//
// Commands:
//
//	cluster n=3 [prevote] [checkquorum]   start n fresh nodes 1..n
//	campaign <id>                         start an election on a node
//	tick <id>... [n=1]                    tick nodes n times (no delivery)
//	propose <id> <data>                   a client proposal
//	read-index <id> <ctx>                 a linearizable read request
//	transfer-leader <id> <to>             hand leadership from a leader to a voter
//	isolate <id>                          drop all traffic to and from a node
//	heal                                  stop dropping traffic
//	restart <id>                          crash a node and restart it from storage
//	stabilize                             deliver until quiet, printing each message
//	status                                every node's role, term, leader, commit, log
//	reads <id>                            read states the node has served
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var nw *network
		var opts []option
		var delivered strings.Builder // messages seen since the last stabilize
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
					case "prevote":
						opts = append(opts, withPreVote)
					case "checkquorum":
						opts = append(opts, withCheckQuorum)
					}
				}
				nw = newCluster(t, n, opts...)
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
				nw.isolate(idArg(0))
				return "ok"
			case "heal":
				nw.heal()
				return "ok"
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
					fmt.Fprintf(&out, "%d: %s term=%d lead=%d commit=%d applied=%d log=%v\n",
						id, s.Role, s.Term, s.Lead, s.Commit, len(n.applied), termsOf(n.entries()))
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
				s := fmt.Sprintf("%d@%d", e.Index, e.Term)
				if len(e.Data) > 0 {
					s += ":" + string(e.Data)
				}
				es = append(es, s)
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
			ds = append(ds, string(e.Data))
		}
		fmt.Fprintf(&b, " data=%v", ds)
	case msgReadIndexResp:
		fmt.Fprintf(&b, " index=%d", m.Index)
	}
	if len(m.Context) > 0 {
		fmt.Fprintf(&b, " ctx=%s", m.Context)
	}
	return b.String()
}
