package agreement

import (
	"github.com/parley-cti/parley/internal/fault"
)

// Sentinel errors. Functions wrap them with detail; branch with errors.Is.
var (
	// ErrInvalidDocument: the agreement document is malformed or breaks a rule.
	ErrInvalidDocument = fault.New(fault.Invalid, "invalid agreement document")
	// ErrSelfAgreement: both parties of a document are the same party.
	ErrSelfAgreement = fault.New(fault.Invalid, "a party cannot make an agreement with itself")
	// ErrBadSignature: a signature does not verify, or is malformed.
	ErrBadSignature = fault.New(fault.Invalid, "bad signature")
	// ErrWrongVersion: a signature was made for another version of the document.
	ErrWrongVersion = fault.New(fault.Invalid, "signature is for another version")
	// ErrUnknownKey: the key id is not known, or not valid at the time of use.
	ErrUnknownKey = fault.New(fault.Invalid, "unknown key")
	// ErrKeyRotated: the key was rotated out before it was used. Wraps ErrUnknownKey.
	ErrKeyRotated = fault.Errorf("%w: key rotated out", ErrUnknownKey)
	// ErrDocumentChanged: the signed document hash or id differs from the document.
	ErrDocumentChanged = fault.New(fault.Invalid, "document changed since it was signed")
	// ErrIdentityMismatch: a document names a key (or name) for a party
	// that is not the one that signed it, or not the one registered.
	ErrIdentityMismatch = fault.New(fault.Invalid, "identity in the document does not match the signer")
	// ErrNotParty: the signer is not a party to the agreement, or may not take the action.
	ErrNotParty = fault.New(fault.Forbidden, "signer is not a party to the agreement")
	// ErrIllegalTransition: the action is not allowed in the agreement's current state.
	ErrIllegalTransition = fault.New(fault.Conflict, "illegal agreement transition")
	// ErrOutOfScope: an object falls outside the agreement's scope.
	ErrOutOfScope = fault.New(fault.Invalid, "out of the agreement's scope")
	// ErrInvalidKey: a key file or encoding is malformed.
	ErrInvalidKey = fault.New(fault.Invalid, "invalid key")
)
