// Package wire holds what parley's HTTP surfaces and the programs that talk
// to them must spell the same way: header names, media types and the JSON
// bodies of the management API. The server's surfaces (api, taxii, web,
// ledgerhttp), the client and the test harnesses all use it, so a field or
// header renamed on one side is renamed on the other.
//
// It holds names and shapes only: no behaviour, no validation, and it
// imports nothing of parley, so the client can use it without linking the
// server and the server without linking the client.
package wire

// Headers.
const (
	// LedgerIndexHeader carries the index of the ledger entry recording a
	// state change: the caller's receipt.
	LedgerIndexHeader = "X-Parley-Ledger-Index"
	// ContentSHA256Header states a deposit's SHA-256 (hex): sent with a
	// deposit, returned with a fetched one.
	ContentSHA256Header = "X-Parley-Content-SHA256"
	// ManifestHeader carries a deposit's signed manifest (JSON), base64.
	ManifestHeader = "X-Parley-Manifest"
	// SealedHeader says whether a fetched deposit is an age file ("true").
	SealedHeader = "X-Parley-Sealed"
	// DepositorHeader names the party whose deposit was fetched.
	DepositorHeader = "X-Parley-Depositor"
	// MatchCountHeader carries the element count of a streamed round-1
	// message.
	MatchCountHeader = "X-Parley-Match-Count"
)

// Media types.
const (
	// MediaTAXII and MediaSTIX are the TAXII 2.1 and STIX 2.1 media types
	// as sent in Accept and Content-Type.
	MediaTAXII = "application/taxii+json;version=2.1"
	MediaSTIX  = "application/stix+json;version=2.1"
	// MediaTypeTAXII and MediaTypeSTIX are the same without parameters,
	// as mime.ParseMediaType returns them.
	MediaTypeTAXII = "application/taxii+json"
	MediaTypeSTIX  = "application/stix+json"
	// MediaJSON is the management API's media type.
	MediaJSON = "application/json"
	// MediaSealed is a sealed (age) deposit.
	MediaSealed = "application/octet-stream"
)
