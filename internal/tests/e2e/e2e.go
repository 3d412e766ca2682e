// Package e2e holds parley's black-box end-to-end tests: each starts the real
// server on a loopback port and drives it only through its HTTP interfaces
// (TAXII 2.1 and the management API) with the Go client, as a party would.
// The package has no non-test code beyond the harness below.
package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// Server is a running parley on a fresh SQLite data directory.
type Server struct {
	URL  string
	Srv  *server.Server
	Data string
	stop func()
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, t.TempDir(), "127.0.0.1:0")
}

func start(t testing.TB, dir, addr string) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Data: dir, Listen: addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CheckpointInterval: 200 * time.Millisecond,
		MirrorInterval: 200 * time.Millisecond, MirrorAllowPrivate: true} // the tests' sources are on loopback
	srv, err := server.New(ctx, cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			db.Close()
		})
	}
	t.Cleanup(stop)
	return &Server{URL: "http://" + ln.Addr().(*net.TCPAddr).String(), Srv: srv, Data: dir, stop: stop}
}

// Restart stops the server and starts a new one on the same data directory
// and address, as an operator would: nothing held in memory survives.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	*s = *start(t, s.Data, strings.TrimPrefix(s.URL, "http://"))
}

// Party is a party with its token, keys (registered) and client.
type Party struct {
	ID, Name, Token string
	Keys            *agreement.PrivateKeys
	C               *client.Client
}

// NewParty creates a party through the operator's service and registers
// fresh keys through the API.
func (s *Server) NewParty(t testing.TB, name string) *Party {
	t.Helper()
	ctx := context.Background()
	p, token, err := s.Srv.Parties.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(s.URL+"/taxii2/", client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterKeys(ctx, keys.Public()); err != nil {
		t.Fatal(err)
	}
	return &Party{ID: p.ID, Name: name, Token: token, Keys: keys, C: c}
}
