package stix

// observableRules are the cross-property rules of cyber-observable objects
// (STIX 2.1 section 6).
func (v *validator) observableRules() error {
	r := v.root
	switch v.typ {
	case "artifact":
		_, bin := r.get("payload_bin")
		_, url := r.get("url")
		_, hashes := r.get("hashes")
		if bin && url {
			return v.fail("artifact must not have both payload_bin and url")
		}
		if url && !hashes {
			return v.fail("artifact with url needs hashes")
		}
		_, key := r.get("decryption_key")
		_, alg := r.get("encryption_algorithm")
		if key && !alg {
			return v.fail("decryption_key needs encryption_algorithm")
		}
	case "file":
		_, hashes := r.get("hashes")
		_, name := r.get("name")
		if !hashes && !name {
			return v.fail("file needs hashes or name")
		}
	case "email-message":
		mp, _ := r.get("is_multipart")
		_, body := r.get("body")
		_, parts := r.get("body_multipart")
		if mp.b && body {
			return v.fail("multipart email-message must not have body")
		}
		if !mp.b && parts {
			return v.fail("email-message with body_multipart must have is_multipart true")
		}
		if bm, ok := r.get("body_multipart"); ok {
			for i := range bm.arr {
				if err := v.nestedRefs("body_multipart", &bm.arr[i]); err != nil {
					return err
				}
			}
		}
	case "network-traffic":
		_, src := r.get("src_ref")
		_, dst := r.get("dst_ref")
		if !src && !dst {
			return v.fail("network-traffic needs src_ref or dst_ref")
		}
		return v.order("start", "end", false)
	}
	return nil
}
