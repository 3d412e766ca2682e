package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/report"
)

func init() {
	register(command{"report", "the joint report on an agreement: report --agreement ID --from T --to T [--format json|html|pdf] [--out FILE] | report sign --agreement ID --from T --to T | report signatures --agreement ID", cmdReport})
}

// chromiumPath is the browser `--format pdf` prints with (env PARLEY_CHROMIUM).
var chromiumPath = env("chromium", "/usr/bin/chromium")

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "signatures" {
		return cmdReportSignatures(ctx, args[1:], stdout, stderr)
	}
	sign := len(args) > 0 && args[0] == "sign"
	name := "report"
	if sign {
		args, name = args[1:], "report sign"
	}
	fs := newFlags(name, stderr)
	cf := addClientFlags(fs)
	agr := fs.String("agreement", "", "the agreement (id or a unique prefix)")
	from := fs.String("from", "", "start of the period (RFC 3339 time or YYYY-MM-DD), inclusive")
	to := fs.String("to", "", "end of the period (RFC 3339 time or YYYY-MM-DD), exclusive")
	format, out := new(string), new(string)
	*format = "json"
	if !sign {
		fs.StringVar(format, "format", "json", "json, html or pdf")
		fs.StringVar(out, "out", "", "write to FILE instead of standard output (required for pdf)")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return fmt.Errorf("%w: %s takes flags only, got %q", errUsage, name, pos)
	case *agr == "" || *from == "" || *to == "":
		return fmt.Errorf("%w: %s needs --agreement, --from and --to", errUsage, name)
	case *format != "json" && *format != "html" && *format != "pdf":
		return fmt.Errorf("%w: --format is json, html or pdf, not %q", errUsage, *format)
	case *format == "pdf" && *out == "":
		return fmt.Errorf("%w: --format pdf needs --out FILE", errUsage)
	}
	if _, _, err := report.ParsePeriod(*from, *to); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *format == "pdf" {
		// Said before anything is fetched: without a browser there is no PDF.
		if _, err := os.Stat(chromiumPath); err != nil {
			return fmt.Errorf("--format pdf prints with headless Chromium, and there is none at %s (install chromium, or set PARLEY_CHROMIUM): %w", chromiumPath, err)
		}
	}
	c, prof, err := cf.client()
	if err != nil {
		return err
	}
	id, err := resolveID(ctx, c, "agreement", *agr)
	if err != nil {
		return err
	}
	raw, err := c.Report(ctx, id, *from, *to)
	if err != nil {
		return err
	}
	var rep report.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("the server's report does not decode: %w", err)
	}
	// The hash is recomputed here from the facts as received: what the
	// party signs or files is what it read, whatever the server claims.
	hash, err := rep.Facts.Hash()
	if err != nil {
		return err
	}
	if hash != rep.Hash {
		return fmt.Errorf("the server's report claims hash %s, but its facts hash to %s: refusing it", rep.Hash, hash)
	}
	if rep.Facts.Agreement != id {
		return fmt.Errorf("the server answered with a report on %s, not %s: refusing it", rep.Facts.Agreement, id)
	}
	if sign {
		return signReport(ctx, cf, prof, c, &rep, stdout, stderr)
	}
	switch *format {
	case "json":
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
		return writeOut(*out, b.Bytes(), stdout)
	case "html":
		var b bytes.Buffer
		if err := report.Standalone(&b, report.NewView(&rep, time.Now())); err != nil {
			return err
		}
		return writeOut(*out, b.Bytes(), stdout)
	}
	return printPDF(ctx, &rep, *out, stdout)
}

func writeOut(path string, b []byte, stdout io.Writer) error {
	if path == "" || path == "-" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// printPDF renders the report's HTML to a temporary file and has headless
// Chromium print it.
func printPDF(ctx context.Context, rep *report.Report, out string, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "parley-report-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := report.Standalone(&b, report.NewView(rep, time.Now())); err != nil {
		return err
	}
	if err := os.WriteFile(page, b.Bytes(), 0o600); err != nil {
		return err
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--no-pdf-header-footer", "--print-to-pdf="+abs, "file://"+page)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("chromium could not print the report: %w\n%s", err, tail(errb.Bytes(), 2000))
	}
	st, err := os.Stat(abs)
	if err != nil || st.Size() == 0 {
		return fmt.Errorf("chromium wrote no PDF to %s\n%s", abs, tail(errb.Bytes(), 2000))
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes): the report %s\n", out, st.Size(), rep.Hash)
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// signReport signs the report just checked with the profile's key and
// records the receipt, with the digests the entry binds, for `parley verify`.
func signReport(ctx context.Context, cf *clientFlags, prof profile, c *client.Client, rep *report.Report, stdout, stderr io.Writer) error {
	keys, err := prof.privateKeys()
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(rep.Facts.Parties, me.PartyID) {
		return fmt.Errorf("you (%s) are not a party to this report's agreement", me.PartyID)
	}
	from, to, err := report.ParsePeriod(rep.Facts.From, rep.Facts.To)
	if err != nil {
		return err
	}
	sr, err := agreement.SignReport(keys, agreement.ReportStatement{AgreementID: rep.Facts.Agreement, PartyID: me.PartyID,
		ReportHash: rep.Hash, From: from, To: to, SignedAt: time.Now()})
	if err != nil {
		return err
	}
	sig, rc, err := c.SignReport(ctx, sr)
	if err != nil {
		return err
	}
	digest, err := exchange.StatementDigest(sr)
	if err == nil {
		err = recordReceiptOf(cf, prof, rc, ledger.KindReportSigned, "", map[string]string{"report": rep.Hash, "statement": digest})
	}
	if err != nil {
		fmt.Fprintf(stderr, "parley: the receipt (ledger entry %d) could not be saved: %v\n", rc, err)
	}
	return emit(stdout, cf.json, sig, func() {
		fmt.Fprintf(stdout, "signed report %s on %s from %s to %s (ledger entry %d)\n", rep.Hash, rep.Facts.Agreement, rep.Facts.From, rep.Facts.To, sig.LedgerIndex)
	})
}

// checkedSignature is a stored report signature as `report signatures`
// checked it on the party's own machine.
type checkedSignature struct {
	client.ReportSignature
	// Check is "ok" when the statement's Ed25519 signature verifies
	// against the signer's registered key and says what the server lists
	// (party, key, period, report hash); otherwise why not.
	Check string `json:"check"`
}

// cmdReportSignatures lists the report signatures recorded under an
// agreement with their signed statements, and checks each one here: the
// signature against the signer's registered key, and the statement
// against what the server says it signs.
func cmdReportSignatures(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report signatures", stderr)
	cf := addClientFlags(fs)
	agr := fs.String("agreement", "", "the agreement (id or a unique prefix)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *agr == "" {
		return fmt.Errorf("%w: report signatures takes --agreement ID only", errUsage)
	}
	c, _, err := cf.client()
	if err != nil {
		return err
	}
	id, err := resolveID(ctx, c, "agreement", *agr)
	if err != nil {
		return err
	}
	sigs, err := c.ReportSignatures(ctx, id)
	if err != nil {
		return err
	}
	out := make([]checkedSignature, len(sigs))
	failed := 0
	for i, sg := range sigs {
		out[i] = checkedSignature{ReportSignature: sg, Check: checkReportSignature(clientKeys{ctx: ctx, c: c, party: sg.Party}, id, sg)}
		if out[i].Check != "ok" {
			failed++
		}
	}
	err = emit(stdout, cf.json, out, func() {
		if len(out) == 0 {
			fmt.Fprintln(stdout, "no report signatures with a stored statement under this agreement")
			return
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LEDGER\tPARTY\tKEY\tFROM\tTO\tREPORT\tSIGNATURE")
		for _, x := range out {
			fmt.Fprintf(tw, "#%d\t%s\t%s\t%s\t%s\t%s\t%s\n", x.LedgerIndex, x.Party, x.KeyID, x.From.UTC().Format(time.RFC3339Nano),
				x.To.UTC().Format(time.RFC3339Nano), x.ReportHash, x.Check)
		}
		tw.Flush()
	})
	if err == nil && failed > 0 {
		err = fmt.Errorf("%d of %d report signature(s) did not check", failed, len(out))
	}
	return err
}

// checkReportSignature returns "ok", or why sg's statement does not check.
func checkReportSignature(keys agreement.KeyResolver, agreementID string, sg client.ReportSignature) string {
	if len(sg.Statement) == 0 {
		return "FAILED: no statement"
	}
	var sr agreement.SignedReport
	if err := json.Unmarshal(sg.Statement, &sr); err != nil {
		return "FAILED: the statement does not decode: " + err.Error()
	}
	switch {
	case sr.AgreementID != agreementID || sr.PartyID != sg.Party || sr.KeyID != sg.KeyID || sr.ReportHash != sg.ReportHash ||
		!sr.From.Equal(sg.From) || !sr.To.Equal(sg.To):
		return "FAILED: the statement says something other than the server lists"
	}
	if err := agreement.VerifyReport(keys, sr); err != nil {
		return "FAILED: " + err.Error()
	}
	return "ok"
}

// clientKeys resolves the keys of one party from the server's key
// directory (its registered keys with their validity).
type clientKeys struct {
	ctx   context.Context
	c     *client.Client
	party string
}

func (k clientKeys) ResolveKey(keyID string, at time.Time) (string, agreement.PublicKeys, error) {
	keys, err := k.c.PartyKeys(k.ctx, k.party)
	if err != nil {
		return "", agreement.PublicKeys{}, err
	}
	for _, key := range keys {
		if key.Keys.KeyID != keyID {
			continue
		}
		if from, err := time.Parse(time.RFC3339Nano, key.ValidFrom); err == nil && at.Before(from) {
			return "", agreement.PublicKeys{}, fmt.Errorf("%w: key %s was not valid yet at %s", agreement.ErrUnknownKey, keyID, at.Format(time.RFC3339))
		}
		if until, err := time.Parse(time.RFC3339Nano, key.ValidUntil); err == nil && !at.Before(until) {
			return "", agreement.PublicKeys{}, fmt.Errorf("%w: key %s was retired at %s", agreement.ErrUnknownKey, keyID, key.ValidUntil)
		}
		return k.party, key.Keys, nil
	}
	return "", agreement.PublicKeys{}, fmt.Errorf("%w: %s has no registered key %s", agreement.ErrUnknownKey, k.party, keyID)
}
