package saga

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

// maxServiceWork bounds the requests a service works on at once (Begin,
// Resume and waiting Status requests each hold one slot while they wait).
const maxServiceWork = 10000

// ServiceProps returns Props of the saga service: an actor that answers
// sagapb.BeginRequest, StatusRequest, ListRequest, HistoryRequest and
// ResumeRequest for this manager, so that Client can start and watch sagas
// from any node. Spawn it (typically registered under a local or global
// name) on the manager's node. Requests that wait (Begin, Resume, Status
// with wait_millis) are answered later from their own goroutine, so a slow
// one never holds up the others.
func (m *Manager) ServiceProps() *actor.Props {
	sem := make(chan struct{}, maxServiceWork)
	later := func(ctx *actor.Context, work func() any) {
		from := ctx.From()
		select {
		case sem <- struct{}{}:
		default:
			from.Reply(unavailable(ctx.Message()))
			return
		}
		go func() {
			defer func() { <-sem }()
			from.Reply(work())
		}()
	}
	return actor.PropsFromFunc(func(ctx *actor.Context) {
		switch req := ctx.Message().(type) {
		case *sagapb.BeginRequest:
			later(ctx, func() any {
				c, cancel := context.WithTimeout(m.life, 30*time.Second)
				defer cancel()
				code, msg := errorCode(m.Begin(c, req.Definition, req.SagaId, req.Input))
				return &sagapb.BeginReply{Code: code, Error: msg}
			})
		case *sagapb.ResumeRequest:
			later(ctx, func() any {
				c, cancel := context.WithTimeout(m.life, 30*time.Second)
				defer cancel()
				code, msg := errorCode(m.Resume(c, req.SagaId))
				return &sagapb.ResumeReply{Code: code, Error: msg}
			})
		case *sagapb.StatusRequest:
			if req.WaitMillis == 0 {
				ctx.Reply(m.status(req.SagaId))
				return
			}
			wait := time.Duration(min(req.WaitMillis, 60000)) * time.Millisecond
			later(ctx, func() any {
				c, cancel := context.WithTimeout(m.life, wait)
				defer cancel()
				if _, err := m.Wait(c, req.SagaId); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					code, msg := errorCode(err)
					return &sagapb.StatusReply{Code: code, Error: msg}
				}
				return m.status(req.SagaId)
			})
		case *sagapb.ListRequest:
			var sts []Status
			for _, s := range req.Statuses {
				if st, ok := statusFromProto(s); ok {
					sts = append(sts, st)
				}
			}
			limit := int(req.Limit)
			if limit <= 0 || limit > 1000 {
				limit = 1000
			}
			list := m.List(sts...)
			if len(list) > limit {
				list = list[:limit]
			}
			rep := &sagapb.ListReply{}
			for _, in := range list {
				rep.Sagas = append(rep.Sagas, infoToProto(in))
			}
			ctx.Reply(rep)
		case *sagapb.HistoryRequest:
			h, err := m.historyProto(req.SagaId)
			code, msg := errorCode(err)
			ctx.Reply(&sagapb.HistoryReply{Code: code, Error: msg, Events: h})
		}
	}, actor.WithKind("saga-service"))
}

func unavailable(req any) any {
	const msg = "saga: service overloaded"
	switch req.(type) {
	case *sagapb.BeginRequest:
		return &sagapb.BeginReply{Code: sagapb.ErrorCode_ERROR_CODE_UNAVAILABLE, Error: msg}
	case *sagapb.ResumeRequest:
		return &sagapb.ResumeReply{Code: sagapb.ErrorCode_ERROR_CODE_UNAVAILABLE, Error: msg}
	default:
		return &sagapb.StatusReply{Code: sagapb.ErrorCode_ERROR_CODE_UNAVAILABLE, Error: msg}
	}
}

func (m *Manager) status(id string) *sagapb.StatusReply {
	in, ok := m.Get(id)
	if !ok {
		return &sagapb.StatusReply{Code: sagapb.ErrorCode_ERROR_CODE_NOT_FOUND, Error: fmt.Sprintf("saga %s: %v", id, ErrNotFound)}
	}
	return &sagapb.StatusReply{Info: infoToProto(in)}
}

func (m *Manager) historyProto(id string) ([]*sagapb.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.sagas[id]
	if e == nil {
		return nil, fmt.Errorf("saga %s: %w", id, ErrNotFound)
	}
	return append([]*sagapb.Event(nil), e.history...), nil
}

// errorCode maps an error of this package to its wire code.
func errorCode(err error) (sagapb.ErrorCode, string) {
	switch {
	case err == nil:
		return sagapb.ErrorCode_ERROR_CODE_NONE, ""
	case errors.Is(err, ErrExists):
		return sagapb.ErrorCode_ERROR_CODE_EXISTS, err.Error()
	case errors.Is(err, ErrNotFound):
		return sagapb.ErrorCode_ERROR_CODE_NOT_FOUND, err.Error()
	case errors.Is(err, ErrUnknownDefinition):
		return sagapb.ErrorCode_ERROR_CODE_UNKNOWN_DEFINITION, err.Error()
	case errors.Is(err, ErrNotStuck):
		return sagapb.ErrorCode_ERROR_CODE_NOT_STUCK, err.Error()
	case errors.Is(err, ErrInvalid):
		return sagapb.ErrorCode_ERROR_CODE_INVALID, err.Error()
	}
	return sagapb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error()
}

// codeError maps a wire code back to an error matching this package's
// sentinel errors.
func codeError(code sagapb.ErrorCode, msg string) error {
	var base error
	switch code {
	case sagapb.ErrorCode_ERROR_CODE_NONE:
		return nil
	case sagapb.ErrorCode_ERROR_CODE_EXISTS:
		base = ErrExists
	case sagapb.ErrorCode_ERROR_CODE_NOT_FOUND:
		base = ErrNotFound
	case sagapb.ErrorCode_ERROR_CODE_UNKNOWN_DEFINITION:
		base = ErrUnknownDefinition
	case sagapb.ErrorCode_ERROR_CODE_NOT_STUCK:
		base = ErrNotStuck
	case sagapb.ErrorCode_ERROR_CODE_INVALID:
		base = ErrInvalid
	default:
		base = ErrUnavailable
	}
	return fmt.Errorf("%w (service: %s)", base, msg)
}

func statusToProto(s Status) sagapb.SagaStatus {
	switch s {
	case Running:
		return sagapb.SagaStatus_SAGA_STATUS_RUNNING
	case Compensating:
		return sagapb.SagaStatus_SAGA_STATUS_COMPENSATING
	case Committed:
		return sagapb.SagaStatus_SAGA_STATUS_COMMITTED
	case Compensated:
		return sagapb.SagaStatus_SAGA_STATUS_COMPENSATED
	case Stuck:
		return sagapb.SagaStatus_SAGA_STATUS_STUCK
	}
	return sagapb.SagaStatus_SAGA_STATUS_UNSPECIFIED
}

func statusFromProto(s sagapb.SagaStatus) (Status, bool) {
	switch s {
	case sagapb.SagaStatus_SAGA_STATUS_RUNNING:
		return Running, true
	case sagapb.SagaStatus_SAGA_STATUS_COMPENSATING:
		return Compensating, true
	case sagapb.SagaStatus_SAGA_STATUS_COMMITTED:
		return Committed, true
	case sagapb.SagaStatus_SAGA_STATUS_COMPENSATED:
		return Compensated, true
	case sagapb.SagaStatus_SAGA_STATUS_STUCK:
		return Stuck, true
	}
	return 0, false
}

func infoToProto(in Info) *sagapb.SagaInfo {
	return &sagapb.SagaInfo{SagaId: in.ID, Definition: in.Definition, Status: statusToProto(in.Status), Step: int32(in.Step),
		Error: in.Error, StartedUnixNanos: in.Started.UnixNano(), UpdatedUnixNanos: in.Updated.UnixNano(), Events: uint32(in.Events)}
}

func infoFromProto(p *sagapb.SagaInfo) (Info, error) {
	if p == nil {
		return Info{}, fmt.Errorf("%w: reply without saga info", ErrInvalid)
	}
	st, ok := statusFromProto(p.Status)
	if !ok {
		return Info{}, fmt.Errorf("%w: saga status %v", ErrInvalid, p.Status)
	}
	return Info{ID: p.SagaId, Definition: p.Definition, Status: st, Step: int(p.Step), Error: p.Error,
		Started: time.Unix(0, p.StartedUnixNanos), Updated: time.Unix(0, p.UpdatedUnixNanos), Events: int(p.Events)}, nil
}
