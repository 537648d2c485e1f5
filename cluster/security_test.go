package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// --- keys -------------------------------------------------------------------

func TestSecretKeyDerivation(t *testing.T) {
	a1, err := gossipKeyring("cookie-a")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := gossipKeyring("cookie-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := gossipKeyring("cookie-b")
	if err != nil {
		t.Fatal(err)
	}
	ka, kb := a1.GetPrimaryKey(), b.GetPrimaryKey()
	if len(ka) != 32 {
		t.Fatalf("gossip key is %d bytes, want 32 (AES-256)", len(ka))
	}
	if !bytes.Equal(ka, a2.GetPrimaryKey()) {
		t.Error("same secret gave different gossip keys")
	}
	if bytes.Equal(ka, kb) {
		t.Error("different secrets gave the same gossip key")
	}
	if got := len(a1.GetKeys()); got != 1 {
		t.Errorf("keyring holds %d keys, want 1", got)
	}

	if remoteAuthToken("cookie-a") != remoteAuthToken("cookie-a") {
		t.Error("same secret gave different remote tokens")
	}
	if remoteAuthToken("cookie-a") == remoteAuthToken("cookie-b") {
		t.Error("different secrets gave the same remote token")
	}
	// The token is sent in clear text without TLS: it must not be (or
	// contain) the gossip key.
	if strings.Contains(remoteAuthToken("cookie-a"), fmt.Sprintf("%x", ka)) {
		t.Error("remote token reveals the gossip key")
	}
}

func TestSecretEmptyIsInsecureMode(t *testing.T) {
	kr, err := gossipKeyring("")
	if kr != nil || err != nil {
		t.Fatalf("gossipKeyring(\"\") = %v, %v; want nil, nil", kr, err)
	}
	server, dial := remoteAuthOptions("", nil)
	if len(dial) != 0 {
		t.Errorf("empty secret: %d dial options, want none (no token to send)", len(dial))
	}
	if len(server) != 2 {
		t.Errorf("empty secret: %d server options, want the 2 recovering interceptor chains", len(server))
	}
}

// --- gossip -----------------------------------------------------------------

// startMemberlist starts a memberlist on 127.0.0.1 with a free port and the
// keyring of secret; log collects memberlist's own log lines.
func startMemberlist(t *testing.T, name, secret string, log io.Writer) *memberlist.Memberlist {
	t.Helper()
	kr, err := gossipKeyring(secret)
	if err != nil {
		t.Fatal(err)
	}
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Keyring = kr
	// Short probe timings: a probe still running at Shutdown finishes
	// quickly, so the package's goroutine-leak check does not see it.
	cfg.TCPTimeout = 300 * time.Millisecond
	cfg.ProbeTimeout, cfg.ProbeInterval = 100*time.Millisecond, 200*time.Millisecond
	cfg.LogOutput = log
	ml, err := memberlist.Create(cfg)
	if err != nil {
		t.Fatalf("memberlist %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := ml.Shutdown(); err != nil {
			t.Errorf("memberlist %s shutdown: %v", name, err)
		}
	})
	return ml
}

func memberlistAddr(ml *memberlist.Memberlist) string {
	n := ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), fmt.Sprint(n.Port))
}

// syncBuffer is a bytes.Buffer safe for memberlist's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestSecretGossipJoin(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })

	cases := []struct {
		name               string
		seedSecret, secret string
		wantErr            string // "" when the join succeeds
		wantHint           string
	}{
		{"same secret", "cookie-a", "cookie-a", "", ""},
		{"different secret", "cookie-a", "cookie-b",
			"no installed keys could decrypt the message", "wrong cluster secret?"},
		{"joiner without secret", "cookie-a", "",
			"remote state is encrypted and encryption is not configured", "cluster secret missing"},
		{"seed without secret", "", "cookie-a",
			"encryption is configured but remote state is not encrypted", "cluster secret not shared"},
		{"no secrets", "", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var seedLog, joinLog syncBuffer
			seed := startMemberlist(t, "seed", tc.seedSecret, &seedLog)
			joiner := startMemberlist(t, "joiner", tc.secret, &joinLog)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed log:\n%s\njoiner log:\n%s", &seedLog, &joinLog)
				}
			})

			n, err := joiner.Join([]string{memberlistAddr(seed)})
			t.Logf("Join: n=%d err=%v", n, err)
			if tc.wantErr != "" {
				if err == nil || n != 0 {
					t.Fatalf("Join = %d, %v; want an error", n, err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Join error %q does not contain %q", err, tc.wantErr)
				}
				if hinted := explainJoinError(err); !strings.HasPrefix(hinted.Error(), tc.wantHint) {
					t.Errorf("explainJoinError = %q, want it to start with %q", hinted, tc.wantHint)
				}
				if got := joiner.NumMembers(); got != 1 {
					t.Errorf("joiner sees %d members, want only itself", got)
				}
				if got := seed.NumMembers(); got != 1 {
					t.Errorf("seed sees %d members, want only itself", got)
				}
				return
			}
			if err != nil || n != 1 {
				t.Fatalf("Join = %d, %v; want 1, nil", n, err)
			}
			if got := joiner.NumMembers(); got != 2 {
				t.Errorf("joiner sees %d members, want 2", got)
			}
			deadline := time.Now().Add(5 * time.Second)
			for seed.NumMembers() != 2 {
				if time.Now().After(deadline) {
					t.Fatalf("seed sees %d members, want 2", seed.NumMembers())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestSecretExplainJoinError(t *testing.T) {
	if explainJoinError(nil) != nil {
		t.Error("explainJoinError(nil) != nil")
	}
	other := errors.New("1 error occurred:\n\t* failed to join 10.0.0.1:7946: dial tcp: connection refused")
	if got := explainJoinError(other); got != other {
		t.Errorf("unrelated error changed: %v", got)
	}
	mismatch := errors.New("failed to join x: no installed keys could decrypt the message")
	if got := explainJoinError(mismatch); !errors.Is(got, mismatch) {
		t.Errorf("explained error does not wrap memberlist's: %v", got)
	}
}

// --- remote authentication, unit ---------------------------------------------

func observedGuard(secret string) (*remoteGuard, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return newRemoteGuard(secret, zap.New(core)), logs
}

func incoming(md metadata.MD) context.Context {
	ctx := peer.NewContext(context.Background(), &peer.Peer{
		Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 4567},
	})
	return metadata.NewIncomingContext(ctx, md)
}

func TestAuthCheck(t *testing.T) {
	g, logs := observedGuard("cookie-a")
	cases := []struct {
		name    string
		md      metadata.MD
		wantMsg string // "" when accepted
	}{
		{"right token", metadata.Pairs(remoteAuthMetadataKey, remoteAuthToken("cookie-a")), ""},
		{"wrong token", metadata.Pairs(remoteAuthMetadataKey, remoteAuthToken("cookie-b")), errMsgSecretMismatch},
		{"garbage token", metadata.Pairs(remoteAuthMetadataKey, "x"), errMsgSecretMismatch},
		{"no metadata", nil, errMsgMissingSecret},
		{"no token", metadata.Pairs("other", "v"), errMsgMissingSecret},
		{"token twice", metadata.Pairs(
			remoteAuthMetadataKey, remoteAuthToken("cookie-a"),
			remoteAuthMetadataKey, remoteAuthToken("cookie-a")), errMsgSecretMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := g.check(incoming(tc.md), "/remote.Remoting/Receive")
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("check = %v, want accepted", err)
				}
				return
			}
			st := status.Convert(err)
			if st.Code() != codes.Unauthenticated || st.Message() != tc.wantMsg {
				t.Fatalf("check = %v, want Unauthenticated %q", err, tc.wantMsg)
			}
		})
	}
	rejected := logs.FilterMessage("cluster: rejected remote call").All()
	if len(rejected) == 0 {
		t.Fatal("rejections were not logged")
	}
	if got := rejected[0].ContextMap()["peer"]; got != "10.1.2.3:4567" {
		t.Errorf("rejection logged peer %v, want 10.1.2.3:4567", got)
	}
}

func TestAuthRejectionLogIsRateLimited(t *testing.T) {
	g, logs := observedGuard("cookie-a")
	ctx := incoming(nil)
	for range 100 {
		_ = g.check(ctx, "/m")
	}
	if n := logs.Len(); n >= 100 || n == 0 {
		t.Fatalf("%d rejection log lines for 100 rejections, want a few", n)
	}
}

func TestAuthInterceptorsStopCalls(t *testing.T) {
	g, _ := observedGuard("cookie-a")
	called := false
	_, err := g.authUnary(incoming(nil), nil, &grpc.UnaryServerInfo{FullMethod: "/m"},
		func(context.Context, any) (any, error) { called = true; return nil, nil })
	if status.Code(err) != codes.Unauthenticated || called {
		t.Fatalf("unary without token: err %v, handler called %v", err, called)
	}
	err = g.authStream(nil, fakeStream{ctx: incoming(nil)}, &grpc.StreamServerInfo{FullMethod: "/m"},
		func(any, grpc.ServerStream) error { called = true; return nil })
	if status.Code(err) != codes.Unauthenticated || called {
		t.Fatalf("stream without token: err %v, handler called %v", err, called)
	}
	ok := incoming(metadata.Pairs(remoteAuthMetadataKey, remoteAuthToken("cookie-a")))
	err = g.authStream(nil, fakeStream{ctx: ok}, &grpc.StreamServerInfo{FullMethod: "/m"},
		func(any, grpc.ServerStream) error { called = true; return nil })
	if err != nil || !called {
		t.Fatalf("stream with token: err %v, handler called %v", err, called)
	}
}

func TestAuthCredentials(t *testing.T) {
	_, dial := remoteAuthOptions("cookie-a", nil)
	if len(dial) != 1 {
		t.Fatalf("%d dial options, want 1 (per-RPC credentials)", len(dial))
	}
	c := remoteCredentials{token: remoteAuthToken("cookie-a")}
	md, err := c.GetRequestMetadata(context.Background())
	if err != nil || md[remoteAuthMetadataKey] != remoteAuthToken("cookie-a") {
		t.Fatalf("GetRequestMetadata = %v, %v", md, err)
	}
	if c.RequireTransportSecurity() {
		t.Error("without TLS the token must be allowed on a plain connection")
	}
	if !(remoteCredentials{requireTLS: true}).RequireTransportSecurity() {
		t.Error("with TLS the token must require a secure connection")
	}
}

// --- panic recovery, unit ------------------------------------------------------

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestRecoverStreamPanic(t *testing.T) {
	g, logs := observedGuard("")
	err := g.recoverStream(nil, fakeStream{ctx: incoming(nil)},
		&grpc.StreamServerInfo{FullMethod: "/remote.Remoting/Receive", IsClientStream: true, IsServerStream: true},
		func(any, grpc.ServerStream) error {
			var m map[string]*int
			return fmt.Errorf("unreachable %d", *m["nil"]) // nil dereference
		})
	if status.Code(err) != codes.Internal {
		t.Fatalf("recoverStream = %v, want codes.Internal", err)
	}
	entries := logs.FilterMessage("cluster: remote handler panicked; call aborted").All()
	if len(entries) != 1 {
		t.Fatalf("%d panic log lines, want 1", len(entries))
	}
	ctx := entries[0].ContextMap()
	if ctx["method"] != "/remote.Remoting/Receive" || ctx["peer"] != "10.1.2.3:4567" {
		t.Errorf("panic log fields = %v", ctx)
	}
	if !strings.Contains(fmt.Sprint(ctx["panic"]), "nil pointer dereference") {
		t.Errorf("panic log does not carry the panic: %v", ctx["panic"])
	}

	// A handler that returns normally is untouched.
	want := status.Error(codes.NotFound, "x")
	if err := g.recoverStream(nil, fakeStream{ctx: incoming(nil)}, &grpc.StreamServerInfo{},
		func(any, grpc.ServerStream) error { return want }); err != want {
		t.Errorf("recoverStream changed a handler's error: %v", err)
	}
}

func TestRecoverUnaryPanic(t *testing.T) {
	g, _ := observedGuard("")
	resp, err := g.recoverUnary(incoming(nil), nil, &grpc.UnaryServerInfo{FullMethod: "/m"},
		func(context.Context, any) (any, error) { panic("implement me") })
	if resp != nil || status.Code(err) != codes.Internal {
		t.Fatalf("recoverUnary = %v, %v; want nil, codes.Internal", resp, err)
	}
	resp, err = g.recoverUnary(incoming(nil), nil, &grpc.UnaryServerInfo{FullMethod: "/m"},
		func(context.Context, any) (any, error) { return "ok", nil })
	if resp != "ok" || err != nil {
		t.Fatalf("recoverUnary = %v, %v; want ok, nil", resp, err)
	}
}

// --- end to end with protoactor's remote --------------------------------------
//
// Each protoactor remote runs in a child process (this test binary, running
// TestSecurityNodeProcess), and this process talks to them only as a gRPC
// client. remote.Start replaces gRPC's process-wide logger while the gRPC
// code of any other transport in the process reads it, a data race inside
// protoactor that -race reports; with one remote per process the tests run
// under -race without it. The parent tells a child what to send on its stdin
// ("send ADDR TEXT") and reads what its actor "sink" received on its stdout
// ("node: got TEXT"); the child logs to its stderr as JSON.

const (
	envNodeProcess = "DISTRIBUTED_TEST_SECURITY_NODE"
	envNodeSecret  = "DISTRIBUTED_TEST_SECURITY_SECRET"
	envNodeCert    = "DISTRIBUTED_TEST_SECURITY_CERT"
	envNodeKey     = "DISTRIBUTED_TEST_SECURITY_KEY"
	envNodeCA      = "DISTRIBUTED_TEST_SECURITY_CA"
	envNodeName    = "DISTRIBUTED_TEST_SECURITY_SERVER_NAME"
)

// TestSecurityNodeProcess is the child process of the end-to-end tests; run
// directly it does nothing.
func TestSecurityNodeProcess(t *testing.T) {
	if os.Getenv(envNodeProcess) != "1" {
		t.Skip("child process of the end-to-end security tests")
	}
	log := zap.New(zapcore.NewCore(
		zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.Lock(os.Stderr), zap.DebugLevel))
	tlsCfg := TLSConfig{
		CertFile:   os.Getenv(envNodeCert),
		KeyFile:    os.Getenv(envNodeKey),
		CAFile:     os.Getenv(envNodeCA),
		ServerName: os.Getenv(envNodeName),
	}
	server, dial, err := remoteGRPCOptions(os.Getenv(envNodeSecret), tlsCfg, log)
	if err != nil {
		t.Fatal(err)
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(zapslog.NewHandler(log.Core()))
	}))
	cfg := remote.Configure("127.0.0.1", 0,
		remote.WithServerOptions(server...),
		remote.WithDialOptions(dial...),
		remote.WithEndpointWriterQueueSize(1024))
	// A rejected connection is retried MaxRetryCount times, 2 s apart (there
	// is no option for it); once is enough here.
	cfg.MaxRetryCount = 1
	r := remote.NewRemote(sys, cfg)
	r.Start()
	defer sys.Shutdown()
	defer r.Shutdown(true)

	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Printf("node: "+format+"\n", args...)
	}
	props := actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			say("got %s", m.GetValue())
		}
	})
	if _, err := sys.Root.SpawnNamed(props, "sink"); err != nil {
		t.Fatal(err)
	}
	say("addr %s", sys.Address())

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd := strings.SplitN(in.Text(), " ", 3)
		if len(cmd) == 3 && cmd[0] == "send" {
			sys.Root.Send(actor.NewPID(cmd[1], "sink"), wrapperspb.String(cmd[2]))
		}
	}
}

// nodeProcess is a child process running one protoactor remote.
type nodeProcess struct {
	addr   string
	stdin  io.WriteCloser
	got    chan string // what its actor "sink" received
	stderr *syncBuffer // its log

	// kill: at the end of the test, kill the process instead of letting it
	// shut down (for nodes left with nothing to check on their way out).
	kill bool
}

// startNodeProcess starts a child process with a protoactor remote secured
// by secret and tlsCfg, and stops it when the test ends.
func startNodeProcess(t *testing.T, secret string, tlsCfg TLSConfig) *nodeProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecurityNodeProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envNodeProcess+"=1",
		envNodeSecret+"="+secret,
		envNodeCert+"="+tlsCfg.CertFile,
		envNodeKey+"="+tlsCfg.KeyFile,
		envNodeCA+"="+tlsCfg.CAFile,
		envNodeName+"="+tlsCfg.ServerName,
		// A -race binary sleeps 1 s on exit by default.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=50"))
	n := &nodeProcess{got: make(chan string, 16), stderr: &syncBuffer{}}
	cmd.Stderr = n.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if n.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "node: addr "); ok {
				addr <- a
			} else if v, ok := strings.CutPrefix(line, "node: got "); ok {
				n.got <- v
			}
		}
	}()
	t.Cleanup(func() {
		if n.kill {
			_ = cmd.Process.Kill()
			n.stdin.Close()
			<-outDone
			_ = cmd.Wait()
			return
		}
		n.stdin.Close() // the child shuts its remote down and exits
		exited := make(chan error, 1)
		go func() {
			<-outDone
			exited <- cmd.Wait()
		}()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("node process %s: %v\n%s", n.addr, err, n.stderr)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("node process %s did not exit\n%s", n.addr, n.stderr)
		}
	})
	select {
	case n.addr = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatalf("node process did not start\n%s", n.stderr)
	}
	return n
}

// send makes the node send text to the actor "sink" at addr.
func (n *nodeProcess) send(t *testing.T, addr, text string) {
	t.Helper()
	if _, err := fmt.Fprintf(n.stdin, "send %s %s\n", addr, text); err != nil {
		t.Fatal(err)
	}
}

// expectDelivery has from send text to the sink of to, and waits for it.
func expectDelivery(t *testing.T, from, to *nodeProcess, text string) {
	t.Helper()
	from.send(t, to.addr, text)
	select {
	case got := <-to.got:
		if got != text {
			t.Fatalf("received %q, want %q", got, text)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("message %q from %s to %s did not arrive\nsender log:\n%s\nreceiver log:\n%s",
			text, from.addr, to.addr, from.stderr, to.stderr)
	}
}

// logMark returns how far the node's log goes now, for expectLogSince.
func (n *nodeProcess) logMark() int { return len(n.stderr.String()) }

// expectLog waits until the node has logged a line containing all of want.
func (n *nodeProcess) expectLog(t *testing.T, want ...string) {
	t.Helper()
	n.expectLogSince(t, 0, want...)
}

// expectLogSince is expectLog for the lines logged after mark.
func (n *nodeProcess) expectLogSince(t *testing.T, mark int, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(n.stderr.String()[mark:], "\n") {
			all := true
			for _, w := range want {
				all = all && strings.Contains(line, w)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s logged no line with %q:\n%s", n.addr, want, n.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawReceive dials addr with the given options and runs protoactor's
// Remoting.Receive stream far enough to see whether the server accepts it:
// it sends first, then receives the server's answer. (grpc.Dial: the gRPC
// that protoactor requires predates grpc.NewClient.)
func rawReceive(t *testing.T, addr string, first *remote.RemoteMessage, opts ...grpc.DialOption) error {
	t.Helper()
	conn, err := grpc.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := remote.NewRemotingClient(conn).Receive(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(first); err != nil && err != io.EOF {
		return err
	}
	_, err = stream.Recv()
	return err
}

func connectRequest() *remote.RemoteMessage {
	return &remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{
		ConnectRequest: &remote.ConnectRequest{ConnectionType: &remote.ConnectRequest_ServerConnection{
			ServerConnection: &remote.ServerConnection{SystemId: "raw-client", Address: "127.0.0.1:1"},
		}},
	}}
}

func TestAuthRemoteEndToEnd(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })

	b := startNodeProcess(t, "cookie-a", TLSConfig{})
	a := startNodeProcess(t, "cookie-a", TLSConfig{})

	t.Run("same secret delivers", func(t *testing.T) {
		expectDelivery(t, a, b, "hello")
	})

	plain := grpc.WithTransportCredentials(insecure.NewCredentials())
	t.Run("wrong secret is rejected", func(t *testing.T) {
		err := rawReceive(t, b.addr, connectRequest(), plain,
			grpc.WithPerRPCCredentials(remoteCredentials{token: remoteAuthToken("cookie-b")}))
		st := status.Convert(err)
		if st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "cluster secret") {
			t.Fatalf("wrong secret: %v; want Unauthenticated naming the cluster secret", err)
		}
		b.expectLog(t, "cluster: rejected remote call", `"peer":"127.0.0.1:`, "cluster secret mismatch")
	})
	t.Run("missing secret is rejected", func(t *testing.T) {
		err := rawReceive(t, b.addr, connectRequest(), plain)
		st := status.Convert(err)
		if st.Code() != codes.Unauthenticated || !strings.HasPrefix(st.Message(), "missing cluster credentials") {
			t.Fatalf("no secret: %v; want Unauthenticated, missing cluster credentials", err)
		}
		b.expectLog(t, "cluster: rejected remote call", "missing cluster credentials")
	})
	t.Run("node with another secret cannot deliver", func(t *testing.T) {
		c := startNodeProcess(t, "cookie-c", TLSConfig{})
		c.kill = true // its endpoint writer sleeps 2 s after the refusal
		mark := b.logMark()
		c.send(t, b.addr, "intruder")
		b.expectLogSince(t, mark, "cluster: rejected remote call", "cluster secret mismatch")
		// Which stream call sees the refusal first is a race inside gRPC: a
		// Send that loses it returns io.EOF instead of the status, so the
		// intruder's log names the refusal only sometimes. That the status
		// says why is checked by the raw-client subtests above.
		c.expectLog(t, "EndpointWriter failed to connect")
		// The intruder's only connection was refused; the next message b
		// receives is a's.
		expectDelivery(t, a, b, "after intruder")
	})

	right := grpc.WithPerRPCCredentials(remoteCredentials{token: remoteAuthToken("cookie-a")})
	t.Run("unknown message type does not crash the node", func(t *testing.T) {
		// protoactor dereferences nil on a type name it does not link.
		batch := &remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{
			MessageBatch: &remote.MessageBatch{
				TypeNames: []string{"no.such.Message"},
				Targets:   []*actor.PID{actor.NewPID(b.addr, "sink")},
				Envelopes: []*remote.MessageEnvelope{{MessageData: []byte{1, 2, 3}}},
			},
		}}
		err := rawReceive(t, b.addr, batch, plain, right)
		if status.Code(err) != codes.Internal {
			t.Fatalf("malformed batch: %v; want codes.Internal", err)
		}
		b.expectLog(t, "cluster: remote handler panicked", "/remote.Remoting/Receive", "nil pointer dereference")
		expectDelivery(t, a, b, "still alive")
	})
	t.Run("unimplemented unary method does not crash the node", func(t *testing.T) {
		conn, err := grpc.Dial(b.addr, plain, right)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = remote.NewRemotingClient(conn).ListProcesses(ctx, &remote.ListProcessesRequest{})
		if status.Code(err) != codes.Internal {
			t.Fatalf("ListProcesses: %v; want codes.Internal (protoactor panics \"implement me\")", err)
		}
		b.expectLog(t, "cluster: remote handler panicked", "/remote.Remoting/ListProcesses", "implement me")
		expectDelivery(t, a, b, "alive again")
	})
}

// --- mutual TLS -----------------------------------------------------------------

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a certificate for a node (valid as TLS server and client, for
// 127.0.0.1 and the DNS name "node.test") and its key; it returns the TLS
// configuration that uses them with this CA.
func (ca *testCA) issue(t *testing.T, dir, name string) TLSConfig {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"node.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := TLSConfig{
		CertFile: filepath.Join(dir, name+".pem"),
		KeyFile:  filepath.Join(dir, name+"-key.pem"),
		CAFile:   ca.file,
	}
	writePEM(t, c.CertFile, "CERTIFICATE", der)
	writePEM(t, c.KeyFile, "PRIVATE KEY", keyDER)
	return c
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTLSLoad(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	c := ca.issue(t, dir, "node")
	c.ServerName = "node.test"

	server, client, err := c.load()
	if err != nil {
		t.Fatal(err)
	}
	if server.ClientAuth != tls.RequireAndVerifyClientCert || server.ClientCAs == nil {
		t.Error("server does not require and verify client certificates")
	}
	if server.MinVersion != tls.VersionTLS13 || client.MinVersion != tls.VersionTLS13 {
		t.Error("TLS 1.3 is not the minimum")
	}
	if client.RootCAs == nil || client.ServerName != "node.test" || len(client.Certificates) != 1 {
		t.Errorf("client config: RootCAs %v, ServerName %q, %d certificates",
			client.RootCAs != nil, client.ServerName, len(client.Certificates))
	}
	if client.InsecureSkipVerify {
		t.Error("client skips verification")
	}
}

func TestTLSLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	good := ca.issue(t, dir, "node")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	other := ca.issue(t, dir, "other")

	with := func(f func(*TLSConfig)) TLSConfig { c := good; f(&c); return c }
	cases := []struct {
		name string
		cfg  TLSConfig
		want []string // substrings of the error
	}{
		{"only a CA", TLSConfig{CAFile: ca.file}, []string{"CertFile is not set", "KeyFile is not set"}},
		{"missing CA", with(func(c *TLSConfig) { c.CAFile = missing }), []string{"CA file", missing}},
		{"CA not PEM", with(func(c *TLSConfig) { c.CAFile = garbage }), []string{"CA file", garbage, "no PEM certificate"}},
		{"missing cert", with(func(c *TLSConfig) { c.CertFile = missing }), []string{"certificate file", missing}},
		{"missing key", with(func(c *TLSConfig) { c.KeyFile = missing }), []string{"key file", missing}},
		{"cert not PEM", with(func(c *TLSConfig) { c.CertFile = garbage }), []string{garbage, good.KeyFile}},
		{"key of another cert", with(func(c *TLSConfig) { c.KeyFile = other.KeyFile }), []string{good.CertFile, other.KeyFile}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.cfg.load()
			if err == nil {
				t.Fatal("load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, _, err := remoteGRPCOptions("s", TLSConfig{CAFile: missing}, nil); err == nil {
		t.Error("remoteGRPCOptions ignored a broken TLS configuration")
	}
}

func TestTLSRemoteEndToEnd(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })

	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	b := startNodeProcess(t, "cookie-a", ca.issue(t, dir, "b"))
	aCfg := ca.issue(t, dir, "a")
	aCfg.ServerName = "node.test" // a checks b's DNS name; b, not dialling, checks none
	a := startNodeProcess(t, "cookie-a", aCfg)

	t.Run("mutual TLS delivers", func(t *testing.T) {
		expectDelivery(t, a, b, "over TLS")
	})

	caPool := x509.NewCertPool()
	caPool.AddCert(ca.cert)
	token := grpc.WithPerRPCCredentials(remoteCredentials{token: remoteAuthToken("cookie-a"), requireTLS: true})
	tlsDial := func(certs []tls.Certificate) grpc.DialOption {
		return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			MinVersion: tls.VersionTLS13, RootCAs: caPool, Certificates: certs,
		}))
	}

	rogueCA := newTestCA(t, dir, "rogue-ca")
	rogue := rogueCA.issue(t, dir, "rogue")
	rogueCert, err := tls.LoadX509KeyPair(rogue.CertFile, rogue.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("certificate of another CA is rejected", func(t *testing.T) {
		err := rawReceive(t, b.addr, connectRequest(), tlsDial([]tls.Certificate{rogueCert}), token)
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("rogue certificate: %v; want the connection refused (Unavailable)", err)
		}
	})
	t.Run("node with a certificate of another CA cannot deliver", func(t *testing.T) {
		c := startNodeProcess(t, "cookie-a", rogue)
		c.kill = true
		c.send(t, b.addr, "intruder")
		c.expectLog(t, "EndpointWriter failed to connect")
		expectDelivery(t, a, b, "after intruder")
	})
	t.Run("no client certificate is rejected", func(t *testing.T) {
		err := rawReceive(t, b.addr, connectRequest(), tlsDial(nil), token)
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("no client certificate: %v; want Unavailable", err)
		}
	})
	t.Run("plain TCP is rejected", func(t *testing.T) {
		err := rawReceive(t, b.addr, connectRequest(),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(remoteCredentials{token: remoteAuthToken("cookie-a")}))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("plain TCP: %v; want Unavailable", err)
		}
	})
	t.Run("right certificate, wrong secret is rejected", func(t *testing.T) {
		mine, err := tls.LoadX509KeyPair(aCfg.CertFile, aCfg.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		err = rawReceive(t, b.addr, connectRequest(), tlsDial([]tls.Certificate{mine}),
			grpc.WithPerRPCCredentials(remoteCredentials{token: remoteAuthToken("cookie-b"), requireTLS: true}))
		if st := status.Convert(err); st.Code() != codes.Unauthenticated || st.Message() != errMsgSecretMismatch {
			t.Fatalf("wrong secret over TLS: %v; want Unauthenticated", err)
		}
	})
}
