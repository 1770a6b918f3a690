package rawjson

import "testing"

// FuzzSkipString: the vectorised SkipString gives what the byte-by-byte
// scan gives, from any start, on any text (valid JSON or not).
func FuzzSkipString(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"a\\"b"`, `"abc`, `"abc\`, `"\"`, `"\\`, `"x\u0041y" , 1`, `""`, `"`, `x"y"`} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, at uint8) {
		if len(b) == 0 {
			return
		}
		i := int(at) % len(b)
		if got, want := SkipString(b, i), skipStringSlow(b, i+1); got != want {
			t.Fatalf("SkipString(%q, %d) = %d, byte by byte %d", b, i, got, want)
		}
	})
}
