package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distributed-go/distributed/observer"
)

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// snapshotCommand is the shape of members, ps and tree: fetch a snapshot
// and print it.
func snapshotCommand(name, usageLine string, args []string, stdout, stderr io.Writer,
	print func(s *observer.Snapshot, w io.Writer, json bool)) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	pos, code, done := parseFlags(fs, args, stderr, usageLine)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, usageLine, "%s takes no arguments", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	s, err := cf.client().Snapshot(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	print(s, stdout, cf.json)
	return exitOK
}

func runMembers(args []string, stdout, stderr io.Writer) int {
	return snapshotCommand("members", "members [--addr host:port] [--json]", args, stdout, stderr,
		func(s *observer.Snapshot, w io.Writer, asJSON bool) {
			if asJSON {
				printJSON(w, s.Members)
				return
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tACTOR TRANSPORT\tGOSSIP\tSINCE")
			for _, m := range s.Members {
				self := ""
				if m.Name == s.Node {
					self = " *"
				}
				fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s ago\n", m.Name, self, m.State, m.RemoteAddress, m.GossipAddress,
					time.Since(m.Since).Round(time.Second))
			}
			_ = tw.Flush()
			fmt.Fprintf(w, "(* the node answering: %s)\n", s.Node)
		})
}

// ordered returns a node's processes depth first in tree order, with
// their depths.
func ordered(procs []observer.Process) ([]observer.Process, []int) {
	ids := map[string]bool{}
	for _, p := range procs {
		ids[p.ID] = true
	}
	children := map[string][]observer.Process{}
	for _, p := range procs {
		parent := p.Parent
		if !ids[parent] {
			parent = ""
		}
		children[parent] = append(children[parent], p)
	}
	var out []observer.Process
	var depths []int
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		for _, p := range children[parent] {
			out = append(out, p)
			depths = append(depths, depth)
			walk(p.ID, depth+1)
		}
	}
	walk("", 0)
	return out, depths
}

func runPs(args []string, stdout, stderr io.Writer) int {
	return snapshotCommand("ps", "ps [--addr host:port] [--json]", args, stdout, stderr,
		func(s *observer.Snapshot, w io.Writer, asJSON bool) {
			if asJSON {
				var all []observer.Process
				for _, n := range s.Nodes {
					all = append(all, n.Processes...)
				}
				if all == nil {
					all = []observer.Process{}
				}
				printJSON(w, all)
				return
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tACTOR\tKIND\tMAILBOX\tMSG/S\tRESTARTED\tPID\tSTATE")
			for _, n := range s.Nodes {
				if n.Error != "" {
					fmt.Fprintf(tw, "%s\t(not inspected: %s)\t\t\t\t\t\t\n", n.Name, n.Error)
					continue
				}
				procs, _ := ordered(n.Processes)
				for _, p := range procs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%d\t%s\t%s\n", n.Name, p.Label(), p.Kind, p.Mailbox, p.Rate,
						p.ChildRestarts, p.PID, p.Info)
				}
				if n.ProcessesOmitted > 0 {
					fmt.Fprintf(tw, "%s\t(%d more actors not listed)\t\t\t\t\t\t\n", n.Name, n.ProcessesOmitted)
				}
			}
			_ = tw.Flush()
		})
}

func runTree(args []string, stdout, stderr io.Writer) int {
	return snapshotCommand("tree", "tree [--addr host:port] [--json]", args, stdout, stderr,
		func(s *observer.Snapshot, w io.Writer, asJSON bool) {
			if asJSON {
				printJSON(w, s.Nodes)
				return
			}
			for i, n := range s.Nodes {
				if i > 0 {
					fmt.Fprintln(w)
				}
				if n.Error != "" {
					fmt.Fprintf(w, "%s: not inspected: %s\n", n.Name, n.Error)
					continue
				}
				fmt.Fprintf(w, "%s (%s)\n", n.Name, n.RemoteAddress)
				procs, depths := ordered(n.Processes)
				for j, p := range procs {
					line := p.Label() + ": "
					if p.Kind == "supervisor" {
						line += fmt.Sprintf("supervisor %s, %d restarts done", p.Strategy, p.Restarts)
					} else {
						line += p.Kind
					}
					if p.ChildRestarts > 0 {
						line += fmt.Sprintf(", restarted %d time%s", p.ChildRestarts, plural(p.ChildRestarts))
					}
					if p.Info != "" {
						line += " [" + p.Info + "]"
					}
					fmt.Fprintf(w, "%s%s  %s\n", strings.Repeat("  ", depths[j]+1), line, p.PID)
				}
			}
		})
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// actionCommand runs one action and prints its result.
func actionCommand(name, usageLine string, args []string, stdout, stderr io.Writer, extra func(fs *flag.FlagSet),
	act func(ctx context.Context, c *observer.Client, pos []string) (*observer.ActionResult, error, bool)) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	if extra != nil {
		extra(fs)
	}
	pos, code, done := parseFlags(fs, args, stderr, usageLine)
	if done {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	res, err, badUsage := act(ctx, cf.client(), pos)
	if badUsage {
		return usageError(stderr, usageLine, "%v", err)
	}
	if err != nil {
		return fail(stderr, err)
	}
	if cf.json {
		printJSON(stdout, res)
	} else {
		fmt.Fprintln(stdout, res.Message)
		nodes := make([]string, 0, len(res.Errors))
		for n := range res.Errors {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		for _, n := range nodes {
			fmt.Fprintf(stderr, "dist: %s: %s\n", n, res.Errors[n])
		}
	}
	if !res.OK {
		return exitFailure
	}
	return exitOK
}

func runKill(args []string, stdout, stderr io.Writer) int {
	const u = "kill <node:id | node:name> [--addr host:port]"
	return actionCommand("kill", u, args, stdout, stderr, nil,
		func(ctx context.Context, c *observer.Client, pos []string) (*observer.ActionResult, error, bool) {
			if len(pos) != 1 {
				return nil, fmt.Errorf("kill takes one actor"), true
			}
			pid := pos[0]
			// node:name (no incarnation) picks the one live actor with that
			// child id or name on that node, as dist ps shows it.
			if node, name, ok := strings.Cut(pid, ":"); ok && !strings.Contains(name, "#") && !strings.Contains(pid, "@") {
				s, err := c.Snapshot(ctx)
				if err != nil {
					return nil, err, false
				}
				resolved, err := resolveActor(s, node, name)
				if err != nil {
					return nil, err, false
				}
				pid = resolved
			}
			res, err := c.Kill(ctx, pid)
			return res, err, false
		})
}

// resolveActor finds the PID of the actor named name on node.
func resolveActor(s *observer.Snapshot, node, name string) (string, error) {
	for _, n := range s.Nodes {
		if n.Name != node {
			continue
		}
		if n.Error != "" {
			return "", &observer.APIError{Code: observer.CodeUnreachable, Message: fmt.Sprintf(
				"node %s: %s; ask another node with --addr, or heal the partition (dist partition --heal)", node, n.Error)}
		}
		var found []string
		for _, p := range n.Processes {
			if p.Label() == name || p.Name == name {
				found = append(found, p.PID)
			}
		}
		switch len(found) {
		case 0:
			return "", &observer.APIError{Code: observer.CodeUnknownPID,
				Message: fmt.Sprintf("no live actor named %q on node %s (dist ps lists the live actors)", name, node)}
		case 1:
			return found[0], nil
		}
		return "", &observer.APIError{Code: observer.CodeInvalid,
			Message: fmt.Sprintf("%d actors are named %q on node %s; give the full pid: %s", len(found), name, node, strings.Join(found, " "))}
	}
	for _, m := range s.Members {
		if m.Name == node {
			return "", &observer.APIError{Code: observer.CodeUnreachable, Message: fmt.Sprintf(
				"node %s is %s as %s sees it (crashed, or cut off by a partition: dist partition --heal); ask another node with --addr",
				node, m.State, s.Node)}
		}
	}
	return "", &observer.APIError{Code: observer.CodeUnknownNode,
		Message: fmt.Sprintf("node %q is not a member (dist members lists the members)", node)}
}

func runCrash(args []string, stdout, stderr io.Writer) int {
	return actionCommand("crash", "crash <node> [--addr host:port]", args, stdout, stderr, nil,
		func(ctx context.Context, c *observer.Client, pos []string) (*observer.ActionResult, error, bool) {
			if len(pos) != 1 {
				return nil, fmt.Errorf("crash takes one node name"), true
			}
			res, err := c.Crash(ctx, pos[0])
			return res, err, false
		})
}

func runPartition(args []string, stdout, stderr io.Writer) int {
	const u = "partition <group> [<group>...] | partition --heal   (a group is a comma-separated list of nodes; with one group, the others form the second)"
	var heal bool
	return actionCommand("partition", u, args, stdout, stderr,
		func(fs *flag.FlagSet) { fs.BoolVar(&heal, "heal", false, "remove the partition instead") },
		func(ctx context.Context, c *observer.Client, pos []string) (*observer.ActionResult, error, bool) {
			if heal {
				if len(pos) > 0 {
					return nil, fmt.Errorf("--heal takes no groups"), true
				}
				res, err := c.Heal(ctx)
				return res, err, false
			}
			var groups [][]string
			for _, p := range pos {
				if g := splitList(p); len(g) > 0 {
					groups = append(groups, g)
				}
			}
			if len(groups) == 0 {
				return nil, fmt.Errorf("name the nodes to cut off, e.g. dist partition n1"), true
			}
			res, err := c.Partition(ctx, groups)
			return res, err, false
		})
}

func runDelay(args []string, stdout, stderr io.Writer) int {
	const u = "delay <from> <to> <duration> [--jitter duration]   (node names or '*'; duration 0 removes the delay)"
	var jitter time.Duration
	return actionCommand("delay", u, args, stdout, stderr,
		func(fs *flag.FlagSet) {
			fs.DurationVar(&jitter, "jitter", 0, "add a random delay of up to this `duration`")
		},
		func(ctx context.Context, c *observer.Client, pos []string) (*observer.ActionResult, error, bool) {
			if len(pos) != 3 {
				return nil, fmt.Errorf("delay takes <from> <to> <duration>"), true
			}
			d, err := time.ParseDuration(pos[2])
			if err != nil && pos[2] != "0" {
				return nil, fmt.Errorf("duration %q: want e.g. 200ms", pos[2]), true
			}
			res, err := c.Delay(ctx, observer.DelayRequest{From: pos[0], To: pos[1], Delay: d.String(), Jitter: jitter.String()})
			return res, err, false
		})
}

func runDrop(args []string, stdout, stderr io.Writer) int {
	const u = "drop <from> <to> [--p probability] [--off]   (node names or '*')"
	var p float64
	var off bool
	return actionCommand("drop", u, args, stdout, stderr,
		func(fs *flag.FlagSet) {
			fs.Float64Var(&p, "p", 1, "drop each message with this `probability` (1: all of them, one way)")
			fs.BoolVar(&off, "off", false, "remove the rule instead")
		},
		func(ctx context.Context, c *observer.Client, pos []string) (*observer.ActionResult, error, bool) {
			if len(pos) != 2 {
				return nil, fmt.Errorf("drop takes <from> <to>"), true
			}
			if p < 0 || p > 1 {
				return nil, fmt.Errorf("--p %g: want a probability in [0, 1]", p), true
			}
			if off {
				p = 0
			}
			res, err := c.Drop(ctx, observer.DropRequest{From: pos[0], To: pos[1], Probability: p})
			return res, err, false
		})
}

// kvCommand and checkCommand are set by the replicated key-value workload
// when it is built in (see workload.go); until then the commands explain
// that they are not available.
var kvCommand, checkCommand func(args []string, stdout, stderr io.Writer) int

func runKV(args []string, stdout, stderr io.Writer) int {
	if kvCommand != nil {
		return kvCommand(args, stdout, stderr)
	}
	fmt.Fprintln(stderr, "dist kv: not available yet: needs the Raft KV (behaviors/raft), which this build does not include")
	return exitUnavailable
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	if checkCommand != nil {
		return checkCommand(args, stdout, stderr)
	}
	fmt.Fprintln(stderr, "dist check: not available yet: needs the Raft KV (behaviors/raft), which this build does not include")
	return exitUnavailable
}
