// Package fault is parley's one error vocabulary: a handful of kinds that
// every domain sentinel wraps, and client-safe messages kept apart from
// internal error text.
//
// # Kinds
//
// A kind (NotFound, Invalid, Forbidden, Conflict, Unavailable, TooLarge,
// Unauthenticated) is what a surface answers: TAXII, the management API,
// the dashboard and the CLI each turn a kind into a status in one function,
// with errors.Is(err, fault.Conflict) or KindOf. Domain packages keep their
// own sentinels (escrow.ErrConflict, store.ErrNotFound…) as their public
// vocabulary, and each sentinel wraps its kind, so no surface needs to know
// which package an error came from.
//
// # Messages
//
// A Message is text a surface may show a client. Domain code writes it:
// New gives a sentinel whose text is written for clients, Errorf attaches a
// detail to a sentinel the way fmt.Errorf would. An error's Error() text is
// for logs and may hold anything (a SQL message, a file name); a surface
// never shows it, only MessageOf. Package fault must never inspect an
// error's text to find its kind or message.
package fault

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is a class of failure that every surface knows how to answer.
type Kind struct{ name string }

func (k *Kind) Error() string { return k.name }

// The kinds. Add one only when a surface must answer it differently from
// all of these.
var (
	// NotFound: the thing does not exist, or the caller may not know it does.
	NotFound = &Kind{"not found"}
	// Invalid: the request is malformed or breaks a rule of its own.
	Invalid = &Kind{"invalid"}
	// Forbidden: well-formed, but the caller may not do it.
	Forbidden = &Kind{"forbidden"}
	// Conflict: not possible in the current state (already done, raced,
	// too late, or the stored state itself is broken).
	Conflict = &Kind{"conflict"}
	// Unavailable: a dependency (the database) cannot answer now; retry.
	Unavailable = &Kind{"unavailable"}
	// TooLarge: more than a stated limit allows.
	TooLarge = &Kind{"too large"}
	// Unauthenticated: no valid credentials.
	Unauthenticated = &Kind{"unauthenticated"}
)

// Kinds lists every kind, for tables that must cover them all.
var Kinds = []*Kind{NotFound, Invalid, Forbidden, Conflict, Unavailable, TooLarge, Unauthenticated}

// KindOf returns the kind err is of, or nil. When an error wraps several
// kinds, the first found (outermost, then left to right) wins.
func KindOf(err error) *Kind {
	var k *Kind
	if errors.As(err, &k) {
		return k
	}
	return nil
}

// Message is text a surface may show to a client. It is written by domain
// code for that purpose; it is never an error's internal text.
type Message string

// Messenger is an error that may carry a client-safe message. Errors made
// here implement it; a package's own error type (a validation report
// listing problems in words for the client) implements it to say so.
type Messenger interface {
	ClientMessage() (Message, bool)
}

// MessageOf returns the client-safe message of the outermost error in err's
// chain that carries one. The second result is false when none does: the
// surface then shows its own fixed text for the kind.
func MessageOf(err error) (Message, bool) {
	var msg Message
	found := walk(err, func(e error) bool {
		m, ok := e.(Messenger)
		if !ok {
			return false
		}
		msg, ok = m.ClientMessage()
		return ok
	})
	return msg, found != nil
}

// walk visits err's chain depth first, as errors.As does, and returns the
// first error for which match is true.
func walk(err error, match func(error) bool) error {
	if err == nil {
		return nil
	}
	if match(err) {
		return err
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walk(u.Unwrap(), match)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if f := walk(e, match); f != nil {
				return f
			}
		}
	}
	return nil
}

// sentinel is a domain's named failure.
type sentinel struct {
	kind *Kind
	text string  // Error(): for logs
	msg  Message // "" when the sentinel only names its kind
}

func (s *sentinel) Error() string                  { return s.text }
func (s *sentinel) Unwrap() error                  { return s.kind }
func (s *sentinel) ClientMessage() (Message, bool) { return s.msg, s.msg != "" }

// New returns a sentinel of kind whose text is written for clients: it is
// both its Error() text and its Message.
func New(kind *Kind, text string) error {
	return &sentinel{kind: kind, text: text, msg: Message(text)}
}

// Tagged is New with a package tag in front of the Error() text only
// ("exchange: …" in logs, "…" to clients).
func Tagged(kind *Kind, tag, text string) error {
	return &sentinel{kind: kind, text: tag + ": " + text, msg: Message(text)}
}

// Generic returns a sentinel that only names its kind in a package's words
// ("store: not found"). It carries no Message: a client sees the detail
// Errorf attaches to it, or the surface's own text for the kind.
func Generic(kind *Kind, text string) error {
	return &sentinel{kind: kind, text: text}
}

// wrapped is an error made by Errorf.
type wrapped struct {
	err    error
	msg    Message
	detail Message // msg without the leading "%w: " sentinel, if any
}

func (w *wrapped) Error() string                  { return w.err.Error() }
func (w *wrapped) Unwrap() error                  { return w.err }
func (w *wrapped) ClientMessage() (Message, bool) { return w.msg, w.msg != "" }

// hole stands for a %w argument that carries no Message.
const hole = "\x00"

// Errorf is fmt.Errorf that also composes a client-safe Message: the same
// format, where a %w argument contributes its Message (or, having none,
// nothing, and the ": " before it goes too) and every other argument,
// errors given with %v included, is formatted as fmt would. %w wraps a
// cause, which may be internal; %v shows a value the caller chose to show.
func Errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	cargs := make([]any, len(args))
	copy(cargs, args)
	// A message exists if a wrapped error carries one, or if the format
	// leads with a sentinel of a kind ("%w: version 2 exists"). A context
	// wrapper around internal causes only ("ledger size: %w") has none.
	says := false
	verbs := verbsOf(format)
	for i, v := range verbs {
		if i >= len(cargs) {
			break
		}
		e, ok := cargs[i].(error)
		if !ok {
			continue
		}
		if m, ok := MessageOf(e); ok {
			cargs[i] = string(m)
			says = says || v == 'w'
		} else if v == 'w' {
			cargs[i] = hole
		}
	}
	if e, ok := firstArg(args).(error); ok && strings.HasPrefix(format, "%w") && KindOf(e) != nil {
		says = true
	}
	w := &wrapped{err: err}
	if !says {
		return w
	}
	w.msg = compose(format, cargs)
	if rest, ok := strings.CutPrefix(format, "%w: "); ok && len(cargs) > 0 {
		w.detail = compose(rest, cargs[1:])
	}
	return w
}

func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// compose formats a client message, dropping holes and their separators.
func compose(format string, args []any) Message {
	msg := fmt.Sprintf(strings.ReplaceAll(format, "%w", "%v"), args...)
	if strings.Contains(msg, hole) {
		msg = strings.ReplaceAll(msg, hole+": ", "")
		msg = strings.ReplaceAll(msg, ": "+hole, "")
		msg = strings.ReplaceAll(msg, hole, "")
	}
	return Message(msg)
}

// Detail returns what the outermost Errorf in err's chain said after its
// leading "%w: " (the sentinel): for a list that already names the
// sentinel once ("out of scope: a: …; b: …"). ok is false when there is
// no such Errorf.
func Detail(err error) (Message, bool) {
	f := walk(err, func(e error) bool {
		w, ok := e.(*wrapped)
		return ok && w.detail != ""
	})
	if f == nil {
		return "", false
	}
	return f.(*wrapped).detail, true
}

// verbsOf returns the verb letter of each argument-consuming directive of
// a format, in order. Explicit argument indexes and * widths are not
// supported: Errorf's formats do not use them.
func verbsOf(format string) []byte {
	var out []byte
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("+-# 0123456789.", format[i]) >= 0 {
			i++
		}
		if i < len(format) && format[i] != '%' {
			out = append(out, format[i])
		}
	}
	return out
}

// refined is an error given its own code and, optionally, a kind.
type refined struct {
	err  error
	kind *Kind
	code string
}

func (r *refined) Error() string { return r.err.Error() }

func (r *refined) Unwrap() []error {
	if r.kind != nil {
		return []error{r.kind, r.err}
	}
	return []error{r.err}
}

// Refine gives err a code, a short stable word a surface may send beside
// the kind's status ("deadline_passed"), and, if kind is not nil, a kind
// that takes precedence over err's own (matching's over-cap is Invalid
// for its package but TooLarge to a client). err's message is kept.
func Refine(err error, kind *Kind, code string) error {
	return &refined{err: err, kind: kind, code: code}
}

// Code returns the code of the outermost refinement in err's chain whose
// kind is err's kind, or "". A refinement wrapped under another kind (a
// broken agreement reported as Forbidden) lends no code.
func Code(err error) string {
	kind := KindOf(err)
	f := walk(err, func(e error) bool {
		r, ok := e.(*refined)
		return ok && KindOf(r) == kind
	})
	if f == nil {
		return ""
	}
	return f.(*refined).code
}
