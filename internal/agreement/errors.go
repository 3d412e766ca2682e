package agreement

import (
	"errors"
	"fmt"
)

// Sentinel errors. Functions wrap them with detail; branch with errors.Is.
var (
	// ErrInvalidDocument: the agreement document is malformed or breaks a rule.
	ErrInvalidDocument = errors.New("invalid agreement document")
	// ErrSelfAgreement: both parties of a document are the same party.
	ErrSelfAgreement = errors.New("a party cannot make an agreement with itself")
	// ErrBadSignature: a signature does not verify, or is malformed.
	ErrBadSignature = errors.New("bad signature")
	// ErrWrongVersion: a signature was made for another version of the document.
	ErrWrongVersion = errors.New("signature is for another version")
	// ErrUnknownKey: the key id is not known, or not valid at the time of use.
	ErrUnknownKey = errors.New("unknown key")
	// ErrKeyRotated: the key was rotated out before it was used. Wraps ErrUnknownKey.
	ErrKeyRotated = fmt.Errorf("%w: key rotated out", ErrUnknownKey)
	// ErrDocumentChanged: the signed document hash or id differs from the document.
	ErrDocumentChanged = errors.New("document changed since it was signed")
	// ErrIdentityMismatch: a document names a key (or name) for a party
	// that is not the one that signed it, or not the one registered.
	ErrIdentityMismatch = errors.New("identity in the document does not match the signer")
	// ErrNotParty: the signer is not a party to the agreement, or may not take the action.
	ErrNotParty = errors.New("signer is not a party to the agreement")
	// ErrIllegalTransition: the action is not allowed in the agreement's current state.
	ErrIllegalTransition = errors.New("illegal agreement transition")
	// ErrOutOfScope: an object falls outside the agreement's scope.
	ErrOutOfScope = errors.New("out of the agreement's scope")
	// ErrInvalidKey: a key file or encoding is malformed.
	ErrInvalidKey = errors.New("invalid key")
)
