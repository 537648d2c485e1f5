package saga

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// After a failed connection attempt (to a crashed node)
		// protoactor's endpoint writer sleeps 2 s in time.Sleep, which
		// nothing can interrupt; the goroutine ends by itself.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/remote.(*endpointWriter).initialize"))
}
