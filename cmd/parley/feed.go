package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/parley-cti/parley/internal/client"
)

func init() {
	register(command{"push", "publish a STIX bundle file (or - for stdin): push --agreement ID FILE", cmdPush})
	register(command{"pull", "download what is readable to you: pull --agreement ID [--out FILE] [--format jsonl|bundle] [--new]", cmdPull})
	register(command{"feed", "where your node's pulls from the other party's node stand: feed status AGREEMENT-ID (operator: peer feeds --data DIR)", cmdFeed})
}

// cmdFeed serves `feed status`: the pulls feeding an agreement between
// two nodes on the caller's own node.
func cmdFeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		if len(args) > 0 {
			return unknownSub("feed", args[0])
		}
		return fmt.Errorf("%w: feed status AGREEMENT-ID", errUsage)
	}
	fs := newFlags("feed status", stderr)
	cf := addClientFlags(fs)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: feed status needs the agreement id", errUsage)
	}
	c, _, err := cf.client()
	if err != nil {
		return err
	}
	id, err := resolveID(ctx, c, "agreement", pos[0])
	if err != nil {
		return err
	}
	fp, err := c.Feeds(ctx, id)
	if err != nil {
		return err
	}
	return emit(stdout, cf.json, fp, func() {
		if len(fp) == 0 {
			fmt.Fprintf(stdout, "no pull feeds agreement %s on this node (it is not between two nodes, or not countersigned yet)\n", id)
		}
		printFeedPulls(stdout, fp)
	})
}

// printFeedPulls writes one paragraph per pull.
func printFeedPulls(w io.Writer, fp []client.FeedPull) {
	for _, f := range fp {
		peer := f.Peer
		if peer == "" {
			peer = "(no longer pinned)"
		}
		fmt.Fprintf(w, "agreement %s: pulling %s's contributions from %s\n", f.Agreement, f.PartyName, peer)
		fmt.Fprintf(w, "  cursor %d of %d the peer releases; %d objects pulled, %d refused\n", f.Cursor, f.PeerReleased, f.Pulled, f.Refused)
		if f.LastSuccess != nil {
			fmt.Fprintf(w, "  last success %s\n", f.LastSuccess.UTC().Format(time.RFC3339))
		} else {
			fmt.Fprintf(w, "  no success yet\n")
		}
		if f.LastError != "" {
			fmt.Fprintf(w, "  last error (%d failed attempts in a row): %s\n", f.Attempts, f.LastError)
		}
		if f.NextAttempt != nil {
			fmt.Fprintf(w, "  next pull %s\n", f.NextAttempt.UTC().Format(time.RFC3339))
		}
	}
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
	agreementID, err := resolveID(ctx, c, "agreement", agreementID)
	if err != nil {
		return "", "", err
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
	prog := progressPrinter(stderr, "sent")
	if cf.json {
		prog = nil
	}
	n, err := c.PushBundleWith(ctx, r, c2, in, client.PushOptions{EnvelopeSize: *size, Skip: *skip, Total: total, Progress: prog})
	if isTerminal(stderr) && !cf.json {
		fmt.Fprintln(stderr)
	}
	sent := *skip + n
	if errors.Is(err, client.ErrMalformedBundle) && pos[0] == "-" {
		err = fmt.Errorf("stdin: %w", err)
	}
	if err != nil && !errors.Is(err, client.ErrRejected) {
		if n == 0 && *skip == 0 {
			return err
		}
		return fmt.Errorf("%w\n%d objects were acknowledged; resume with: parley push --skip %d ...", err, sent, sent)
	}
	sum := summarisePush(n, err)
	out := map[string]any{"sent": n, "accepted": sum.accepted, "refused": sum.refused, "reasons": sum.reasons,
		"skipped": *skip, "root": r, "collection": c2}
	if e := emit(stdout, cf.json, out, func() {
		where := r + "/" + c2
		if *ag != "" {
			where = "your contributions under " + r
		}
		fmt.Fprintf(stdout, "accepted %d of %d objects into %s", sum.accepted, n, where)
		if *skip > 0 {
			fmt.Fprintf(stdout, " (after skipping %d)", *skip)
		}
		fmt.Fprintln(stdout)
		if sum.refused > 0 {
			fmt.Fprintf(stdout, "refused %d:\n", sum.refused)
			for _, rr := range sum.reasons {
				fmt.Fprintf(stdout, "  %d × %s\n", rr.Count, rr.Reason)
			}
		}
	}); e != nil {
		return e
	}
	if sum.refused > 0 {
		return errReported // the summary above is the whole story
	}
	return nil
}

// pushReason is one distinct reason the server gave for refusing objects.
type pushReason struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

type pushSummary struct {
	accepted, refused int
	reasons           []pushReason
}

// summarisePush counts a push's refusals by reason, most frequent first, so
// one line per distinct reason says how many objects it hit.
func summarisePush(sent int, err error) pushSummary {
	var rej *client.RejectedError
	if !errors.As(err, &rej) {
		return pushSummary{accepted: sent, reasons: []pushReason{}}
	}
	counts := map[string]int{}
	var order []string
	for _, f := range rej.Failures {
		// The same reason for different objects often names each object:
		// count by the message without the object's own id.
		msg := strings.TrimPrefix(f.Message, f.ID+": ")
		msg = strings.TrimSpace(strings.ReplaceAll(msg, f.ID, "the object"))
		if msg == "" {
			msg = "no reason given"
		}
		if counts[msg] == 0 {
			order = append(order, msg)
		}
		counts[msg]++
	}
	sort.SliceStable(order, func(i, j int) bool { return counts[order[i]] > counts[order[j]] })
	out := pushSummary{refused: len(rej.Failures), accepted: max(sent-len(rej.Failures), 0), reasons: []pushReason{}}
	for _, m := range order {
		out.reasons = append(out.reasons, pushReason{m, counts[m]})
	}
	return out
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
	out := fs.String("out", "-", "file to write; - for stdout")
	format := fs.String("format", "jsonl", "jsonl (one object a line) or bundle (one STIX 2.1 bundle, as MISP and OpenCTI import)")
	onlyNew := fs.Bool("new", false, "only what arrived since this profile's last pull of the collection")
	resume := fs.Bool("resume", false, "continue an interrupted pull into --out from where it stopped (jsonl)")
	limit := fs.Int("limit", 1000, "objects per page")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *format != "jsonl" && *format != "bundle" {
		return fmt.Errorf("%w: --format %q: use jsonl or bundle", errUsage, *format)
	}
	if *resume && *format == "bundle" {
		return fmt.Errorf("%w: --resume continues a jsonl file; a bundle is written whole", errUsage)
	}
	c, _, err := cf.client()
	if err != nil {
		return err
	}
	r, c2, err := feedTarget(ctx, c, *ag, *root, *coll, false)
	if err != nil {
		return err
	}
	marks, marksPath, err := loadPullMarks(cf.profileName())
	if err != nil {
		return err
	}
	markKey := r + "/" + c2
	var since time.Time
	if *onlyNew {
		since = marks[markKey]
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
	if *format == "bundle" {
		fmt.Fprintf(bw, `{"type":"bundle","id":"bundle--%s","objects":[`, newUUID())
	}
	st.Root, st.Collection = r, c2
	prog := progressPrinter(stderr, "pulled")
	var last time.Time
	// Pages reads one page ahead, so the server prepares the next page while
	// this one is written out.
	for env, err := range c.Pages(ctx, r, c2, client.Filter{Limit: *limit, Next: st.Next, AddedAfter: since}) {
		if err != nil {
			bw.Flush()
			if *format == "bundle" {
				return fmt.Errorf("%w\n%d objects read; the bundle is incomplete: pull again", err, st.Count)
			}
			return fmt.Errorf("%w\n%d objects written; run again with --resume to continue", err, st.Count)
		}
		for i, o := range env.Objects {
			if *format == "bundle" {
				if st.Count > 0 || i > 0 {
					bw.WriteByte(',')
				}
				bw.WriteByte('\n')
				bw.Write(o)
				continue
			}
			bw.Write(o)
			bw.WriteByte('\n')
		}
		st.Count += len(env.Objects)
		if env.DateAddedLast.After(last) {
			last = env.DateAddedLast
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		st.Next = env.Next
		if statePath != "" && *format == "jsonl" {
			b, _ := json.Marshal(st)
			if err := os.WriteFile(statePath, b, 0o600); err != nil {
				return err
			}
		}
		if !cf.json && *out != "-" {
			prog(st.Count, -1)
		}
		if !env.More || env.Next == "" {
			break // the end, or a server without next cursors (a pull resumes only by next)
		}
	}
	if *format == "bundle" {
		bw.WriteString("\n]}\n")
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	if statePath != "" {
		os.Remove(statePath)
	}
	// Remember where this pull ended, for the next --new.
	if !last.IsZero() && last.After(marks[markKey]) {
		marks[markKey] = last
		if err := savePullMarks(marksPath, marks); err != nil {
			fmt.Fprintf(stderr, "parley: could not remember this pull for --new: %v\n", err)
		}
	}
	// Say what give-to-get holds back, and what would unlock it.
	var bal *client.Balance
	if *ag != "" {
		bal, _ = c.Balance(ctx, r)
	}
	withheld := int64(0)
	if bal != nil && bal.Available > bal.Released {
		withheld = bal.Available - bal.Released
	}
	info := stdout
	if *out == "-" {
		info = stderr // stdout holds the objects
	}
	res := map[string]any{"objects": st.Count, "format": *format, "withheld": withheld}
	if *out != "-" {
		res["file"] = filepath.Clean(*out)
	}
	if bal != nil {
		res["next_unlocks"] = bal.NextUnlocks
	}
	if !since.IsZero() {
		res["added_after"] = since.Format(time.RFC3339Nano)
	}
	if cf.json && *out == "-" {
		return nil // stdout is the data
	}
	return emit(info, cf.json, res, func() {
		what := "objects"
		if *onlyNew {
			what = "new objects"
			if since.IsZero() {
				what = "objects (no earlier pull: everything)"
			}
		}
		if *out != "-" {
			fmt.Fprintf(info, "pulled %d %s into %s\n", st.Count, what, *out)
		} else {
			fmt.Fprintf(info, "pulled %d %s\n", st.Count, what)
		}
		if withheld > 0 {
			fmt.Fprintf(info, "%d more are withheld under give-to-get until you contribute: your next credit unlocks %d more (see 'parley balance %s')\n",
				withheld, bal.NextUnlocks, r)
		}
	})
}

// loadPullMarks reads, per collection, the latest date_added this
// profile's pulls have seen; `pull --new` asks for what came after it.
func loadPullMarks(profileName string) (map[string]time.Time, string, error) {
	path, err := profileFile(profileName, "pulls.json")
	if err != nil {
		return nil, "", err
	}
	m := map[string]time.Time{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, path, nil
	}
	if err != nil {
		return nil, "", err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "", fmt.Errorf("%s is damaged (%v); remove it and pull without --new once", path, err)
	}
	return m, path, nil
}

func savePullMarks(path string, m map[string]time.Time) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// newUUID returns a random (version 4) UUID for a bundle id.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
