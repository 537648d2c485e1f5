package query

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
func (s *FlightSQLServer) Serve(addr string, opts ...grpc.ServerOption) (flight.Server, error) {
	srv := flight.NewServerWithMiddleware(nil, opts...)
	srv.RegisterFlightService(flightsql.NewFlightServer(s))
	if err := srv.Init(addr); err != nil {
		return nil, fmt.Errorf("query: flight sql: %w", err)
	}
	go func() { _ = srv.Serve() }()
	return srv, nil
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
	tkt, err := flightsql.CreateStatementQueryTicket([]byte(cmd.GetQuery()))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return s.info(p, desc, tkt), nil
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
	return s.run(ctx, string(tkt.GetStatementHandle()))
}

func (s *FlightSQLServer) run(ctx context.Context, sql string) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	p, err := Prepare(s.cat, sql)
	if err != nil {
		return nil, nil, grpcError(err)
	}
	ch := make(chan flight.StreamChunk, 2) // small: backpressure reaches the scan
	go func() {
		defer close(ch)
		err := Execute(ctx, p, s.runner, func(rec arrow.RecordBatch) error {
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
