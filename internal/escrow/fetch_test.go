package escrow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

// TestFetchWhole reads a deposit larger than one answer part by part, and
// refuses a peer whose answers are not the parts asked for.
func TestFetchWhole(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), (2*FetchPartSize+100)/16)
	sum := sha256.Sum256(content)
	hexSum := hex.EncodeToString(sum[:])
	honest := func(_ context.Context, off int64) (FetchAnswer, error) {
		return partAt(FetchRequest{Handover: "h", Depositor: "p", Offset: off}, content[off:min(off+FetchPartSize, int64(len(content)))], int64(len(content)), sum)
	}
	got, err := FetchWhole(context.Background(), "h", "p", 0, "", nil, honest)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("whole from nothing: %d bytes, %v", len(got), err)
	}
	got, err = FetchWhole(context.Background(), "h", "p", int64(len(content)), hexSum, content[:PartAcrossNodes:PartAcrossNodes], honest)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the rest after the first part: %d bytes, %v", len(got), err)
	}
	lying := func(edit func(*FetchAnswer)) FetchFunc {
		return func(ctx context.Context, off int64) (FetchAnswer, error) {
			a, err := honest(ctx, off)
			if off > 0 {
				edit(&a)
			}
			return a, err
		}
	}
	for name, fetch := range map[string]FetchFunc{
		"another case":      lying(func(a *FetchAnswer) { a.Handover = "other" }),
		"another depositor": lying(func(a *FetchAnswer) { a.Depositor = "other" }),
		"another offset":    lying(func(a *FetchAnswer) { a.Offset-- }),
		"another size":      lying(func(a *FetchAnswer) { a.Size++ }),
		"another hash":      lying(func(a *FetchAnswer) { a.SHA256 = hex.EncodeToString(make([]byte, 32)) }),
		"too many bytes":    lying(func(a *FetchAnswer) { a.Content = append(a.Content, 0) }),
		"no bytes":          lying(func(a *FetchAnswer) { a.Content = nil }),
		"fails":             func(context.Context, int64) (FetchAnswer, error) { return FetchAnswer{}, errors.New("down") },
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := FetchWhole(context.Background(), "h", "p", 0, "", nil, fetch); err == nil {
				t.Fatalf("took %d bytes", len(got))
			}
		})
	}
	if _, err := FetchWhole(context.Background(), "h", "p", 0, "", nil, func(context.Context, int64) (FetchAnswer, error) {
		return FetchAnswer{Handover: "h", Depositor: "p", Size: MaxDeposit + 1, Content: []byte("x")}, nil
	}); err == nil {
		t.Fatal("took a deposit said to be over MaxDeposit")
	}
}
