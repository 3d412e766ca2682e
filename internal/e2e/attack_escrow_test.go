package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// TestAttackSealedJunk: a party deposits, as its sealed half of a swap,
// bytes that only look sealed (an age header followed by zeros, a header
// alone, a truncated or malformed file), stating their true SHA-256, so
// that the server releases the other side's real dossier against nothing.
// The server refuses each with a clear error, the case stays open, and the
// honest side's deposit is neither released nor changed.
func TestAttackSealedJunk(t *testing.T) {
	s := Start(t)
	honest, cheat := s.NewParty(t, "honest"), s.NewParty(t, "cheat")
	d := Document(t, honest, cheat, nil)
	Activate(t, honest, cheat, d)
	h := OpenCase(t, honest, cheat, d.ID, time.Time{})

	dossier := Bundle(Indicator(1, ""))
	ct, sum, err := client.Seal(dossier, cheat.Keys.Public().SealingRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := honest.C.DepositSealed(ctx, h.ID, ct, sum, client.DepositOptions{}); err != nil {
		t.Fatalf("honest deposit: %v", err)
	}

	// A real age file sealed to the honest side, to cut up.
	real, _, err := client.Seal(Bundle(Indicator(2, "")), honest.Keys.Public().SealingRecipient)
	if err != nil {
		t.Fatal(err)
	}
	macAt := bytes.Index(real, []byte("\n--- "))
	headerEnd := macAt + 1 + bytes.IndexByte(real[macAt+1:], '\n') + 1
	header, payload := real[:headerEnd], real[headerEnd:]
	lines := strings.SplitAfter(string(header), "\n")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	junk := []struct {
		name, mention string
		body          []byte
	}{
		{"age header followed by zeros", "without its MAC line", cat([]byte("age-encryption.org/v1\n"), make([]byte, 8192))},
		{"real header followed by zeros", "run of 32 zero bytes", cat(header, make([]byte, len(payload)))},
		{"header only", "shorter than its 16-byte nonce", header},
		{"truncated payload", "last chunk is 8 bytes", cat(header, payload[:16+8])},
		{"no recipient stanza", "no recipient stanza", cat([]byte(lines[0]+lines[3]), payload)},
		{"bad MAC line", "MAC line must be", cat([]byte(lines[0]+lines[1]+lines[2]+"---"+strings.TrimPrefix(lines[3], "--- ")), payload)},
		{"plaintext", "must start with", dossier},
	}
	for _, j := range junk {
		s := sha256.Sum256(j.body)
		_, err := cheat.C.DepositSealed(ctx, h.ID, j.body, hex.EncodeToString(s[:]), client.DepositOptions{})
		wantAPIError(t, j.name, err, http.StatusBadRequest, "invalid", j.mention)
	}

	got, err := honest.C.Handover(ctx, h.ID)
	if err != nil || got.State != "accepted" || len(got.Deposits) != 1 || got.Deposits[0].Party != honest.ID || got.Deposits[0].SHA256 != sum {
		t.Fatalf("after the junk deposits the case is %+v, %v; want it accepted with only the honest deposit", got, err)
	}
	_, err = cheat.C.FetchDeposit(ctx, h.ID, "")
	wantAPIError(t, "cheat fetching the unreleased dossier", err, http.StatusConflict, "conflict", "only once it is released")
	mine, err := honest.C.FetchDeposit(ctx, h.ID, honest.ID)
	if err != nil || !bytes.Equal(mine.Content, ct) {
		t.Fatalf("the honest deposit changed: %v", err)
	}
}
