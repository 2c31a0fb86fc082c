// Command gcs-server serves fake-gcs-server (github.com/fsouza/fake-gcs-server)
// over the real Cloud Storage JSON API on a loopback port, in memory, for
// millstream's integration tests.
//
// It listens on 127.0.0.1 only, prints one "gcs-server listening on HOST:PORT"
// line on stdout once bound, and serves until SIGINT/SIGTERM or (with
// -exit-on-stdin-eof) until its stdin closes, which happens when the test
// process that started it dies, so no orphan outlives a killed pytest.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

func main() {
	port := flag.Int("port", 0, "loopback TCP port to listen on (0 picks a free one; the ready line tells which)")
	exitOnEOF := flag.Bool("exit-on-stdin-eof", false, "exit when stdin reaches EOF (parent process gone)")
	flag.Parse()
	if *port < 0 || *port > 65535 {
		fail("bad -port %d", *port)
	}
	p := *port
	if p == 0 {
		// The resumable-upload Location header must name the real port, so it is known before start.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail("cannot find a free port: %v", err)
		}
		p = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme:      "http",
		Host:        "127.0.0.1",
		Port:        uint16(p),
		ExternalURL: "http://" + addr,
		PublicHost:  addr,
	})
	if err != nil {
		fail("cannot listen on %s: %v", addr, err)
	}
	fmt.Printf("gcs-server listening on %s\n", addr)

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
	srv.Stop()
	fmt.Fprintf(os.Stderr, "gcs-server stopped: %s\n", reason)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gcs-server: "+format+"\n", args...)
	os.Exit(2)
}
