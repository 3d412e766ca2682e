// Package server assembles a running parley: it opens the store, builds the
// domain services on it and serves their HTTP surfaces on one listener, with
// TLS, health endpoints and graceful shutdown.
//
// It holds wiring only; rules live in the domain packages. It is the one
// place that builds the services (each once) and hands them to the
// surfaces (api, taxii, web, ledgerhttp), which never hold the store.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/api"
	"github.com/parley-cti/parley/internal/authlimit"
	"github.com/parley-cti/parley/internal/crosswitness"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/health"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/ledgerhttp"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/metrics"
	"github.com/parley-cti/parley/internal/mirror"
	"github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/taxii"
	"github.com/parley-cti/parley/internal/verification"
	"github.com/parley-cti/parley/internal/web"
)

// Config is everything `parley serve` can be told.
type Config struct {
	Data string // SQLite data directory (the default backend)
	// DB, when set, names the database instead of Data: a postgres:// (or
	// postgresql://) URL, or sqlite:DIR.
	DB     string
	Listen string // host:port
	// MetricsListen, when set, is the host:port of the listener that
	// serves /metrics; the public listener never does.
	MetricsListen string
	TLSCert       string
	TLSKey        string
	ClientCA      string // PEM bundle; when set, clients must present a certificate it signed
	Migrate       bool   // apply pending schema migrations at start
	Title         string
	Logger        *slog.Logger
	// MaxContentLength bounds POST bodies (TAXII max_content_length).
	MaxContentLength int64
	// CheckpointInterval is how often the ledger signs a checkpoint while
	// it grows (default 5 s).
	CheckpointInterval time.Duration
	// WriteWithin bounds how long one response may take to be written
	// (default 2 minutes; the event stream excepted), and LargeAtOnce how
	// many large responses (object listings, deposit fetches) are written
	// at once (default 4, at most half of them to one caller): together
	// they bound the memory clients that do not read can pin.
	WriteWithin time.Duration
	LargeAtOnce int
	// IntegrityCheck runs SQLite's quick integrity check before using the
	// database, refusing a damaged one (serve does, unless told
	// --skip-integrity-check; operator commands do not).
	IntegrityCheck bool
	// PublicURL is the URL peers reach this node at (scheme://host[:port]),
	// the base of the target URIs they sign; empty to take each request's
	// own scheme and Host (see internal/node).
	PublicURL string
	// NodeRetryMax caps the wait between attempts to deliver an agreement
	// step to an unreachable peer (default 15 s).
	NodeRetryMax time.Duration
	// MirrorInterval is how long a caught-up mirror waits before asking
	// its source again (default 1 minute).
	MirrorInterval time.Duration
	// MirrorAllowPrivate lets mirrors pull from loopback, private and
	// link-local addresses (mirror.Service.AllowPrivate); off by default.
	MirrorAllowPrivate bool
	// PeerBackoff is the first wait before a checkpoint is submitted
	// again to a peer that failed (default 1 s, doubling up to 5 min).
	PeerBackoff time.Duration
}

// OpenStore opens the store a configuration names: PostgreSQL when DB is a
// postgres:// URL, else SQLite in DB's sqlite:DIR or in Data.
func OpenStore(ctx context.Context, cfg Config) (store.Store, error) {
	switch {
	case strings.HasPrefix(cfg.DB, "postgres://") || strings.HasPrefix(cfg.DB, "postgresql://"):
		return postgres.Open(ctx, cfg.DB, postgres.Options{Migrate: cfg.Migrate})
	case strings.HasPrefix(cfg.DB, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(cfg.DB, "sqlite:"), sqlite.Options{Migrate: cfg.Migrate, IntegrityCheck: cfg.IntegrityCheck})
	case cfg.DB != "":
		return nil, errors.New("--db must be a postgres:// URL or sqlite:DIR")
	}
	return sqlite.Open(ctx, cfg.Data, sqlite.Options{Migrate: cfg.Migrate, IntegrityCheck: cfg.IntegrityCheck})
}

// Server is an assembled parley.
type Server struct {
	cfg          Config
	Store        store.Store
	Parties      *party.Service
	Ex           *exchange.Service
	Signer       *ledger.Signer
	Node         *node.Identity // the node key peers pin (internal/node)
	Checkpointer *ledger.Checkpointer
	// Witnessing makes pinned peers each other's witnesses: it cosigns
	// their checkpoints and submits this node's (internal/crosswitness).
	Witnessing *crosswitness.Service
	Escrow     *escrow.Service  // handovers; its sweeper runs while serving
	Requests   *request.Service // requests; its sweeper runs while serving
	Matches    *matching.Service
	Reports    *report.Service
	// Verifications holds parties' own signed verifications of the ledger.
	Verifications *verification.Service
	Mirrors       *mirror.Service // parties' mirrors; their runner pulls while serving
	// Federation carries agreements to and from peer nodes; its outbox
	// sender runs while serving.
	Federation *node.Federation
	Web        *web.Dashboard
	Metrics    *metrics.Metrics
	AuthLimit  *authlimit.Limiter // failed authentication per source address (authlimit.go)
	// Health logs failed requests with their causes and keeps readiness
	// (writes failing, database damaged).
	Health  *health.Monitor
	handler http.Handler
	log     *slog.Logger
}

// Settings keys of the ledger's signing key.
const ledgerKeySetting = "ledger.note-skey"

// New builds a server on an open store.
func New(ctx context.Context, cfg Config, st store.Store) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	key, err := sharedKey(ctx, st, taxii.CursorKeySetting)
	if err != nil {
		return nil, err
	}
	signer, err := ledgerSigner(ctx, st)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, Store: st, Parties: party.New(st), Ex: exchange.New(st), Signer: signer, log: log, Health: health.NewMonitor(log)}
	// The node key is loaded first: documents between two nodes name it.
	if s.Node, err = node.LoadIdentity(ctx, st); err != nil {
		return nil, err
	}
	s.Ex.SetNode(s.Node.Public.VKey)
	peers := node.NewPeers(st)
	s.Federation = &node.Federation{Self: s.Node, Peers: peers, Ex: s.Ex, Log: log, MaxBackoff: cfg.NodeRetryMax}
	// A data directory from before the ledger gets its genesis entries.
	if n, err := s.Ex.Backfill(ctx, time.Now()); err != nil {
		return nil, err
	} else if n > 0 {
		log.InfoContext(ctx, "ledger backfilled pre-ledger state", slog.Int("entries", n))
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = 5 * time.Second
	}
	// Each service is built once, here, and handed to the surfaces that
	// need it; no surface holds the store.
	s.Escrow, s.Requests, s.Matches = escrow.New(st, s.Ex), request.New(st, s.Ex), matching.New(st, s.Ex)
	s.Escrow.Log, s.Requests.Log, s.Matches.Log = log, log, log
	s.Federation.Requests = s.Requests
	s.Federation.Escrow = s.Escrow
	s.Federation.Matching = s.Matches
	s.Reports = report.New(s.Ex, st.Ledger(), s.Parties)
	s.Federation.Reports = s.Reports
	s.Verifications = verification.New(st)
	s.Checkpointer = &ledger.Checkpointer{Update: ledgerUpdate(st), Signer: signer, Interval: cfg.CheckpointInterval, Logger: log}
	mux := http.NewServeMux()
	tx := taxii.New(taxii.Config{Title: cfg.Title, MaxContentLength: cfg.MaxContentLength}, s.Ex, s.Parties, key, log)
	tx.Register(mux)
	s.Mirrors = mirror.New(st, s.Ex)
	s.Mirrors.Log = log
	s.Mirrors.AllowPrivate = cfg.MirrorAllowPrivate
	if cfg.MirrorInterval > 0 {
		s.Mirrors.Interval = cfg.MirrorInterval
	}
	api.New(api.Services{Exchange: s.Ex, Parties: s.Parties, Handovers: s.Escrow, Requests: s.Requests, Matches: s.Matches,
		Reports: s.Reports, Verifications: s.Verifications, Mirrors: s.Mirrors, Remote: s.Federation, Events: st.Events(), Log: log}).Register(mux)
	lst := st.Ledger()
	// The ledger holds metadata, never intelligence, but who has an
	// agreement with whom is itself sensitive: only parties read it.
	lmux := http.NewServeMux()
	ledgerhttp.Register(lmux, "/ledger", ledgerhttp.Source{Log: lst, Logger: log,
		WitnessKey: func(ctx context.Context, name string) (string, error) { return WitnessKey(ctx, st, name) },
		AddCosignature: func(ctx context.Context, size int64, witness string, line []byte) error {
			return ledgerUpdate(st)(ctx, func(l ledger.Store) error { return l.AddCosignature(ctx, size, witness, line) })
		}})
	lmux.HandleFunc("GET /ledger/key", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(signer.VerifierKey() + "\n"))
	})
	mux.Handle("/ledger/", s.partiesOnly(lmux))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		err := s.Health.Ready()
		if err == nil {
			err = st.Ping(r.Context())
		}
		if err != nil {
			// The reason is for the operator's probe, not a party: it
			// names the database's state, never its contents.
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", readinessText(err))
			return
		}
		w.Write([]byte("ready\n"))
	})
	// The dashboard and metrics read the ledger; the dashboard decides
	// nothing itself (it asks exchange, escrow and request).
	s.Web, err = web.New(web.Options{Exchange: s.Ex, Parties: s.Parties, Ledger: lst, Handovers: s.Escrow, Requests: s.Requests, Events: st.Events(),
		Verifications: s.Verifications, Reports: s.Reports, VerifierKey: signer.VerifierKey(), Logger: log, Secure: cfg.TLSCert != ""})
	if err != nil {
		return nil, err
	}
	s.Web.Register(mux)
	// Node-to-node requests are signed by pinned peers, never by parties.
	nh := node.NewHandler(s.Node, peers, cfg.PublicURL, log)
	s.Federation.Mount(nh)
	nh.Register(mux)
	if s.Witnessing, err = newWitnessing(ctx, st, s.Node, signer); err != nil {
		return nil, err
	}
	s.Witnessing.Logger = log
	if cfg.PeerBackoff > 0 {
		s.Witnessing.MinBackoff = cfg.PeerBackoff
	}
	s.Witnessing.Register(mux, nh)
	s.Checkpointer.Signed = s.Witnessing.Signed
	s.Federation.Receipts = s.Witnessing.AddReceipt
	mo := metrics.Options{Ledger: lst, Logger: log}
	if sp, ok := st.(store.Spacer); ok {
		mo.Storage = func(ctx context.Context) (metrics.Storage, error) {
			u, err := sp.Space(ctx)
			return metrics.Storage{DatabaseBytes: u.DatabaseBytes, WALBytes: u.WALBytes, FreeBytes: u.FreeBytes}, err
		}
	}
	if gc, ok := st.(store.GroupCommitter); ok {
		mo.Commits = func() metrics.Commits {
			c := gc.CommitStats()
			return metrics.Commits{Transactions: c.Transactions, Members: c.Updates}
		}
	}
	s.Metrics = metrics.New(mo)
	// /metrics is served only on its own listener (metrics.go).
	s.AuthLimit = authlimit.New(authlimit.DefaultMax, authlimit.DefaultWindow)
	s.handler = accessLog(log, s.Health, s.limitAuthFailures(s.Metrics.Wrap(boundResponses(s.refuseWritesWhenDamaged(mux), cfg.WriteWithin, cfg.LargeAtOnce))))
	return s, nil
}

// WitnessKeySettingPrefix prefixes the settings holding registered witness
// keys: "ledger.witness.<name>" = tlog-cosignature/v1 vkey.
const WitnessKeySettingPrefix = "ledger.witness."

// AddWitness registers a witness's vkey under its name, for
// `parley witness add`. Registering the same key again is a no-op; another
// key under a registered name fails with store.ErrConflict (settings are
// write-once, so a witness key cannot be swapped behind its owner's back).
func AddWitness(ctx context.Context, st store.Store, vkey string) (string, error) {
	v, err := ledger.NewCosignatureVerifier(vkey)
	if err != nil {
		return "", err
	}
	got, err := st.Settings().PutIfAbsent(ctx, WitnessKeySettingPrefix+v.Name(), []byte(vkey))
	if err != nil {
		return "", err
	}
	if string(got) != vkey {
		return "", fmt.Errorf("witness %s is registered with another key: %w", v.Name(), store.ErrConflict)
	}
	return v.Name(), nil
}

// WitnessKey returns a registered witness's vkey, or an error wrapping
// ledger.ErrNotFound.
func WitnessKey(ctx context.Context, st store.Store, name string) (string, error) {
	v, err := st.Settings().Get(ctx, WitnessKeySettingPrefix+name)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("witness %q: %w", name, ledger.ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// Witnessing returns the cross-witnessing service of the node on st, for
// operator commands (`parley verify --peers`) run beside or instead of
// the server.
func Witnessing(ctx context.Context, st store.Store) (*crosswitness.Service, error) {
	signer, err := ledgerSigner(ctx, st)
	if err != nil {
		return nil, err
	}
	id, err := node.LoadIdentity(ctx, st)
	if err != nil {
		return nil, err
	}
	return newWitnessing(ctx, st, id, signer)
}

func newWitnessing(ctx context.Context, st store.Store, id *node.Identity, signer *ledger.Signer) (*crosswitness.Service, error) {
	w, err := crosswitness.New(ctx, st, id, signer)
	if err != nil {
		return nil, err
	}
	w.AddWitness = func(ctx context.Context, vkey string) (string, error) { return AddWitness(ctx, st, vkey) }
	return w, nil
}

// ledgerSigner loads the log's note key, creating it on first start; every
// instance on the database signs with the same key.
func ledgerSigner(ctx context.Context, st store.Store) (*ledger.Signer, error) {
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	skey, _, err := ledger.GenerateSignerKey("parley-" + hex.EncodeToString(id))
	if err != nil {
		return nil, err
	}
	v, err := st.Settings().PutIfAbsent(ctx, ledgerKeySetting, []byte(skey))
	if err != nil {
		return nil, fmt.Errorf("loading the ledger key: %w", err)
	}
	return ledger.NewSigner(string(v))
}

// ledgerUpdate opens a transaction on st for the ledger package.
func ledgerUpdate(st store.Store) ledger.UpdateFunc {
	return func(ctx context.Context, fn func(ledger.Store) error) error {
		return st.Update(ctx, func(tx store.Handle) error {
			l := tx.Ledger()
			return fn(l)
		})
	}
}

// readinessText says why /readyz fails in words fit for a load balancer's
// log: which condition, never a driver's message.
func readinessText(err error) string {
	switch {
	case errors.Is(err, store.ErrCorrupt):
		return "the database is damaged; restore it from a backup (docs/operations.md)"
	case errors.Is(err, store.ErrDiskFull):
		return "writes are failing: the disk is full"
	case errors.Is(err, store.ErrUnavailable):
		if strings.Contains(err.Error(), "writes are failing") {
			return "writes are failing (the log says why)"
		}
		return "the database is unavailable"
	}
	return "the database does not answer"
}

// refuseWritesWhenDamaged answers every write 503 once the database has
// been seen damaged: nothing more is written into a file that needs
// restoring. Reads go on, as far as they can.
func (s *Server) refuseWritesWhenDamaged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if health.IsWrite(r.Method) {
			if err := s.Health.Damaged(); err != nil {
				health.Note(r.Context(), fmt.Errorf("write refused: %w", err))
				w.Header().Set("Retry-After", "300")
				http.Error(w, "the database is damaged; the operator must restore it from a backup", http.StatusServiceUnavailable)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// partiesOnly admits requests carrying a valid party token.
func (s *Server) partiesOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := party.TokenFromAuthorization(r.Header.Get("Authorization"))
		if _, err := s.Parties.Authenticate(r.Context(), token); err != nil {
			if errors.Is(err, store.ErrUnavailable) {
				health.Note(r.Context(), err)
				w.Header().Set("Retry-After", "5")
				http.Error(w, "the database is unavailable; retry shortly", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley", Basic realm="parley"`)
			if errors.Is(err, party.ErrUnauthenticated) {
				http.Error(w, "send a valid parley token", http.StatusUnauthorized)
			} else {
				s.log.ErrorContext(r.Context(), "authenticating ledger request", slog.Any("err", err))
				http.Error(w, "the server failed to handle the request", http.StatusInternalServerError)
			}
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Handler is the server's whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// sharedKey returns the 32-byte secret stored under name, creating it on
// first use; every instance on the database gets the same one.
func sharedKey(ctx context.Context, st store.Store, name string) ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	v, err := st.Settings().PutIfAbsent(ctx, name, k)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", name, err)
	}
	if len(v) != 32 {
		return nil, fmt.Errorf("setting %s holds %d bytes, want 32", name, len(v))
	}
	return v, nil
}

// Listen opens the configured listener (TLS when a certificate is given).
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.TLSCert == "" && s.cfg.TLSKey == "" {
		if s.cfg.ClientCA != "" {
			ln.Close()
			return nil, errors.New("--client-ca needs --tls-cert and --tls-key")
		}
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("loading TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.cfg.ClientCA != "" {
		pem, err := os.ReadFile(s.cfg.ClientCA)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("reading client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			ln.Close()
			return nil, fmt.Errorf("client CA %s holds no PEM certificate", s.cfg.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tls.NewListener(ln, tc), nil
}

// Serve serves on ln until ctx ends, then stops accepting, lets in-flight
// requests finish (up to 20 s) and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	cctx, stopWork := context.WithCancel(ctx)
	// Every background worker is waited for before Serve returns: the
	// caller closes the store next, and a sweep, checkpoint or WAL
	// truncation still running would write through a closing store (and,
	// on SQLite, recreate files in a data directory being removed). The
	// mirrors' runner gives back the lease of an interrupted pull; the
	// outbox sender finishes recording a delivery (an unrecorded one is
	// sent again, and the peer answers it as a duplicate).
	var work sync.WaitGroup
	work.Go(func() { s.Checkpointer.Run(cctx) })
	work.Go(func() { s.Witnessing.Run(cctx) })
	work.Go(func() { s.Escrow.Run(cctx) })
	work.Go(func() { s.Requests.Run(cctx) })
	work.Go(func() { s.maintainStorage(cctx, 30*time.Second) })
	work.Go(func() { s.Mirrors.Run(cctx) })
	work.Go(func() { s.Federation.Run(cctx) })
	defer func() { stopWork(); work.Wait() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	return err
}

// URL is the base URL clients use for a listener.
func (s *Server) URL(ln net.Listener) string {
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	addr := ln.Addr().String()
	if strings.HasPrefix(addr, "[::]:") || strings.HasPrefix(addr, "0.0.0.0:") {
		addr = "localhost:" + addr[strings.LastIndex(addr, ":")+1:]
	}
	return scheme + "://" + addr
}
