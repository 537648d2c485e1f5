package journal_test

import (
	"fmt"
	"os"

	"github.com/distributed-go/distributed/behaviors/saga/journal"
)

// Records appended before a restart are replayed, in order, by Open.
func Example() {
	dir, _ := os.MkdirTemp("", "journal-example-")
	defer os.RemoveAll(dir)

	j, _ := journal.Open(dir, journal.Options{}, nil)
	for _, r := range []string{"saga-1 started", "saga-1 step 0 sent", "saga-1 step 0 done"} {
		if err := j.AppendSync([]byte(r)); err != nil { // durable once it returns
			fmt.Println(err)
		}
	}
	j.Close()

	j, err := journal.Open(dir, journal.Options{}, func(payload []byte) error {
		fmt.Printf("replay: %s\n", payload)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close()
	fmt.Println("records:", j.Recovery().Records)
	// Output:
	// replay: saga-1 started
	// replay: saga-1 step 0 sent
	// replay: saga-1 step 0 done
	// records: 3
}
