package taxii_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawObjects returns the objects of a STIX file: a bundle's objects, a bare
// array's elements, or the one object the file is. Bytes are kept as they
// are in the file.
func rawObjects(data []byte) ([]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var arr []json.RawMessage
		err := json.Unmarshal(data, &arr)
		return arr, err
	}
	var b struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	if b.Objects != nil {
		return b.Objects, nil
	}
	return []json.RawMessage{data}, nil
}

// TestValidTestdataRoundTrip posts every object of every valid test-data
// file through TAXII and reads each accepted one back: the bytes must be the
// bytes sent. Objects the validator refuses must be reported by id with a
// reason (the data set has a few known-bad ones, listed in its README).
func TestValidTestdataRoundTrip(t *testing.T) {
	dir := sharedTestdata(t, "stix/valid")
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			files = append(files, p)
		}
		return err
	})
	if len(files) == 0 {
		t.Skip("no valid STIX files in the shared test data")
	}
	e := newEnv(t)
	a := e.party("alpha")
	total, refused := 0, 0
	for _, f := range files {
		name, _ := filepath.Rel(dir, f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := rawObjects(data)
			if err != nil {
				t.Skipf("not JSON the loader understands: %v", err)
			}
			if testing.Short() && len(objs) > 500 {
				t.Skipf("%d objects; skipped in -short", len(objs))
			}
			coll := e.collection(name, []member{a}, []member{a})
			sent := map[string][]byte{} // id@version → bytes accepted
			for start := 0; start < len(objs); start += 500 {
				chunk := objs[start:min(start+500, len(objs))]
				strs := make([]string, len(chunk))
				for i, o := range chunk {
					strs[i] = string(o)
				}
				r := e.post(a.token, coll, strs...)
				var st status
				r.json(t, &st)
				if r.status != 202 || st.TotalCount != len(chunk) || st.SuccessCount+st.FailureCount != len(chunk) {
					t.Fatalf("POST: %d %.400s", r.status, r.body)
				}
				for _, fl := range st.Failures {
					if fl.Message == "" {
						t.Errorf("failure without a reason: %+v", fl)
					}
					t.Logf("refused %s: %s", fl.ID, fl.Message)
				}
				refused += st.FailureCount
				// Successes come in request order, failures left out.
				si := 0
				for _, o := range chunk {
					if si == len(st.Successes) {
						break
					}
					var h struct{ ID string }
					json.Unmarshal(o, &h)
					if h.ID != st.Successes[si].ID {
						continue
					}
					key := h.ID + "@" + st.Successes[si].Version
					if _, dup := sent[key]; !dup {
						sent[key] = o
					}
					si++
				}
			}
			total += len(sent)
			got := 0
			for _, p := range e.walk(a.token, e.collURL(coll, "manifest/"), "?match[version]=all&limit=1000") {
				got += len(p.Objects)
			}
			if got != len(sent) {
				t.Errorf("manifest lists %d versions, %d were accepted", got, len(sent))
			}
			back := 0
			for _, p := range e.walk(a.token, e.collURL(coll, "objects/"), "?match[version]=all&limit=1000") {
				for _, o := range p.Objects {
					back++
					var h struct{ ID string }
					json.Unmarshal(o, &h)
					if !matchAny(sent, h.ID, o) {
						t.Errorf("%s came back changed: %.200s", h.ID, o)
					}
				}
			}
			if back != len(sent) {
				t.Errorf("read back %d versions, %d were accepted", back, len(sent))
			}
		})
	}
	t.Logf("%d object versions round-tripped byte-identical, %d refused with a reason", total, refused)
}

// matchAny reports whether o is byte-identical to an accepted version of
// id (SCOs have no modified, so the test cannot predict their version).
func matchAny(sent map[string][]byte, id string, o []byte) bool {
	for k, v := range sent {
		if strings.HasPrefix(k, id+"@") && bytes.Equal(v, o) {
			return true
		}
	}
	return false
}
