package supervision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/distributed-go/distributed/actor"
)

// TreeNode is one supervisor or child in a supervision tree, as Tree
// returns it.
type TreeNode struct {
	// ChildInfo describes the node as its supervisor sees it. For the root,
	// ID is the supervisor PID's name and Restart and Restarts are zero.
	ChildInfo
	// Strategy is the node's strategy, if it is a running supervisor.
	Strategy Strategy
	// ChildRestarts counts the automatic restarts this supervisor has
	// performed (the restarts that count towards its intensity).
	ChildRestarts uint64
	// Children are the supervisor's children in start order (oldest
	// first), including stopped ones.
	Children []*TreeNode
}

// Tree walks the supervision tree under the supervisor sup: its children,
// and recursively the children of every running child of type Supervisor
// that is a supervisor of this package. Each supervisor is asked in turn;
// the tree is not one atomic snapshot. A supervisor that dies during the
// walk is shown without children.
func Tree(ctx context.Context, sys *actor.System, sup *actor.PID) (*TreeNode, error) {
	n, err := actor.Ask[*TreeNode](ctx, sys, sup, describeReq{})
	if err != nil {
		return nil, fmt.Errorf("supervision: tree of %s: %w", sup, err)
	}
	for _, c := range n.Children {
		if c.Type != Supervisor || c.PID == nil {
			continue
		}
		if pi, ok := sys.Info(c.PID); !ok || pi.Kind != kind {
			continue // dead, or not one of ours: it would not answer
		}
		sub, err := Tree(ctx, sys, c.PID)
		if errors.Is(err, actor.ErrDeadActor) {
			continue
		}
		if err != nil {
			return nil, err
		}
		c.Strategy, c.ChildRestarts, c.Children = sub.Strategy, sub.ChildRestarts, sub.Children
	}
	return n, nil
}

// Walk calls f for n and every node below it, depth first in start order;
// depth is 0 for n.
func (n *TreeNode) Walk(f func(node *TreeNode, depth int)) { n.walk(f, 0) }

func (n *TreeNode) walk(f func(*TreeNode, int), depth int) {
	f(n, depth)
	for _, c := range n.Children {
		c.walk(f, depth+1)
	}
}

// String renders the tree, one node per line, indented by depth:
//
//	root: supervisor one_for_one, 1 restart performed, pid root#…
//	  db: worker, restarted 1 time, pid db#…
func (n *TreeNode) String() string {
	var b strings.Builder
	n.Walk(func(x *TreeNode, depth int) {
		b.WriteString(strings.Repeat("  ", depth))
		b.WriteString(x.Line())
		b.WriteByte('\n')
	})
	return b.String()
}

// Line renders the node alone, without its children. The PID is shown
// by the last part of its id (name#incarnation), which is unique on its node.
func (n *TreeNode) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", n.ID, n.Type)
	if n.Type == Supervisor && n.PID != nil {
		fmt.Fprintf(&b, " %s, %s performed", n.Strategy, plural(int(n.ChildRestarts), "restart"))
	}
	if n.Restart != Permanent {
		fmt.Fprintf(&b, ", %s", n.Restart)
	}
	if n.Restarts > 0 {
		fmt.Fprintf(&b, ", restarted %s", plural(n.Restarts, "time"))
	}
	if n.PID != nil {
		id := n.PID.ID()
		fmt.Fprintf(&b, ", pid %s", id[strings.LastIndexByte(id, '/')+1:])
	} else {
		b.WriteString(", not running")
	}
	return b.String()
}

func plural(n int, word string) string {
	switch {
	case n == 1:
		return "1 " + word
	case word == "child":
		return fmt.Sprintf("%d children", n)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
