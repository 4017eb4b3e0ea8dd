// Command natsserver runs an embedded nats-server with JetStream enabled, for
// the eventsourcing store tests.
//
// It prints the server's client URL as a single line on stdout once the
// server accepts connections, then serves until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address host:port (port 0 picks a free port)")
	dir := flag.String("dir", "", "JetStream store directory (required)")
	flag.Parse()

	if err := run(*addr, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "natsserver:", err)
		os.Exit(1)
	}
}

func run(addr, dir string) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}

	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad -addr %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("bad port in -addr %q", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}

	s, err := server.NewServer(&server.Options{
		Host:      host,
		Port:      port,
		JetStream: true,
		StoreDir:  abs,
		NoSigs:    true,
	})
	if err != nil {
		return err
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("server not ready for connections within 30s")
	}
	fmt.Println(s.ClientURL())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case <-shutdownDone(s):
	}
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}

func shutdownDone(s *server.Server) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		s.WaitForShutdown()
		close(ch)
	}()
	return ch
}
