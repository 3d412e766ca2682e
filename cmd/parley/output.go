package main

// What the CLI prints for people and for scripts: names instead of ids,
// human durations, suggestions for typos, unique id prefixes, and errors as
// stable JSON codes under --json.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/fault"
)

// errReported marks a failure whose explanation the command has already
// printed: the command exits 1 and nothing is printed again.
var errReported = errors.New("reported")

// errUnreachable marks a server that did not answer at all.
var errUnreachable = errors.New("the server is unreachable")

// isUnreachable reports whether err is a failure to connect (refused, no
// route, unknown host, timeout while dialling), not an answer.
func isUnreachable(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// explainUnreachable wraps a connection failure so that it says what it is.
func explainUnreachable(err error, server string) error {
	if err == nil || !isUnreachable(err) || errors.Is(err, errUnreachable) {
		return err
	}
	return fmt.Errorf("%w at %s (is it running, and is --server right?): %v", errUnreachable, server, err)
}

// checkServerURL refuses a --server value that is not an http(s) URL, with
// the fix spelled out.
func checkServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		hint := strings.TrimPrefix(strings.TrimPrefix(s, "//"), "://")
		return fmt.Errorf("%w: --server %q is not an http:// or https:// URL; write it with its scheme, e.g. http://%s", errUsage, s, hint)
	}
	return nil
}

// humanDuration prints a duration as people write it: 30d, 12h, 90m, 45s,
// or a combination (1d12h); never 720h0m0s.
func humanDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	neg := d < 0
	if neg {
		d = -d
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	units := []struct {
		suffix string
		size   time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}
	for _, u := range units {
		if n := d / u.size; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.suffix)
			d -= n * u.size
		}
	}
	if d > 0 { // below a second: rare, keep Go's form for the rest
		b.WriteString(d.String())
	}
	return b.String()
}

var dayDuration = regexp.MustCompile(`^(\d+)d(.*)$`)

// parseHumanDuration accepts Go durations and a leading day count (30d,
// 1d12h), the form humanDuration prints.
func parseHumanDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if m := dayDuration.FindStringSubmatch(s); m != nil {
		var n int64
		fmt.Sscan(m[1], &n)
		days = time.Duration(n) * 24 * time.Hour
		if s = m[2]; s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 30d, 12h or 90m", s)
	}
	return days + d, nil
}

// goDuration turns a human duration flag into the Go form agreement
// documents carry ("30d" → "720h0m0s"); other values pass unchanged so the
// document parser names them.
func goDuration(s string) string {
	if s == "" {
		return s
	}
	if d, err := parseHumanDuration(s); err == nil {
		return d.String()
	}
	return s
}

// suggest returns the candidate closest to word when it is a plausible typo.
func suggest(word string, candidates []string) string {
	best, bestD := "", 3
	if len(word) <= 3 {
		bestD = 2
	}
	for _, c := range candidates {
		if strings.HasPrefix(c, word) && len(word) >= 2 {
			return c
		}
		if d := editDistance(word, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unknownSub is the usage error for a subcommand that does not exist, with
// a suggestion when one is close.
func unknownSub(family, sub string) error {
	msg := fmt.Sprintf("unknown %s subcommand %q", family, sub)
	if s := suggest(sub, subcommands[family]); s != "" {
		msg += fmt.Sprintf("; did you mean 'parley %s %s'?", family, s)
	}
	return fmt.Errorf("%w: %s (one of: %s)", errUsage, msg, strings.Join(subcommands[family], ", "))
}

// partyNames resolves party ids to names for output, asking the server
// once per command and only when an id is to be printed.
type partyNames struct {
	c    *client.Client
	once sync.Once
	m    map[string]string
}

// names is the resolver of the client the running command made, so that
// error output can name parties too.
var names *partyNames

func newPartyNames(c *client.Client) *partyNames { return &partyNames{c: c} }

func (n *partyNames) load() {
	n.once.Do(func() {
		n.m = map[string]string{}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ps, err := n.c.Parties(ctx)
		if err != nil {
			return
		}
		for _, p := range ps {
			n.m[p.ID] = p.Name
		}
	})
}

// name returns the party's name, or its id when the directory has none.
func (n *partyNames) name(id string) string {
	if n == nil || id == "" {
		return id
	}
	n.load()
	if v, ok := n.m[id]; ok && v != "" {
		return v
	}
	return id
}

var partyID = regexp.MustCompile(`party--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// withNames replaces party ids in text with names.
func (n *partyNames) withNames(text string) string {
	if n == nil || !partyID.MatchString(text) {
		return text
	}
	return partyID.ReplaceAllStringFunc(text, n.name)
}

var fullID = regexp.MustCompile(`^[a-z]+--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// resolveID expands a unique prefix of an id of the given kind (agreement,
// handover, request, match), as git does for commits: "agreement--3f2",
// "3f2" and the full id all name the same agreement. A full id is returned
// unchanged without asking the server.
func resolveID(ctx context.Context, c *client.Client, kind, arg string) (string, error) {
	if arg == "" || fullID.MatchString(arg) {
		return arg, nil
	}
	var ids []string
	switch kind {
	case "agreement":
		as, err := c.Agreements(ctx)
		if err != nil {
			return "", err
		}
		for _, a := range as {
			ids = append(ids, a.ID)
		}
	case "handover":
		hs, err := c.Handovers(ctx, "")
		if err != nil {
			return "", err
		}
		for _, h := range hs {
			ids = append(ids, h.ID)
		}
	case "request":
		rs, err := c.Requests(ctx, "")
		if err != nil {
			return "", err
		}
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
	case "match":
		ms, err := c.Matches(ctx, "")
		if err != nil {
			return "", err
		}
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
	default:
		return arg, nil
	}
	return uniquePrefix(kind, arg, ids)
}

func uniquePrefix(kind, arg string, ids []string) (string, error) {
	var hits []string
	for _, id := range ids {
		bare := id[strings.LastIndex(id, "--")+2:]
		if id == arg {
			return id, nil
		}
		if strings.HasPrefix(id, arg) || strings.HasPrefix(bare, arg) {
			hits = append(hits, id)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return "", fmt.Errorf("%w: no %s of yours has an id starting with %q (list them with 'parley %s list')", errNotFound, kind, arg, kind)
	}
	sort.Strings(hits)
	if len(hits) > 5 {
		hits = append(hits[:5], "…")
	}
	return "", fmt.Errorf("%w: %q is the start of %d %s ids (%s); give more of it", errUsage, arg, len(hits), kind, strings.Join(hits, ", "))
}

// errNotFound marks an id or name the CLI could not find.
var errNotFound = fault.Generic(fault.NotFound, "not found")

// errorCode is the stable code --json prints for an error: scripts branch
// on it, never on the message. This is the one place the CLI maps errors:
// its own conditions first, then the server's code, then the fault kind
// (of the client's sentinels, or of a domain error from a local command).
func errorCode(err error) string {
	var ae *client.APIError
	switch {
	case errors.Is(err, errUsage):
		return "usage"
	case errors.Is(err, errUnreachable) || isUnreachable(err):
		return "unreachable"
	case errors.Is(err, errConfig):
		return "config"
	case errors.As(err, &ae) && ae.Code != "" && ae.Code != "http":
		return ae.Code
	case errors.Is(err, client.ErrRejected):
		return "rejected"
	case errors.Is(err, client.ErrMalformedBundle):
		return "invalid_bundle"
	case errors.Is(err, client.ErrUnsupportedMedia):
		return "unsupported_media"
	case errors.Is(err, client.ErrProtocol):
		return "protocol"
	case errors.Is(err, os.ErrNotExist):
		return "file_not_found"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	if code, ok := kindCodes[fault.KindOf(err)]; ok {
		return code
	}
	return "failed"
}

// kindCodes are the --json codes of the fault kinds.
var kindCodes = map[*fault.Kind]string{
	fault.NotFound:        "not_found",
	fault.Unauthenticated: "unauthorized",
	fault.TooLarge:        "too_large",
	fault.Invalid:         "invalid",
	fault.Forbidden:       "forbidden",
	fault.Conflict:        "conflict",
	fault.Unavailable:     "unavailable",
}

// wantsJSON reports whether the command line asks for JSON output.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "-json" || a == "--json=true" || a == "-json=true" {
			return true
		}
	}
	return false
}

// printError prints a failed command's error: a line of text, or under
// --json an object {"error": {"code", "message", "command", "exit"}}.
func printError(w io.Writer, command string, err error, exit int, asJSON bool) {
	msg := names.withNames(err.Error())
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"error": map[string]any{"code": errorCode(err), "message": msg, "command": command, "exit": exit}})
		return
	}
	if command == "" {
		fmt.Fprintf(w, "parley: %s\n", msg)
		return
	}
	fmt.Fprintf(w, "parley %s: %s\n", command, msg)
}

// forSubcommand makes a command family's shared flag set behave as if each
// subcommand had its own: -h lists only the flags the subcommand takes, and
// giving another subcommand's flag is a usage error. takes maps a flag to
// the subcommands that take it; flags it does not name (the client flags,
// --config, flags added later) belong to every subcommand. Call the
// returned check after parsing.
func forSubcommand(fs *flag.FlagSet, family, sub string, takes map[string][]string) func() error {
	belongs := func(name string) bool {
		subs, ok := takes[name]
		return !ok || slices.Contains(subs, sub)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of parley %s %s:\n", family, sub)
		own := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		own.SetOutput(fs.Output())
		fs.VisitAll(func(f *flag.Flag) {
			if belongs(f.Name) {
				own.Var(f.Value, f.Name, f.Usage)
			}
		})
		own.PrintDefaults()
	}
	return func() error {
		var wrong []string
		fs.Visit(func(f *flag.Flag) {
			if !belongs(f.Name) {
				wrong = append(wrong, "--"+f.Name)
			}
		})
		if len(wrong) > 0 {
			return fmt.Errorf("%w: parley %s %s does not take %s", errUsage, family, sub, strings.Join(wrong, ", "))
		}
		return nil
	}
}
