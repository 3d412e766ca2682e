package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
)

func init() {
	register(command{"key", "manage the party's keys: key rotate", cmdKey})
}

// cmdKey wraps the key-rotation API (POST /api/v1/keys/rotate): the new
// keys are made here, the statement is signed here with the old key, and
// neither private key leaves this machine.
func cmdKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return fmt.Errorf("%w: key rotate [--profile P]", errUsage)
	}
	fs := newFlags("key rotate", stderr)
	cf := addClientFlags(fs)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: key rotate takes no arguments", errUsage)
	}
	c, p, err := cf.client()
	if err != nil {
		return err
	}
	if p.Keys == "" {
		return fmt.Errorf("%w: the profile has no key file; run parley keygen first", errUsage)
	}
	old, err := p.privateKeys()
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	fresh, err := agreement.GenerateKeys()
	if err != nil {
		return err
	}
	// The new key is written before the server hears of it, and the old one
	// is kept: deposits sealed to the old key can only be opened with it.
	pending := p.Keys + ".new"
	if err := agreement.WritePrivateKeysFile(pending, fresh); err != nil {
		return fmt.Errorf("writing the new key (a rotation left unfinished leaves %s; move it away first): %w", pending, err)
	}
	rot, err := agreement.RotateKeys(old, me.PartyID, fresh.Public(), time.Now())
	if err != nil {
		os.Remove(pending)
		return err
	}
	if err := c.RotateKeys(ctx, rot); err != nil {
		os.Remove(pending)
		return fmt.Errorf("the server refused the rotation; your keys are unchanged: %w", err)
	}
	archived := p.Keys + "." + old.KeyID() + ".old"
	if err := errors.Join(os.Rename(p.Keys, archived), os.Rename(pending, p.Keys)); err != nil {
		return fmt.Errorf("the server has your new key %s, but putting the files in place failed (new key in %s, old in %s): %w", fresh.KeyID(), pending, p.Keys, err)
	}
	return emit(stdout, cf.json, map[string]string{"old_key_id": old.KeyID(), "new_key_id": fresh.KeyID(), "file": p.Keys, "old_file": archived}, func() {
		fmt.Fprintf(stdout, "keys rotated: %s replaces %s from now on; signatures made before stay valid\n", fresh.KeyID(), old.KeyID())
		fmt.Fprintf(stdout, "new keys in %s; old keys kept in %s (needed to open deposits sealed to them)\n", p.Keys, archived)
	})
}
