// Command pstest-server serves Google's own Pub/Sub fake (pstest) over the real
// Pub/Sub gRPC API on a loopback port, for millstream's integration tests.
//
// It listens on 127.0.0.1 only, prints one "pstest-server listening on HOST:PORT"
// line on stdout once the gRPC listener is bound, and serves until it receives
// SIGINT/SIGTERM or (with -exit-on-stdin-eof) until its stdin is closed, which
// happens when the test process that started it dies, so no orphan outlives a
// killed pytest.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
)

// The real service's ack deadline rules: 0 means 10 s; at most 600 s.
const (
	defaultAckDeadlineSecs = 10
	maxAckDeadlineSecs     = 600
)

func main() {
	port := flag.Int("port", 0, "loopback TCP port to listen on (0 picks a free one; the ready line tells which)")
	minAck := flag.Duration("min-ack-deadline", 10*time.Second,
		"smallest ack deadline a subscription may be created with (>= 1s; the real service allows 10s)")
	exitOnEOF := flag.Bool("exit-on-stdin-eof", false, "exit when stdin reaches EOF (parent process gone)")
	flag.Parse()

	if *port < 0 || *port > 65535 {
		fail("bad -port %d", *port)
	}
	if *minAck < time.Second {
		fail("-min-ack-deadline must be at least 1s, got %s", *minAck)
	}
	// pstest's own minimum is 0, looser than the real service: tests opt in to short deadlines
	// with this flag instead of getting them silently. ackDeadlineCheck enforces the same bound.
	pstest.SetMinAckDeadline(*minAck)

	srv := start(fmt.Sprintf("127.0.0.1:%d", *port), *minAck)
	fmt.Printf("pstest-server listening on %s\n", srv.Addr)

	done := make(chan string, 2)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { done <- "signal " + (<-sigs).String() }()
	if *exitOnEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			done <- "stdin closed"
		}()
	}
	reason := <-done
	_ = srv.Close()
	fmt.Fprintf(os.Stderr, "pstest-server stopped: %s\n", reason)
}

// start binds the fake to addr, turning pstest's panic on a failed bind (port in
// use) into a one-line error and a non-zero exit the test harness can report.
func start(addr string, minAck time.Duration) (srv *pstest.Server) {
	defer func() {
		if r := recover(); r != nil {
			fail("cannot listen on %s: %v", addr, r)
		}
	}()
	check := ackDeadlineCheck{minSecs: int32(minAck / time.Second)}
	return pstest.NewServerWithAddress(addr,
		pstest.ServerReactorOption{FuncName: "CreateSubscription", Reactor: check},
		pstest.ServerReactorOption{FuncName: "UpdateSubscription", Reactor: check},
	)
}

// ackDeadlineCheck makes subscription ack deadlines behave like the real service: 0 means the
// default of 10 s on create, and values outside [min, 600] fail with InvalidArgument. pstest alone rejects 0
// and answers out-of-range values with Unknown, which client libraries retry until they time out.
// Reactors run before pstest's handler; returning handled=false with no error lets pstest go on with
// the (possibly defaulted) request.
type ackDeadlineCheck struct{ minSecs int32 }

func (c ackDeadlineCheck) React(req any) (bool, any, error) {
	var sub *pb.Subscription
	switch r := req.(type) {
	case *pb.Subscription: // CreateSubscription
		sub = r
		if sub.AckDeadlineSeconds == 0 {
			sub.AckDeadlineSeconds = defaultAckDeadlineSecs
		}
	case *pb.UpdateSubscriptionRequest:
		if r.Subscription == nil || !slices.Contains(r.GetUpdateMask().GetPaths(), "ack_deadline_seconds") {
			return false, nil, nil
		}
		sub = r.Subscription
	default:
		return false, nil, nil
	}
	if a := sub.AckDeadlineSeconds; a < c.minSecs || a > maxAckDeadlineSecs {
		return true, nil, status.Errorf(codes.InvalidArgument,
			"invalid ack_deadline_seconds %d: the valid range is [%d, %d]", a, c.minSecs, maxAckDeadlineSecs)
	}
	return false, nil, nil
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pstest-server: "+format+"\n", args...)
	os.Exit(2)
}
