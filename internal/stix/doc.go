// Package stix parses and validates STIX 2.1 objects and the STIX patterning
// language.
//
// # What it owns
//
// ParseObject turns the bytes of one posted object into an *Object after
// checking it against the STIX 2.1 specification: well-formed strict JSON
// (no duplicate keys, bounded depth and size), the common properties, the
// required and typed properties of every SDO, SRO, SCO and meta object, the
// naming rules for custom properties and types, identifier and reference
// shapes, and, for indicators with pattern_type "stix", the pattern itself
// (ParsePattern). TLP 1.0 and 2.0 marking definitions are named here too
// (TLPLevel).
//
// # What it must never do
//
// It imports nothing of parley, performs no I/O, keeps no state, and never
// panics on any input: the TAXII server calls it on every object it is sent.
// It never re-encodes an accepted object; Object.Raw is the input bytes.
// It does not resolve references between objects (that needs a store); it
// only checks their shape and, where the specification fixes it, the type
// they point to.
//
// # Errors
//
// Every rejection is a *ValidationError naming the object id (when known)
// and the specific reason. errors.Is(err, ErrInvalid) holds for all of them;
// ErrNotJSON and ErrWrongSpecVersion refine it.
package stix
