package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store"
)

func dataFlag(fs *flag.FlagSet) *string {
	return addDBFlags(fs)
}

// openOperator opens the store for an operator command; it works while a
// server runs on the same data directory or database.
func openOperator(ctx context.Context, data string) (store.Store, error) {
	return openLocation(ctx, data, true)
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	cfg := server.Config{}
	fs.StringVar(&cfg.Data, "data", env("data", "./parley-data"), "data directory of the embedded SQLite database (env PARLEY_DATA)")
	fs.StringVar(&cfg.Listen, "listen", env("listen", "127.0.0.1:8080"), "address to listen on (env PARLEY_LISTEN)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", env("metrics-listen", ""), "address to serve Prometheus /metrics on, apart from the public listener (off when empty; env PARLEY_METRICS_LISTEN)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", env("tls-cert", ""), "TLS certificate file (PEM)")
	fs.StringVar(&cfg.TLSKey, "tls-key", env("tls-key", ""), "TLS private key file (PEM)")
	fs.StringVar(&cfg.ClientCA, "client-ca", env("client-ca", ""), "require client certificates signed by this CA bundle (PEM)")
	fs.StringVar(&cfg.DB, "db", env("db", ""), "database URL: postgres://... selects PostgreSQL; default the SQLite database in --data (env PARLEY_DB)")
	noMigrate := fs.Bool("no-migrate", false, "refuse to start on a database that needs migrating instead of migrating it (SQLite)")
	migrate := fs.Bool("migrate", false, "apply pending migrations at start; on PostgreSQL serve otherwise refuses an outdated schema (run parley migrate first)")
	logFormat := fs.String("log-format", env("log-format", "text"), "log format: text or json (env PARLEY_LOG_FORMAT)")
	logLevel := fs.String("log-level", env("log-level", "info"), "least severe log level written: debug, info (one line per request), warn or error (env PARLEY_LOG_LEVEL)")
	fs.StringVar(&cfg.PublicURL, "public-url", env("public-url", ""), "the URL peers reach this node at, scheme://host[:port] (default: the address it listens on; env PARLEY_PUBLIC_URL)")
	fs.DurationVar(&cfg.NodeRetryMax, "node-retry-max", 15*time.Second, "longest wait between attempts to deliver an agreement step to a peer node that does not answer")
	fs.DurationVar(&cfg.MirrorInterval, "mirror-interval", time.Minute, "how long a caught-up mirror (parley mirror add) waits before asking its source again")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", 5*time.Second, "how often the ledger signs a checkpoint while it grows (each new one goes to the pinned peers to cosign)")
	fs.BoolVar(&cfg.MirrorAllowPrivate, "mirror-allow-private", env("mirror-allow-private", "") == "true", "let parties' mirrors pull from loopback, private and link-local addresses (default: public addresses only, so a party cannot point the server at the operator's own network; env PARLEY_MIRROR_ALLOW_PRIVATE=true)")
	skipCheck := fs.Bool("skip-integrity-check", false, "start without SQLite's quick integrity check of the database (for very large databases)")
	gcPercent := fs.Int("gc-percent", defaultGCPercent, "garbage collector pace: the heap grows by this percent of live memory between collections; GOGC in the environment overrides it (env PARLEY_GC_PERCENT; docs/operations.md)")
	if v := env("gc-percent", ""); v != "" {
		if err := fs.Set("gc-percent", v); err != nil {
			return fmt.Errorf("%w: PARLEY_GC_PERCENT: %v", errUsage, err)
		}
	}
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *gcPercent < 1 {
		return fmt.Errorf("%w: --gc-percent must be 1 or more (GOGC=off stays available for experiments)", errUsage)
	}
	setGCPercent(*gcPercent)
	cfg.IntegrityCheck = !*skipCheck
	if cfg.PublicURL != "" {
		u, err := node.NormalizeURL(cfg.PublicURL)
		if err != nil {
			return fmt.Errorf("%w: --public-url: %v", errUsage, err)
		}
		cfg.PublicURL = u
	}
	cfg.Migrate = serveMigrates(cfg.DB, *migrate, *noMigrate)
	var err error
	if cfg.Logger, err = newLogger(stderr, *logFormat, *logLevel); err != nil {
		return err
	}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return explainOpen(err, cfg.DB)
	}
	defer st.Close()
	srv, err := server.New(ctx, cfg, st)
	if err != nil {
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	// The node announces the URL peers pin; `parley node id` prints it.
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = srv.URL(ln)
	}
	if publicURL, err = node.Announce(ctx, st, publicURL, time.Now()); err != nil {
		ln.Close()
		return fmt.Errorf("recording the node's public URL: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Logger.InfoContext(ctx, "node identity", slog.String("url", publicURL), slog.String("key", srv.Node.Public.VKey))
	cfg.Logger.InfoContext(ctx, "parley serving", slog.String("url", srv.URL(ln)), slog.String("taxii", srv.URL(ln)+"/taxii2/"), slog.String("data", cfg.Data), slog.String("db", backendName(cfg.DB)))
	if *logFormat == "text" {
		// In JSON mode stdout stays free of plain text: the log line above says it.
		fmt.Fprintf(stdout, "parley serving on %s (TAXII discovery: %s/taxii2/)\n", srv.URL(ln), srv.URL(ln))
	}
	if cfg.MetricsListen != "" {
		mln, err := srv.ListenMetrics()
		if err != nil {
			ln.Close()
			return err
		}
		go func() {
			if err := srv.ServeMetrics(ctx, mln); err != nil {
				cfg.Logger.ErrorContext(ctx, "metrics listener", slog.Any("err", err))
			}
		}()
		cfg.Logger.InfoContext(ctx, "metrics serving", slog.String("url", "http://"+mln.Addr().String()+"/metrics"))
	}
	return srv.Serve(ctx, ln)
}

func cmdParty(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: party add NAME | party list", errUsage)
	}
	fs := newFlags("party "+args[0], stderr)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "add":
		if len(pos) != 1 {
			return fmt.Errorf("%w: party add needs exactly one NAME", errUsage)
		}
		st, err := openOperator(ctx, *data)
		if err != nil {
			return err
		}
		defer st.Close()
		p, secret, err := party.New(st).Create(ctx, pos[0])
		if err != nil {
			return err
		}
		return emit(stdout, *asJSON, map[string]string{"party_id": p.ID, "name": p.Name, "token": secret}, func() {
			fmt.Fprintf(stdout, "party %q created: %s\n", p.Name, p.ID)
			fmt.Fprintln(stdout, "API token (shown once; store it now):")
			fmt.Fprintln(stdout, secret)
		})
	case "list":
		st, err := openOperator(ctx, *data)
		if err != nil {
			return err
		}
		defer st.Close()
		ps, err := st.Parties().List(ctx)
		if err != nil {
			return err
		}
		return emit(stdout, *asJSON, ps, func() {
			for _, p := range ps {
				fmt.Fprintf(stdout, "%s\t%s\t%s\n", p.ID, p.Name, p.CreatedAt.Format("2006-01-02T15:04:05Z"))
			}
		})
	}
	return fmt.Errorf("%w: unknown party subcommand %q", errUsage, args[0])
}

func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: token add PARTY | token revoke TOKEN-ID | token list PARTY", errUsage)
	}
	fs := newFlags("token "+args[0], stderr)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	label := fs.String("label", "", "a note to tell tokens apart (token add)")
	expires := fs.String("expires", "", "token add: lifetime after which the token stops working, e.g. 90d or 12h (default: never)")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: token %s needs exactly one argument", errUsage, args[0])
	}
	st, err := openOperator(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	ps := party.New(st)
	switch args[0] {
	case "add":
		p, err := ps.Lookup(ctx, pos[0])
		if err != nil {
			return err
		}
		ttl, err := parseLifetime(*expires)
		if err != nil {
			return err
		}
		secret, id, err := ps.AddExpiringToken(ctx, p.ID, *label, ttl)
		if err != nil {
			return err
		}
		out := map[string]string{"token_id": id, "party_id": p.ID, "token": secret}
		if ttl > 0 {
			out["expires_at"] = time.Now().UTC().Add(ttl).Format("2006-01-02T15:04:05Z")
		}
		return emit(stdout, *asJSON, out, func() {
			if ttl > 0 {
				fmt.Fprintf(stdout, "token %s issued to %q, expiring at %s (shown once; store it now):\n", id, p.Name, out["expires_at"])
			} else {
				fmt.Fprintf(stdout, "token %s issued to %q (shown once; store it now):\n", id, p.Name)
			}
			fmt.Fprintln(stdout, secret)
		})
	case "revoke":
		if err := ps.RevokeToken(ctx, pos[0]); err != nil {
			return err
		}
		return emit(stdout, *asJSON, map[string]string{"token_id": pos[0], "state": "revoked"}, func() {
			fmt.Fprintf(stdout, "token %s revoked\n", pos[0])
		})
	case "list":
		p, err := ps.Lookup(ctx, pos[0])
		if err != nil {
			return err
		}
		toks, err := ps.Tokens(ctx, p.ID)
		if err != nil {
			return err
		}
		views := tokenViews(toks, time.Now())
		return emit(stdout, *asJSON, views, func() {
			for _, v := range views {
				fmt.Fprintf(stdout, "%s\t%s\t%s\texpires %s\tlast used %s\t%s\n", v.ID, v.CreatedAt, v.State, or(v.ExpiresAt, "never"), or(v.LastUsedAt, "never"), v.Label)
			}
		})
	}
	return fmt.Errorf("%w: unknown token subcommand %q", errUsage, args[0])
}

type listFlag []string

func (l *listFlag) String() string     { return fmt.Sprint(*l) }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cmdCollection(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: collection add --title T --read PARTY --write PARTY | collection list", errUsage)
	}
	fs := newFlags("collection "+args[0], stderr)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	title := fs.String("title", "", "collection title (add)")
	desc := fs.String("description", "", "collection description (add)")
	var readers, writers listFlag
	fs.Var(&readers, "read", "party (name or id) that may read; repeat for several")
	fs.Var(&writers, "write", "party (name or id) that may write; repeat for several")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	st, err := openOperator(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "add":
		if *title == "" {
			return fmt.Errorf("%w: collection add needs --title", errUsage)
		}
		ps := party.New(st)
		resolve := func(names []string) ([]string, error) {
			var ids []string
			for _, n := range names {
				p, err := ps.Lookup(ctx, n)
				if err != nil {
					return nil, err
				}
				ids = append(ids, p.ID)
			}
			return ids, nil
		}
		r, err := resolve(readers)
		if err != nil {
			return err
		}
		w, err := resolve(writers)
		if err != nil {
			return err
		}
		c, err := exchange.New(st).CreateCollection(ctx, *title, *desc, r, w)
		if err != nil {
			return err
		}
		return emit(stdout, *asJSON, map[string]string{"id": c.ID, "title": c.Title, "api_root": c.APIRoot}, func() {
			fmt.Fprintf(stdout, "collection %q created in API root /taxii2/%s/\n", c.Title, c.APIRoot)
			fmt.Fprintln(stdout, c.ID)
		})
	case "list":
		cs, err := st.Collections().List(ctx, exchange.OperatorRoot)
		if err != nil {
			return err
		}
		for _, c := range cs {
			n, err := st.Objects().Count(ctx, c.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\t%s\t%d objects\treaders=%v writers=%v\n", c.ID, c.Title, n, c.Readers, c.Writers)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown collection subcommand %q", errUsage, args[0])
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	data := dataFlag(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return migrateDB(ctx, *data, stdout)
}
