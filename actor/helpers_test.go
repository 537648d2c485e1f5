package actor_test

import (
	"io"
	"log/slog"

	pa "github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

func quietLogger() *zap.Logger { return zap.NewNop() }

func nopSlog(*pa.ActorSystem) *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
