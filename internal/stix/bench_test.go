package stix

import (
	"testing"
)

// smallIndicator is the shape of the honeypot feed's objects.
var smallIndicator = []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2025-12-19T00:00:00.000Z","modified":"2025-12-19T00:00:00.000Z","name":"Malicious IP 203.0.113.7","indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '203.0.113.7']","pattern_type":"stix","valid_from":"2025-12-19T00:00:00Z","confidence":80,"labels":["honeypot","ssh-bruteforce"],"object_marking_refs":["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"],"created_by_ref":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"}`)

func BenchmarkParseObject(b *testing.B) {
	b.Run("small-indicator", func(b *testing.B) {
		if _, err := ParseObject(smallIndicator); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(smallIndicator)))
		b.ReportAllocs()
		cpu0 := processCPU()
		for b.Loop() {
			if _, err := ParseObject(smallIndicator); err != nil {
				b.Fatal(err)
			}
		}
		reportRates(b, processCPU()-cpu0)
	})
	b.Run("mixed-testdata", func(b *testing.B) {
		var objs [][]byte
		var size int64
		for _, fo := range loadDir(b, "valid") {
			if _, err := ParseObject(fo.raw); err == nil {
				objs = append(objs, fo.raw)
				size += int64(len(fo.raw))
			}
		}
		b.SetBytes(size / int64(len(objs)))
		b.ReportAllocs()
		i := 0
		cpu0 := processCPU()
		for b.Loop() {
			if _, err := ParseObject(objs[i%len(objs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reportRates(b, processCPU()-cpu0)
	})
}

// reportRates reports objects per wall-clock second and per CPU-second of
// the whole process (GC included).
func reportRates(b *testing.B, cpuSeconds float64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	if cpuSeconds > 0 {
		b.ReportMetric(float64(b.N)/cpuSeconds, "objects/cpu-s")
	}
}

func BenchmarkParsePattern(b *testing.B) {
	const pat = "[file:hashes.'SHA-256' = 'ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c' AND file:size > 1024] FOLLOWEDBY [ipv4-addr:value ISSUBSET '198.51.100.0/24'] WITHIN 300 SECONDS"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePattern(pat); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFingerprint: ParseObject against ValidateObject, which differ
// only by the content fingerprint, on the shape of the honeypot feed's
// indicators (what give-to-get pays an object for it) and on an object
// whose content is its properties.
func BenchmarkFingerprint(b *testing.B) {
	malware := []byte(`{"type":"malware","spec_version":"2.1","id":"malware--31b940d4-6f7f-459a-80ea-9c1f17b58abc","created":"2025-12-19T00:00:00.000Z","modified":"2025-12-19T00:00:00.000Z","name":"DarkSide","description":"Ransomware-as-a-service  first seen in August 2020; it encrypts files and exfiltrates data before demanding a ransom.","malware_types":["ransomware","remote-access-trojan"],"is_family":true,"aliases":["BlackMatter","Carbon Spider"],"object_marking_refs":["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"]}`)
	for _, c := range []struct {
		name string
		raw  []byte
	}{{"indicator", smallIndicator}, {"malware", malware}} {
		for _, p := range []struct {
			name  string
			parse func([]byte) (*Object, error)
		}{{"ParseObject", ParseObject}, {"ValidateObject", ValidateObject}} {
			b.Run(c.name+"/"+p.name, func(b *testing.B) {
				if _, err := p.parse(c.raw); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.parse(c.raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
