// Command query measures the SQL engine of behaviors/query against DuckDB
// in the same run, on the same files, and prints the ratios:
//
//   - TPC-H Q1 and Q6 at scale factor 1 (6,001,215 lineitem rows) from
//     Parquet: ours on one node, ours with three executors on three
//     in-process cluster nodes, and DuckDB (github.com/duckdb/duckdb-go/v2)
//     reading the same file. Our answers are checked against the official
//     SF1 answers before anything is timed.
//   - Flight SQL result streaming throughput on loopback.
//   - CSV scan throughput per core.
//
// Run from the bench directory (its own module, so DuckDB never enters the
// main module):
//
//	cd bench && go run ./query -runs 5
//
// -parts picks what to measure (default "tpch,flight,csv"), e.g.
// `go run ./query -parts csv`.
//
// The data is generated once with dbgen (github.com/pingcap/go-tpc) into
// -dir and reused by later runs.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	_ "github.com/duckdb/duckdb-go/v2"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/distributed-go/distributed/behaviors/query"
	"github.com/distributed-go/distributed/behaviors/query/tpch"
	"github.com/distributed-go/distributed/cluster"
)

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "distributed-bench-tpch"), "where the generated data is kept")
	sf := flag.Int("sf", 1, "TPC-H scale factor (integer)")
	runs := flag.Int("runs", 5, "timed runs per measurement (the median is reported)")
	csvRows := flag.Int("csv-orders", 250000, "orders (about 4 lineitem rows each) in the CSV scan file")
	parts := flag.String("parts", "tpch,flight,csv", "what to measure, comma-separated: tpch (Q1 and Q6 vs DuckDB), flight (Flight SQL streaming), csv (CSV scan vs DuckDB)")
	flag.Parse()
	want, err := parseParts(*parts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	if err := run(*dir, *sf, *runs, *csvRows, want); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	return s[len(s)/2]
}

func timeIt(runs int, f func() error) (time.Duration, error) {
	if err := f(); err != nil { // warm-up (page cache, plan cache)
		return 0, err
	}
	var ds []time.Duration
	for k := 0; k < runs; k++ {
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	return median(ds), nil
}

// timeTurns times several functions taking turns (a warm-up of each, then
// run k of each one after the other), so that a change in the machine's
// load during the measurement hits all of them alike, and returns the
// median of each.
func timeTurns(runs int, fs ...func() error) ([]time.Duration, error) {
	for _, f := range fs {
		if err := f(); err != nil {
			return nil, err
		}
	}
	ds := make([][]time.Duration, len(fs))
	for k := 0; k < runs; k++ {
		for j, f := range fs {
			t0 := time.Now()
			if err := f(); err != nil {
				return nil, err
			}
			ds[j] = append(ds[j], time.Since(t0))
		}
	}
	out := make([]time.Duration, len(fs))
	for j := range ds {
		out[j] = median(ds[j])
	}
	return out, nil
}

func ensureParquet(dir string, sf int) (string, error) {
	d := filepath.Join(dir, fmt.Sprintf("sf%d", sf))
	path := filepath.Join(d, "lineitem.parquet")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	fmt.Printf("generating lineitem SF%d with dbgen into %s ...\n", sf, d)
	t0 := time.Now()
	tmp, err := os.MkdirTemp(d, "gen")
	if err != nil {
		return "", err
	}
	p, err := tpch.WriteParquet(tmp, tpch.DbGen(sf, 0), 1<<17, true)
	if err != nil {
		return "", err
	}
	if err := os.Rename(p, path); err != nil {
		return "", err
	}
	os.RemoveAll(tmp)
	fmt.Printf("generated in %s\n", time.Since(t0).Round(time.Second))
	return path, nil
}

func ensureCSV(dir string, orders int) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("lineitem-%d.csv", orders))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", err
	}
	if err := tpch.WriteCSV(f, tpch.DbGen(1, orders)); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}

type result struct {
	name string
	d    time.Duration
}

func oursQuery(ctx context.Context, cat *query.Catalog, r query.Runner, sqlText string) ([][]any, error) {
	p, err := query.Prepare(cat, sqlText)
	if err != nil {
		return nil, err
	}
	var rows [][]any
	err = query.Execute(ctx, p, r, func(rec arrow.RecordBatch) error {
		for i := 0; i < int(rec.NumRows()); i++ {
			var row []any
			for c := 0; c < int(rec.NumCols()); c++ {
				switch a := rec.Column(c).(type) {
				case *array.String:
					row = append(row, a.Value(i))
				case *array.Float64:
					row = append(row, a.Value(i))
				case *array.Int64:
					row = append(row, a.Value(i))
				default:
					row = append(row, a.ValueStr(i))
				}
			}
			rows = append(rows, row)
		}
		return nil
	})
	return rows, err
}

func checkAnswers(ctx context.Context, cat *query.Catalog, r query.Runner, sf int) error {
	if sf != 1 {
		fmt.Println("(answers are checked only at SF1)")
		return nil
	}
	rows, err := oursQuery(ctx, cat, r, tpch.Q1)
	if err != nil {
		return err
	}
	if len(rows) != len(tpch.Q1SF1) {
		return fmt.Errorf("Q1: %d rows, want %d", len(rows), len(tpch.Q1SF1))
	}
	for k, w := range tpch.Q1SF1 {
		want := fmt.Sprintf("%s %s %.2f %.2f %.2f %.2f %.2f %.2f %.2f %d", w.ReturnFlag, w.LineStatus, w.SumQty, w.SumBasePrice, w.SumDiscPrice, w.SumCharge, w.AvgQty, w.AvgPrice, w.AvgDisc, w.CountOrder)
		r := rows[k]
		got := fmt.Sprintf("%s %s %.2f %.2f %.2f %.2f %.2f %.2f %.2f %d", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])
		if got != want {
			return fmt.Errorf("Q1 row %d:\n got %s\nwant %s", k, got, want)
		}
	}
	rows, err = oursQuery(ctx, cat, r, tpch.Q6)
	if err != nil {
		return err
	}
	if got := fmt.Sprintf("%.2f", rows[0][0]); got != fmt.Sprintf("%.2f", tpch.Q6SF1) {
		return fmt.Errorf("Q6 = %s, want %.2f", got, tpch.Q6SF1)
	}
	return nil
}

func startCluster(ctx context.Context, n int, mkCat func() (*query.Catalog, error)) ([]*cluster.Node, error) {
	var nodes []*cluster.Node
	for k := 1; k <= n; k++ {
		// LAN timing: the benchmark loads the machine, and the Local
		// preset's 50 ms probe timeout could then declare a busy node dead.
		cfg := cluster.LAN(fmt.Sprintf("b%d", k))
		cfg.Logger, cfg.Secret = zap.NewNop(), "bench"
		if k > 1 {
			cfg.Seeds = []string{nodes[0].GossipAddress()}
		}
		nd, err := cluster.NewNode(cfg)
		if err != nil {
			return nodes, err
		}
		if err := nd.Start(ctx); err != nil {
			return nodes, err
		}
		nodes = append(nodes, nd)
		cat, err := mkCat()
		if err != nil {
			return nodes, err
		}
		if _, err := query.StartExecutors(nd, cat, 1); err != nil {
			return nodes, err
		}
	}
	for len(nodes[0].GroupMembers(query.ExecutorGroup)) < n {
		if ctx.Err() != nil {
			return nodes, ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nodes, nil
}

// parseParts reads -parts.
func parseParts(list string) (map[string]bool, error) {
	want := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		switch p = strings.TrimSpace(p); p {
		case "tpch", "flight", "csv":
			want[p] = true
		case "":
		default:
			return nil, fmt.Errorf("-parts: unknown part %q (want tpch, flight or csv)", p)
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("-parts: nothing to measure (want tpch, flight or csv)")
	}
	return want, nil
}

func run(dir string, sf, runs, csvOrders int, want map[string]bool) error {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	if want["tpch"] || want["flight"] {
		path, err := ensureParquet(dir, sf)
		if err != nil {
			return err
		}
		st, _ := os.Stat(path)
		fmt.Printf("lineitem SF%d: %s (%.0f MB, Snappy), GOMAXPROCS=%d, %s/%s\n\n", sf, path, float64(st.Size())/1e6, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
		mkCat := func() (*query.Catalog, error) {
			t, err := query.NewParquetTable(path)
			if err != nil {
				return nil, err
			}
			c := query.NewCatalog()
			return c, c.Register("lineitem", t)
		}
		cat, err := mkCat()
		if err != nil {
			return err
		}
		if want["tpch"] {
			if err := tpchQueries(ctx, cat, mkCat, path, sf, runs, db); err != nil {
				return err
			}
		}
		if want["flight"] {
			if err := flightThroughput(ctx, cat, runs); err != nil {
				return err
			}
		}
	}
	if want["csv"] {
		return csvScan(ctx, dir, csvOrders, runs, db)
	}
	return nil
}

// tpchQueries checks Q1 and Q6 against the official answers (one node and
// three executors), then times ours and DuckDB on the same Parquet file.
func tpchQueries(ctx context.Context, cat *query.Catalog, mkCat func() (*query.Catalog, error), path string, sf, runs int, db *sql.DB) error {
	if err := checkAnswers(ctx, cat, query.LocalRunner{}, sf); err != nil {
		return fmt.Errorf("ours, one node: %w", err)
	}
	nodes, err := startCluster(ctx, 3, mkCat)
	defer func() {
		for k := len(nodes) - 1; k >= 0; k-- {
			nodes[k].Stop()
		}
	}()
	if err != nil {
		return err
	}
	three := &query.Cluster{Node: nodes[0]}
	if err := checkAnswers(ctx, cat, three, sf); err != nil {
		return fmt.Errorf("ours, 3 executors: %w", err)
	}
	fmt.Println("answers: Q1 and Q6 match the official SF1 answers (one node and 3 executors)")

	if _, err := db.Exec(fmt.Sprintf("CREATE VIEW lineitem AS SELECT * FROM read_parquet('%s')", path)); err != nil {
		return err
	}
	// Our Parquet table keeps each file's parsed footer from registration
	// (while the file is unchanged); DuckDB gets the same.
	if _, err := db.Exec("SET parquet_metadata_cache = true"); err != nil {
		return err
	}
	var duckVersion string
	_ = db.QueryRow("SELECT version()").Scan(&duckVersion)
	duck := func(q string) func() error {
		return func() error {
			rows, err := db.Query(q)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}
	}

	fmt.Printf("\nTPC-H from Parquet, median of %d runs after a warm-up, the three systems taking turns run by run (DuckDB %s, same file, same process)\n", runs, duckVersion)
	fmt.Printf("%-4s %14s %14s %14s %12s %12s\n", "", "ours 1 node", "ours 3 exec", "duckdb", "1 node/duck", "3 exec/duck")
	for _, q := range []struct{ name, text string }{{"Q1", tpch.Q1}, {"Q6", tpch.Q6}} {
		ds, err := timeTurns(runs,
			func() error { _, err := oursQuery(ctx, cat, query.LocalRunner{}, q.text); return err },
			func() error { _, err := oursQuery(ctx, cat, three, q.text); return err },
			duck(q.text))
		if err != nil {
			return err
		}
		one, th, dk := ds[0], ds[1], ds[2]
		fmt.Printf("%-4s %14s %14s %14s %11.2fx %11.2fx\n", q.name, one.Round(time.Millisecond), th.Round(time.Millisecond), dk.Round(time.Millisecond),
			float64(one)/float64(dk), float64(th)/float64(dk))
	}
	fmt.Println("(ratio = our time / DuckDB's time; below 1 would mean faster than DuckDB)")
	return nil
}

// flightThroughput streams eight numeric lineitem columns (6M rows, held
// in memory, so that Parquet decoding is not what is measured) through a
// Flight SQL server on loopback and counts the Arrow bytes received.
func flightThroughput(ctx context.Context, cat *query.Catalog, runs int) error {
	const cols = "l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax"
	schema, recs, err := (&query.Engine{Catalog: cat}).Query(ctx, "SELECT "+cols+" FROM lineitem")
	if err != nil {
		return err
	}
	mem, err := query.NewMemTable(schema, recs)
	if err != nil {
		return err
	}
	mcat := query.NewCatalog()
	if err := mcat.Register("lineitem", mem); err != nil {
		return err
	}
	srv, err := query.NewFlightSQLServer(mcat, query.LocalRunner{}).Serve("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	// The peer: the same Flight SQL service as arrow-go serves it (its
	// Flight writer, gRPC's proto codec), as our server was before.
	stock := flight.NewServerWithMiddleware(nil)
	stock.RegisterFlightService(flightsql.NewFlightServer(query.NewFlightSQLServer(mcat, query.LocalRunner{})))
	if err := stock.Init("127.0.0.1:0"); err != nil {
		return err
	}
	go func() { _ = stock.Serve() }()
	defer stock.Shutdown()
	// Plain flightsql clients, as any third-party Go client is, and one
	// dialled with query.FlightClientOptions (less work on receipt).
	dial := func(addr string, opts ...grpc.DialOption) (*flightsql.Client, error) {
		return flightsql.NewClient(addr, nil, nil, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	}
	plain, err := dial(srv.Addr().String())
	if err != nil {
		return err
	}
	defer plain.Close()
	codec, err := dial(srv.Addr().String(), query.FlightClientOptions()...)
	if err != nil {
		return err
	}
	defer codec.Close()
	stockPlain, err := dial(stock.Addr().String())
	if err != nil {
		return err
	}
	defer stockPlain.Close()
	q := "SELECT " + cols + " FROM lineitem"
	var bytes int64
	fetch := func(cl *flightsql.Client) func() error {
		return func() error {
			bytes = 0
			info, err := cl.Execute(ctx, q)
			if err != nil {
				return err
			}
			rd, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
			if err != nil {
				return err
			}
			defer rd.Release()
			for rd.Next() {
				for _, c := range rd.RecordBatch().Columns() {
					for _, b := range c.Data().Buffers() {
						if b != nil {
							bytes += int64(b.Len())
						}
					}
				}
			}
			return rd.Err()
		}
	}
	ds, err := timeTurns(runs, fetch(plain), fetch(codec), fetch(stockPlain))
	if err != nil {
		return err
	}
	gbs := func(d time.Duration) float64 { return float64(bytes) / d.Seconds() / 1e9 }
	fmt.Printf("\nFlight SQL DoGet on loopback (8 numeric columns, 6M rows from memory): %.0f MB in %s = %.2f GB/s\n",
		float64(bytes)/1e6, ds[0].Round(time.Millisecond), gbs(ds[0]))
	fmt.Printf("  the same, client dialled with query.FlightClientOptions: %s = %.2f GB/s\n", ds[1].Round(time.Millisecond), gbs(ds[1]))
	fmt.Printf("  arrow-go's stock Flight SQL server, plain client (taking turns with the above): %s = %.2f GB/s (ours %.2fx)\n",
		ds[2].Round(time.Millisecond), gbs(ds[2]), float64(ds[2])/float64(ds[0]))
	return nil
}

// csvScan measures CSV scanning with one partition at a time (one core)
// and with all cores, and DuckDB on the same file.
func csvScan(ctx context.Context, dir string, orders, runs int, db *sql.DB) error {
	path, err := ensureCSV(dir, orders)
	if err != nil {
		return err
	}
	st, _ := os.Stat(path)
	mb := float64(st.Size()) / 1e6
	tbl, err := query.NewCSVTable(path, query.CSVOptions{Schema: tpch.Schema, PartitionBytes: 16 << 20})
	if err != nil {
		return err
	}
	cat := query.NewCatalog()
	if err := cat.Register("lineitem", tbl); err != nil {
		return err
	}
	const q = "SELECT COUNT(*), SUM(l_quantity), MAX(l_shipdate), MIN(l_comment) FROM lineitem"
	fmt.Printf("\nCSV scan (%s, %.0f MB, %d partitions): %s\n", filepath.Base(path), mb, len(tbl.Partitions()), q)
	one, err := timeIt(runs, func() error { _, err := oursQuery(ctx, cat, query.LocalRunner{Parallelism: 1}, q); return err })
	if err != nil {
		return err
	}
	all, err := timeIt(runs, func() error { _, err := oursQuery(ctx, cat, query.LocalRunner{}, q); return err })
	if err != nil {
		return err
	}
	dq := fmt.Sprintf("SELECT COUNT(*), SUM(l_quantity), MAX(l_shipdate), MIN(l_comment) FROM read_csv('%s', header=true)", path)
	dk, err := timeIt(runs, func() error {
		var a, b, c, d any
		return db.QueryRow(dq).Scan(&a, &b, &c, &d)
	})
	if err != nil {
		return err
	}
	fmt.Printf("ours, 1 core:   %s = %.0f MB/s per core\n", one.Round(time.Millisecond), mb/one.Seconds())
	fmt.Printf("ours, %d cores:  %s = %.0f MB/s\n", runtime.GOMAXPROCS(0), all.Round(time.Millisecond), mb/all.Seconds())
	fmt.Printf("duckdb:         %s = %.0f MB/s (ratio ours all cores / duckdb time %.2fx)\n", dk.Round(time.Millisecond), mb/dk.Seconds(), float64(all)/float64(dk))
	_ = math.Abs
	return nil
}
