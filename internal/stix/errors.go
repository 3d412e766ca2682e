package stix

import (
	"fmt"

	"github.com/parley-cti/parley/internal/fault"
)

// Sentinel errors. ErrNotJSON, ErrWrongSpecVersion and ErrInvalidPattern all
// wrap ErrInvalid, so a caller that only cares whether an object was refused
// checks ErrInvalid.
var (
	// ErrInvalid: the input is not a valid STIX 2.1 object.
	ErrInvalid = fault.New(fault.Invalid, "invalid STIX object")
	// ErrNotJSON: the input is not well-formed JSON.
	ErrNotJSON = fault.Errorf("%w: not JSON", ErrInvalid)
	// ErrWrongSpecVersion: the object is not STIX 2.1 (spec_version absent on
	// an SDO/SRO, or another version).
	ErrWrongSpecVersion = fault.Errorf("%w: wrong spec_version", ErrInvalid)
	// ErrInvalidPattern: a STIX pattern does not parse.
	ErrInvalidPattern = fault.Errorf("%w: bad pattern", ErrInvalid)
)

// ValidationError is the error ParseObject returns. ObjectID is the object's
// id when it could be read ("" otherwise); Reason says what is wrong in words
// fit for the client that sent the object.
type ValidationError struct {
	ObjectID string
	Reason   string
	// kind is the sentinel this error wraps (ErrInvalid when nil).
	kind error
}

func (e *ValidationError) Error() string {
	if e.ObjectID == "" {
		return e.Reason
	}
	return e.ObjectID + ": " + e.Reason
}

// ClientMessage is the error's text: Reason is written for the client that
// sent the object.
func (e *ValidationError) ClientMessage() (fault.Message, bool) {
	return fault.Message(e.Error()), true
}

// Unwrap returns the sentinel (ErrInvalid, ErrNotJSON or ErrWrongSpecVersion).
func (e *ValidationError) Unwrap() error {
	if e.kind == nil {
		return ErrInvalid
	}
	return e.kind
}

// PatternError is a pattern parse error at a byte offset of the pattern.
type PatternError struct {
	Offset int
	Msg    string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("%s at offset %d", e.Msg, e.Offset)
}

// ClientMessage is the error's text, which points into the client's pattern.
func (e *PatternError) ClientMessage() (fault.Message, bool) { return fault.Message(e.Error()), true }

// Unwrap returns ErrInvalidPattern.
func (e *PatternError) Unwrap() error { return ErrInvalidPattern }
