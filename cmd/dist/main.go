// Command dist runs and inspects distributed clusters.
//
//	dist demo                       a 3-node cluster on this machine, with the observer
//	dist node --name n1 ...         run one node (what a container runs)
//	dist members | ps | tree        look at the cluster
//	dist kill <pid>                 kill an actor (its supervisor decides what happens)
//	dist crash <node>               crash a node
//	dist partition <nodes...>       cut the cluster in two (--heal undoes it)
//	dist delay <from> <to> <d>      slow a link down
//	dist drop <from> <to>           drop a link's messages
//	dist kv get|put|delete|cas      the replicated key-value store (raft-kv workload)
//	dist check                      a linearizability check of it under leader kills
//
// The inspection commands talk to any node's observer (--addr, default
// 127.0.0.1:8080, or $DIST_ADDR), which reaches the rest of the cluster.
// Run "dist help <command>" for a command's flags.
//
// Exit codes: 0 success, 1 failure, 2 usage error, 3 node unreachable,
// 4 wrong or missing cluster secret, 5 unknown actor or node, 6 actions
// disabled on the node, 7 not available yet.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/distributed-go/distributed/observer"
)

// Exit codes.
const (
	exitOK           = 0
	exitFailure      = 1
	exitUsage        = 2
	exitUnreachable  = 3
	exitUnauthorized = 4
	exitNotFound     = 5
	exitDisabled     = 6
	exitUnavailable  = 7
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands []command

func init() {
	commands = []command{
		{"demo", "run a 3-node cluster on this machine with the observer (Ctrl-C stops it)", runDemo},
		{"node", "run one node", runNode},
		{"members", "list the members and their gossip state", runMembers},
		{"ps", "list the actors of every node", runPs},
		{"tree", "show the supervision trees of every node", runTree},
		{"kill", "kill an actor: dist kill <node:id | node:name>", runKill},
		{"crash", "crash a node: dist crash <node>", runCrash},
		{"partition", "partition the cluster: dist partition <group> [<group>...] | --heal", runPartition},
		{"delay", "delay messages on a link: dist delay <from> <to> <duration>", runDelay},
		{"drop", "drop messages on a link: dist drop <from> <to> [--p probability] [--off]", runDrop},
		{"kv", "the replicated key-value store: dist kv get|put|delete|cas|status", runKV},
		{"check", "a linearizability check of the key-value store while its leader is killed: dist check [--d 10s]", runCheck},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "dist: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "dist runs and inspects distributed clusters.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: dist <command> [flags] [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The inspection commands ask a node's observer (--addr, default 127.0.0.1:8080 or $DIST_ADDR).")
	fmt.Fprintln(w, "Run \"dist help <command>\" for its flags. Exit codes: 0 ok, 1 failure, 2 usage, 3 node unreachable,")
	fmt.Fprintln(w, "4 wrong cluster secret, 5 unknown actor or node, 6 actions disabled, 7 not available yet.")
}

// defaultAddr is the observer the inspection commands ask by default: the
// first node of dist demo, and dist node's default --http.
const defaultAddr = "127.0.0.1:8080"

// clientFlags are the flags of the commands that talk to an observer.
type clientFlags struct {
	addr    string
	secret  string
	json    bool
	timeout time.Duration
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", envOr("DIST_ADDR", defaultAddr), "a node's observer `address` ($DIST_ADDR)")
	fs.StringVar(&c.secret, "secret", os.Getenv("DIST_SECRET"), "the cluster `secret`, if it has one ($DIST_SECRET)")
	fs.BoolVar(&c.json, "json", false, "print JSON for scripts")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for the node")
}

func (c *clientFlags) client() *observer.Client {
	return observer.NewClient(c.addr, c.secret)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// parseFlags parses flags that may come before, between or after the
// positional arguments, and returns the positional ones. It returns
// exitOK with done set for --help, or a usage exit code on an error.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer, usageLine string) (pos []string, code int, done bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dist %s\n\nFlags:\n", usageLine)
		fs.PrintDefaults()
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, true
			}
			return nil, exitUsage, true
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, false
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), 0, false
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// fail prints an error and returns the exit code that matches it.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "dist:", err)
	var ae *observer.APIError
	if !errors.As(err, &ae) {
		return exitFailure
	}
	switch ae.Code {
	case observer.CodeUnreachable:
		return exitUnreachable
	case observer.CodeUnauthorized:
		return exitUnauthorized
	case observer.CodeUnknownPID, observer.CodeUnknownNode:
		return exitNotFound
	case observer.CodeDisabled:
		return exitDisabled
	case observer.CodeInvalid:
		return exitUsage
	}
	return exitFailure
}

func usageError(stderr io.Writer, usageLine, format string, args ...any) int {
	fmt.Fprintf(stderr, "dist: %s\nUsage: dist %s\n", fmt.Sprintf(format, args...), usageLine)
	return exitUsage
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
