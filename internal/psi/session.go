package psi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"filippo.io/edwards25519/field"
	"github.com/parley-cti/parley/internal/fault"
)

// Sentinel errors. Decoding errors name the element or field at fault in the
// wrapping message. Their texts, and what wraps them, are written for the
// party whose message was refused; each wraps its fault kind.
var (
	ErrInvalidConfig    = fault.New(fault.Invalid, "match: invalid session configuration")
	ErrSelfMatch        = fault.New(fault.Forbidden, "match: a party cannot match against itself")
	ErrOutOfSequence    = fault.New(fault.Conflict, "match: protocol step out of sequence")
	ErrMalformedMessage = fault.New(fault.Invalid, "match: malformed message")
	ErrMalformedElement = fault.New(fault.Invalid, "match: malformed element")
	ErrDuplicateElement = fault.New(fault.Invalid, "match: duplicate element")
	ErrWrongSession     = fault.New(fault.Invalid, "match: message from another session")
	ErrWrongRound       = fault.New(fault.Invalid, "match: message for another round or role")
	ErrOverCap          = fault.New(fault.TooLarge, "match: more elements than the agreement allows")
	ErrTruncated        = fault.New(fault.Invalid, "match: message truncated")
	ErrCountMismatch    = fault.New(fault.Invalid, "match: round 2 count differs from round 1")
)

// Role tells the two sides of a session apart; it is written in every
// message so that a side's own message reflected back is refused.
type Role uint8

// The two roles. Which party has which is fixed by whoever opens the session
// (the server relay), and both must agree.
const (
	RoleInitiator Role = 1
	RoleResponder Role = 2
)

func (r Role) other() Role { return 3 - r }

// Item is one identifier of a party's wanted list.
type Item struct {
	Kind  Kind
	Value string
}

// Config describes one matching session. Both sides must use the same
// SessionID and the same two party identifiers in opposite places.
type Config struct {
	SessionID   []byte // fresh per session, 16 to 64 bytes, from the relay
	Self, Peer  string // party identifiers as the agreement names them
	Role        Role   // Self's role
	MaxElements int    // cap on either set, from the agreement; > 0
}

// Session is one side of a mutual ECDH-PSI run:
//
//	order, err := s.Round1(ctx, items, toPeer)   // H(x)^a, shuffled
//	err = s.Round2(ctx, fromPeerRound1, toEscrow) // tags of (H(y)^b)^a, in peer's order
//	matched, err := s.Result(ctx, order, ownRound2, peerRound2)
//
// A Session is not safe for concurrent use; its methods parallelize
// internally across GOMAXPROCS goroutines.
type Session struct {
	cfg      Config
	binding  [32]byte
	dst      []byte
	tagKey   []byte
	scalar   *blinder
	workers  int
	step     int
	ownFirst [][16]byte // sorted 16-byte prefixes of own round-1 elements
}

// NewSession checks cfg and draws a fresh secret scalar. Errors wrap
// ErrInvalidConfig or ErrSelfMatch.
func NewSession(cfg Config) (*Session, error) {
	switch {
	case len(cfg.SessionID) < 16 || len(cfg.SessionID) > 64:
		return nil, fault.Errorf("%w: session id must be 16 to 64 bytes", ErrInvalidConfig)
	case cfg.Self == "" || cfg.Peer == "":
		return nil, fault.Errorf("%w: empty party id", ErrInvalidConfig)
	case cfg.Self == cfg.Peer:
		return nil, ErrSelfMatch
	case cfg.Role != RoleInitiator && cfg.Role != RoleResponder:
		return nil, fault.Errorf("%w: role %d", ErrInvalidConfig, cfg.Role)
	case cfg.MaxElements <= 0 || cfg.MaxElements > 1<<31:
		return nil, fault.Errorf("%w: MaxElements %d", ErrInvalidConfig, cfg.MaxElements)
	}
	initiator, responder := cfg.Self, cfg.Peer
	if cfg.Role == RoleResponder {
		initiator, responder = responder, initiator
	}
	var random [32]byte
	if _, err := rand.Read(random[:]); err != nil {
		return nil, fault.Errorf("match: random scalar: %w", err)
	}
	scalar, err := newBlinder(random[:])
	if err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, scalar: scalar, workers: runtime.GOMAXPROCS(0)}
	s.cfg.SessionID = slices.Clone(cfg.SessionID)
	s.binding = sessionBinding(cfg.SessionID, initiator, responder)
	s.dst = fmt.Appendf(nil, "parley-psi-v2:curve25519_XMD:SHA-512_ELL2_RO_:%s", hex.EncodeToString(s.binding[:]))
	s.tagKey = append([]byte("parley-psi-v2 tag|"), s.binding[:]...)
	return s, nil
}

// sessionBinding commits to the session id and both parties, each
// length-prefixed so that no two triples share an encoding.
func sessionBinding(id []byte, initiator, responder string) [32]byte {
	h := sha256.New()
	h.Write([]byte("parley-psi-v1 session"))
	for _, f := range [][]byte{id, []byte(initiator), []byte(responder)} {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(f)))
		h.Write(l[:])
		h.Write(f)
	}
	return [32]byte(h.Sum(nil))
}

// Order maps the positions of a side's round-1 message back to its own
// items. It holds no secret beyond the list itself; keep it with the list
// until Result.
type Order struct {
	positions []uint32            // own item index sent at each position
	extra     map[uint32][]uint32 // further own indices equal after normalization
}

// Len is the number of elements in the round-1 message.
func (o *Order) Len() int { return len(o.positions) }

const batchPerWorker = 1024

// parallel runs fn over [0,n) split into one contiguous range per worker and
// returns the first error.
func (s *Session) parallel(n int, fn func(lo, hi int) error) error {
	w := min(s.workers, (n+63)/64)
	if w <= 1 {
		return fn(0, n)
	}
	errs := make([]error, w)
	var wg sync.WaitGroup
	for k := range w {
		lo, hi := n*k/w, n*(k+1)/w
		wg.Go(func() { errs[k] = fn(lo, hi) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// blindRange computes the round-1 elements of items into out (32 bytes
// each): hash to curve25519, u-coordinate (one batched inversion), X25519
// with the session scalar. base is the index of items[0] in the whole list,
// for error messages.
func (s *Session) blindRange(out []byte, items []Item, base int) error {
	n := len(items)
	nums := make([]field.Element, n)
	dens := make([]field.Element, n)
	var buf []byte
	ends := make([]int, n)
	for i, it := range items {
		norm, err := Normalize(it.Kind, it.Value)
		if err != nil {
			return fault.Errorf("item %d (%s): %w", base+i, it.Kind, err)
		}
		buf = appendHashInput(buf, it.Kind, norm)
		ends[i] = len(buf)
	}
	msgs := make([][]byte, n)
	for i := range msgs {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		msgs[i] = buf[start:ends[i]]
	}
	hashToCurve25519Batch(nums, dens, msgs, s.dst)
	batchInvert(dens)
	us := make([]byte, n*elementSize)
	var u field.Element
	for i := range n {
		u.Multiply(&nums[i], &dens[i])
		copy(us[i*elementSize:], u.Bytes())
	}
	if bad := s.scalar.mulBatch(out, us); bad >= 0 {
		// Only a hash to the identity could do this: probability 2^-252.
		return fmt.Errorf("item %d (%s): hashed to a point of low order", base+bad, items[bad].Kind)
	}
	return nil
}

// Round1 normalizes and hashes every item to the group, blinds it with the
// session scalar, and writes the distinct results in a random order as the
// round-1 message. Items equal after normalization are sent once and all
// reported by Result. Errors wrap ErrInvalidValue/ErrUnknownKind (naming the
// item index), ErrOverCap or ErrOutOfSequence.
//
// Memory: 32 bytes per item for the blinded elements (the shuffle needs them
// all) plus ~40 bytes per item of bookkeeping; items are consumed as iterated.
func (s *Session) Round1(ctx context.Context, items iter.Seq[Item], w io.Writer) (*Order, error) {
	if s.step != 0 {
		return nil, fault.Errorf("%w: Round1 already run", ErrOutOfSequence)
	}
	s.step = 1
	batch := make([]Item, 0, batchPerWorker*s.workers)
	var elems []byte
	flush := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		base := len(elems) / elementSize
		elems = append(elems, make([]byte, len(batch)*elementSize)...)
		err := s.parallel(len(batch), func(lo, hi int) error {
			return s.blindRange(elems[(base+lo)*elementSize:(base+hi)*elementSize], batch[lo:hi], base+lo)
		})
		batch = batch[:0]
		return err
	}
	n := 0
	for it := range items {
		if n++; n > s.cfg.MaxElements {
			return nil, fault.Errorf("%w: more than %d items", ErrOverCap, s.cfg.MaxElements)
		}
		if batch = append(batch, it); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}

	// Sort indices by element to find items equal after normalization;
	// equal elements mean equal hash inputs.
	idx := make([]uint32, n)
	for i := range idx {
		idx[i] = uint32(i)
	}
	el := func(i uint32) []byte { return elems[int(i)*elementSize : int(i+1)*elementSize] }
	slices.SortFunc(idx, func(a, b uint32) int {
		if c := bytes.Compare(el(a), el(b)); c != 0 {
			return c
		}
		return int(a) - int(b)
	})
	order := &Order{positions: make([]uint32, 0, n), extra: map[uint32][]uint32{}}
	s.ownFirst = make([][16]byte, 0, n)
	for k, i := range idx {
		if k > 0 && bytes.Equal(el(i), el(idx[k-1])) {
			first := order.positions[len(order.positions)-1]
			order.extra[first] = append(order.extra[first], i)
			continue
		}
		order.positions = append(order.positions, i)
		s.ownFirst = append(s.ownFirst, [16]byte(el(i)))
	}

	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fault.Errorf("match: shuffle seed: %w", err)
	}
	rng := mrand.New(mrand.NewChaCha8(seed))
	rng.Shuffle(len(order.positions), func(i, j int) {
		order.positions[i], order.positions[j] = order.positions[j], order.positions[i]
	})

	mw, err := newMessageWriter(w, header{round: 1, role: s.cfg.Role, binding: s.binding, count: uint64(len(order.positions))})
	if err != nil {
		return nil, err
	}
	for _, i := range order.positions {
		if err := mw.write(el(i)); err != nil {
			return nil, err
		}
	}
	if err := mw.close(); err != nil {
		return nil, err
	}
	return order, nil
}

// Round2 reads the peer's round-1 message, raises each element to the
// session scalar and writes, in the order received, a 16-byte tag of each
// doubly blinded element: the opaque round-2 message to hand to the escrow.
// On error, whatever was written to w must be discarded (it has no valid
// digest). Errors wrap ErrMalformedMessage, ErrMalformedElement,
// ErrDuplicateElement, ErrWrongSession, ErrWrongRound, ErrOverCap,
// ErrTruncated, ErrSelfMatch (the peer sent our own elements back) or
// ErrOutOfSequence.
//
// Memory: 32 bytes per peer element (for the duplicate and reflection checks)
// plus fixed-size batches.
func (s *Session) Round2(ctx context.Context, peerRound1 io.Reader, w io.Writer) error {
	if s.step != 1 {
		return fault.Errorf("%w: Round2 needs Round1 first, once", ErrOutOfSequence)
	}
	s.step = 2
	mr, err := openMessage(peerRound1, expectation{round: 1, role: s.cfg.Role.other(), binding: s.binding, cap: uint64(s.cfg.MaxElements)})
	if err != nil {
		return err
	}
	mw, err := newMessageWriter(w, header{round: 2, role: s.cfg.Role, binding: s.binding, count: mr.hdr.count})
	if err != nil {
		return err
	}
	in := make([]byte, batchPerWorker*s.workers*elementSize)
	out := make([]byte, batchPerWorker*s.workers*tagSize)
	seen := make([][16]byte, 0, min(mr.hdr.count, 1<<20))
	tags := make([][16]byte, 0, min(mr.hdr.count, 1<<20))
	done := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := mr.read(in)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		err = s.parallel(n, func(lo, hi int) error {
			for i := lo; i < hi; i++ {
				if err := checkCanonical(in[i*elementSize : (i+1)*elementSize]); err != nil {
					return fault.Errorf("%w: element %d: %v", ErrMalformedElement, done+i, err)
				}
			}
			shared := make([]byte, (hi-lo)*elementSize)
			if bad := s.scalar.mulBatch(shared, in[lo*elementSize:hi*elementSize]); bad >= 0 {
				return fault.Errorf("%w: element %d: %v", ErrMalformedElement, done+lo+bad, errLowOrder)
			}
			h := sha256.New()
			var sum [sha256.Size]byte
			for i := lo; i < hi; i++ {
				h.Reset()
				h.Write(s.tagKey)
				h.Write(shared[(i-lo)*elementSize : (i-lo+1)*elementSize])
				copy(out[i*tagSize:(i+1)*tagSize], h.Sum(sum[:0]))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range n {
			seen = append(seen, [16]byte(in[i*elementSize:]))
			tags = append(tags, [16]byte(out[i*tagSize:]))
		}
		if err := mw.write(out[:n*tagSize]); err != nil {
			return err
		}
		done += n
	}
	if err := mr.finish(); err != nil {
		return err
	}
	slices.SortFunc(seen, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	if i := firstDuplicate(seen); i >= 0 {
		return fault.Errorf("%w: in peer's round 1 message", ErrDuplicateElement)
	}
	if sortedOverlap(seen, s.ownFirst) {
		return fault.Errorf("%w: peer's round 1 message contains our own elements", ErrSelfMatch)
	}
	// Distinct u-coordinates can still be one element: P and -P share one,
	// and a point plus a low-order one gives the same product with a
	// clamped scalar. Equal tags catch both.
	slices.SortFunc(tags, compareTags)
	if i := firstDuplicate(tags); i >= 0 {
		return fault.Errorf("%w: two of the peer's round 1 elements are one group element", ErrDuplicateElement)
	}
	return mw.close()
}

// sortedOverlap reports whether two sorted slices share an element.
func sortedOverlap(a, b [][16]byte) bool {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch c := bytes.Compare(a[i][:], b[j][:]); {
		case c == 0:
			return true
		case c < 0:
			i++
		default:
			j++
		}
	}
	return false
}

// readTags reads a whole round-2 message.
func (s *Session) readTags(r io.Reader, role Role) ([][16]byte, error) {
	mr, err := openMessage(r, expectation{round: 2, role: role, binding: s.binding, cap: uint64(s.cfg.MaxElements)})
	if err != nil {
		return nil, err
	}
	tags := make([][16]byte, 0, min(mr.hdr.count, 1<<20))
	buf := make([]byte, 4096*tagSize)
	for {
		n, err := mr.read(buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		for i := range n {
			tags = append(tags, [16]byte(buf[i*tagSize:]))
		}
	}
	if err := mr.finish(); err != nil {
		return nil, err
	}
	return tags, nil
}

func compareTags(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) }

// Result compares the peer's round-2 message (tags of our own elements,
// doubly blinded, in our round-1 order) with our own round-2 message (tags of
// the peer's elements) and returns the indices, ascending, of our own items
// that the peer also holds. It needs neither the scalar nor Round1/Round2 to
// have run in this process: a Session rebuilt from the same Config will do.
//
// A false match needs two 128-bit tags of different elements to collide:
// probability at most |X|·|Y|/2^128, below 3·10^-27 for 10^6 × 10^6.
//
// Errors wrap ErrMalformedMessage, ErrDuplicateElement, ErrWrongSession,
// ErrWrongRound, ErrOverCap, ErrTruncated or ErrCountMismatch.
//
// Memory: 16 bytes per element of each message.
func (s *Session) Result(ctx context.Context, order *Order, ownRound2, peerRound2 io.Reader) ([]int, error) {
	if order == nil {
		return nil, fault.Errorf("%w: Result needs the round-1 order", ErrOutOfSequence)
	}
	own, err := s.readTags(ownRound2, s.cfg.Role)
	if err != nil {
		return nil, fault.Errorf("own round 2: %w", err)
	}
	slices.SortFunc(own, compareTags)
	if firstDuplicate(own) >= 0 {
		return nil, fault.Errorf("own round 2: %w", ErrDuplicateElement)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	peer, err := s.readTags(peerRound2, s.cfg.Role.other())
	if err != nil {
		return nil, fault.Errorf("peer round 2: %w", err)
	}
	if len(peer) != order.Len() {
		return nil, fault.Errorf("%w: peer returned %d tags for our %d elements", ErrCountMismatch, len(peer), order.Len())
	}
	sortedPeer := slices.Clone(peer)
	slices.SortFunc(sortedPeer, compareTags)
	if firstDuplicate(sortedPeer) >= 0 {
		return nil, fault.Errorf("peer round 2: %w", ErrDuplicateElement)
	}
	matched := []int{}
	for pos, t := range peer {
		if _, ok := slices.BinarySearchFunc(own, t, compareTags); ok {
			i := order.positions[pos]
			matched = append(matched, int(i))
			for _, j := range order.extra[i] {
				matched = append(matched, int(j))
			}
		}
	}
	slices.Sort(matched)
	return matched, nil
}
