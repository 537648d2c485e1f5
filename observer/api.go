package observer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/actor/actorpb"
	"github.com/distributed-go/distributed/cluster/clusterpb"
)

// Snapshot is the cluster as one node's observer sees it.
type Snapshot struct {
	// Node is the name of the node that serves the observer.
	Node string `json:"node"`
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Actions tells whether this observer accepts actions.
	Actions bool `json:"actions"`
	// Members are the members the serving node knows, itself included.
	Members []Member `json:"members"`
	// Nodes are the reports of the alive members, the serving node first,
	// then the dead members (with only Name and Error).
	Nodes []NodeView `json:"nodes"`
}

// Member is one member as the serving node sees it.
type Member struct {
	Name          string    `json:"name"`
	State         string    `json:"state"` // alive, dead or left
	RemoteAddress string    `json:"remote_address"`
	GossipAddress string    `json:"gossip_address"`
	Since         time.Time `json:"since"`
}

// NodeView is one node's own report.
type NodeView struct {
	Name          string `json:"name"`
	RemoteAddress string `json:"remote_address,omitempty"`
	// Error says why the node could not be inspected; the rest is empty.
	Error string `json:"error,omitempty"`
	// Control tells whether the node accepts control requests.
	Control bool `json:"control"`
	// Faults are the node's active fault rules.
	Faults    []string  `json:"faults"`
	Processes []Process `json:"processes"`
	// ProcessesOmitted counts the actors left out of a very large report.
	ProcessesOmitted int `json:"processes_omitted,omitempty"`
}

// Process is one live actor.
type Process struct {
	// PID is the actor as the CLI and the API accept it: "node:id".
	PID     string   `json:"pid"`
	ID      string   `json:"id"`
	Node    string   `json:"node"`
	Address string   `json:"address"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Parent  string   `json:"parent,omitempty"` // the parent's ID
	Names   []string `json:"names,omitempty"`
	Mailbox int      `json:"mailbox"`
	// Processed counts the messages this incarnation handled.
	Processed uint64 `json:"processed"`
	// Rate is messages per second since the node's previous report.
	Rate float64 `json:"rate"`
	// Restarts counts the restarts it performed as a supervisor.
	Restarts uint64 `json:"restarts"`
	// ChildID, ChildType and ChildRestarts describe it as its supervisor's
	// child: spec id, worker or supervisor, times restarted.
	ChildID       string  `json:"child_id,omitempty"`
	ChildType     string  `json:"child_type,omitempty"`
	ChildRestarts int64   `json:"child_restarts"`
	Strategy      string  `json:"strategy,omitempty"`
	Info          string  `json:"info,omitempty"`
	UptimeSeconds float64 `json:"uptime_seconds"`
}

// Label is the name to show for the actor: its child spec id, else its
// registered name, else its spawn name.
func (p Process) Label() string {
	switch {
	case p.ChildID != "":
		return p.ChildID
	case len(p.Names) > 0:
		return p.Names[0]
	}
	return p.Name
}

// FormatPID renders a PID of the named node as the CLI and API accept it.
func FormatPID(node, id string) string { return node + ":" + id }

// ParsePID parses "node:id" (as FormatPID renders it, with addressOf giving
// the node's address) or "id@host:port" (as actor.PID.String renders it).
func ParsePID(s string, addressOf func(node string) (string, bool)) (*actor.PID, error) {
	var addr, id string
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		id, addr = s[:i], s[i+1:]
	} else if i := strings.IndexByte(s, ':'); i > 0 {
		node := s[:i]
		id = s[i+1:]
		a, ok := addressOf(node)
		if !ok {
			return nil, fmt.Errorf("%w: %q (in pid %q)", errUnknownNode, node, s)
		}
		addr = a
	} else {
		return nil, fmt.Errorf("pid %q: want node:id (as dist ps shows it) or id@host:port", s)
	}
	j := strings.LastIndexByte(id, '#')
	if j < 0 || id == "" || addr == "" {
		return nil, fmt.Errorf("pid %q: the id must end in #incarnation, as dist ps shows it", s)
	}
	inc, err := strconv.ParseUint(id[j+1:], 36, 64)
	if err != nil {
		return nil, fmt.Errorf("pid %q: malformed incarnation %q", s, id[j+1:])
	}
	p, err := actor.PIDFromProto(&actorpb.PID{Address: addr, Id: id, Incarnation: inc})
	if err != nil {
		return nil, fmt.Errorf("pid %q: %v", s, err)
	}
	return p, nil
}

// Token is the API token of a cluster with the given secret: the HMAC of a
// fixed label keyed by the secret, so the secret itself never travels.
func Token(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("distributed observer token v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// Error codes of APIError.
const (
	CodeInvalid      = "invalid"      // malformed request (HTTP 400)
	CodeUnauthorized = "unauthorized" // missing or wrong token: wrong cluster secret (401)
	CodeDisabled     = "disabled"     // actions are disabled (403)
	CodeUnknownPID   = "unknown_pid"  // no such live actor (404)
	CodeUnknownNode  = "unknown_node" // no such member (404)
	CodeUnreachable  = "unreachable"  // the member did not answer (502)
	CodeFailed       = "failed"       // anything else (500)
)

// APIError is an error answered by the API, or met reaching it.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *APIError) Error() string { return e.Message }

// ActionResult answers an action: what each node did.
type ActionResult struct {
	// OK is true when every node that had to act did.
	OK bool `json:"ok"`
	// Message says what was done.
	Message string `json:"message"`
	// Errors has the nodes that failed, with their errors.
	Errors map[string]string `json:"errors,omitempty"`
}

func snapshotNode(r *clusterpb.NodeReport) NodeView {
	v := NodeView{Name: r.GetNode(), RemoteAddress: r.GetRemoteAddress(), Error: r.GetError(),
		Control: r.GetControlEnabled(), Faults: r.GetFaultRules(), Processes: []Process{},
		ProcessesOmitted: int(r.GetProcessesOmitted())}
	if v.Faults == nil {
		v.Faults = []string{}
	}
	for _, p := range r.GetProcesses() {
		pr := Process{
			PID: FormatPID(r.GetNode(), p.GetPid().GetId()), ID: p.GetPid().GetId(), Node: r.GetNode(),
			Address: p.GetPid().GetAddress(), Name: p.GetPid().GetName(), Kind: p.GetKind(), Names: p.GetNames(),
			Mailbox: int(p.GetMailboxDepth()), Processed: p.GetProcessed(), Rate: p.GetMessagesPerSecond(),
			Restarts: p.GetRestarts(), ChildID: p.GetChildId(), ChildType: p.GetChildType(),
			ChildRestarts: p.GetChildRestarts(), Strategy: p.GetStrategy(), Info: p.GetInfo(),
			UptimeSeconds: time.Duration(p.GetUptimeNanos()).Seconds(),
		}
		if p.GetParent() != nil {
			pr.Parent = p.GetParent().GetId()
		}
		v.Processes = append(v.Processes, pr)
	}
	return v
}
