package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Metrics are never served on the public listener: per-state handover and
// withheld counts tell any caller how the parties' exchanges are going.
// `parley serve --metrics-listen ADDR` serves them on an address of their
// own (a loopback or an operator-only network), and nothing does by
// default.

// ListenMetrics opens the metrics listener on cfg.MetricsListen.
func (s *Server) ListenMetrics() (net.Listener, error) {
	if s.cfg.MetricsListen == "" {
		return nil, errors.New("no metrics listen address configured (--metrics-listen)")
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen on %s: %w", s.cfg.MetricsListen, err)
	}
	return ln, nil
}

// ServeMetrics serves GET /metrics (and nothing else) on ln until ctx ends.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.Metrics.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	return err
}
