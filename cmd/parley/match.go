package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/psi"
)

func init() {
	register(command{"match", "private matching of wanted lists: match --agreement A --list FILE [--kind auto|email|...] [--file-requests] | match --session ID --list FILE | match list", cmdMatch})
}

const matchUsage = `match --agreement A --list FILE [--kind K] [--file-requests --reason TEXT]   start a session and run it
  match --session ID --list FILE [--kind K] [--file-requests --reason TEXT]     join a session the other side started
  match --agreement A --join --list FILE ...                                   wait for the other side's session under A and join it
  match list [--agreement A]
FILE holds one identifier a line (blank lines and lines starting with # are skipped).
--kind auto (default) guesses each line's kind; or one of: ` + "email, alias, ipv4, ipv6, domain, md5, sha1, sha256, sha512, btc, eth" + `.
Only the two set sizes reach the server; the matches are printed here. --file-requests then files
a request for each match, which names the identifier to the other side and the server.`

func cmdMatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := ""
	if len(args) > 0 && args[0] == "list" {
		sub, args = "list", args[1:]
	}
	fs := newFlags("match", stderr)
	cf := addClientFlags(fs)
	agreementID := fs.String("agreement", "", "agreement to start a session under (or to filter the list)")
	session := fs.String("session", "", "session to join (the other side started it)")
	list := fs.String("list", "", "file of wanted identifiers, one a line")
	kind := fs.String("kind", "auto", "identifier kind of every line, or auto to guess each")
	fileRequests := fs.Bool("file-requests", false, "file a request for each match")
	reason := fs.String("reason", "", "reason given in the requests filed with --file-requests")
	join := fs.Bool("join", false, "with --agreement: wait for the session the other side starts under it and join that")
	quiet := fs.Bool("quiet", false, "do not report progress on stderr")
	waitFor := fs.Duration("wait", 0, "give up waiting for the other side after this long (default: until the session expires, at most 1d)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: %s", errUsage, matchUsage)
	}
	c, prof, err := cf.client()
	if err != nil {
		return err
	}
	if sub == "list" {
		ms, err := c.Matches(ctx, *agreementID)
		if err != nil {
			return err
		}
		return emit(stdout, cf.json, ms, func() {
			for _, m := range ms {
				fmt.Fprintf(stdout, "%s  %s  %s  initiator %s  responder %s  sizes %s/%s  deadline %s\n", m.ID, m.Agreement, m.State,
					names.name(m.Initiator), names.name(m.Responder), size(m.InitiatorRound1), size(m.ResponderRound1), m.Deadline.Format(time.RFC3339))
			}
		})
	}
	switch {
	case *list == "":
		return fmt.Errorf("%w: match needs --list FILE\n%s", errUsage, matchUsage)
	case *join && *agreementID == "":
		return fmt.Errorf("%w: --join needs --agreement", errUsage)
	case (*agreementID == "") == (*session == ""):
		return fmt.Errorf("%w: give either --agreement (start a session) or --session (join one)\n%s", errUsage, matchUsage)
	case *fileRequests && strings.TrimSpace(*reason) == "":
		return fmt.Errorf("%w: --file-requests needs --reason TEXT", errUsage)
	}
	fixed := psi.Kind("")
	if *kind != "auto" {
		fixed = psi.Kind(*kind)
		if !slices.Contains(psi.Kinds, fixed) {
			return fmt.Errorf("%w: --kind %q is not auto or a known kind\n%s", errUsage, *kind, matchUsage)
		}
	}
	// Check the whole list before anything leaves this machine, naming the
	// line at fault.
	n := 0
	for _, err := range readList(*list, fixed) {
		if err != nil {
			return err
		}
		n++
	}
	keys, err := prof.privateKeys()
	if err != nil {
		return err
	}
	if *agreementID, err = resolveID(ctx, c, "agreement", *agreementID); err != nil {
		return err
	}
	if *session, err = resolveID(ctx, c, "match", *session); err != nil {
		return err
	}
	if *join {
		if !*quiet {
			fmt.Fprintf(stderr, "waiting for the other side to start a session under %s (Ctrl-C stops)\n", *agreementID)
		}
		if *session, err = awaitSession(ctx, c, *agreementID); err != nil {
			return err
		}
		*agreementID = ""
	}
	progress := func(step string) {
		if !*quiet {
			fmt.Fprintln(stderr, step)
		}
	}
	items := func() iter.Seq[psi.Item] {
		return func(yield func(psi.Item) bool) {
			for it, err := range readList(*list, fixed) {
				if err != nil || !yield(it) {
					return
				}
			}
		}
	}
	runCtx := ctx
	if *waitFor > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, *waitFor)
		defer cancel()
	}
	pins, err := sealingPins(cf)
	if err != nil {
		return err
	}
	var started client.Match
	out, err := c.RunMatch(runCtx, client.MatchOptions{Agreement: *agreementID, Session: *session, Items: items, Identity: keys.Sealing,
		Pins: pins, Progress: progress, OnSession: func(m client.Match) {
			started = m
			if *quiet {
				return
			}
			wait := humanDuration(time.Until(m.Deadline).Round(time.Minute))
			if *session == "" {
				fmt.Fprintf(stderr, "session %s started with %d identifiers under %s.\n"+
					"%s must now join it, with its own list, by running:\n"+
					"  parley match --session %s --list FILE\n"+
					"(or: parley match --agreement %s --join --list FILE)\n"+
					"Waiting for them until %s (%s); the session expires then. Ctrl-C stops waiting here; they can still join until then.\n",
					m.ID, n, m.Agreement, names.name(m.Responder), m.ID, m.Agreement, m.Deadline.Format(time.RFC3339), wait)
				return
			}
			fmt.Fprintf(stderr, "joining session %s that %s started; it expires at %s (%s)\n", m.ID, names.name(m.Initiator), m.Deadline.Format(time.RFC3339), wait)
		}})
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && started.ID != "" {
		return fmt.Errorf("gave up after %s: session %s is not complete (the other side has not joined or not finished); it expires at %s",
			humanDuration(*waitFor), started.ID, started.Deadline.Format(time.RFC3339))
	}
	if err != nil {
		return err
	}
	type filed struct {
		Identifier string `json:"identifier"`
		Request    string `json:"request"`
	}
	var requests []filed
	if *fileRequests {
		for _, it := range out.Matched {
			r, err := c.FileRequest(ctx, client.NewRequest{Agreement: out.Session.Agreement, Subject: fmt.Sprintf("%s %s", it.Kind, strings.TrimSpace(it.Value)),
				Refs: []string{strings.TrimSpace(it.Value)}, Reason: *reason + " (private matching session " + out.Session.ID + ")"})
			if err != nil {
				return fmt.Errorf("filing a request for a match: %w", err)
			}
			requests = append(requests, filed{strings.TrimSpace(it.Value), r.ID})
		}
	}
	matched := []map[string]string{}
	for _, it := range out.Matched {
		matched = append(matched, map[string]string{"kind": string(it.Kind), "value": strings.TrimSpace(it.Value)})
	}
	return emit(stdout, cf.json, map[string]any{"session": out.Session.ID, "agreement": out.Session.Agreement, "handover": out.Session.Handover,
		"sent": out.OwnCount, "their_size": out.PeerCount, "matches": matched, "requests": requests}, func() {
		fmt.Fprintf(stdout, "session %s: you sent %d distinct identifiers, the other side %d; %d of yours matched\n",
			out.Session.ID, out.OwnCount, out.PeerCount, len(out.Matched))
		for _, it := range out.Matched {
			fmt.Fprintf(stdout, "%s\t%s\n", it.Kind, strings.TrimSpace(it.Value))
		}
		for _, r := range requests {
			fmt.Fprintf(stdout, "filed %s for %s\n", r.Request, r.Identifier)
		}
	})
}

// awaitSession waits for a session under agreementID that the other side
// started and the caller has not yet sent round 1 in.
func awaitSession(ctx context.Context, c *client.Client, agreementID string) (string, error) {
	me, err := c.Me(ctx)
	if err != nil {
		return "", err
	}
	for {
		ms, err := c.Matches(ctx, agreementID)
		if err != nil {
			return "", err
		}
		for _, m := range ms {
			if m.Responder == me.PartyID && m.State == "round1" && m.ResponderRound1 == nil {
				return m.ID, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func size(r *client.MatchRound1) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprint(r.Count)
}

// readList yields the identifiers of a list file, one a line, streaming
// it; an invalid line ends the sequence with an error naming it.
func readList(path string, fixed psi.Kind) iter.Seq2[psi.Item, error] {
	return func(yield func(psi.Item, error) bool) {
		f, err := os.Open(path)
		if err != nil {
			yield(psi.Item{}, err)
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			v := strings.TrimSpace(sc.Text())
			if v == "" || strings.HasPrefix(v, "#") {
				continue
			}
			k := fixed
			if k == "" {
				if k, err = psi.DetectKind(v); err != nil {
					yield(psi.Item{}, fmt.Errorf("%s:%d: %w", path, line, err))
					return
				}
			}
			if _, err := psi.Normalize(k, v); err != nil {
				yield(psi.Item{}, fmt.Errorf("%s:%d: not a valid %s: %w", path, line, k, err))
				return
			}
			if !yield(psi.Item{Kind: k, Value: v}, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(psi.Item{}, fmt.Errorf("%s: %w", path, err))
		}
	}
}
