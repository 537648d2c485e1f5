package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distributed-go/distributed/internal/freeport"
	"github.com/distributed-go/distributed/observer"
)

const demoUsage = "demo [--nodes 3] [--http 127.0.0.1:8080] [--data dir] [--workload name] [--secret s] [--verbose]"

// demoNode is one node process of the demo.
type demoNode struct {
	name                 string
	remote, gossip, http string
	dir, logPath         string
	args                 []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	restart int
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "how many nodes")
	httpAddr := fs.String("http", "127.0.0.1:8080", "the first node's observer `host:port` (the others take the next free ports; port 0: any free ports)")
	dataDir := fs.String("data", "", "data `directory` (default: a temporary directory, removed on exit)")
	workload := fs.String("workload", defaultWorkload(), "workload to run on every node: "+strings.Join(workloadNames(), ", "))
	secret := fs.String("secret", "", "cluster `secret` (default: an open cluster on 127.0.0.1)")
	verbose := fs.Bool("verbose", false, "copy the nodes' logs to this terminal")
	restartAfter := fs.Duration("restart-after", 5*time.Second, "how long a crashed node stays down before it is restarted")
	pos, code, done := parseFlags(fs, args, stderr, demoUsage)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, demoUsage, "unexpected arguments: %s", strings.Join(pos, " "))
	}
	if *nodes < 1 || *nodes > 9 {
		return usageError(stderr, demoUsage, "--nodes %d: want 1 to 9", *nodes)
	}
	if *workload != "none" {
		if _, ok := workloads[*workload]; !ok {
			return usageError(stderr, demoUsage, "--workload %q: want one of %s", *workload, strings.Join(workloadNames(), ", "))
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "dist demo: cannot find its own binary to start the nodes:", err)
		return exitFailure
	}
	dir := *dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "dist-demo-"); err != nil {
			fmt.Fprintln(stderr, "dist demo:", err)
			return exitFailure
		}
		defer os.RemoveAll(dir)
	}

	host, firstPort, err := net.SplitHostPort(*httpAddr)
	if err != nil {
		return usageError(stderr, demoUsage, "--http %q: %v", *httpAddr, err)
	}
	port, _ := strconv.Atoi(firstPort)
	var ds []*demoNode
	var names []string
	for i := 1; i <= *nodes; i++ {
		names = append(names, "n"+strconv.Itoa(i))
	}
	taken := map[string]bool{}
	for i, name := range names {
		d := &demoNode{name: name, dir: filepath.Join(dir, name)}
		want := port + i
		if port == 0 {
			want = 0 // any free port
		}
		if d.http, err = pickPort(host, want, taken, false); err != nil {
			fmt.Fprintln(stderr, "dist demo:", err)
			return exitFailure
		}
		if d.remote, err = pickPort("127.0.0.1", 0, taken, false); err == nil {
			d.gossip, err = pickPort("127.0.0.1", 0, taken, true)
		}
		if err != nil {
			fmt.Fprintln(stderr, "dist demo:", err)
			return exitFailure
		}
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			fmt.Fprintln(stderr, "dist demo:", err)
			return exitFailure
		}
		d.logPath = filepath.Join(d.dir, "node.log")
		ds = append(ds, d)
	}
	var peers []string
	for _, d := range ds {
		peers = append(peers, d.name+"="+d.remote)
	}
	for _, d := range ds {
		var seeds []string
		for _, o := range ds {
			if o != d {
				seeds = append(seeds, o.gossip)
			}
		}
		d.args = []string{"node", "--name", d.name, "--listen", d.remote, "--gossip", d.gossip,
			"--join", strings.Join(seeds, ","), "--data", d.dir, "--http", d.http, "--actions",
			"--preset", "local", "--log-format", "console", "--workload", *workload, "--peers", strings.Join(peers, ",")}
		if *secret != "" {
			d.args = append(d.args, "--secret", *secret)
		}
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var stopping sync.WaitGroup
	quit := make(chan struct{})
	var logMu sync.Mutex
	say := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(stdout, format+"\n", args...)
	}
	say("dist demo: starting %d nodes (workload %s), data under %s", len(ds), *workload, dir)
	for _, d := range ds {
		if err := d.start(exe, *verbose, stderr); err != nil {
			fmt.Fprintln(stderr, "dist demo:", err)
			stopAll(ds, stderr)
			return exitFailure
		}
		stopping.Add(1)
		go func() {
			defer stopping.Done()
			d.supervise(exe, *verbose, stderr, quit, *restartAfter, say)
		}()
	}
	readyCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	err = waitReady(readyCtx, ds, sigs)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "dist demo:", err)
		for _, d := range ds {
			fmt.Fprintf(stderr, "  log of %s: %s\n", d.name, d.logPath)
		}
		close(quit)
		stopAll(ds, stderr)
		stopping.Wait()
		return exitFailure
	}
	printTour(stdout, ds, *secret, cliName(exe), *workload)

	<-sigs
	say("\ndist demo: stopping (Ctrl-C again to kill at once)")
	close(quit)
	go func() {
		<-sigs
		for _, d := range ds {
			d.kill()
		}
	}()
	stopAll(ds, stderr)
	stopping.Wait()
	say("dist demo: stopped")
	return exitOK
}

// cliName is how the tour spells the dist command: as go run does, when
// this binary was built by go run (make demo), so that the commands work
// without installing dist.
func cliName(exe string) string {
	if strings.Contains(exe, "go-build") {
		return "go run ./cmd/dist"
	}
	return "dist"
}

func printTour(w io.Writer, ds []*demoNode, secret, dist, workload string) {
	url := "http://" + ds[0].http + "/"
	if secret != "" {
		url += "#token=" + observer.Token(secret)
	}
	addr := ""
	if ds[0].http != envOr("DIST_ADDR", defaultAddr) {
		addr = " --addr " + ds[0].http
	}
	if secret != "" {
		addr += " --secret " + secret
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  observer  %s\n", url)
	var others []string
	for _, d := range ds[1:] {
		others = append(others, d.name+" http://"+d.http+"/")
	}
	if len(others) > 0 {
		fmt.Fprintf(w, "            (every node serves one: %s)\n", strings.Join(others, ", "))
	}
	fmt.Fprintf(w, "  metrics   http://%s/metrics   health http://%s/health\n", ds[0].http, ds[0].http)
	fmt.Fprintf(w, "  logs      %s\n", filepath.Join(filepath.Dir(ds[0].dir), "n*", "node.log"))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A short tour (in the page, or with the CLI in another terminal):")
	last := ds[len(ds)-1].name
	if workload == "raft-kv" {
		fmt.Fprintf(w, "  0. The replicated key-value store (a Raft group, one member per node):\n")
		fmt.Fprintf(w, "                      %s kv put%s greeting hello;  %s kv get%s greeting;  %s kv status%s\n",
			dist, addr, dist, addr, dist, addr)
		fmt.Fprintf(w, "  1. Kill the leader: %s kill%s <node>:raft.kv.<id>   (kv status says who leads; or the page's kill button)\n", dist, addr)
		fmt.Fprintln(w, "     a new leader within about half a second; the killed member restarts from its log and catches up.")
	} else {
		fmt.Fprintf(w, "  1. Kill an actor:   %s kill%s %s:counter\n", dist, addr, ds[min(1, len(ds)-1)].name)
		fmt.Fprintln(w, "     its supervisor restarts it at once; the page's \"restarted\" column counts it.")
	}
	fmt.Fprintf(w, "  2. Crash a node:    %s crash%s %s\n", dist, addr, last)
	fmt.Fprintln(w, "     the others see it dead within a second; the demo restarts it from its data directory.")
	fmt.Fprintf(w, "  3. Partition:       %s partition%s %s     then: %s partition%s --heal\n", dist, addr, ds[0].name, dist, addr)
	fmt.Fprintf(w, "  4. Slow a link:     %s delay%s %s '*' 200ms   (0 removes it)\n", dist, addr, ds[0].name)
	if workload == "raft-kv" {
		fmt.Fprintf(w, "  5. Check it:        %s check%s --d 10s   (clients + leader kills, porcupine's verdict, HTML history)\n", dist, addr)
	}
	fmt.Fprintf(w, "  Look around:        %s members%s, %s ps%s, %s tree%s\n", dist, addr, dist, addr, dist, addr)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ctrl-C stops the cluster.")
}

// pickPort returns host:port with port free (the wanted one if it is free,
// else the next free one above it). For want 0 it is any free port below
// the kernel's ephemeral range (see package freeport: a node process binds
// it later, and an outbound connection must not take it first). For gossip
// the port must be free for UDP too.
func pickPort(host string, want int, taken map[string]bool, udp bool) (string, error) {
	if want == 0 {
		return freeport.Pick(host, udp, taken)
	}
	for try := 0; try < 200; try++ {
		addr, ok, _ := freeport.Check(host, want+try, udp)
		if !ok || taken[addr] {
			continue
		}
		taken[addr] = true
		return addr, nil
	}
	return "", fmt.Errorf("no free port on %s near %d", host, want)
}

func (d *demoNode) start(exe string, verbose bool, stderr io.Writer) error {
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, d.args...)
	var out io.Writer = logf
	if verbose {
		out = io.MultiWriter(logf, &prefixWriter{prefix: d.name + " | ", w: stderr})
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}()
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	return nil
}

// supervise restarts the node when it exits on its own (a crash), until
// quit is closed.
func (d *demoNode) supervise(exe string, verbose bool, stderr io.Writer, quit <-chan struct{}, after time.Duration, say func(string, ...any)) {
	for {
		d.mu.Lock()
		exited, cmd := d.exited, d.cmd
		d.mu.Unlock()
		select {
		case <-quit:
			return
		case <-exited:
		}
		select {
		case <-quit:
			return
		default:
		}
		status := cmd.ProcessState.ExitCode()
		how := fmt.Sprintf("exited with status %d", status)
		if status == exitCrashed {
			how = "crashed on request"
		}
		say("dist demo: %s %s; restarting it in %v from %s (log: %s)", d.name, how, after, d.dir, d.logPath)
		t := time.NewTimer(after)
		select {
		case <-quit:
			t.Stop()
			return
		case <-t.C:
		}
		d.restart++
		if err := d.start(exe, verbose, stderr); err != nil {
			say("dist demo: restarting %s failed: %v", d.name, err)
			return
		}
		say("dist demo: %s restarted", d.name)
	}
}

func (d *demoNode) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
	}
}

// stopAll asks the nodes to leave (SIGTERM), one after the other from the
// last, so that each departure is acknowledged by those still there, and
// kills a node that takes longer than 15 s.
func stopAll(ds []*demoNode, stderr io.Writer) {
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		d.mu.Lock()
		cmd, exited := d.cmd, d.exited
		d.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			fmt.Fprintf(stderr, "dist demo: %s did not stop within 15 s; killing it\n", d.name)
			_ = cmd.Process.Kill()
			<-exited
		}
	}
}

// waitReady polls every node's /health until all are ready.
func waitReady(ctx context.Context, ds []*demoNode, sigs <-chan os.Signal) error {
	hc := &http.Client{Timeout: time.Second}
	for _, d := range ds {
		for {
			resp, err := hc.Get("http://" + d.http + "/health")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			d.mu.Lock()
			exited := d.exited
			d.mu.Unlock()
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s is not ready after a minute (see its log)", d.name)
			case <-exited:
				t.Stop()
				return fmt.Errorf("%s exited while starting (see its log)", d.name)
			case <-sigs:
				t.Stop()
				return errors.New("interrupted")
			case <-t.C:
			}
		}
	}
	return nil
}

// prefixWriter prefixes every line written through it.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
			p.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			p.mid = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
