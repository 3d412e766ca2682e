package taxii

import (
	"bytes"
	"encoding/json"

	"github.com/parley-cti/parley/internal/jsonscan"
)

// maxScanDepth bounds the nesting the fast path follows in a member's
// value; deeper JSON goes to the careful path (encoding/json refuses
// nesting beyond jsonscan.MaxDepth).
const maxScanDepth = 1000

// splitEnvelope is parseEnvelope's fast path for the common, well-formed
// envelope: one pass over the body that checks it is valid JSON while it
// finds each object, returned as a subslice of body, without decoding or
// copying anything. Whenever the body is anything but a valid envelope
// whose keys are objects (a non-empty array), more and next, each once and
// without escapes, it reports ok=false and the careful path decides, with
// its error messages; the two paths agree on everything the fast one
// accepts (FuzzSplitEnvelope checks it). The check is json.Valid's grammar
// (what the careful path's json.Unmarshal accepts, jsonscan's), made in the
// same pass as the split instead of a pass of its own before it.
func splitEnvelope(body []byte) (objs []json.RawMessage, ok bool) {
	i := jsonscan.SkipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i++
	var seenObjects, seenMore, seenNext bool
	for first := true; ; first = false {
		i = jsonscan.SkipSpace(body, i)
		if i >= len(body) {
			return nil, false
		}
		if body[i] == '}' {
			if first || !seenObjects || len(objs) == 0 || jsonscan.SkipSpace(body, i+1) != len(body) {
				return nil, false
			}
			return objs, true
		}
		if !first {
			if body[i] != ',' {
				return nil, false
			}
			i = jsonscan.SkipSpace(body, i+1)
		}
		if i >= len(body) || body[i] != '"' {
			return nil, false
		}
		end, err := jsonscan.String(body, i)
		if err != nil {
			return nil, false
		}
		key := body[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return nil, false
		}
		i = jsonscan.SkipSpace(body, end)
		if i >= len(body) || body[i] != ':' {
			return nil, false
		}
		i = jsonscan.SkipSpace(body, i+1)
		switch string(key) {
		case "objects":
			if seenObjects || i >= len(body) || body[i] != '[' {
				return nil, false
			}
			seenObjects = true
			i++
			for n := 0; ; n++ {
				i = jsonscan.SkipSpace(body, i)
				if i >= len(body) {
					return nil, false
				}
				if body[i] == ']' {
					i++
					break
				}
				if n > 0 {
					if body[i] != ',' {
						return nil, false
					}
					i = jsonscan.SkipSpace(body, i+1)
				}
				end, err := jsonscan.Value(body, i, maxScanDepth)
				if err != nil {
					return nil, false
				}
				objs = append(objs, body[i:end:end])
				i = end
			}
		case "more", "next":
			seen := &seenMore
			if key[0] == 'n' {
				seen = &seenNext
			}
			if *seen {
				return nil, false
			}
			*seen = true
			if i, err = jsonscan.Value(body, i, maxScanDepth); err != nil {
				return nil, false
			}
		default:
			return nil, false
		}
	}
}
