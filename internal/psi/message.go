package psi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"slices"

	"github.com/parley-cti/parley/internal/fault"
)

// Message framing. Every protocol message is one self-contained stream:
//
//	offset size
//	0      4    magic "PPSI"
//	4      1    version (2: X25519; see Version)
//	5      1    round (1 or 2)
//	6      1    sender role (1 initiator, 2 responder)
//	7      1    reserved, zero
//	8      32   session binding: SHA-256 over the session id and both party ids
//	40     8    element count, big-endian
//	48     n·e  elements: round 1 e=32 (canonical little-endian curve25519
//	            u-coordinates), round 2 e=16 (truncated hashes of doubly
//	            blinded elements)
//	end    32   SHA-256 of everything before it
//
// The digest is not a signature: it catches truncation and corruption. The
// session binding in the header is what makes a message from another session
// (or between other parties) fail with ErrWrongSession.

const (
	headerSize = 48
	digestSize = sha256.Size
	tagSize    = 16
)

// Version is the protocol this build speaks, written in every message
// header and recorded by the relay. Version 1 was the same protocol over
// ristretto255 (RFC 9496); version 2 runs it over X25519 (RFC 7748) with
// RFC 9380 hash_to_curve, about twice as fast (docs/BENCHMARKS.md) with the
// same guarantees (docs/security.md). A message of another version is
// refused with ErrMalformedMessage naming both versions.
const (
	Version      = 2
	ProtocolName = "psi-x25519-v2"
)

var magic = [4]byte{'P', 'P', 'S', 'I'}

// MessageSize is the length in bytes of a message of round with count
// elements: what a receiver may read at most for a session's cap.
func MessageSize(round uint8, count uint64) int64 {
	return int64(headerSize + digestSize + count*uint64(elementSizeOf(round)))
}

func elementSizeOf(round uint8) int {
	if round == 1 {
		return elementSize
	}
	return tagSize
}

type header struct {
	round   uint8
	role    Role
	binding [32]byte
	count   uint64
}

func (h *header) marshal() []byte {
	b := make([]byte, headerSize)
	copy(b, magic[:])
	b[4] = Version
	b[5] = h.round
	b[6] = byte(h.role)
	copy(b[8:40], h.binding[:])
	binary.BigEndian.PutUint64(b[40:], h.count)
	return b
}

// expectation is what a reader checks a header against.
type expectation struct {
	round   uint8
	role    Role // sender role
	binding [32]byte
	cap     uint64
}

// messageWriter writes one message; close fails unless exactly count
// elements were written, so a short message is never completed.
type messageWriter struct {
	w        *bufio.Writer
	h        hash.Hash
	elemSize int
	want     uint64
	written  uint64
}

func newMessageWriter(w io.Writer, hdr header) (*messageWriter, error) {
	m := &messageWriter{w: bufio.NewWriterSize(w, 1<<16), h: sha256.New(), elemSize: elementSizeOf(hdr.round), want: hdr.count}
	if err := m.raw(hdr.marshal()); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *messageWriter) raw(b []byte) error {
	m.h.Write(b)
	if _, err := m.w.Write(b); err != nil {
		return fault.Errorf("match: write message: %w", err)
	}
	return nil
}

// write writes whole elements, concatenated.
func (m *messageWriter) write(elems []byte) error {
	n := uint64(len(elems) / m.elemSize)
	if len(elems)%m.elemSize != 0 || m.written+n > m.want {
		return errors.New("match: internal error: message element count")
	}
	m.written += n
	return m.raw(elems)
}

func (m *messageWriter) close() error {
	if m.written != m.want {
		return errors.New("match: internal error: message shorter than its header")
	}
	if _, err := m.w.Write(m.h.Sum(nil)); err != nil {
		return fault.Errorf("match: write message: %w", err)
	}
	if err := m.w.Flush(); err != nil {
		return fault.Errorf("match: write message: %w", err)
	}
	return nil
}

// messageReader reads one message, checking the header on open and the
// digest and end of stream on finish.
type messageReader struct {
	r         *bufio.Reader
	h         hash.Hash
	hdr       header
	elemSize  int
	remaining uint64
}

func readFull(r io.Reader, b []byte, what string) error {
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fault.Errorf("%w: %s", ErrTruncated, what)
		}
		return fault.Errorf("match: read %s: %w", what, err)
	}
	return nil
}

func openMessage(r io.Reader, exp expectation) (*messageReader, error) {
	m := &messageReader{r: bufio.NewReaderSize(r, 1<<16), h: sha256.New()}
	b := make([]byte, headerSize)
	if err := readFull(m.r, b, "header"); err != nil {
		return nil, err
	}
	m.h.Write(b)
	h, err := parseHeader(b, exp)
	if err != nil {
		return nil, err
	}
	m.hdr = h
	m.elemSize = elementSizeOf(m.hdr.round)
	m.remaining = m.hdr.count
	return m, nil
}

// read fills buf with whole elements and returns how many it read; 0 means
// all elements have been read.
func (m *messageReader) read(buf []byte) (int, error) {
	n := uint64(len(buf) / m.elemSize)
	n = min(n, m.remaining)
	if n == 0 {
		return 0, nil
	}
	b := buf[:n*uint64(m.elemSize)]
	if err := readFull(m.r, b, "elements"); err != nil {
		return 0, err
	}
	m.h.Write(b)
	m.remaining -= n
	return int(n), nil
}

// finish checks the digest and that nothing follows it.
func (m *messageReader) finish() error {
	if m.remaining != 0 {
		return errors.New("match: internal error: finish before all elements were read")
	}
	var d [digestSize]byte
	if err := readFull(m.r, d[:], "digest"); err != nil {
		return err
	}
	if !bytes.Equal(d[:], m.h.Sum(nil)) {
		return fault.Errorf("%w: digest mismatch", ErrMalformedMessage)
	}
	var one [1]byte
	if n, _ := m.r.Read(one[:]); n != 0 {
		return fault.Errorf("%w: trailing data after digest", ErrMalformedMessage)
	}
	return nil
}

// firstDuplicate returns the index in sorted of an element equal to its
// successor, or -1.
func firstDuplicate[T comparable](sorted []T) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return i
		}
	}
	return -1
}

// decodeMessage reads and fully checks a whole message into memory. The
// session uses the streaming pieces above; this is the same checking in one
// call, for tests and fuzzing.
func decodeMessage(r io.Reader, exp expectation) (header, [][]byte, error) {
	m, err := openMessage(r, exp)
	if err != nil {
		return header{}, nil, err
	}
	var elems [][]byte
	buf := make([]byte, 64*m.elemSize)
	for {
		n, err := m.read(buf)
		if err != nil {
			return header{}, nil, err
		}
		if n == 0 {
			break
		}
		for i := range n {
			e := slices.Clone(buf[i*m.elemSize : (i+1)*m.elemSize])
			if m.hdr.round == 1 {
				if err := checkCanonical(e); err != nil {
					return header{}, nil, fault.Errorf("%w: element %d: %v", ErrMalformedElement, len(elems), err)
				}
			}
			elems = append(elems, e)
		}
	}
	if err := m.finish(); err != nil {
		return header{}, nil, err
	}
	sorted := slices.Clone(elems)
	slices.SortFunc(sorted, bytes.Compare)
	for i := 1; i < len(sorted); i++ {
		if bytes.Equal(sorted[i], sorted[i-1]) {
			return header{}, nil, fault.Errorf("%w: in round %d message", ErrDuplicateElement, m.hdr.round)
		}
	}
	return m.hdr, elems, nil
}

// encodeMessage is decodeMessage's inverse.
func encodeMessage(w io.Writer, hdr header, elems [][]byte) error {
	hdr.count = uint64(len(elems))
	m, err := newMessageWriter(w, hdr)
	if err != nil {
		return err
	}
	for _, e := range elems {
		if err := m.write(e); err != nil {
			return err
		}
	}
	return m.close()
}
