package verify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// The header parsers of the providers with structured signature headers
// (Paddle's "ts=...;h1=...", PagerDuty's "v1=...,v1=...") are fuzzed with an
// exact oracle: the header is built from parts the fuzzer chooses, so the
// expected result is known without parsing, and any text the fuzzer
// appends either leaves it unchanged or must be refused.

// splitSigs turns fuzz bytes into up to four signatures of 1 to 32 bytes.
func splitSigs(raw []byte) [][]byte {
	var sigs [][]byte
	for len(raw) > 0 && len(sigs) < 4 {
		n := min(int(raw[0])%32+1, len(raw))
		sigs = append(sigs, raw[:n])
		raw = raw[n:]
	}
	return sigs
}

func FuzzPaddleHeader(f *testing.F) {
	f.Add(int64(1_700_000_000), []byte("\x03abc\x01z"), "", false)
	f.Add(int64(-1), []byte{}, "foo=bar", true)
	f.Add(int64(0), []byte("\x00"), "ts=1", false)
	f.Add(int64(5), []byte("\x01ab"), "h1=zz", true)
	f.Fuzz(func(t *testing.T, ts int64, raw []byte, extra string, upper bool) {
		sigs := splitSigs(raw)
		parts := []string{"ts=" + strconv.FormatInt(ts, 10)}
		for _, s := range sigs {
			h := hex.EncodeToString(s)
			if upper {
				h = strings.ToUpper(h)
			}
			parts = append(parts, "h1="+h)
		}
		header := strings.Join(parts, ";")
		gotTS, gotSigs, err := paddleFormat.parse(header)
		switch {
		case len(sigs) == 0:
			if !errors.Is(err, ErrMissingSignature) {
				t.Fatalf("parse(%q) = %v, want missing signature", header, err)
			}
		case err != nil:
			t.Fatalf("parse(%q): %v", header, err)
		case gotTS != ts || len(gotSigs) != len(sigs):
			t.Fatalf("parse(%q) = %d, %x", header, gotTS, gotSigs)
		default:
			for i := range sigs {
				if !bytes.Equal(gotSigs[i], sigs[i]) {
					t.Fatalf("parse(%q) sig %d = %x, want %x", header, i, gotSigs[i], sigs[i])
				}
			}
		}
		// Another element appended: one that is not ts or h1 changes
		// nothing; a second ts is refused; an h1 adds a signature.
		if len(sigs) == 0 {
			return
		}
		header += ";" + extra
		gotTS2, gotSigs2, err := paddleFormat.parse(header)
		if err != nil {
			return
		}
		if gotTS2 != ts {
			t.Fatalf("parse(%q) ts = %d, want %d (a second ts must be refused)", header, gotTS2, ts)
		}
		for i := range sigs {
			if !bytes.Equal(gotSigs2[i], sigs[i]) {
				t.Fatalf("parse(%q) changed signature %d", header, i)
			}
		}
		if added := len(gotSigs2) - len(sigs); added < 0 || added > strings.Count(";"+extra, ";h1=") {
			t.Fatalf("parse(%q) gave %d signatures from %d", header, len(gotSigs2), len(sigs))
		}
	})
}

func FuzzPagerDutyHeader(f *testing.F) {
	f.Add([]byte("\x03abc\x01z"), "", " ")
	f.Add([]byte{}, "v0=00", "")
	f.Add([]byte("\x01a"), "v1=zz", ", ")
	f.Fuzz(func(t *testing.T, raw []byte, extra, sep string) {
		if strings.ContainsAny(sep, ",=v") || strings.TrimSpace(sep) != "" {
			sep = ""
		}
		sigs := splitSigs(raw)
		var parts []string
		for _, s := range sigs {
			parts = append(parts, "v1="+hex.EncodeToString(s))
		}
		header := strings.Join(parts, ","+sep)
		got, err := parsePagerDutyHeader(header)
		switch {
		case len(sigs) == 0:
			if !errors.Is(err, ErrMissingSignature) {
				t.Fatalf("parse(%q) = %v, want missing signature", header, err)
			}
			return
		case err != nil:
			t.Fatalf("parse(%q): %v", header, err)
		case len(got) != len(sigs):
			t.Fatalf("parse(%q) = %x", header, got)
		}
		for i := range sigs {
			if !bytes.Equal(got[i], sigs[i]) {
				t.Fatalf("parse(%q) sig %d = %x, want %x", header, i, got[i], sigs[i])
			}
		}
		// Another element appended: the signatures before it stay.
		header += "," + extra
		got2, err := parsePagerDutyHeader(header)
		if err != nil {
			return
		}
		for i := range sigs {
			if !bytes.Equal(got2[i], sigs[i]) {
				t.Fatalf("parse(%q) changed signature %d", header, i)
			}
		}
		if added := len(got2) - len(sigs); added < 0 || added > strings.Count(extra, "v1=") {
			t.Fatalf("parse(%q) gave %d signatures from %d", header, len(got2), len(sigs))
		}
	})
}
