package psi

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"

	"github.com/parley-cti/parley/internal/fault"
)

// What a relay may check. The server that carries messages between the two
// parties holds no scalar and learns no item; it can still refuse, before
// storing a byte of it, a message whose header is not for this session, this
// round and the sender's role, or that declares more elements than the
// agreement allows, and it can refuse one whose length or digest is wrong.
// Element validity (canonical encodings, no identity, no duplicates) is
// checked by the receiving party's Round2.

// HeaderSize is the size of a message header, the part a relay reads first.
const HeaderSize = headerSize

// Header is a message's header as a relay sees it.
type Header struct {
	Version uint8 // protocol version (see Version)
	Round   uint8
	Role    Role // the sender's role
	Binding [32]byte
	Count   uint64 // number of elements
}

// MessageSize is the whole message's size in bytes: header, elements and
// digest.
func (h Header) MessageSize() int64 {
	return headerSize + int64(h.Count)*int64(elementSizeOf(h.Round)) + digestSize
}

// SessionBinding is the value every message of a session carries in its
// header: a commitment to the session id and both party identifiers, in the
// initiator-then-responder order. A relay recomputes it to refuse messages
// replayed from another session or between other parties.
func SessionBinding(id []byte, initiator, responder string) [32]byte {
	return sessionBinding(id, initiator, responder)
}

// Expect is what a relay requires of a message.
type Expect struct {
	Round   uint8
	Role    Role // the sender's role
	Binding [32]byte
	Cap     uint64 // most elements allowed
}

// parseHeader checks b (headerSize bytes) against exp. Errors wrap
// ErrMalformedMessage, ErrWrongSession, ErrWrongRound or ErrOverCap.
func parseHeader(b []byte, exp expectation) (header, error) {
	switch {
	case len(b) != headerSize:
		return header{}, fault.Errorf("%w: header is %d bytes", ErrMalformedMessage, len(b))
	case !bytes.Equal(b[:4], magic[:]):
		return header{}, fault.Errorf("%w: bad magic", ErrMalformedMessage)
	case b[4] != Version:
		return header{}, fault.Errorf("%w: protocol version %d, this build speaks %d (%s)", ErrMalformedMessage, b[4], Version, ProtocolName)
	case b[7] != 0:
		return header{}, fault.Errorf("%w: reserved byte set", ErrMalformedMessage)
	}
	h := header{round: b[5], role: Role(b[6]), count: binary.BigEndian.Uint64(b[40:])}
	copy(h.binding[:], b[8:40])
	if h.binding != exp.binding {
		return header{}, fault.Errorf("%w: message belongs to another session", ErrWrongSession)
	}
	if h.round != exp.round || h.role != exp.role {
		return header{}, fault.Errorf("%w: got round %d from role %d, want round %d from role %d",
			ErrWrongRound, h.round, h.role, exp.round, exp.role)
	}
	if h.count > exp.cap {
		return header{}, fault.Errorf("%w: %d elements, cap %d", ErrOverCap, h.count, exp.cap)
	}
	return h, nil
}

// CheckedReader passes one message through unchanged, header included,
// while checking it: the header when it is opened, then the length and the
// digest as the last bytes go by. Read returns an error wrapping ErrTruncated
// or ErrMalformedMessage (digest mismatch, trailing data) instead of the
// final io.EOF when the message is not whole, so a relay that stores what
// it reads and commits only on io.EOF never keeps a broken message.
type CheckedReader struct {
	r      io.Reader
	hdr    Header
	head   []byte // header bytes not yet returned
	body   int64  // element bytes not yet read
	digest [digestSize]byte
	dgot   int // digest bytes read
	h      hash.Hash
	err    error
}

// NewCheckedReader reads and checks the header of the message in r. Errors
// wrap ErrTruncated, ErrMalformedMessage, ErrWrongSession, ErrWrongRound or
// ErrOverCap.
func NewCheckedReader(r io.Reader, exp Expect) (*CheckedReader, error) {
	b := make([]byte, headerSize)
	if err := readFull(r, b, "header"); err != nil {
		return nil, err
	}
	h, err := parseHeader(b, expectation{round: exp.Round, role: exp.Role, binding: exp.Binding, cap: exp.Cap})
	if err != nil {
		return nil, err
	}
	if h.round != 1 && h.round != 2 {
		return nil, fault.Errorf("%w: round %d", ErrMalformedMessage, h.round)
	}
	c := &CheckedReader{r: r, head: b, h: sha256.New(),
		hdr: Header{Version: Version, Round: h.round, Role: h.role, Binding: h.binding, Count: h.count}}
	c.body = int64(h.count) * int64(elementSizeOf(h.round))
	c.h.Write(b)
	return c, nil
}

// Header returns the checked header.
func (c *CheckedReader) Header() Header { return c.hdr }

// Read implements io.Reader.
func (c *CheckedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	if c.body > 0 {
		q := p[:min(int64(len(p)), c.body)]
		n, err := c.r.Read(q)
		c.h.Write(q[:n])
		c.body -= int64(n)
		if err != nil && (c.body > 0 || !errors.Is(err, io.EOF)) {
			c.err = c.readErr(err, "elements")
			if n > 0 {
				return n, nil
			}
			return 0, c.err
		}
		return n, nil
	}
	if c.dgot < digestSize {
		q := p[:min(len(p), digestSize-c.dgot)]
		n, err := c.r.Read(q)
		copy(c.digest[c.dgot:], q[:n])
		c.dgot += n
		if c.dgot == digestSize {
			c.err = c.finish()
		} else if err != nil {
			c.err = c.readErr(err, "digest")
		}
		if n > 0 {
			return n, nil
		}
		return 0, c.err
	}
	return 0, io.EOF
}

func (c *CheckedReader) readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fault.Errorf("%w: %s", ErrTruncated, what)
	}
	return fault.Errorf("match: read %s: %w", what, err)
}

// finish checks the digest and that nothing follows it; nil becomes io.EOF.
func (c *CheckedReader) finish() error {
	if !bytes.Equal(c.digest[:], c.h.Sum(nil)) {
		return fault.Errorf("%w: digest mismatch", ErrMalformedMessage)
	}
	var one [1]byte
	for {
		n, err := c.r.Read(one[:])
		if n != 0 {
			return fault.Errorf("%w: trailing data after digest", ErrMalformedMessage)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fault.Errorf("match: read after digest: %w", err)
		}
	}
}
