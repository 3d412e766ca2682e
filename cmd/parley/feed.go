package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/parley-cti/parley/internal/client"
)

func init() {
	register(command{"push", "publish a STIX bundle file (or - for stdin): push --agreement ID FILE", cmdPush})
	register(command{"pull", "download what is readable to you: pull --agreement ID [--out FILE]", cmdPull})
}

// feedTarget resolves --agreement (own contributions, or what the other
// party released) or an explicit --root and --collection.
func feedTarget(ctx context.Context, c *client.Client, agreementID, root, coll string, own bool) (string, string, error) {
	if agreementID == "" {
		if root == "" || coll == "" {
			return "", "", fmt.Errorf("%w: give --agreement ID, or --root and --collection", errUsage)
		}
		return root, coll, nil
	}
	me, err := c.Me(ctx)
	if err != nil {
		return "", "", err
	}
	a, err := c.Agreement(ctx, agreementID)
	if err != nil {
		return "", "", err
	}
	id, err := a.CollectionOf(me.PartyID, own)
	if err != nil {
		return "", "", err
	}
	return agreementID, id, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressPrinter draws a bar on a terminal and plain lines otherwise.
func progressPrinter(w io.Writer, what string) func(done, total int) {
	tty := isTerminal(w)
	last := -1
	return func(done, total int) {
		if tty {
			if total > 0 {
				const width = 30
				n := done * width / total
				fmt.Fprintf(w, "\r%s [%s%s] %d/%d", what, strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total)
			} else {
				fmt.Fprintf(w, "\r%s %d", what, done)
			}
			return
		}
		// Plain progress lines, at most one per 10%.
		step := 0
		if total > 0 {
			step = done * 10 / total
		} else {
			step = done / 10000
		}
		if step != last {
			last = step
			if total > 0 {
				fmt.Fprintf(w, "%s %d/%d\n", what, done, total)
			} else {
				fmt.Fprintf(w, "%s %d\n", what, done)
			}
		}
	}
}

func cmdPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("push", stderr)
	cf := addClientFlags(fs)
	ag := fs.String("agreement", "", "publish into your contributions under this agreement")
	root := fs.String("root", "", "API root (instead of --agreement)")
	coll := fs.String("collection", "", "collection id (instead of --agreement)")
	size := fs.Int("envelope", 1000, "objects per envelope")
	skip := fs.Int("skip", 0, "skip this many leading objects (resume an interrupted push)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: push needs one FILE (or - for stdin)", errUsage)
	}
	c, _, err := cf.client()
	if err != nil {
		return err
	}
	r, c2, err := feedTarget(ctx, c, *ag, *root, *coll, true)
	if err != nil {
		return err
	}
	total := 0
	var in io.Reader = os.Stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		if total, err = client.CountBundle(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return err
		}
		defer f.Close()
		in = bufio.NewReaderSize(f, 1<<20)
	}
	prog := progressPrinter(stderr, "pushed")
	if cf.json {
		prog = nil
	}
	n, err := c.PushBundleWith(ctx, r, c2, in, client.PushOptions{EnvelopeSize: *size, Skip: *skip, Total: total, Progress: prog})
	if isTerminal(stderr) && !cf.json {
		fmt.Fprintln(stderr)
	}
	sent := *skip + n
	if err != nil && !errors.Is(err, client.ErrRejected) {
		return fmt.Errorf("%w\n%d objects were acknowledged; resume with: parley push --skip %d ...", err, sent, sent)
	}
	out := map[string]any{"acknowledged": n, "skipped": *skip, "root": r, "collection": c2}
	if errors.Is(err, client.ErrRejected) {
		out["rejected"] = err.Error()
	}
	if e := emit(stdout, cf.json, out, func() {
		fmt.Fprintf(stdout, "%d objects acknowledged into %s/%s\n", n, r, c2)
		if errors.Is(err, client.ErrRejected) {
			fmt.Fprintf(stdout, "some objects were refused: %v\n", err)
		}
	}); e != nil {
		return e
	}
	return err
}

// pullState is where an interrupted pull resumes: the stateless cursor the
// server handed out, which stays valid across restarts.
type pullState struct {
	Root, Collection, Next string
	Count                  int
}

func cmdPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pull", stderr)
	cf := addClientFlags(fs)
	ag := fs.String("agreement", "", "read what the other party released to you under this agreement")
	root := fs.String("root", "", "API root (instead of --agreement)")
	coll := fs.String("collection", "", "collection id (instead of --agreement)")
	out := fs.String("out", "-", "file to write, one object per line (JSON Lines); - for stdout")
	resume := fs.Bool("resume", false, "continue an interrupted pull into --out from where it stopped")
	limit := fs.Int("limit", 1000, "objects per page")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, _, err := cf.client()
	if err != nil {
		return err
	}
	r, c2, err := feedTarget(ctx, c, *ag, *root, *coll, false)
	if err != nil {
		return err
	}
	var w io.Writer = stdout
	statePath := ""
	var st pullState
	if *out != "-" {
		statePath = *out + ".pull-state"
		flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if *resume {
			if b, err := os.ReadFile(statePath); err == nil {
				if json.Unmarshal(b, &st) != nil || st.Root != r || st.Collection != c2 {
					return fmt.Errorf("%s does not belong to this pull; remove it or drop --resume", statePath)
				}
			}
			flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
		f, err := os.OpenFile(*out, flags, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	} else if *resume {
		return fmt.Errorf("%w: --resume needs --out FILE", errUsage)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	st.Root, st.Collection = r, c2
	prog := progressPrinter(stderr, "pulled")
	for {
		env, err := c.GetObjects(ctx, r, c2, client.Filter{Limit: *limit, Next: st.Next})
		if err != nil {
			bw.Flush()
			return fmt.Errorf("%w\n%d objects written; run again with --resume to continue", err, st.Count)
		}
		for _, o := range env.Objects {
			bw.Write(o)
			bw.WriteByte('\n')
		}
		st.Count += len(env.Objects)
		if err := bw.Flush(); err != nil {
			return err
		}
		st.Next = env.Next
		if statePath != "" {
			b, _ := json.Marshal(st)
			if err := os.WriteFile(statePath, b, 0o600); err != nil {
				return err
			}
		}
		if !cf.json && *out != "-" {
			prog(st.Count, -1)
		}
		if !env.More || env.Next == "" {
			break
		}
	}
	if statePath != "" {
		os.Remove(statePath)
	}
	if *out != "-" {
		return emit(stdout, cf.json, map[string]any{"objects": st.Count, "file": filepath.Clean(*out)}, func() {
			fmt.Fprintf(stdout, "%d objects written to %s\n", st.Count, *out)
		})
	}
	return nil
}
