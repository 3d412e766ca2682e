// Package scriptcmd is what parley's CLI scripts (testscript) share: the
// setup that gives each script a running server on a fresh data directory
// and free loopback addresses for nodes of its own, and the commands
// scripts use beyond testscript's own. cmd/parley runs the scripts of one
// server; internal/tests/nodescripts runs those that start parley serve
// nodes, as their own test binary.
package scriptcmd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/postgres/pgtest"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// Setup starts a server on a fresh data directory for the script ($DATA,
// $SERVER), points $PARLEY_CONFIG into the work directory, and sets
// NODE_A to NODE_D to free loopback addresses for nodes the script starts.
func Setup(env *testscript.Env) error {
	dir := filepath.Join(env.WorkDir, "data")
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		cancel()
		return err
	}
	srv, err := server.New(ctx, server.Config{Data: dir, Listen: "127.0.0.1:0", CheckpointInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db)
	if err != nil {
		cancel()
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		cancel()
		return err
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	env.Defer(func() { cancel(); <-done; db.Close() })
	env.Setenv("DATA", dir)
	env.Setenv("SERVER", "http://"+ln.Addr().String())
	env.Setenv("PARLEY_CONFIG", filepath.Join(env.WorkDir, "profiles.json"))
	// Free loopback addresses for scripts that start nodes of their own.
	for _, name := range []string{"NODE_A", "NODE_B", "NODE_C", "NODE_D"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		env.Setenv(name, l.Addr().String())
		l.Close()
	}
	return nil
}

// Cmds are the commands scripts may use beyond testscript's own.
func Cmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		// nodepost DATA PEER PATH BODY CODE signs BODY with the node key of
		// data directory DATA and posts it to PATH on the peer DATA pinned as
		// PEER, as that node's outbox would: a hostile or mistaken node with
		// a pinned key. It fails unless the peer answers, signed, with the
		// refusal code CODE (or "ok" for a 2xx answer).
		"nodepost": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 5 {
				ts.Fatalf("usage: nodepost DATA PEER PATH BODY CODE")
			}
			ctx := context.Background()
			st, err := server.OpenStore(ctx, server.Config{Data: ts.MkAbs(args[0])})
			ts.Check(err)
			defer st.Close()
			self, err := node.LoadIdentity(ctx, st)
			ts.Check(err)
			peer, err := node.NewPeers(st).Get(ctx, args[1])
			ts.Check(err)
			status, body, err := (&node.Client{Self: self, Peer: peer}).Do(ctx, http.MethodPost, args[2], []byte(args[3]))
			var re *node.RefusedError
			switch {
			case err == nil:
				ts.Logf("%d %s", status, body)
				if args[4] != "ok" {
					ts.Fatalf("the peer took it (%d); want the refusal %s", status, args[4])
				}
			case errors.As(err, &re) && re.Signed:
				ts.Logf("%d %s: %s", re.Status, re.Code, re.Message)
				if re.Code != args[4] {
					ts.Fatalf("the peer refused with %s; want %s", re.Code, args[4])
				}
			default:
				ts.Fatalf("nodepost: %v", err)
			}
		},
		// lastline VAR sets VAR to the last line of the previous command's stdout.
		"lastline": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 1 {
				ts.Fatalf("usage: lastline VAR")
			}
			out := strings.TrimSpace(ts.ReadFile("stdout"))
			lines := strings.Split(out, "\n")
			ts.Setenv(args[0], strings.TrimSpace(lines[len(lines)-1]))
		},
		// jsonfield VAR KEY sets VAR to a top-level string field of the previous JSON stdout.
		"jsonfield": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 2 {
				ts.Fatalf("usage: jsonfield VAR KEY")
			}
			out := ts.ReadFile("stdout")
			key := `"` + args[1] + `": "`
			i := strings.Index(out, key)
			if i < 0 {
				ts.Fatalf("no %q in stdout", args[1])
			}
			rest := out[i+len(key):]
			ts.Setenv(args[0], rest[:strings.Index(rest, `"`)])
		},
		// grab VAR REGEXP sets VAR to the first group of REGEXP in the previous stdout.
		"grab": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 2 {
				ts.Fatalf("usage: grab VAR REGEXP")
			}
			m := regexp.MustCompile(args[1]).FindStringSubmatch(ts.ReadFile("stdout"))
			if len(m) < 2 {
				ts.Fatalf("no match for %s in stdout", args[1])
			}
			ts.Setenv(args[0], m[1])
		},
		// literal TEXT fails unless the previous stdout holds TEXT as is
		// (node keys hold '+', which a regular expression would read).
		"literal": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 1 {
				ts.Fatalf("usage: literal TEXT")
			}
			if strings.Contains(ts.ReadFile("stdout"), args[0]) == neg {
				ts.Fatalf("stdout holds %q: %v, want %v", args[0], !neg, neg)
			}
		},
		// until REGEXP CMD ARGS... runs CMD until it succeeds with stdout
		// matching REGEXP (something another node delivers in the
		// background), for at most a minute.
		"until": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) < 2 {
				ts.Fatalf("usage: until REGEXP CMD ARGS...")
			}
			re := regexp.MustCompile(args[0])
			for i := 0; ; i++ {
				err := ts.Exec(args[1], args[2:]...)
				if err == nil && re.MatchString(ts.ReadFile("stdout")) {
					return
				}
				if i == 600 {
					ts.Fatalf("%s never answered with %s: %v\n%s", strings.Join(args[1:], " "), args[0], err, ts.ReadFile("stdout"))
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
		// sleep DURATION pauses the script (a server's next checkpoint).
		"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
			d, err := time.ParseDuration(strings.Join(args, ""))
			if err != nil || len(args) != 1 {
				ts.Fatalf("usage: sleep DURATION")
			}
			time.Sleep(d)
		},
		// dbfor VAR NAME sets VAR to the --db of a node's own database: a
		// fresh PostgreSQL schema (dropped when the script ends) when
		// PARLEY_TEST_POSTGRES is set, else sqlite:$WORK/NAME, so one script
		// runs a node on either backend.
		"dbfor": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 2 {
				ts.Fatalf("usage: dbfor VAR NAME")
			}
			base := os.Getenv(pgtest.Env)
			if base == "" {
				ts.Setenv(args[0], "sqlite:"+ts.MkAbs(args[1]))
				return
			}
			u, drop, err := pgtest.NewSchema(context.Background(), base, "parley_script_")
			if err != nil {
				ts.Fatalf("%v", err)
			}
			ts.Defer(func() {
				if err := drop(context.Background()); err != nil {
					ts.Logf("%v", err)
				}
			})
			ts.Setenv(args[0], u)
		},
		// waitdown ADDR waits until nothing listens on ADDR any more: a
		// node killed with kill (SIGKILL) has died and let go of its
		// address and database, so it can be started again.
		"waitdown": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 1 {
				ts.Fatalf("usage: waitdown ADDR")
			}
			for i := 0; ; i++ {
				c, err := net.DialTimeout("tcp", args[0], time.Second)
				if err != nil {
					return
				}
				c.Close()
				if i == 600 {
					ts.Fatalf("%s still answers", args[0])
				}
				time.Sleep(50 * time.Millisecond)
			}
		},
		// waithttp URL waits until URL answers 200 (a server started in the background).
		"waithttp": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 1 {
				ts.Fatalf("usage: waithttp URL")
			}
			for i := 0; ; i++ {
				resp, err := http.Get(args[0])
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return
					}
				}
				if i == 600 {
					ts.Fatalf("%s did not answer: %v", args[0], err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		},
	}
}
