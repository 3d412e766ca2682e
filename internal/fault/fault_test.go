package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/parley-cti/parley/internal/fault"
)

var (
	errGenericConflict = fault.Generic(fault.Conflict, "pkg: conflict")
	errNotPossible     = fault.New(fault.Conflict, "not possible now")
	errTaggedBroken    = fault.Tagged(fault.Conflict, "pkg", "the history does not verify")
	errDeadline        = fault.Refine(fault.Errorf("%w: the deadline has passed", errNotPossible), nil, "deadline_passed")
	errOverCap         = fault.Refine(fault.Errorf("%w: more than the cap", fault.New(fault.Invalid, "invalid")), fault.TooLarge, "over_cap")
	errSQL             = errors.New(`pq: relation "handovers" does not exist`)
)

func TestVocabulary(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		kind     *fault.Kind
		text     string // Error(): for logs
		msg      string // Message: for clients
		hasMsg   bool
		code     string
		isTarget error // errors.Is must hold for it too
	}{
		{"a kind alone", fault.NotFound, fault.NotFound, "not found", "", false, "", nil},
		{"a generic sentinel names only its kind", errGenericConflict, fault.Conflict, "pkg: conflict", "", false, "", nil},
		{"a generic sentinel's detail is the message", fault.Errorf("%w: version %d exists", errGenericConflict, 2),
			fault.Conflict, "pkg: conflict: version 2 exists", "version 2 exists", true, "", errGenericConflict},
		{"a client sentinel keeps its words", fault.Errorf("%w: handover %s is declined", errNotPossible, "h1"),
			fault.Conflict, "not possible now: handover h1 is declined", "not possible now: handover h1 is declined", true, "", errNotPossible},
		{"a tag is for logs only", fault.Errorf("%w: a1: %w", errTaggedBroken, fault.New(fault.Invalid, "bad signature")),
			fault.Conflict, "pkg: the history does not verify: a1: bad signature", "the history does not verify: a1: bad signature", true, "", errTaggedBroken},
		{"an internal cause wrapped with %w stays out of the message", fault.Errorf("%w: storing %s: %w", errNotPossible, "h1", errSQL),
			fault.Conflict, `not possible now: storing h1: pq: relation "handovers" does not exist`, "not possible now: storing h1", true, "", errSQL},
		{"an internal cause alone leaves only the kind", fault.Errorf("%w: %w", errGenericConflict, errSQL),
			fault.Conflict, `pkg: conflict: pq: relation "handovers" does not exist`, "", false, "", errSQL},
		{"a value shown with %v is the caller's choice", fault.Errorf("%w: not JSON: %v", fault.Generic(fault.Invalid, "x: invalid"), errors.New("unexpected EOF")),
			fault.Invalid, "x: invalid: not JSON: unexpected EOF", "not JSON: unexpected EOF", true, "", nil},
		{"a refinement gives its code", fault.Errorf("%w: handover h1 expired", errDeadline),
			fault.Conflict, "not possible now: the deadline has passed: handover h1 expired", "not possible now: the deadline has passed: handover h1 expired", true, "deadline_passed", errNotPossible},
		{"a refinement's kind comes first", errOverCap, fault.TooLarge, "invalid: more than the cap", "invalid: more than the cap", true, "over_cap", fault.Invalid},
		{"a refinement under another kind lends no code", fault.Errorf("%w: %w", fault.Generic(fault.Forbidden, "x: not permitted"), errDeadline),
			fault.Forbidden, "x: not permitted: not possible now: the deadline has passed", "not possible now: the deadline has passed", true, "", errDeadline},
		{"a context wrapper keeps the inner message", fault.Errorf("version %d: %w", 2, errNotPossible),
			fault.Conflict, "version 2: not possible now", "version 2: not possible now", true, "", errNotPossible},
		{"a context wrapper of a generic kind says nothing", fault.Errorf("ledger size: %w", errGenericConflict),
			fault.Conflict, "ledger size: pkg: conflict", "", false, "", errGenericConflict},
		{"a context wrapper of an internal error says nothing", fault.Errorf("ledger size: %w", errSQL),
			nil, `ledger size: pq: relation "handovers" does not exist`, "", false, "", errSQL},
		{"a plain wrapper keeps the inner message", fmt.Errorf("deciding: %w", errNotPossible),
			fault.Conflict, "deciding: not possible now", "not possible now", true, "", errNotPossible},
		{"an internal error has neither kind nor message", fmt.Errorf("loading: %w", errSQL), nil,
			`loading: pq: relation "handovers" does not exist`, "", false, "", errSQL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fault.KindOf(tc.err); got != tc.kind {
				t.Errorf("KindOf = %v, want %v", got, tc.kind)
			}
			if tc.kind != nil && !errors.Is(tc.err, tc.kind) {
				t.Errorf("errors.Is(err, %v) is false", tc.kind)
			}
			if tc.isTarget != nil && !errors.Is(tc.err, tc.isTarget) {
				t.Errorf("errors.Is(err, %v) is false", tc.isTarget)
			}
			if got := tc.err.Error(); got != tc.text {
				t.Errorf("Error() = %q, want %q", got, tc.text)
			}
			msg, ok := fault.MessageOf(tc.err)
			if string(msg) != tc.msg || ok != tc.hasMsg {
				t.Errorf("MessageOf = %q, %v; want %q, %v", msg, ok, tc.msg, tc.hasMsg)
			}
			if got := fault.Code(tc.err); got != tc.code {
				t.Errorf("Code = %q, want %q", got, tc.code)
			}
		})
	}
}

// Errorf's Error() is exactly fmt.Errorf's, so logs and callers comparing
// texts see no change when a package moves to it.
func TestErrorfMatchesFmt(t *testing.T) {
	formats := []struct {
		format string
		args   []any
	}{
		{"%w: %s is %d bytes, more than %d", []any{errNotPossible, "the bundle", 10, 5}},
		{"%w: %w: parties[%d].name is %q", []any{errGenericConflict, errTaggedBroken, 0, "acme"}},
		{"%w: 100%% sure: %v", []any{errNotPossible, errSQL}},
		{"%w: %x", []any{errNotPossible, []byte{1, 2}}},
	}
	for _, f := range formats {
		want := fmt.Errorf(f.format, f.args...).Error()
		if got := fault.Errorf(f.format, f.args...).Error(); got != want {
			t.Errorf("Errorf(%q).Error() = %q, fmt gives %q", f.format, got, want)
		}
	}
	if msg, _ := fault.MessageOf(fault.Errorf("%w: 100%% sure: %q", errGenericConflict, "x")); msg != `100% sure: "x"` {
		t.Errorf("message with %%%% and %%q: %q", msg)
	}
}

// Detail is what an Errorf said beyond its sentinel.
func TestDetail(t *testing.T) {
	err := fmt.Errorf("checking: %w", fault.Errorf("%w: type %q is outside the scope", errNotPossible, "tool"))
	if d, ok := fault.Detail(err); !ok || d != `type "tool" is outside the scope` {
		t.Errorf("Detail = %q, %v", d, ok)
	}
	if d, ok := fault.Detail(errNotPossible); ok {
		t.Errorf("Detail of a bare sentinel = %q", d)
	}
	if d, ok := fault.Detail(fault.Errorf("deciding %s: %w", "h1", errNotPossible)); ok {
		t.Errorf("Detail of an Errorf not led by its sentinel = %q", d)
	}
}

// Every kind is distinct and none matches another.
func TestKindsAreDistinct(t *testing.T) {
	for i, a := range fault.Kinds {
		for j, b := range fault.Kinds {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
}

// Errorf formats twice (log text and message); errors are the rare path,
// but its cost beside fmt.Errorf is worth knowing.
func BenchmarkErrorf(b *testing.B) {
	b.Run("fmt", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = fmt.Errorf("%w: handover %s was declined", errNotPossible, "handover--1")
		}
	})
	b.Run("fault", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = fault.Errorf("%w: handover %s was declined", errNotPossible, "handover--1")
		}
	})
}
