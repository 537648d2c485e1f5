package observer_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/cluster"
	"github.com/distributed-go/distributed/observer"
)

// A node's observer, read with the client that the dist CLI uses.
func ExampleNew() {
	cfg := cluster.Local("n1")
	cfg.Logger = zap.NewNop()
	node, err := cluster.NewNode(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer node.Stop()
	// Inspection lets other nodes' observers see this one; control lets
	// them act on it.
	if err := node.ServeInspection(cluster.InspectOptions{AllowControl: true}); err != nil {
		log.Fatal(err)
	}
	obs, err := observer.New(observer.Options{Node: node, Actions: true})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(obs.Handler()) // or http.ListenAndServe(":8080", obs.Handler())
	defer srv.Close()

	c := observer.NewClient(srv.URL, "")
	s, err := c.Snapshot(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range s.Members {
		fmt.Println(m.Name, m.State)
	}
	res, err := c.Delay(ctx, observer.DelayRequest{From: "n1", To: "*", Delay: "100ms"})
	fmt.Println(res.Message, err)
	fmt.Println(node.Faults())
	// Output:
	// n1 alive
	// delay n1→* 100ms <nil>
	// delay n1→* 100ms
}
