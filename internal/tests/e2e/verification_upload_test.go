package e2e

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
)

// TestVerificationUpload: a party's client verifies the ledger and uploads
// the signed statement; the server keeps it and lists it to that party
// only. A hostile counterpart with valid credentials cannot record a
// statement in another's name (naming it, or signing with its key), a
// forged signature is refused, and so is a root or size the server never
// signed.
func TestVerificationUpload(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	Activate(t, a, b, Document(t, a, b, nil)) // ledger entries concerning alpha
	vctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rep, err := audit.Verify(vctx, audit.Options{State: audit.State{Dir: t.TempDir()}, Remote: audit.NewRemote(s.URL, a.Token, nil), API: a.C, Party: a.ID,
		FetchKey: func(ctx context.Context) (string, error) { return audit.FetchLogKey(ctx, s.URL, a.Token, nil) }, Settle: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil || rep.Size == 0 || rep.Mine == 0 || rep.Mine > rep.Entries {
		t.Fatalf("alpha's verify: %v, size %d, %d entries replayed", err, rep.Size, rep.Entries)
	}
	stmt := func(p *Party) agreement.VerificationStatement {
		return agreement.VerificationStatement{PartyID: p.ID, Origin: rep.Checkpoint.Origin, Size: rep.Size, Root: rep.Root,
			Result: agreement.VerificationOK, Entries: rep.Mine, VerifiedAt: time.Now()}
	}
	sign := func(k *agreement.PrivateKeys, st agreement.VerificationStatement) agreement.SignedVerification {
		t.Helper()
		sv, err := agreement.SignVerification(k, st)
		if err != nil {
			t.Fatal(err)
		}
		return sv
	}

	// Before any upload, nothing is listed.
	if vs, err := a.C.Verifications(ctx, 10); err != nil || len(vs) != 0 {
		t.Fatalf("alpha's verifications before any upload: %+v, %v", vs, err)
	}
	good := sign(a.Keys, stmt(a))
	v, err := a.C.UploadVerification(ctx, good)
	if err != nil {
		t.Fatalf("alpha's upload: %v", err)
	}
	if v.Seq != 1 || v.Size != rep.Size || v.Root != rep.Root || v.Entries != rep.Mine || v.Statement.KeyID != a.Keys.KeyID() {
		t.Fatalf("stored %+v, want size %d root %s entries %d", v, rep.Size, rep.Root, rep.Entries)
	}

	// Bravo names alpha in a statement signed with its own key: 403.
	_, err = b.C.UploadVerification(ctx, sign(b.Keys, stmt(a)))
	wantAPIError(t, "bravo naming alpha", err, 403, "forbidden", "")
	// Bravo replays alpha's own signed statement: 403 (it names alpha).
	_, err = b.C.UploadVerification(ctx, good)
	wantAPIError(t, "bravo replaying alpha's statement", err, 403, "forbidden", "")
	// Bravo names itself but signs with alpha's key (stolen or replayed): 403.
	_, err = b.C.UploadVerification(ctx, sign(a.Keys, stmt(b)))
	wantAPIError(t, "bravo signing with alpha's key", err, 403, "forbidden", "")
	// A forged signature: alpha's statement altered after signing.
	forged := good
	forged.Entries++
	_, err = a.C.UploadVerification(ctx, forged)
	wantAPIError(t, "an altered statement", err, 400, "invalid", "")
	badSig := good
	badSig.Sig = append([]byte(nil), good.Sig...)
	badSig.Sig[0] ^= 1
	_, err = a.C.UploadVerification(ctx, badSig)
	wantAPIError(t, "a flipped signature bit", err, 400, "invalid", "")
	// A root the server never signed, correctly signed by alpha: 409.
	fake := stmt(a)
	fake.Root = base64.StdEncoding.EncodeToString(make([]byte, 32))
	_, err = a.C.UploadVerification(ctx, sign(a.Keys, fake))
	wantAPIError(t, "a root never signed", err, 409, "unknown_checkpoint", "")
	// A size with no checkpoint at all.
	far := stmt(a)
	far.Size = rep.Size + 1_000_000
	_, err = a.C.UploadVerification(ctx, sign(a.Keys, far))
	wantAPIError(t, "a size never signed", err, 409, "unknown_checkpoint", "")
	// Another origin for a real size and root.
	other := stmt(a)
	other.Origin = "evil.example/log"
	_, err = a.C.UploadVerification(ctx, sign(a.Keys, other))
	wantAPIError(t, "another origin", err, 409, "unknown_checkpoint", "")

	// Bravo's own valid upload, then each lists only its own.
	if _, err := b.C.UploadVerification(ctx, sign(b.Keys, stmt(b))); err != nil {
		t.Fatalf("bravo's own upload: %v", err)
	}
	if _, err := a.C.UploadVerification(ctx, sign(a.Keys, stmt(a))); err != nil {
		t.Fatalf("alpha's second upload: %v", err)
	}
	as, err := a.C.Verifications(ctx, 10)
	if err != nil || len(as) != 2 || as[0].Seq != 2 || as[1].Seq != 1 {
		t.Fatalf("alpha's list: %+v, %v; want its two uploads, newest first", as, err)
	}
	for _, v := range as {
		if v.Statement.PartyID != a.ID {
			t.Fatalf("alpha's list holds %s's statement", v.Statement.PartyID)
		}
	}
	bs := ownVerifications(t, b)
	if len(bs) != 1 || bs[0].Statement.PartyID != b.ID {
		t.Fatalf("bravo's list: %+v; want its one upload", bs)
	}
	if one, err := a.C.Verifications(ctx, 1); err != nil || len(one) != 1 || one[0].Seq != 2 {
		t.Fatalf("limit=1: %+v, %v", one, err)
	}
	_, err = a.C.Verifications(ctx, 0)
	wantAPIError(t, "limit=0", err, 400, "invalid", "limit")
}

func ownVerifications(t *testing.T, p *Party) []client.Verification {
	t.Helper()
	vs, err := p.C.Verifications(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}
