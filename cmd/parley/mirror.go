package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

func init() {
	register(command{"mirror", "keep an agreement fed from another TAXII 2.1 server: mirror add --from URL --collection ID [--token T | --token-file F] [--user U] --into AGREEMENT | list | status ID | remove ID", cmdMirror})
}

func cmdMirror(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: mirror add|list|status|remove", errUsage)
	}
	switch args[0] {
	case "add":
		return mirrorAdd(ctx, args[1:], stdout, stderr)
	case "list", "status", "remove":
	default:
		return unknownSub("mirror", args[0])
	}
	sub := args[0]
	fs := newFlags("mirror "+sub, stderr)
	cf := addClientFlags(fs)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	want := 1
	if sub == "list" {
		want = 0
	}
	if len(pos) != want {
		return fmt.Errorf("%w: mirror %s takes %d arguments, got %d", errUsage, sub, want, len(pos))
	}
	c, _, err := cf.client()
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		ms, err := c.Mirrors(ctx)
		if err != nil {
			return err
		}
		return emit(stdout, cf.json, ms, func() {
			if len(ms) == 0 {
				fmt.Fprintln(stdout, "no mirrors; add one with parley mirror add")
				return
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAGREEMENT\tSOURCE\tACCEPTED\tREFUSED\tLAST SUCCESS\tLAST ERROR\tNEXT ATTEMPT")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", m.ID, m.Agreement, m.SourceURL+"collections/"+m.SourceCollection+"/",
					m.Accepted, m.Refused, when(m.LastSuccess), lastError(m), m.NextAttempt.Format(time.RFC3339))
			}
			tw.Flush()
		})
	case "status":
		m, err := c.MirrorStatus(ctx, pos[0])
		if err != nil {
			return err
		}
		return emit(stdout, cf.json, m, func() { printMirror(stdout, m) })
	}
	if err := c.RemoveMirror(ctx, pos[0]); err != nil {
		return err
	}
	return emit(stdout, cf.json, map[string]string{"removed": pos[0]}, func() {
		fmt.Fprintf(stdout, "mirror %s removed; what it stored stays in the agreement\n", pos[0])
	})
}

// mirrorAdd defines a mirror. Here --token is the SOURCE's token, as issue
// 14 writes the command; parley's own token comes from the profile,
// PARLEY_TOKEN or --parley-token, so that one is never sent to the source.
func mirrorAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("mirror add", stderr)
	cf := addClientFlags(fs)
	var spec client.MirrorSpec
	tf := fs.Lookup("token")
	tf.Value = (*stringValue)(&spec.Token)
	tf.Usage = "the SOURCE server's token (sent as a Bearer token, or as the Basic password with --user); parley's own token comes from the profile, PARLEY_TOKEN or --parley-token"
	tf.DefValue = ""
	fs.StringVar(&cf.token, "parley-token", cf.token, "parley API token, overriding the profile (env PARLEY_TOKEN)")
	fs.StringVar(&spec.SourceURL, "from", "", "the source's TAXII 2.1 API root URL, http:// or https:// (required)")
	fs.StringVar(&spec.Collection, "collection", "", "the collection id at the source (required)")
	fs.StringVar(&spec.User, "user", "", "authenticate to the source with HTTP Basic as this user, the token as password (medallion, some MISP TAXII servers)")
	tokenFile := fs.String("token-file", "", "read the source's token from this file (keeps it out of the shell history and the process list)")
	into := fs.String("into", "", "the agreement to feed: your contribution collection under it receives the objects (required)")
	fs.IntVar(&spec.PageLimit, "limit", 0, "objects per page asked of the source (default 500, at most 10000)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: mirror add takes flags only, got %q", errUsage, pos)
	}
	if spec.SourceURL == "" || spec.Collection == "" || *into == "" {
		return fmt.Errorf("%w: mirror add needs --from URL, --collection ID and --into AGREEMENT", errUsage)
	}
	if *tokenFile != "" {
		if spec.Token != "" {
			return fmt.Errorf("%w: give the source's token with --token or --token-file, not both", errUsage)
		}
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("source token: %w", err)
		}
		spec.Token = strings.TrimSpace(string(b))
	}
	c, prof, err := cf.client()
	if err != nil {
		return err
	}
	if spec.Token != "" && spec.Token == prof.Token {
		// A settings file's "token" lands in --token too: parley's own
		// token must never be handed to another server.
		return fmt.Errorf("%w: the source token is your parley token; give the source's own token with --token or --token-file", errUsage)
	}
	if spec.Agreement, err = resolveID(ctx, c, "agreement", *into); err != nil {
		return err
	}
	m, err := c.AddMirror(ctx, spec)
	if err != nil {
		return err
	}
	return emit(stdout, cf.json, m, func() {
		fmt.Fprintf(stdout, "mirror %s added: the server pulls %scollections/%s/ into your contributions under %s\n", m.ID, m.SourceURL, m.SourceCollection, m.Agreement)
		fmt.Fprintf(stdout, "progress: parley mirror status %s\n", m.ID)
	})
}

func printMirror(w io.Writer, m *client.Mirror) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("mirror", m.ID)
	row("agreement", m.Agreement)
	row("into collection", m.Collection)
	row("source", m.SourceURL+"collections/"+m.SourceCollection+"/")
	auth := "none"
	switch {
	case m.SourceUser != "":
		auth = "Basic, user " + m.SourceUser + ", password " + m.SourceToken
	case m.SourceToken != "":
		auth = "Bearer " + m.SourceToken
	}
	row("credential", auth)
	row("page limit", fmt.Sprint(m.PageLimit))
	row("accepted", fmt.Sprint(m.Accepted))
	row("refused", fmt.Sprint(m.Refused))
	if m.LastRefusal != "" {
		row("last refusal", m.LastRefusal)
	}
	row("pages", fmt.Sprint(m.Pages))
	pos := m.AddedAfter
	if pos == "" {
		pos = "the beginning"
	}
	if m.Paging {
		pos += " (paging)"
	}
	row("resumes after", pos)
	row("last success", when(m.LastSuccess))
	row("last error", lastError(*m))
	row("next attempt", m.NextAttempt.Format(time.RFC3339))
	tw.Flush()
}

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Format(time.RFC3339)
}

func lastError(m client.Mirror) string {
	if m.LastError == "" {
		return "-"
	}
	s := m.LastError
	if m.LastErrorAt != nil {
		s = m.LastErrorAt.Format(time.RFC3339) + " " + s
	}
	if m.Failures > 0 {
		s += fmt.Sprintf(" (%d in a row)", m.Failures)
	}
	return s
}

// stringValue is a flag.Value over a string.
type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }

var _ flag.Value = (*stringValue)(nil)
