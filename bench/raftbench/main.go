// Command raftbench measures a 3-member Raft key-value group under
// concurrent clients — this project's behaviors/raft next to
// github.com/hashicorp/raft and etcd 3.4 (Debian's etcd-server) — in the same
// run, on this machine, and prints throughput, p50 and p99 latency and the
// ratios.
//
//	cd bench && go run ./raftbench [-clients 1,16,64] [-d 5s] [-mode disk|mem] [-systems ours,hashicorp,etcd] [-turns 5]
//
// Every put writes a 128-byte value under one of 1000 keys and waits for
// the group to commit it. Ours and hashicorp/raft run the same state machine
// and client (behaviors/kv: protobuf commands with client sessions, a
// kv.Client per simulated client), so they do the same work per command;
// etcd runs its own MVCC store.
//
// For each number of clients all systems are started together and measured
// in turns (-turns slices of -d each, in alternating order), so that a load
// that comes and goes on the machine weighs on each system alike.
//
// mode disk: three members with a durable log that is fsynced before a write
// is acknowledged (ours: the segmented WAL with group commit; hashicorp/raft:
// raft-boltdb; etcd: its WAL). "ours" and etcd run each member as its own
// node on loopback TCP (ours: three cluster nodes in this process, gRPC
// between them; etcd: three processes); hashicorp/raft uses its TCP
// transport. "ours-local" runs the three members on one actor system
// (messages passed in memory). mode mem: logs in memory — hashicorp/raft
// uses its in-memory transport and stores, ours Config.InMemory; etcd is
// skipped.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// system is one Raft implementation under test.
type system interface {
	// put writes value under key through client c (0 ≤ c < clients).
	put(ctx context.Context, c int, key string, value []byte) error
	close()
}

type starter func(ctx context.Context, dir string, disk bool, clients int) (system, error)

type result struct {
	system  string
	clients int
	ops     int
	errors  int
	d       time.Duration
	p50     time.Duration
	p99     time.Duration
}

func (r result) rate() float64 { return float64(r.ops) / r.d.Seconds() }

func main() {
	clientsFlag := flag.String("clients", "1,16,64", "concurrent clients, comma-separated")
	d := flag.Duration("d", 5*time.Second, "measured duration of each run (after a 1 s warm-up)")
	mode := flag.String("mode", "disk", "disk (fsync) or mem (no fsync)")
	systems := flag.String("systems", "ours,ours-local,hashicorp,etcd", "systems to run")
	turns := flag.Int("turns", 5, "split each measurement into this many slices, the systems taking turns, so that a change in the machine's load hits all alike")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the whole run to this file")
	tracefile := flag.String("trace", "", "write an execution trace of the whole run to this file")
	flag.Parse()
	if *tracefile != "" {
		f, err := os.Create(*tracefile)
		if err == nil {
			err = trace.Start(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "raftbench:", err)
			os.Exit(1)
		}
		defer trace.Stop()
	}
	if *memprofile != "" {
		defer func() {
			f, err := os.Create(*memprofile)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "raftbench:", err)
			}
		}()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "raftbench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var counts []int
	for _, s := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "raftbench: bad -clients %q\n", *clientsFlag)
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	disk := *mode == "disk"
	all := map[string]starter{"ours": startOurs, "ours-local": startOursLocal, "hashicorp": startHashicorp, "etcd": startEtcd}
	var names []string
	for _, name := range strings.Split(*systems, ",") {
		if _, ok := all[name]; !ok {
			fmt.Fprintf(os.Stderr, "raftbench: unknown system %q\n", name)
			os.Exit(2)
		}
		if name == "etcd" && !disk {
			fmt.Println("etcd: skipped in mem mode (it always fsyncs)")
			continue
		}
		names = append(names, name)
	}
	var results []result
	for _, n := range counts {
		for _, r := range runTurns(names, all, disk, n, *d, max(*turns, 1)) {
			fmt.Printf("%-10s clients=%-3d %9.0f puts/s  p50 %8v  p99 %8v  (%d errors)\n",
				r.system, r.clients, r.rate(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors)
			results = append(results, r)
		}
	}
	fmt.Println()
	fmt.Printf("mode %s, %v per system in %d turns, 128-byte values, 3 members on this machine\n", *mode, *d, max(*turns, 1))
	// In mem mode the peer of hashicorp's in-memory transport is
	// ours-local; otherwise ours over the network.
	base := "ours"
	if !disk {
		base = "ours-local"
	}
	fmt.Printf("%-8s %-10s %12s %10s %10s %16s\n", "clients", "system", "puts/s", "p50", "p99", base+" ÷ system")
	for _, n := range counts {
		var ours *result
		for i := range results {
			if results[i].system == base && results[i].clients == n {
				ours = &results[i]
			}
		}
		for _, r := range results {
			if r.clients != n {
				continue
			}
			ratio := "-"
			if ours != nil && !strings.HasPrefix(r.system, "ours") && r.rate() > 0 {
				ratio = fmt.Sprintf("%.2fx", ours.rate()/r.rate())
			}
			fmt.Printf("%-8d %-10s %12.0f %10v %10v %16s\n", n, r.system, r.rate(),
				r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), ratio)
		}
	}
}

// runTurns starts every system for clients clients, warms each up, then
// measures them in turns: turns rounds, each giving every system d/turns
// (in alternating order), so that the systems see the same machine.
func runTurns(names []string, all map[string]starter, disk bool, clients int, d time.Duration, turns int) []result {
	type running struct {
		name string
		sys  system
		lat  []time.Duration
		r    result
	}
	var rs []*running
	defer func() {
		for _, r := range rs {
			r.sys.close()
		}
	}()
	for _, name := range names {
		dir, err := os.MkdirTemp("", "raftbench-"+name+"-")
		if err != nil {
			fmt.Printf("%s with %d clients: %v\n", name, clients, err)
			continue
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		sys, err := all[name](ctx, dir, disk, clients)
		cancel()
		if err != nil {
			fmt.Printf("%s with %d clients: %v\n", name, clients, err)
			continue
		}
		rs = append(rs, &running{name: name, sys: sys, r: result{system: name, clients: clients}})
	}
	value := make([]byte, 128)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	for _, r := range rs {
		drive(r.sys, clients, time.Second, value) // warm-up: leader elected, connections open
	}
	for i := range turns {
		for j := range rs {
			r := rs[j]
			if i%2 == 1 {
				r = rs[len(rs)-1-j]
			}
			t0 := time.Now()
			lat, ops, errs := drive(r.sys, clients, d/time.Duration(turns), value)
			r.r.d += time.Since(t0)
			r.r.ops += ops
			r.r.errors += errs
			r.lat = append(r.lat, lat...)
		}
	}
	var out []result
	for _, r := range rs {
		slices.Sort(r.lat)
		if len(r.lat) > 0 {
			r.r.p50 = r.lat[len(r.lat)/2]
			r.r.p99 = r.lat[len(r.lat)*99/100]
		}
		out = append(out, r.r)
	}
	return out
}

// drive runs clients clients putting value under random keys for dur and
// returns the latencies of the puts that succeeded and the counts.
func drive(sys system, clients int, dur time.Duration, value []byte) (lat []time.Duration, ops, errs int) {
	var mu sync.Mutex
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			n, e := 0, 0
			// One bound for all of this client's puts (each system's client
			// also bounds every attempt): a context per put would add the
			// harness's own timer and allocations to every measured put.
			pctx, pcancel := context.WithTimeout(context.Background(), dur+5*time.Second)
			defer pcancel()
			for ctx.Err() == nil {
				key := keys[rand.IntN(len(keys))]
				t0 := time.Now()
				err := sys.put(pctx, c, key, value)
				if err != nil {
					e++
					continue
				}
				n++
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			ops += n
			errs += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, ops, errs
}
