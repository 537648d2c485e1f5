package saga

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

// FuzzReplay: journal records with arbitrary contents (the framing is
// intact, the protobuf payload is not) are rejected with an error or folded
// into the index; they never panic the manager, and queries on the result
// work.
func FuzzReplay(f *testing.F) {
	started, _ := proto.Marshal(&sagapb.Event{SagaId: "s", Kind: sagapb.EventKind_EVENT_STARTED, Definition: "order"})
	sent, _ := proto.Marshal(&sagapb.Event{SagaId: "s", Kind: sagapb.EventKind_EVENT_SENT, Step: 1, Phase: sagapb.Phase_PHASE_ACTION, Attempt: 1})
	other, _ := proto.Marshal(&sagapb.Event{SagaId: "t", Kind: sagapb.EventKind_EVENT_STARTED, Definition: "gone"})
	far, _ := proto.Marshal(&sagapb.Event{SagaId: "t", Kind: sagapb.EventKind_EVENT_DONE, Step: 4000, Phase: sagapb.Phase_PHASE_ACTION})
	f.Add(started, sent)
	f.Add(other, far)
	f.Add([]byte{0xff, 0x01}, started)
	def, err := orderSaga(To(nil), To(nil), To(nil), nil).normalize()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		m := &Manager{defs: map[string]*Definition{def.Name: def}, sagas: map[string]*entry{}}
		for _, rec := range [][]byte{started, a, b} {
			if err := m.replay(rec); err != nil {
				return
			}
		}
		for id, e := range m.sagas {
			_ = m.infoLocked(id, e)
			if e.def != nil {
				e.st.next(e.def, notBusy)
			}
			for _, ev := range e.history {
				_ = toEvent(ev, e.def).String()
			}
		}
	})
}
