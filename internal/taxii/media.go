package taxii

import (
	"mime"
	"strings"

	"github.com/parley-cti/parley/internal/wire"
)

// Media types of TAXII 2.1 and STIX 2.1 (spelled in package wire).
const (
	MediaTAXII = wire.MediaTAXII
	MediaSTIX  = wire.MediaSTIX
)

// acceptable reports whether an Accept header admits a TAXII 2.1 response.
// A missing header, wildcards and plain application/json are admitted so
// that curl and browsers work; an explicit other version is not.
func acceptable(accept string, stixToo bool) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok && (q == "0" || q == "0.0" || q == "0.00" || q == "0.000") {
			continue
		}
		v, hasV := params["version"]
		switch mt {
		case "*/*", "application/*", wire.MediaJSON:
			return true
		case wire.MediaTypeTAXII:
			if !hasV || v == "2.1" {
				return true
			}
		case wire.MediaTypeSTIX:
			if stixToo && (!hasV || v == "2.1") {
				return true
			}
		}
	}
	return false
}

// postable reports whether a request Content-Type is one TAXII 2.1 allows
// for adding objects.
func postable(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	v, hasV := params["version"]
	if hasV && v != "2.1" {
		return false
	}
	return mt == wire.MediaTypeTAXII
}
