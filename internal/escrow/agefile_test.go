package escrow

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
)

// fuzzIdentity is fixed so that the fuzz target's seeds decrypt with it.
var fuzzIdentity, _ = age.ParseX25519Identity("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")

func seal(t testing.TB, plain []byte, rs ...age.Recipient) []byte {
	t.Helper()
	if len(rs) == 0 {
		rs = []age.Recipient{fuzzIdentity.Recipient()}
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// split returns an age file's header (through the MAC line) and payload.
func split(t testing.TB, f []byte) (header, payload []byte) {
	t.Helper()
	i := bytes.Index(f, []byte("\n--- "))
	if i < 0 {
		t.Fatal("no MAC line")
	}
	j := bytes.IndexByte(f[i+1:], '\n')
	return f[:i+1+j+1], f[i+1+j+1:]
}

func TestCheckAgeFile(t *testing.T) {
	small := seal(t, []byte(`{"type":"bundle"}`))
	empty := seal(t, nil)
	full := seal(t, bytes.Repeat([]byte("x"), ageChunkPlain))        // one full chunk
	twoChunks := seal(t, bytes.Repeat([]byte("y"), ageChunkPlain+1)) // a full chunk and a 1-byte one
	other, _ := age.GenerateX25519Identity()
	twoRecipients := seal(t, []byte("z"), fuzzIdentity.Recipient(), other.Recipient())
	scryptR, err := age.NewScryptRecipient("pass")
	if err != nil {
		t.Fatal(err)
	}
	scryptR.SetWorkFactor(10)
	scryptOnly := seal(t, []byte("z"), scryptR)
	header, payload := split(t, small)
	hLines := strings.Split(string(header), "\n") // version, -> X25519 share, body, --- mac, ""
	share := strings.TrimPrefix(hLines[1], "-> X25519 ")
	mac := strings.TrimPrefix(hLines[3], "--- ")
	join := func(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }
	withPayload := func(h []byte) []byte { return append(append([]byte{}, h...), payload...) }
	zeroShare := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	lowOrderShare := base64.RawStdEncoding.EncodeToString(append([]byte{1}, make([]byte, 31)...)) // the point of order 4... u = 1
	_, fullPayload := split(t, full)

	cases := []struct {
		name    string
		in      []byte
		mention string // "" = accepted
	}{
		{"small bundle", small, ""},
		{"empty plaintext", empty, ""},
		{"exactly one full chunk", full, ""},
		{"a full chunk and a short one", twoChunks, ""},
		{"two X25519 recipients", twoRecipients, ""},

		{"empty", nil, "must start with"},
		{"plaintext", []byte(`{"type":"bundle","objects":[]}`), "must start with"},
		{"armored", []byte("-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n"), "must start with"},
		{"version line only", []byte("age-encryption.org/v1\n"), "without its MAC line"},
		{"age header followed by zeros", append([]byte("age-encryption.org/v1\n"), make([]byte, 4096)...), "without its MAC line"},
		{"age header followed by zero lines", append([]byte("age-encryption.org/v1\n"), bytes.Repeat([]byte{0, 0, '\n'}, 100)...), "neither a recipient stanza"},
		{"header only", header, "shorter than its 16-byte nonce"},
		{"header and nonce only", append(append([]byte{}, header...), payload[:ageNonceSize]...), "no chunk"},
		// Cut by one byte, a one-chunk file still has a length STREAM
		// allows: only the key holder can tell (see the end of the test).
		{"cut by one byte, undetectable without the key", small[:len(small)-1], ""},
		{"truncated inside the tag", append(append([]byte{}, header...), payload[:ageNonceSize+10]...), "last chunk is 10 bytes"},
		{"full chunk plus junk", append(append([]byte{}, full...), 1, 2, 3), "last chunk is 3 bytes"},
		{"full chunk plus an empty final chunk", append(append([]byte{}, full...), bytes.Repeat([]byte{7}, 16)...), "last chunk is 16 bytes"},
		{"truncated header", small[:len(header)-10], "without its MAC line"},
		{"no recipient stanza", withPayload(join("age-encryption.org/v1", "--- "+mac)), "no recipient stanza"},
		{"only a scrypt stanza", scryptOnly, "no X25519 recipient stanza"},
		{"MAC line without space", withPayload(join(hLines[0], hLines[1], hLines[2], "---"+mac)), "MAC line must be"},
		{"MAC line too short", withPayload(join(hLines[0], hLines[1], hLines[2], "--- "+mac[:40])), "MAC line must be"},
		{"MAC line not base64", withPayload(join(hLines[0], hLines[1], hLines[2], "--- "+strings.Repeat("*", 43))), "not canonical base64"},
		{"MAC all zeros", withPayload(join(hLines[0], hLines[1], hLines[2], "--- "+base64.RawStdEncoding.EncodeToString(make([]byte, 32)))), "all zeros"},
		{"stanza with three arguments", withPayload(join(hLines[0], hLines[1]+" extra", hLines[2], hLines[3])), "has 3 arguments"},
		{"stanza with an empty argument", withPayload(join(hLines[0], "-> X25519  "+share, hLines[2], hLines[3])), "empty or non-printable"},
		{"share too short", withPayload(join(hLines[0], "-> X25519 "+share[:40], hLines[2], hLines[3])), "ephemeral share is not canonical"},
		{"all-zero share", withPayload(join(hLines[0], "-> X25519 "+zeroShare, hLines[2], hLines[3])), "low-order"},
		{"low-order share", withPayload(join(hLines[0], "-> X25519 "+lowOrderShare, hLines[2], hLines[3])), "low-order"},
		{"body of the wrong size", withPayload(join(hLines[0], hLines[1], base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 16)), hLines[3])), "body is 16 bytes"},
		{"body line too long", withPayload(join(hLines[0], hLines[1], strings.Repeat("A", 65), hLines[3])), "longer than 64"},
		{"body not base64", withPayload(join(hLines[0], hLines[1], strings.Repeat("!", 43), hLines[3])), "not base64"},
		{"stray header line", withPayload(join(hLines[0], "hello", hLines[1], hLines[2], hLines[3])), "neither a recipient stanza"},
		{"valid header, zero payload", append(append([]byte{}, header...), make([]byte, len(payload))...), "run of 32 zero bytes"},
		{"valid header, zeros of full-chunk length", append(append([]byte{}, header...), make([]byte, len(fullPayload))...), "run of 32 zero bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckAgeFile(c.in)
			if c.mention == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotAgeFile) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("CheckAgeFile = %v; want ErrNotAgeFile mentioning %q", err, c.mention)
			}
		})
	}
	// ...and the key holder does: the recipient's client refuses it.
	if r, err := age.Decrypt(bytes.NewReader(small[:len(small)-1]), fuzzIdentity); err == nil {
		if _, err := io.ReadAll(r); err == nil {
			t.Fatal("age decrypted a truncated file")
		}
	}
}

// FuzzCheckAgeFile holds CheckAgeFile to age itself: whatever age decrypts
// with the key, the checker accepts; whatever the checker accepts, age
// parses as a header addressed to someone else (it reports no identity
// match rather than a malformed file).
func FuzzCheckAgeFile(f *testing.F) {
	f.Add(seal(f, []byte(`{"type":"bundle","id":"bundle--1","objects":[]}`)))
	f.Add(seal(f, nil))
	f.Add(seal(f, bytes.Repeat([]byte("a"), ageChunkPlain+3)))
	f.Add([]byte("age-encryption.org/v1\n-> X25519 AAAA\nAAAA\n--- AAAA\n"))
	f.Add(append([]byte("age-encryption.org/v1\n"), make([]byte, 64)...))
	stranger, _ := age.GenerateX25519Identity()
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckAgeFile(b)
		if err != nil && !errors.Is(err, ErrNotAgeFile) {
			t.Fatalf("error not wrapping ErrNotAgeFile: %v", err)
		}
		if r, derr := age.Decrypt(bytes.NewReader(b), fuzzIdentity); derr == nil {
			if _, rerr := io.ReadAll(r); rerr == nil && err != nil {
				t.Fatalf("age decrypts the file but CheckAgeFile refuses it: %v", err)
			}
		}
		if err == nil {
			_, derr := age.Decrypt(bytes.NewReader(b), stranger)
			var nomatch *age.NoIdentityMatchError
			if !errors.As(derr, &nomatch) {
				t.Fatalf("CheckAgeFile accepts a file age cannot parse: %v", derr)
			}
		}
	})
}
