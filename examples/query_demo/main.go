// Command query_demo runs distributed SQL on a three-node cluster in one
// process and queries it through Arrow Flight SQL, as a client would.
//
//	go run ./examples/query_demo [-rows N]
//
// It writes a CSV of NYC-taxi-like trips (deterministic random data) to a
// temporary directory, starts three nodes, registers the file as table
// "taxi" on each (types inferred from sampled rows, byte-range partitions)
// and starts a supervised executor actor on each. Node 1 also serves Flight
// SQL; a Flight SQL client sends the query
//
//	SELECT passenger_count, COUNT(*) FROM taxi GROUP BY 1
//
// whose partitions are scanned and partially aggregated by the three
// executors, merged on node 1 and streamed to the client, which prints the
// result as a table (rows sorted by the client for stable output). The
// counts are checked against those kept while generating the file.
//
// With -serve ADDR (for example -serve 127.0.0.1:32010) the Flight SQL
// endpoint listens on ADDR and stays up after the demo until interrupted,
// for other clients:
//
//	# Python, ADBC (pip install adbc-driver-flightsql pyarrow)
//	import adbc_driver_flightsql.dbapi as fs
//	with fs.connect("grpc://127.0.0.1:32010") as conn, conn.cursor() as cur:
//	    cur.execute("SELECT passenger_count, COUNT(*) FROM taxi GROUP BY 1")
//	    print(cur.fetch_arrow_table())
//
//	# JDBC (Arrow Flight SQL JDBC driver, e.g. in DBeaver or sqlline)
//	jdbc:arrow-flight-sql://127.0.0.1:32010/?useEncryption=false
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/distributed-go/distributed/behaviors/query"
	"github.com/distributed-go/distributed/cluster"
)

// Query is the seed's query.
const Query = "SELECT passenger_count, COUNT(*) FROM taxi GROUP BY 1"

func main() {
	rows := flag.Int("rows", 300000, "trips to generate")
	serve := flag.String("serve", "", "serve Flight SQL on this address and keep running until interrupted")
	flag.Parse()
	watchdog := time.AfterFunc(120*time.Second, func() {
		fmt.Fprintln(os.Stderr, "error: the demo did not finish within 120s")
		os.Exit(2)
	})
	var wait func()
	if *serve != "" {
		listen, wait = *serve, func() {
			watchdog.Stop()
			fmt.Printf("serving Flight SQL on %s; interrupt to stop\n", *serve)
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			<-sig
		}
	}
	err := run(os.Stdout, *rows, wait)
	watchdog.Stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// writeTaxi writes rows trips and returns the trip count per passenger count.
func writeTaxi(path string, rows int) (map[int64]int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "vendor_id,pickup_datetime,passenger_count,trip_distance,payment_type,fare_amount,tip_amount,total_amount")
	rng := rand.New(rand.NewPCG(2019, 1))
	counts := map[int64]int64{}
	start := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	// Passenger counts skew to 1, as in the real data.
	weights := []int{0, 70, 14, 4, 2, 5, 3}
	for r := 0; r < rows; r++ {
		x, pc := rng.IntN(98), 0
		for k, wgt := range weights {
			if x < wgt {
				pc = k
				break
			}
			x -= wgt
		}
		counts[int64(pc)]++
		dist := rng.ExpFloat64() * 3
		fare := 2.5 + dist*2.5
		tip := 0.0
		pay := 1 + rng.IntN(2)
		if pay == 1 {
			tip = fare * 0.2 * rng.Float64()
		}
		at := start.Add(time.Duration(rng.IntN(31*24*3600)) * time.Second)
		fmt.Fprintf(w, "%d,%s,%d,%.2f,%d,%.2f,%.2f,%.2f\n", 1+rng.IntN(2), at.Format("2006-01-02 15:04:05"), pc, dist, pay, fare, tip, fare+tip+0.5)
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return counts, f.Close()
}

// listen is the Flight SQL address (-serve); a free port by default.
var listen = "127.0.0.1:0"

// run runs the demo; wait, if not nil, is called before the cluster stops.
func run(out io.Writer, rows int, wait func()) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "query_demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "nyc_taxi_2019.csv")
	counts, err := writeTaxi(path, rows)
	if err != nil {
		return err
	}
	st, _ := os.Stat(path)
	fmt.Fprintf(out, "wrote %s: %d trips, %.1f MB\n", filepath.Base(path), rows, float64(st.Size())/1e6)

	var nodes []*cluster.Node
	defer func() {
		for k := len(nodes) - 1; k >= 0; k-- {
			nodes[k].Stop()
		}
	}()
	var coordCat *query.Catalog
	for k := 1; k <= 3; k++ {
		cfg := cluster.Local(fmt.Sprintf("n%d", k))
		cfg.Logger, cfg.Secret = zap.NewNop(), "query-demo"
		// No crash detection is needed here: relax the Local preset's
		// 50 ms probe timeout, which a loaded machine can miss, declaring
		// a busy node dead.
		cfg.Gossip.ProbeInterval, cfg.Gossip.ProbeTimeout, cfg.Gossip.SuspicionMult = 250*time.Millisecond, 500*time.Millisecond, 4
		if k > 1 {
			cfg.Seeds = []string{nodes[0].GossipAddress()}
		}
		nd, err := cluster.NewNode(cfg)
		if err != nil {
			return err
		}
		if err := nd.Start(ctx); err != nil {
			return err
		}
		nodes = append(nodes, nd)
		// Every node registers the same file: executors are told which
		// partitions to scan by index.
		tbl, err := query.NewCSVTable(path, query.CSVOptions{PartitionBytes: 2 << 20})
		if err != nil {
			return err
		}
		cat := query.NewCatalog()
		if err := cat.Register("taxi", tbl); err != nil {
			return err
		}
		if k == 1 {
			coordCat = cat
			fmt.Fprintf(out, "table taxi: %d partitions, inferred schema:\n", len(tbl.Partitions()))
			for _, f := range tbl.Schema().Fields() {
				fmt.Fprintf(out, "  %-16s %s\n", f.Name, f.Type)
			}
		}
		if _, err := query.StartExecutors(nd, cat, 1); err != nil {
			return err
		}
	}
	for len(nodes[0].GroupMembers(query.ExecutorGroup)) < 3 {
		if ctx.Err() != nil {
			return fmt.Errorf("executors did not all join: %w", ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Fprintf(out, "cluster: %d nodes, %d executors\n", len(nodes), len(nodes[0].GroupMembers(query.ExecutorGroup)))

	srv, err := query.NewFlightSQLServer(coordCat, &query.Cluster{Node: nodes[0]}).Serve(listen)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	fmt.Fprintf(out, "flight sql on %s\n\n", srv.Addr())

	p, err := query.Prepare(coordCat, Query)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s\n\nplan:\n%s\n", Query, p.Explain())

	client, err := flightsql.NewClient(srv.Addr().String(), nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer client.Close()
	began := time.Now()
	info, err := client.Execute(ctx, Query)
	if err != nil {
		return err
	}
	type row struct{ pc, n int64 }
	var result []row
	var schema *arrow.Schema
	for _, ep := range info.Endpoint {
		rd, err := client.DoGet(ctx, ep.Ticket)
		if err != nil {
			return err
		}
		schema = rd.Schema()
		for rd.Next() {
			rec := rd.RecordBatch()
			pcs := rec.Column(0).(*array.Int64)
			ns := rec.Column(1).(*array.Int64)
			for r := 0; r < int(rec.NumRows()); r++ {
				result = append(result, row{pcs.Value(r), ns.Value(r)})
			}
		}
		if err := rd.Err(); err != nil {
			rd.Release()
			return err
		}
		rd.Release()
	}
	took := time.Since(began)
	sort.Slice(result, func(a, b int) bool { return result[a].pc < result[b].pc })

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(tw, "%s\t%s\t\n", schema.Field(0).Name, schema.Field(1).Name)
	fmt.Fprintf(tw, "%s\t%s\t\n", strings.Repeat("-", len(schema.Field(0).Name)), strings.Repeat("-", len(schema.Field(1).Name)))
	total := int64(0)
	for _, r := range result {
		fmt.Fprintf(tw, "%d\t%d\t\n", r.pc, r.n)
		total += r.n
	}
	tw.Flush()
	fmt.Fprintf(out, "(%d rows, %d trips, %s through Flight SQL)\n", len(result), total, took.Round(time.Millisecond))

	for _, r := range result {
		if counts[r.pc] != r.n {
			return fmt.Errorf("passenger_count %d: %d trips, the generator wrote %d", r.pc, r.n, counts[r.pc])
		}
	}
	if len(result) != len(counts) || total != int64(rows) {
		return fmt.Errorf("%d groups and %d trips, the generator wrote %d groups and %d trips", len(result), total, len(counts), rows)
	}
	fmt.Fprintln(out, "check: every count matches the generated file")
	if wait != nil {
		cancel() // the demo's deadline no longer applies
		wait()
	}
	return nil
}
