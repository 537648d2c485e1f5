// Package query is a distributed SQL engine over Apache Arrow: a catalog of
// CSV and Parquet tables, a SQL front end, a planner, vectorized kernels,
// executor actors on cluster nodes, and an Arrow Flight SQL endpoint.
//
// # Tables
//
// A Catalog names tables. NewCSVTable reads CSV files with a given schema
// or with types inferred from many sampled rows (not just the first), split
// into byte-range partitions cut at line ends, and decodes them itself
// straight into its vectors (only the columns a query uses, values parsed
// from the bytes; other Arrow column types and multi-byte delimiters go
// through arrow-go's CSV reader); NewParquetTable reads
// Parquet files or directories, one partition per row group, decoding only
// the columns a query uses; NewMemTable holds record batches. Flat
// Parquet columns of INT32, INT64, FLOAT, DOUBLE or UTF-8 BYTE_ARRAY values,
// PLAIN or dictionary encoded, are decoded by the package itself straight
// into its vectors: strings stay dictionary codes, and in aggregations a
// required numeric column stays encoded until read, so a filter judges
// each dictionary entry once and the other columns are decoded only for
// the rows it keeps. Other columns are read through arrow-go's pqarrow.
// Each file's footer is parsed once and reused while the file's size and
// modification time stay the same. Arrow types
// map onto five engine types: BIGINT (all integer widths), DOUBLE (floats
// and decimals), VARCHAR, DATE and BOOLEAN.
//
// # SQL
//
// The parser is vitess's sqlparser (vitess.io/vitess/go/vt/sqlparser, the
// MySQL grammar that Vitess serves production traffic with). It is pure
// Go, so the package cross-compiles and needs no C toolchain, unlike
// pg_query_go, which wraps PostgreSQL's C parser through cgo; it parses
// TPC-H queries 1 and 6 unchanged. MySQL's dialect shows in two places:
// double-quoted text is a string literal, and identifiers are quoted with
// backticks.
//
// Supported: SELECT of expressions (+ - * / %, unary minus, CAST) with
// aliases and *; WHERE with comparisons, AND/OR/NOT (three-valued),
// BETWEEN, IN (constant lists), LIKE, IS [NOT] NULL, DATE literals and
// INTERVAL n DAY/WEEK/MONTH/QUARTER/YEAR; GROUP BY names, expressions,
// select aliases and ordinals; HAVING; COUNT(*), COUNT, COUNT(DISTINCT),
// SUM, AVG, MIN, MAX; ORDER BY (NULLs last ascending, first descending);
// LIMIT and OFFSET. One table per query: joins, subqueries, CASE, window
// functions and scalar functions fail with ErrUnsupported, naming what is
// unsupported. A syntax error is a *SyntaxError with the position and the
// token; an unknown table or column matches ErrUnknown and names it; a type
// mismatch matches ErrType and names the operands. Planning and execution
// never panic on any input (FuzzPrepare).
//
// # Plans
//
// Prepare binds the statement and fixes the physical plan (Plan.Explain
// prints it): the scan reads only the columns the query uses (projection
// pushdown); the WHERE filter runs first, on those columns, narrowing a
// selection vector conjunct by conjunct; then either each partition
// aggregates its rows into partial states (count; sum and count; minimum;
// ...) that the coordinator merges in a final aggregation before HAVING and
// the projection, or each partition projects its rows. ORDER BY with LIMIT
// keeps only the top rows at each partition and again at the end (top-k).
// COUNT(DISTINCT) cannot be merged from partial counts, so such queries
// ship (key, argument) rows to the coordinator, which aggregates them.
//
// # Execution
//
// Kernels work on whole columns held as Go slices, zero-copy over the Arrow
// buffers where the layouts agree: comparisons of a column with a constant
// become tight loops producing selection vectors, arithmetic runs over
// float64 or int64 slices, and the hash aggregation (written here: arrow-go
// has no aggregation or group-by kernels) maps keys to dense group ids with
// one Go map lookup per row and updates flat per-group accumulator slices.
//
// A Runner runs the partition fragments: LocalRunner on goroutines of this
// process, Cluster on executor actors of cluster nodes. Execute merges what
// they return and streams the result.
//
// # Distribution and faults
//
// StartExecutors starts supervised executor actors on a node; they join
// the process group ExecutorGroup. Every node registers the same tables, and
// a query travels to executors as its SQL text plus partition indexes (the
// plan is deterministic, so each executor re-plans it; Ballista ships a
// serialized plan instead). Executors stream their output as Arrow IPC
// inside protobuf messages (package querypb), each at most MaxBatchBytes,
// and send only as many as the coordinator has credited, so memory stays
// bounded and gRPC's 4 MiB message limit is never approached.
//
// The coordinator monitors its executors. If one dies, its unfinished
// partitions run again on the survivors; aggregating and sorting queries
// hold a partition's output until the partition is complete, so no row is
// counted twice. A query that streams rows to the client as they come
// cannot take rows back: if the lost executor had already sent some, the
// query fails with ErrExecutorLost, as it does when no executor is left or
// none is heard from for Cluster.IdleTimeout. Cancelling the context
// cancels the tasks on every executor.
//
// # Flight SQL
//
// FlightSQLServer serves a catalog to any Arrow Flight SQL client: statement
// queries, prepared statements (which JDBC and Python DB-API drivers need)
// and the table list. Results are streamed from the coordinator as one
// endpoint; with FlightSQLServer.Peers set, a query that needs no final step
// (no aggregation, ORDER BY or LIMIT) is answered with one endpoint per node,
// each with its location and its share of the partitions, which ADBC
// fetches in parallel. Every node can serve every share, so clients that
// ignore endpoint locations still get every row. Each message holds at most
// MaxFlightMessageBytes of Arrow data.
package query
