package ledger

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEntryEncodeDecode(t *testing.T) {
	local := time.FixedZone("CET", 3600)
	tests := []struct {
		name    string
		e       Entry
		want    string // exact canonical encoding, or "" to skip
		wantErr error
	}{
		{
			name: "minimal",
			e:    Entry{Kind: KindRequestOverdue, Subject: "req-1", Time: t0},
			want: `{"kind":"request.overdue","subject":"req-1","time":"2026-11-25T12:00:00Z","v":1}`,
		},
		{
			name: "sorted keys, local time normalized, no HTML escaping",
			e: Entry{Kind: KindHandoverReleased, Subject: "h<1>", Actor: "a&b", Time: t0.In(local),
				Attrs: map[string]string{"z": "1", "a": "2"}, Parties: []string{"p2", "p1"}},
			want: `{"actor":"a&b","attrs":{"a":"2","z":"1"},"kind":"handover.released","parties":["p2","p1"],"subject":"h<1>","time":"2026-11-25T12:00:00Z","v":1}`,
		},
		{name: "unknown kind", e: Entry{Kind: "x", Subject: "s", Time: t0}, wantErr: ErrInvalid},
		{name: "no subject", e: Entry{Kind: KindFeedBatch, Time: t0}, wantErr: ErrInvalid},
		{name: "no time", e: Entry{Kind: KindFeedBatch, Subject: "s"}, wantErr: ErrInvalid},
		{name: "bad digest", e: Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, Digests: map[string]string{"d": "md5:00"}}, wantErr: ErrInvalid},
		{name: "upper-case digest", e: Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, Digests: map[string]string{"d": "sha256:" + strings.Repeat("A", 64)}}, wantErr: ErrInvalid},
		{name: "invalid UTF-8", e: Entry{Kind: KindFeedBatch, Subject: "s\xff", Time: t0}, wantErr: ErrInvalid},
		{name: "future version", e: Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, V: 3}, wantErr: ErrInvalid},
		{
			name: "version 2: nonce and commitments",
			e: Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, Nonce: strings.Repeat("ab", NonceSize),
				Digests: map[string]string{"objects": "hmac-sha256:" + strings.Repeat("0", 64)}},
			want: `{"digests":{"objects":"hmac-sha256:` + strings.Repeat("0", 64) + `"},"kind":"feed.batch","nonce":"` + strings.Repeat("ab", NonceSize) + `","subject":"s","time":"2026-11-25T12:00:00Z","v":2}`,
		},
		{name: "version 2 without nonce", e: Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, V: 2}, wantErr: ErrInvalid},
		{name: "version 2 short nonce", e: Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, V: 2, Nonce: "abcd"}, wantErr: ErrInvalid},
		{name: "version 2 plain digest", e: Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, Nonce: strings.Repeat("ab", NonceSize),
			Digests: map[string]string{"objects": "sha256:" + strings.Repeat("0", 64)}}, wantErr: ErrInvalid},
		{name: "version 1 with nonce", e: Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, V: 1, Nonce: strings.Repeat("ab", NonceSize)}, wantErr: ErrInvalid},
		{name: "version 1 commitment", e: Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, V: 1,
			Digests: map[string]string{"objects": "hmac-sha256:" + strings.Repeat("0", 64)}}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.e.Encode()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && string(b) != tt.want {
				t.Fatalf("encoding\n got %s\nwant %s", b, tt.want)
			}
			e, err := DecodeEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := e.Encode()
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs: %s", again)
			}
		})
	}
}

func TestDecodeEntryRejectsNonCanonical(t *testing.T) {
	canonical := `{"kind":"request.overdue","subject":"req-1","time":"2026-11-25T12:00:00Z","v":1}`
	if _, err := DecodeEntry([]byte(canonical)); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		`{"subject":"req-1","kind":"request.overdue","time":"2026-11-25T12:00:00Z","v":1}`,  // key order
		`{"kind":"request.overdue", "subject":"req-1","time":"2026-11-25T12:00:00Z","v":1}`, // whitespace
		`{"kind":"request.overdue","subject":"req-1","time":"2026-11-25T13:00:00+01:00","v":1}`,
		`{"kind":"request.overdue","subject":"req-1","time":"2026-11-25T12:00:00Z","v":1,"x":1}`,
		`{"kind":"request.overdue","subject":"req-1","time":"2026-11-25T12:00:00Z","v":2}`,
		`{"kind":"request.overdue","subject":"req-1","time":"2026-11-25T12:00:00Z","v":1} `,
		`{"kind":"request.overdue","subject":"req-1","time":"2026-11-25T12:00:00Z","v":1}{}`,
		`{"kind":"request.overdue","subject":"\u0072eq-1","time":"2026-11-25T12:00:00Z","v":1}`,
		``, `null`, `[]`,
	} {
		if _, err := DecodeEntry([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeEntry(%s) = %v, want ErrMalformed", in, err)
		}
	}
}

func TestKindsAreKnownAndDistinct(t *testing.T) {
	seen := map[Kind]bool{}
	for _, k := range Kinds() {
		if !k.Known() || seen[k] {
			t.Fatalf("kind %q unknown or repeated", k)
		}
		seen[k] = true
	}
	if len(seen) != 32 {
		t.Fatalf("%d kinds, want 32 (agreement 5, feed 5, handover 10, request 8, match 2, report 1, node 1)", len(seen))
	}
}

// FuzzDecodeEntry: whatever decodes must re-encode to exactly the input.
func FuzzDecodeEntry(f *testing.F) {
	for i := range 3 {
		b, _ := testEntry(i).Encode()
		f.Add(b)
	}
	f.Add([]byte(`{"kind":"request.overdue","subject":"r","time":"2026-11-25T12:00:00.5Z","v":1}`))
	for i := range 2 {
		sealed, _ := testEntry(i).Seal(bytes.Repeat([]byte{1}, CommitmentKeySize))
		b, _ := sealed.Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := DecodeEntry(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		out, err := e.Encode()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("decoded entry re-encodes to %q, %v; input %q", out, err, in)
		}
		// Whatever decodes, opening it with any key never panics and a
		// version-2 entry never opens to its own commitments as digests.
		if e.V == EntryVersion && len(e.Digests) > 0 {
			if err := e.Open(make([]byte, CommitmentKeySize), e.Digests); !errors.Is(err, ErrCommitment) {
				t.Fatalf("version-2 entry opens to its commitments taken as digests: %v", err)
			}
		}
	})
}

// TestSealOpen: a sealed entry hides its digests (a reader without the key
// cannot test a guess), opens under its own key to exactly the digests it
// was built with, and under no other key, role or digest.
func TestSealOpen(t *testing.T) {
	logKey := bytes.Repeat([]byte{7}, CommitmentKeySize)
	plain := map[string]string{"terms": "sha256:" + strings.Repeat("1", 64), "bundle": "sha256:" + strings.Repeat("2", 64)}
	e := Entry{Kind: KindHandoverProposed, Subject: "h", Time: t0, Digests: plain}
	s1, err := e.Seal(logKey)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := e.Seal(logKey)
	if s1.V != EntryVersion || s1.Nonce == s2.Nonce || s1.Digests["terms"] == s2.Digests["terms"] {
		t.Fatalf("two seals of one entry: %+v and %+v; want fresh nonces and unlinkable commitments", s1, s2)
	}
	if e.Digests["terms"] != plain["terms"] {
		t.Fatal("Seal modified its receiver's digests")
	}
	b, err := s1.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(strings.Repeat("1", 64))) {
		t.Fatalf("sealed entry carries the plain digest: %s", b)
	}
	d, err := DecodeEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	k := EntryKey(logKey, d.Nonce)
	if err := d.Open(k, plain); err != nil {
		t.Fatal(err)
	}
	swapped := map[string]string{"terms": plain["bundle"], "bundle": plain["terms"]}
	for name, tc := range map[string]struct {
		key     []byte
		digests map[string]string
	}{
		"other entry's key": {EntryKey(logKey, s2.Nonce), plain},
		"other log key":     {EntryKey(bytes.Repeat([]byte{8}, CommitmentKeySize), d.Nonce), plain},
		"roles swapped":     {k, swapped},
		"a role missing":    {k, map[string]string{"terms": plain["terms"]}},
		"wrong digest":      {k, map[string]string{"terms": plain["terms"], "bundle": "sha256:" + strings.Repeat("3", 64)}},
	} {
		if err := d.Open(tc.key, tc.digests); !errors.Is(err, ErrCommitment) {
			t.Errorf("%s: Open = %v, want ErrCommitment", name, err)
		}
	}
	if _, err := s1.Seal(logKey); !errors.Is(err, ErrInvalid) {
		t.Errorf("sealing twice: %v, want ErrInvalid", err)
	}
	if _, err := (Entry{Kind: KindFeedBatch, Subject: "s", Time: t0, V: 1}).Seal(logKey); !errors.Is(err, ErrInvalid) {
		t.Errorf("sealing a version-1 entry: %v, want ErrInvalid", err)
	}
	if _, err := e.Seal(logKey[:16]); !errors.Is(err, ErrInvalid) {
		t.Errorf("sealing with a short key: %v, want ErrInvalid", err)
	}
	// A version-1 entry (already in old logs) still decodes and opens by
	// plain comparison: the verifier accepts both formats.
	old, err := (Entry{Kind: KindHandoverProposed, Subject: "h", Time: t0, Digests: plain}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	o, err := DecodeEntry(old)
	if err != nil || o.V != EntryVersionPlain {
		t.Fatalf("version-1 entry: %+v, %v", o, err)
	}
	if err := o.Open(nil, plain); err != nil {
		t.Fatal(err)
	}
}
