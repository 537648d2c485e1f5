package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/distributed-go/distributed/observer"
)

const (
	kvUsage    = "kv get <key> | put <key> <value> | delete <key> | cas <key> <old> <new> | status  [--addr host:port] [--json]"
	checkUsage = "check [--d 10s] [--stale] [--out history.html] [--addr host:port] [--json]"
)

// kvHTTP calls a node's raft-kv endpoints.
func kvHTTP(ctx context.Context, cf *clientFlags, method, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+cf.addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if cf.secret != "" {
		req.Header.Set("Authorization", "Bearer "+observer.Token(cf.secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("node %s unreachable: %w (is it running? see --addr or DIST_ADDR)", cf.addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return resp.StatusCode, errors.New("this node does not run the raft-kv workload (start it with dist demo, or dist node --workload raft-kv)")
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("node %s: unexpected answer (HTTP %d): %w", cf.addr, resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

// kvExit maps an HTTP call's outcome to an exit code.
func kvExit(stderr io.Writer, code int, err error, msg string) int {
	switch {
	case err != nil && code == 0:
		fmt.Fprintln(stderr, "dist:", err)
		return exitUnreachable
	case code == http.StatusNotFound:
		fmt.Fprintln(stderr, "dist:", err)
		return exitUnavailable
	case err != nil:
		fmt.Fprintln(stderr, "dist:", err)
		return exitFailure
	case code == http.StatusUnauthorized:
		fmt.Fprintln(stderr, "dist:", msg)
		return exitUnauthorized
	case code != http.StatusOK:
		fmt.Fprintln(stderr, "dist:", msg)
		return exitFailure
	}
	return exitOK
}

func runKVCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kv", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	pos, code, done := parseFlags(fs, args, stderr, kvUsage)
	if done {
		return code
	}
	if len(pos) == 0 {
		return usageError(stderr, kvUsage, "which operation?")
	}
	want := map[string]int{"get": 2, "put": 3, "delete": 2, "cas": 4, "status": 1}
	n, ok := want[pos[0]]
	if !ok || len(pos) != n {
		return usageError(stderr, kvUsage, "%q needs %d argument(s)", pos[0], max(n-1, 0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	if pos[0] == "status" {
		var sts []memberStatus
		code, err := kvHTTP(ctx, &cf, http.MethodGet, "/api/raft", nil, &sts)
		if rc := kvExit(stderr, code, err, "status failed"); rc != exitOK {
			return rc
		}
		if cf.json {
			printJSON(stdout, sts)
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNODE\tROLE\tTERM\tCOMMIT\tAPPLIED\tSNAPSHOT\tPID")
		for _, s := range sts {
			if s.Error != "" {
				fmt.Fprintf(tw, "%d\t%s\tunreachable: %s\n", s.ID, s.Node, s.Error)
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.ID, s.Node, s.Role, s.Term, s.Commit, s.Applied, s.Snapshot, s.PID)
		}
		_ = tw.Flush()
		return exitOK
	}
	path := "/api/kv/" + url.PathEscape(pos[1])
	var method string
	var body []byte
	switch pos[0] {
	case "get":
		method = http.MethodGet
	case "put":
		method, body = http.MethodPut, []byte(pos[2])
	case "delete":
		method = http.MethodDelete
	case "cas":
		method, body = http.MethodPost, []byte(pos[3])
		path += "?cas=" + url.QueryEscape(pos[2])
	}
	var res kvResult
	code, err := kvHTTP(ctx, &cf, method, path, body, &res)
	if rc := kvExit(stderr, code, err, res.Error); rc != exitOK {
		return rc
	}
	if cf.json {
		printJSON(stdout, res)
		return exitOK
	}
	switch pos[0] {
	case "get":
		if !res.Found {
			fmt.Fprintf(stderr, "dist: %s: not found\n", res.Key)
			return exitNotFound
		}
		fmt.Fprintln(stdout, res.Value)
	case "put":
		fmt.Fprintln(stdout, "OK")
	case "delete":
		if res.Found {
			fmt.Fprintln(stdout, "deleted")
		} else {
			fmt.Fprintln(stdout, "not found (nothing to delete)")
		}
	case "cas":
		if res.Swapped != nil && *res.Swapped {
			fmt.Fprintln(stdout, "swapped")
		} else {
			fmt.Fprintf(stdout, "not swapped: the value is %q (found=%v)\n", res.Value, res.Found)
			return exitFailure
		}
	}
	return exitOK
}

func runCheckCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	d := fs.Duration("d", 10*time.Second, "how long the workload and the nemesis run")
	stale := fs.Bool("stale", false, "read from any member without ReadIndex (to see the checker catch stale reads)")
	out := fs.String("out", "dist-check.html", "where to write the HTML view of the history (empty: nowhere)")
	pos, code, done := parseFlags(fs, args, stderr, checkUsage)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, checkUsage, "check takes no arguments")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *d+cf.timeout+time.Minute)
	defer cancel()
	fmt.Fprintf(stderr, "running 4 clients against the replicated KV for %v while the leader's actor is killed every second or so...\n", *d)
	var res checkResult
	code, err := kvHTTP(ctx, &cf, http.MethodPost, fmt.Sprintf("/api/check?d=%s&stale=%v", d.String(), *stale), nil, &res)
	if rc := kvExit(stderr, code, err, res.Error); rc != exitOK {
		return rc
	}
	html := res.HTML
	res.HTML = ""
	if *out != "" && html != "" {
		if err := os.WriteFile(*out, []byte(html), 0o644); err != nil {
			fmt.Fprintln(stderr, "dist:", err)
			return exitFailure
		}
	}
	if cf.json {
		printJSON(stdout, res)
	} else {
		fmt.Fprintf(stdout, "history: %d operations (%d ok, %d with unknown outcome)\nfaults: %v\nporcupine: %s\n",
			res.Operations, res.OK, res.Unknown, res.Faults, res.Verdict)
		if *out != "" && html != "" {
			fmt.Fprintf(stdout, "history drawn in %s\n", *out)
		}
	}
	if res.Verdict != "Ok" {
		return exitFailure
	}
	return exitOK
}
