package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/server"
)

func init() {
	register(command{"witness", "cosign the ledger's checkpoints: witness keygen [--name N] | witness cosign | witness add --data DIR [NAME] VKEY (operator)", cmdWitness})
}

func cmdWitness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: witness keygen | witness cosign | witness add [NAME] VKEY", errUsage)
	}
	switch args[0] {
	case "keygen":
		return witnessKeygen(ctx, args[1:], stdout, stderr)
	case "cosign":
		return witnessCosign(ctx, args[1:], stdout, stderr)
	case "add":
		return witnessAdd(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: unknown witness subcommand %q", errUsage, args[0])
}

// witnessKeyPath is where a profile's witness private key lives by default.
func witnessKeyPath(st audit.State) string { return filepath.Join(st.Dir, "witness.key") }

func witnessKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("witness keygen", stderr)
	cf := addClientFlags(fs)
	name := fs.String("name", "", "witness name (default: the profile's party name + \"-witness\")")
	out := fs.String("out", "", "private key file (default: witness.key in the profile's ledger state directory)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	st, err := cf.auditState()
	if err != nil {
		return err
	}
	if *name == "" {
		p, _ := cf.resolve()
		base := p.Name
		if base == "" {
			base = cf.profileName()
		}
		*name = strings.Map(func(r rune) rune {
			if r == ' ' || r == '+' || r < ' ' {
				return '-'
			}
			return r
		}, base) + "-witness"
	}
	path := *out
	if path == "" {
		path = witnessKeyPath(st)
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists; refusing to overwrite a witness key (its cosignatures would no longer verify)", path)
	}
	skey, vkey, err := ledger.GenerateWitnessKey(*name)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(skey+"\n"), 0o600); err != nil {
		return err
	}
	// Our own witness is trusted by definition: pin it for --require-cosigner NAME.
	if _, err := st.PinWitness(vkey); err != nil {
		return err
	}
	return emit(stdout, cf.json, map[string]string{"name": *name, "vkey": vkey, "file": path}, func() {
		fmt.Fprintf(stdout, "witness key written to %s (keep it private)\nwitness %s, verifier key:\n%s\n", path, *name, vkey)
		fmt.Fprintln(stdout, "Give the verifier key to the server's operator (parley witness add) and to parties that require your cosignature.")
	})
}

func witnessCosign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("witness cosign", stderr)
	cf := addClientFlags(fl)
	keyFile := fl.String("key", "", "witness private key file (default: witness.key in the profile's ledger state directory)")
	logKey := fl.String("log-key", "", "the log's verifier key (default: the key pinned by parley verify)")
	if _, err := parse(fl, args); err != nil {
		return err
	}
	p, err := cf.resolve()
	if err != nil {
		return err
	}
	st, err := cf.auditState()
	if err != nil {
		return err
	}
	path := *keyFile
	if path == "" {
		path = witnessKeyPath(st)
	}
	skey, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("witness key: %w (run parley witness keygen)", err)
	}
	vkey := *logKey
	if vkey == "" {
		if vkey, err = st.LogKey(); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %w", errUsage, errNoLogKey)
		} else if err != nil {
			return err
		}
	}
	res, err := audit.Cosign(ctx, st, strings.TrimSpace(string(skey)), vkey, audit.NewRemote(p.Server, p.Token, nil), time.Now())
	if err != nil {
		return err
	}
	return emit(stdout, cf.json, map[string]any{"size": res.Checkpoint.Size, "root": res.Checkpoint.Hash.String(), "from": res.From, "line": string(res.Line)}, func() {
		fmt.Fprintf(stdout, "cosigned checkpoint %d (root %s), consistent with size %d cosigned before\n", res.Checkpoint.Size, res.Checkpoint.Hash, res.From)
	})
}

func witnessAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("witness add", stderr)
	data := dataFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var name, vkey string
	switch len(pos) {
	case 1:
		vkey = pos[0]
	case 2:
		name, vkey = pos[0], pos[1]
	default:
		return fmt.Errorf("%w: witness add needs [NAME] VKEY", errUsage)
	}
	v, err := ledger.NewCosignatureVerifier(vkey)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if name != "" && name != v.Name() {
		return fmt.Errorf("%w: the key is witness %q's, not %q", errUsage, v.Name(), name)
	}
	stor, err := openOperator(ctx, *data)
	if err != nil {
		return err
	}
	defer stor.Close()
	if name, err = server.AddWitness(ctx, stor, vkey); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "witness %s registered; its cosignatures are now accepted and served with checkpoints\n", name)
	return nil
}
