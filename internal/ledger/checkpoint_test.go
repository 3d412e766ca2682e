package ledger

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestParseCheckpoint(t *testing.T) {
	root := "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
	tests := []struct {
		name string
		in   string
		ok   bool
		ext  int
	}{
		{"plain", "example.com/log\n20852163\n" + root + "\n", true, 0},
		{"extensions", "example.com/log\n0\n" + root + "\nfoo bar\nbaz\n", true, 2},
		{"no final newline", "example.com/log\n1\n" + root, false, 0},
		{"two lines", "example.com/log\n1\n", false, 0},
		{"leading zero", "example.com/log\n01\n" + root + "\n", false, 0},
		{"negative", "example.com/log\n-1\n" + root + "\n", false, 0},
		{"plus sign", "example.com/log\n+1\n" + root + "\n", false, 0},
		{"short hash", "example.com/log\n1\nAAAA\n", false, 0},
		{"unpadded hash", "example.com/log\n1\n" + strings.TrimSuffix(root, "=") + "\n", false, 0},
		{"empty origin", "\n1\n" + root + "\n", false, 0},
		{"empty extension", "example.com/log\n1\n" + root + "\n\n", false, 0},
		{"control char", "example.com/\tlog\n1\n" + root + "\n", false, 0},
		{"overflow", "example.com/log\n99999999999999999999\n" + root + "\n", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCheckpoint([]byte(tt.in))
			if !tt.ok {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Extensions) != tt.ext || string(c.Marshal()) != tt.in {
				t.Fatalf("round trip: %q (%d extensions)", c.Marshal(), len(c.Extensions))
			}
		})
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("example.com/log\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"))
	f.Add([]byte("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCheckpoint(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Marshal(), in) {
			t.Fatalf("parsed %q re-marshals to %q", in, c.Marshal())
		}
	})
}

// FuzzOpenCheckpoint feeds arbitrary signed notes to the verifier: it must
// only ever accept the one body the key signed.
func FuzzOpenCheckpoint(f *testing.F) {
	s := testSigner(f)
	c := Checkpoint{Origin: testOrigin, Size: 5, Hash: tlog.RecordHash([]byte("x"))}
	signed, _ := s.Sign(c)
	f.Add(signed)
	f.Add(append(bytes.Clone(signed), "— w1 AAAAAAAA\n"...))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := OpenCheckpoint(in, s.Verifier())
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if got.Size != c.Size || got.Hash != c.Hash || got.Origin != c.Origin {
			t.Fatalf("accepted a checkpoint the key never signed: %+v", got)
		}
	})
}

func TestCheckpointVerifiesWithNoteDirectly(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	appendN(t, st, 0, 10, 10)
	s := testSigner(t)
	c, signed, err := NewCheckpoint(ctx, st, s)
	if err != nil {
		t.Fatal(err)
	}
	// What an independent client does: x/mod/sumdb/note with the vkey string.
	v, err := note.NewVerifier(s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	if n.Sigs[0].Name != testOrigin {
		t.Fatalf("signed by %q", n.Sigs[0].Name)
	}
	lines := strings.Split(n.Text, "\n")
	root, _ := TreeHash(ctx, st, 10)
	if lines[0] != testOrigin || lines[1] != "10" || lines[2] != root.String() || c.Hash != root {
		t.Fatalf("checkpoint body %q", n.Text)
	}
	if _, err := VerifyCheckpoint(signed, s.VerifierKey()); err != nil {
		t.Fatal(err)
	}
}

func TestNewCheckpointOnePerSize(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	s := testSigner(t)
	c0, n0, err := NewCheckpoint(ctx, st, s)
	if err != nil || c0.Size != 0 {
		t.Fatalf("empty log checkpoint: %+v, %v", c0, err)
	}
	c0b, n0b, err := NewCheckpoint(ctx, st, s)
	if err != nil || c0b.Size != 0 || c0b.Hash != c0.Hash {
		t.Fatalf("re-sign without growth: %+v, %v", c0b, err)
	}
	if !bytes.Equal(n0, n0b) {
		t.Fatal("signed a second head for size 0")
	}
	appendN(t, st, 0, 3, 3)
	c3, n3, err := NewCheckpoint(ctx, st, s)
	if err != nil || c3.Size != 3 {
		t.Fatal(err)
	}
	size, latest, err := st.LatestCheckpoint(ctx)
	if err != nil || size != 3 || !bytes.Equal(latest, n3) {
		t.Fatalf("latest = %d, %v", size, err)
	}
	// A different head for a saved size is refused by the store.
	other := testSigner(t)
	forged, _ := other.Sign(Checkpoint{Origin: testOrigin, Size: 3, Hash: tlog.Hash{1}})
	if err := st.SaveCheckpoint(ctx, 3, forged); !errors.Is(err, ErrConflict) {
		t.Fatalf("second head at size 3: %v, want ErrConflict", err)
	}
}

func TestOpenCheckpointFailures(t *testing.T) {
	s := testSigner(t)
	other := testSigner(t)
	c := Checkpoint{Origin: testOrigin, Size: 7, Hash: tlog.Hash{7}}
	good, _ := s.Sign(c)
	byOther, _ := other.Sign(c)
	tampered := bytes.Replace(good, []byte("\n7\n"), []byte("\n8\n"), 1)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"other key", byOther, ErrBadSignature},
		{"edited body", tampered, ErrBadSignature},
		{"no signature", c.Marshal(), ErrMalformed},
		{"garbage", []byte("hello"), ErrMalformed},
		{"huge", bytes.Repeat([]byte("a"), MaxNoteSize+1), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenCheckpoint(tt.in, s.Verifier()); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckpointerSignsWhileGrowing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st := NewMemStore()
	s := testSigner(t)
	signedSizes := make(chan int64, 16)
	cp := &Checkpointer{Update: st.Update, Signer: s, Interval: 5 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		Signed: func(_ context.Context, c Checkpoint, _ []byte) { signedSizes <- c.Size }}
	done := make(chan error)
	go func() { done <- cp.Run(ctx) }()
	if got := <-signedSizes; got != 0 {
		t.Fatalf("first checkpoint size %d", got)
	}
	appendN(t, st, 0, 4, 4)
	if got := <-signedSizes; got != 4 {
		t.Fatalf("checkpoint after growth: size %d", got)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	select {
	case n := <-signedSizes:
		t.Fatalf("signed size %d again without growth", n)
	default:
	}
}
