package ledger_test

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
)

// A domain package appends an entry in the transaction that changes its
// state; the server signs checkpoints; a party verifies its receipt.
func Example() {
	ctx := context.Background()
	db := ledger.NewMemStore() // the server passes its SQL store's Update instead

	skey, vkey, _ := ledger.GenerateSignerKey("parley.example/ledger")
	signer, _ := ledger.NewSigner(skey)

	entry := ledger.Entry{
		Kind:      ledger.KindHandoverReleased,
		Subject:   "handover-42",
		Agreement: "agreement-7",
		Parties:   []string{"cert-a", "police-b"},
		Digests:   map[string]string{"bundle": "sha256:" + fmt.Sprintf("%064x", 42)},
		Time:      time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
	}
	var receipt ledger.Receipt
	_ = db.Update(ctx, func(st ledger.Store) error {
		// ... the handover's own state change goes here, same transaction ...
		first, err := ledger.Append(ctx, st, entry)
		if err != nil {
			return err
		}
		raw, err := st.ReadEntries(ctx, first, first+1) // the entry as sealed
		if err != nil {
			return err
		}
		receipt = ledger.ReceiptFor(first, raw[0])
		_, _, err = ledger.NewCheckpoint(ctx, st, signer)
		return err
	})

	// Client side (`parley verify`), normally over audit.LedgerClient.
	v, _ := ledger.NewVerifier(vkey, "")
	remote := ledger.NewLocalRemote(db)
	c, err := v.Update(ctx, remote)
	fmt.Println(c.Size, err)
	fmt.Println(v.CheckReceipts(ctx, remote, []ledger.Receipt{receipt}))
	// Output:
	// 1 <nil>
	// <nil>
}
