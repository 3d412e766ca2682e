package escrow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/stix"
)

// MaxDeposit bounds one deposit (bundle or ciphertext).
const MaxDeposit = 32 << 20

// MaxObjectsPerBundle bounds the objects of one plain deposit.
const MaxObjectsPerBundle = 100_000

// Bundle is a parsed, validated STIX 2.1 bundle.
type Bundle struct {
	ID      string
	Objects []*stix.Object
}

// ParseBundle parses raw as a STIX 2.1 bundle and validates every object
// with package stix. It refuses the whole bundle if any object is invalid
// (a deposit is one unit: half a dossier is not what was promised), naming
// up to ten of the bad objects. Errors wrap ErrInvalid.
func ParseBundle(raw []byte) (Bundle, error) {
	if len(raw) > MaxDeposit {
		return Bundle{}, fault.Errorf("%w: the bundle is %d bytes, more than %d", ErrInvalid, len(raw), MaxDeposit)
	}
	var env struct {
		Type    string            `json:"type"`
		ID      string            `json:"id"`
		Objects []json.RawMessage `json:"objects"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&env); err != nil {
		return Bundle{}, fault.Errorf("%w: the deposit is not a JSON STIX bundle: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Bundle{}, fault.Errorf("%w: the deposit holds more than one JSON value", ErrInvalid)
	}
	if env.Type != "bundle" {
		return Bundle{}, fault.Errorf("%w: the deposit's type is %q, not \"bundle\"", ErrInvalid, env.Type)
	}
	if !strings.HasPrefix(env.ID, "bundle--") || len(env.ID) != len("bundle--")+36 {
		return Bundle{}, fault.Errorf("%w: the bundle id %q is not bundle--<uuid>", ErrInvalid, env.ID)
	}
	if len(env.Objects) == 0 {
		return Bundle{}, fault.Errorf("%w: the bundle holds no objects", ErrInvalid)
	}
	if len(env.Objects) > MaxObjectsPerBundle {
		return Bundle{}, fault.Errorf("%w: the bundle holds %d objects, more than %d", ErrInvalid, len(env.Objects), MaxObjectsPerBundle)
	}
	b := Bundle{ID: env.ID, Objects: make([]*stix.Object, 0, len(env.Objects))}
	var bad []string
	seen := map[string]bool{}
	for i, r := range env.Objects {
		o, err := stix.ParseObject(r)
		if err != nil {
			bad = append(bad, fmt.Sprintf("objects[%d]: %v", i, err))
			continue
		}
		key := o.ID + "@" + o.Modified.String()
		if seen[key] {
			bad = append(bad, fmt.Sprintf("objects[%d]: %s appears twice in the bundle", i, o.ID))
			continue
		}
		seen[key] = true
		b.Objects = append(b.Objects, o)
	}
	if len(bad) > 0 {
		n, more := len(bad), ""
		if n > 10 {
			more = fmt.Sprintf("; and %d more", n-10)
			bad = bad[:10]
		}
		return Bundle{}, fault.Errorf("%w: %d of %d objects are invalid: %s%s", ErrInvalid, n, len(env.Objects), strings.Join(bad, "; "), more)
	}
	return b, nil
}
