package query

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	flightpb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// MaxFlightMessageBytes bounds the Arrow data of one Flight message the
// server sends: larger result batches are cut into row ranges. It stays
// well under gRPC's default 4 MiB receive limit, which clients keep.
const MaxFlightMessageBytes = 2 << 20

// FlightSQLServer serves a catalog over Arrow Flight SQL: statement queries
// (GetFlightInfoStatement, DoGetStatement) and prepared statements (which
// JDBC and Python DB-API drivers use). Results are computed by the Runner
// and streamed from this server (the coordinator), so clients that ignore
// endpoint locations get every row.
type FlightSQLServer struct {
	flightsql.BaseServer
	cat    *Catalog
	runner Runner
	mem    memory.Allocator

	// Peers are the Flight SQL addresses ("host:port") of other nodes'
	// servers over the same tables. When set, a query whose rows need no
	// final step (no aggregation, ORDER BY, LIMIT or OFFSET) is answered
	// with one endpoint per server, each naming its share of the
	// partitions and its location, so that clients such as ADBC fetch
	// the shares in parallel from the nodes. Any server can serve any
	// share, so clients that ignore locations and fetch every ticket from
	// this server still get every row.
	Peers []string

	mu       sync.Mutex
	prepared map[string]string // handle → SQL
}

// NewFlightSQLServer makes a Flight SQL service over cat; runner runs the
// partition fragments (nil: LocalRunner{}).
func NewFlightSQLServer(cat *Catalog, runner Runner) *FlightSQLServer {
	if runner == nil {
		runner = LocalRunner{}
	}
	s := &FlightSQLServer{cat: cat, runner: runner, mem: memory.DefaultAllocator, prepared: map[string]string{}}
	s.Alloc = s.mem
	_ = s.RegisterSqlInfo(flightsql.SqlInfoFlightSqlServerName, "distributed query")
	_ = s.RegisterSqlInfo(flightsql.SqlInfoFlightSqlServerReadOnly, true)
	return s
}

// Serve starts a gRPC Flight server for s on addr ("127.0.0.1:0" picks a
// port). Stop it with Shutdown.
//
// The server encodes with flightCodec (the standard protobuf bytes, with
// fewer copies) and streams query results with flightStreamWriter, which
// hands gRPC the result batches' buffers instead of copies. The result
// streams need that codec: a codec among opts is overridden.
func (s *FlightSQLServer) Serve(addr string, opts ...grpc.ServerOption) (flight.Server, error) {
	opts = append(opts[:len(opts):len(opts)], grpc.ForceServerCodecV2(flightCodec{}))
	srv := flight.NewServerWithMiddleware(nil, opts...)
	srv.RegisterFlightService(&flightService{FlightServer: flightsql.NewFlightServer(s), s: s})
	if err := srv.Init(addr); err != nil {
		return nil, fmt.Errorf("query: flight sql: %w", err)
	}
	go func() { _ = srv.Serve() }()
	return srv, nil
}

// flightService is arrow-go's Flight SQL service with DoGet of statement
// and prepared-statement results written by flightStreamWriter; every other
// call, and DoGet of the catalog listings, is arrow-go's.
type flightService struct {
	flight.FlightServer
	s *FlightSQLServer
}

func (f *flightService) DoGet(tkt *flight.Ticket, stream flight.FlightService_DoGetServer) error {
	var anyCmd anypb.Any
	if err := proto.Unmarshal(tkt.GetTicket(), &anyCmd); err != nil {
		return f.FlightServer.DoGet(tkt, stream) // which reports the error
	}
	cmd, err := anyCmd.UnmarshalNew()
	if err != nil {
		return f.FlightServer.DoGet(tkt, stream)
	}
	var (
		schema *arrow.Schema
		chunks <-chan flight.StreamChunk
	)
	switch cmd := cmd.(type) {
	case *flightpb.TicketStatementQuery:
		schema, chunks, err = f.s.DoGetStatement(stream.Context(), cmd)
	case *flightpb.CommandPreparedStatementQuery:
		schema, chunks, err = f.s.DoGetPreparedStatement(stream.Context(), cmd)
	default:
		return f.FlightServer.DoGet(tkt, stream)
	}
	if err != nil {
		return err
	}
	return writeChunks(stream, schema, chunks)
}

// writeChunks streams chunks as arrow-go's Flight SQL DoGet does, through
// a flightStreamWriter. It drains chunks before it returns.
func writeChunks(stream grpc.ServerStream, schema *arrow.Schema, chunks <-chan flight.StreamChunk) error {
	defer func() {
		for c := range chunks {
			if c.Data != nil {
				c.Data.Release()
			}
		}
	}()
	w := newFlightStreamWriter(stream.SendMsg, schema)
	defer w.Close()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c, ok := <-chunks:
			if !ok {
				return nil
			}
			if c.Err != nil {
				if c.Data != nil {
					c.Data.Release()
				}
				return c.Err
			}
			err := w.Write(c.Data, c.Desc, c.AppMetadata)
			if c.Data != nil {
				c.Data.Release()
			}
			if err != nil {
				return err
			}
		}
	}
}

// grpcError maps query errors to gRPC status codes that clients show.
func grpcError(err error) error {
	switch {
	case errors.Is(err, ErrSyntax), errors.Is(err, ErrType):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrUnknown):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrUnsupported):
		return status.Error(codes.Unimplemented, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ErrExecutorLost):
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func (s *FlightSQLServer) info(p *Plan, desc *flight.FlightDescriptor, ticket []byte) *flight.FlightInfo {
	return &flight.FlightInfo{
		Schema:           flight.SerializeSchema(p.Schema(), s.mem),
		FlightDescriptor: desc,
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: ticket}}},
		TotalRecords:     -1,
		TotalBytes:       -1,
	}
}

// GetFlightInfoStatement plans the query (so errors surface here) and
// returns a ticket that carries the query text.
func (s *FlightSQLServer) GetFlightInfoStatement(ctx context.Context, cmd flightsql.StatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	p, err := Prepare(s.cat, cmd.GetQuery())
	if err != nil {
		return nil, grpcError(err)
	}
	if len(s.Peers) > 0 && p.streamable() && p.Partitions() > 1 {
		return s.splitInfo(p, desc)
	}
	tkt, err := flightsql.CreateStatementQueryTicket([]byte(cmd.GetQuery()))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return s.info(p, desc, tkt), nil
}

// streamable says that the fragment output is the result: no final
// aggregation, sort or row limit.
func (p *Plan) streamable() bool {
	return !p.agg && len(p.order) == 0 && p.limit < 0 && p.offset == 0
}

// shareTicket is the statement handle of one share of a split query.
type shareTicket struct {
	SQL        string `json:"sql"`
	Partitions []int  `json:"partitions"`
}

const sharePrefix = "share:"

func (s *FlightSQLServer) splitInfo(p *Plan, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	targets := append([]string{""}, s.Peers...) // "" is this server
	n := p.Partitions()
	shares := make([][]int, min(len(targets), n))
	for i := 0; i < n; i++ {
		shares[i%len(shares)] = append(shares[i%len(shares)], i)
	}
	info := &flight.FlightInfo{
		Schema:           flight.SerializeSchema(p.Schema(), s.mem),
		FlightDescriptor: desc,
		TotalRecords:     -1,
		TotalBytes:       -1,
	}
	for k, parts := range shares {
		h, err := json.Marshal(shareTicket{SQL: p.SQL, Partitions: parts})
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		tkt, err := flightsql.CreateStatementQueryTicket(append([]byte(sharePrefix), h...))
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		ep := &flight.FlightEndpoint{Ticket: &flight.Ticket{Ticket: tkt}}
		if targets[k] != "" {
			ep.Location = []*flight.Location{{Uri: "grpc+tcp://" + targets[k]}}
		}
		info.Endpoint = append(info.Endpoint, ep)
	}
	return info, nil
}

// partsRunner runs only some partitions, on goroutines of this process.
type partsRunner struct{ parts []int }

func (r partsRunner) RunFragments(ctx context.Context, p *Plan, emit func(arrow.RecordBatch) error) error {
	for _, i := range r.parts {
		if err := p.RunPartition(ctx, i, emit); err != nil {
			return err
		}
	}
	return nil
}

// GetSchemaStatement returns the result schema of a query without running it.
func (s *FlightSQLServer) GetSchemaStatement(ctx context.Context, cmd flightsql.StatementQuery, desc *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	p, err := Prepare(s.cat, cmd.GetQuery())
	if err != nil {
		return nil, grpcError(err)
	}
	return &flight.SchemaResult{Schema: flight.SerializeSchema(p.Schema(), s.mem)}, nil
}

// DoGetStatement runs the query in the ticket and streams its result.
func (s *FlightSQLServer) DoGetStatement(ctx context.Context, tkt flightsql.StatementQueryTicket) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	h := tkt.GetStatementHandle()
	if rest, ok := bytes.CutPrefix(h, []byte(sharePrefix)); ok {
		var st shareTicket
		if err := json.Unmarshal(rest, &st); err != nil {
			return nil, nil, status.Error(codes.InvalidArgument, "query: malformed share ticket")
		}
		p, err := Prepare(s.cat, st.SQL)
		if err != nil {
			return nil, nil, grpcError(err)
		}
		if !p.streamable() {
			return nil, nil, status.Error(codes.InvalidArgument, "query: a share ticket for a query that needs a final step")
		}
		for _, i := range st.Partitions {
			if i < 0 || i >= p.Partitions() {
				return nil, nil, status.Errorf(codes.InvalidArgument, "query: partition %d out of range", i)
			}
		}
		return s.stream(ctx, p, partsRunner{st.Partitions})
	}
	return s.run(ctx, string(h))
}

func (s *FlightSQLServer) run(ctx context.Context, sql string) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	p, err := Prepare(s.cat, sql)
	if err != nil {
		return nil, nil, grpcError(err)
	}
	return s.stream(ctx, p, s.runner)
}

func (s *FlightSQLServer) stream(ctx context.Context, p *Plan, runner Runner) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	ch := make(chan flight.StreamChunk, 2) // small: backpressure reaches the scan
	go func() {
		defer close(ch)
		err := Execute(ctx, p, runner, func(rec arrow.RecordBatch) error {
			for _, part := range splitRecord(rec, MaxFlightMessageBytes) {
				select {
				case ch <- flight.StreamChunk{Data: part}:
				case <-ctx.Done():
					part.Release()
					return ctx.Err()
				}
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			select {
			case ch <- flight.StreamChunk{Err: grpcError(err)}:
			case <-ctx.Done():
			}
		}
	}()
	return p.Schema(), ch, nil
}

// splitRecord cuts rec into row ranges of at most about maxBytes each. Each
// returned batch is retained for the caller.
func splitRecord(rec arrow.RecordBatch, maxBytes int) []arrow.RecordBatch {
	size := 0
	for _, c := range rec.Columns() {
		for _, b := range c.Data().Buffers() {
			if b != nil {
				size += b.Len()
			}
		}
	}
	n := rec.NumRows()
	if size <= maxBytes || n <= 1 {
		rec.Retain()
		return []arrow.RecordBatch{rec}
	}
	parts := (size + maxBytes - 1) / maxBytes
	step := (n + int64(parts) - 1) / int64(parts)
	var out []arrow.RecordBatch
	for off := int64(0); off < n; off += step {
		out = append(out, rec.NewSlice(off, min(off+step, n)))
	}
	return out
}

// CreatePreparedStatement plans the query and keeps it under a handle.
func (s *FlightSQLServer) CreatePreparedStatement(ctx context.Context, req flightsql.ActionCreatePreparedStatementRequest) (flightsql.ActionCreatePreparedStatementResult, error) {
	p, err := Prepare(s.cat, req.GetQuery())
	if err != nil {
		return flightsql.ActionCreatePreparedStatementResult{}, grpcError(err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.prepared[h] = req.GetQuery()
	s.mu.Unlock()
	return flightsql.ActionCreatePreparedStatementResult{Handle: []byte(h), DatasetSchema: p.Schema()}, nil
}

// ClosePreparedStatement forgets a prepared statement.
func (s *FlightSQLServer) ClosePreparedStatement(ctx context.Context, req flightsql.ActionClosePreparedStatementRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := string(req.GetPreparedStatementHandle())
	if _, ok := s.prepared[h]; !ok {
		return status.Error(codes.NotFound, "query: no prepared statement with that handle")
	}
	delete(s.prepared, h)
	return nil
}

func (s *FlightSQLServer) preparedSQL(handle []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sql, ok := s.prepared[string(handle)]
	if !ok {
		return "", status.Error(codes.NotFound, "query: no prepared statement with that handle")
	}
	return sql, nil
}

// GetFlightInfoPreparedStatement returns a ticket for a prepared statement.
func (s *FlightSQLServer) GetFlightInfoPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	sql, err := s.preparedSQL(cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, err
	}
	p, err := Prepare(s.cat, sql)
	if err != nil {
		return nil, grpcError(err)
	}
	// The descriptor's command is the ticket: DoGet routes it back to
	// DoGetPreparedStatement.
	return s.info(p, desc, desc.Cmd), nil
}

// GetSchemaPreparedStatement returns a prepared statement's result schema.
func (s *FlightSQLServer) GetSchemaPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery, desc *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	sql, err := s.preparedSQL(cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, err
	}
	p, err := Prepare(s.cat, sql)
	if err != nil {
		return nil, grpcError(err)
	}
	return &flight.SchemaResult{Schema: flight.SerializeSchema(p.Schema(), s.mem)}, nil
}

// DoGetPreparedStatement runs a prepared statement and streams its result.
func (s *FlightSQLServer) DoGetPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	sql, err := s.preparedSQL(cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, nil, err
	}
	return s.run(ctx, sql)
}

// GetFlightInfoTables and DoGetTables list the catalog's tables (with
// their schemas when asked), so that clients can browse it.
func (s *FlightSQLServer) GetFlightInfoTables(ctx context.Context, cmd flightsql.GetTables, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	schema := tablesSchema(cmd.GetIncludeSchema())
	return &flight.FlightInfo{
		Schema:           flight.SerializeSchema(schema, s.mem),
		FlightDescriptor: desc,
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: desc.Cmd}}},
		TotalRecords:     -1,
		TotalBytes:       -1,
	}, nil
}

func tablesSchema(withSchema bool) *arrow.Schema {
	if withSchema {
		return schema_ref.TablesWithIncludedSchema
	}
	return schema_ref.Tables
}

// DoGetTables streams the table list.
func (s *FlightSQLServer) DoGetTables(ctx context.Context, cmd flightsql.GetTables) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	schema := tablesSchema(cmd.GetIncludeSchema())
	b := array.NewRecordBuilder(s.mem, schema)
	defer b.Release()
	for _, name := range s.cat.Tables() {
		t, _ := s.cat.Table(name)
		b.Field(0).AppendNull() // catalog
		b.Field(1).AppendNull() // schema
		b.Field(2).(*array.StringBuilder).Append(name)
		b.Field(3).(*array.StringBuilder).Append("TABLE")
		if cmd.GetIncludeSchema() {
			b.Field(4).(*array.BinaryBuilder).Append(flight.SerializeSchema(t.Schema(), s.mem))
		}
	}
	rec := b.NewRecordBatch()
	ch := make(chan flight.StreamChunk, 1)
	ch <- flight.StreamChunk{Data: rec}
	close(ch)
	return schema, ch, nil
}
