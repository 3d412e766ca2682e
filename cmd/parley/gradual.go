package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/escrow"
)

// Gradual release of a handover between two nodes without an escrow node
// (docs/federation.md): the handover commands on a case proposed with
// --chunks. The bundle is split here, each chunk sealed here, and the
// commitment and each verdict signed here with the party's key; the nodes
// see only ciphertexts and signed statements.

// depositGradual splits bundle into the case's chunks, seals each to the
// counterpart and deposits them with the signed commitment.
func depositGradual(ctx context.Context, c *client.Client, cf *clientFlags, prof profile, hv *client.Handover, bundle []byte, sealed bool, agreementID string, stdout io.Writer) error {
	if !sealed {
		return fmt.Errorf("%w: handover %s is released gradually between two nodes, which take only sealed chunks: deposit with --sealed", errUsage, hv.ID)
	}
	if agreementID != "" && agreementID != hv.Agreement {
		return fmt.Errorf("handover %s is under agreement %s, not %s", hv.ID, hv.Agreement, agreementID)
	}
	keys, err := prof.privateKeys()
	if err != nil {
		return fmt.Errorf("the commitment to the chunks is signed with your key: %w", err)
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	counterpart := hv.Proposer
	if counterpart == me.PartyID {
		counterpart = hv.Counterpart
	}
	rcpt, err := sealingRecipient(ctx, c, cf, prof, hv.Agreement, counterpart)
	if err != nil {
		return err
	}
	parts, err := client.SplitBundle(bundle, hv.Gradual.Chunks)
	if err != nil {
		return err
	}
	h, rc, err := c.DepositChunks(ctx, keys, hv.ID, me.PartyID, rcpt, parts)
	if err != nil {
		return err
	}
	return emit(stdout, cf.json, map[string]any{"handover": h.ID, "chunks": len(parts), "ledger_index": int64(rc)}, func() {
		fmt.Fprintf(stdout, "deposited %d sealed chunks in %s with your signed commitment (ledger entry %d)\n", len(parts), h.ID, rc)
		fmt.Fprintf(stdout, "they are released alternately with %s's: open and confirm each of theirs with 'parley handover confirm %s'\n", names.name(counterpart), h.ID)
	})
}

// openChunk fetches chunk index of depositor (the other side when "") and
// opens it with the profile's key: the bundle's objects, and the chunk's
// SHA-256 as fetched.
func openChunk(ctx context.Context, c *client.Client, prof profile, id, depositor string, index int) ([]json.RawMessage, string, error) {
	d, err := c.FetchChunk(ctx, id, depositor, index)
	if err != nil {
		return nil, "", err
	}
	keys, err := prof.privateKeys()
	if err != nil {
		return nil, d.SHA256, err
	}
	plain, err := client.Unseal(d.Content, keys.Sealing)
	if err != nil {
		return nil, d.SHA256, fmt.Errorf("chunk %d does not decrypt with your key (%w)", index, err)
	}
	if _, err := escrow.ParseBundle(plain); err != nil {
		return nil, d.SHA256, fmt.Errorf("chunk %d is not a valid STIX bundle (%w)", index, err)
	}
	var b struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(plain, &b); err != nil {
		return nil, d.SHA256, fmt.Errorf("chunk %d: %w", index, err)
	}
	return b.Objects, d.SHA256, nil
}

// fetchGradual writes the other side's chunks that arrived (or chunk
// only), each decrypted and validated, merged into one bundle.
func fetchGradual(ctx context.Context, c *client.Client, cf *clientFlags, prof profile, hv *client.Handover, from string, chunk int, out string, stdout, stderr io.Writer) error {
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	depositor := from
	if depositor == "" {
		depositor = hv.Proposer
		if depositor == me.PartyID {
			depositor = hv.Counterpart
		}
	}
	var indices []int
	for _, ch := range hv.Gradual.List {
		if ch.Depositor == depositor && ch.Held && (chunk == 0 || ch.Index == chunk) {
			indices = append(indices, ch.Index)
		}
	}
	slices.Sort(indices)
	if len(indices) == 0 {
		return fmt.Errorf("no chunk of %s is here yet in %s (chunks arrive one at a time, each after you confirm the one before)", names.name(depositor), hv.ID)
	}
	var objects []json.RawMessage
	for _, i := range indices {
		objs, _, err := openChunk(ctx, c, prof, hv.ID, depositor, i)
		if err != nil {
			return fmt.Errorf("%w; reject it with 'parley handover reject %s --reason ...'", err, hv.ID)
		}
		objects = append(objects, objs...)
	}
	bundle, err := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--" + newUUID(), "objects": objects})
	if err != nil {
		return err
	}
	if out != "" {
		if err := os.WriteFile(out, bundle, 0o600); err != nil {
			return err
		}
	} else if !cf.json {
		_, err := stdout.Write(bundle)
		return err
	}
	return emit(stdout, cf.json, map[string]any{"handover": hv.ID, "depositor": depositor, "chunks": indices, "of": hv.Gradual.Chunks,
		"objects": len(objects), "file": out}, func() {
		fmt.Fprintf(stderr, "%d of %d chunks from %s: %d valid objects written to %s\n", len(indices), hv.Gradual.Chunks, names.name(depositor), len(objects), out)
	})
}

// judgeGradual confirms (after opening it) or rejects the other side's
// next chunk waiting for the caller's verdict, signed with its key. With
// printOnly it writes the signed verdict instead of sending it, for the
// dashboard, which cannot sign without the party's key.
func judgeGradual(ctx context.Context, c *client.Client, cf *clientFlags, prof profile, id string, confirm bool, reason string, printOnly bool, stdout io.Writer) error {
	hv, err := c.Handover(ctx, id)
	if err != nil {
		return err
	}
	if hv.Gradual == nil {
		return fmt.Errorf("%w: handover %s is released in one step; there are no chunks to confirm or reject (dispute it after release)", errUsage, id)
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	theirs := hv.Proposer
	if theirs == me.PartyID {
		theirs = hv.Counterpart
	}
	next, arrived, confirmed, sum := 0, 0, 0, ""
	for _, ch := range hv.Gradual.List {
		if ch.Depositor != theirs {
			continue
		}
		if ch.MovedAt != nil {
			arrived++
		}
		if ch.ConfirmedAt != nil {
			confirmed++
		} else if ch.MovedAt != nil && (next == 0 || ch.Index < next) {
			next, sum = ch.Index, ch.SHA256
		}
	}
	if next == 0 {
		return fmt.Errorf("no chunk of %s waits for your verdict in %s: %d of %d arrived, %d confirmed", names.name(theirs), id, arrived, hv.Gradual.Chunks, confirmed)
	}
	keys, err := prof.privateKeys()
	if err != nil {
		return fmt.Errorf("a verdict on a chunk is signed with your key: %w", err)
	}
	action, objects := agreement.ChunkReject, 0
	if confirm {
		objs, fetched, err := openChunk(ctx, c, prof, id, theirs, next)
		if err != nil {
			return fmt.Errorf("%w; reject it with 'parley handover reject %s --reason ...'", err, id)
		}
		action, objects, sum = agreement.ChunkConfirm, len(objs), fetched
	}
	v := agreement.ChunkVerdict{Action: action, Handover: id, Depositor: theirs, Recipient: me.PartyID, Index: next, SHA256: sum, Reason: reason}
	if printOnly {
		signed, err := client.SignChunkVerdict(keys, v)
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(signed)
	}
	h, rc, err := c.JudgeChunk(ctx, keys, v)
	if err != nil {
		return err
	}
	return emit(stdout, cf.json, map[string]any{"handover": id, "action": action, "index": next, "of": hv.Gradual.Chunks, "objects": objects,
		"state": h.State, "ledger_index": int64(rc)}, func() {
		if confirm {
			fmt.Fprintf(stdout, "confirmed chunk %d of %d from %s (%d valid objects; ledger entry %d)\n", next, hv.Gradual.Chunks, names.name(theirs), objects, rc)
		} else {
			fmt.Fprintf(stdout, "rejected chunk %d of %d from %s (ledger entry %d): the exchange is stopped on both nodes\n", next, hv.Gradual.Chunks, names.name(theirs), rc)
		}
		if h.State == "released" {
			fmt.Fprintf(stdout, "every chunk is handed over both ways: handover %s is released; 'parley handover fetch %s' writes what you received\n", id, id)
		}
	})
}
