package ingest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// TestWriteAcceptedIsWriteJSON: the 200 written by hand is byte for byte
// what encoding/json writes, escapes included.
func TestWriteAcceptedIsWriteJSON(t *testing.T) {
	t.Parallel()
	for _, res := range []Response{
		{RequestID: "req_01KBX4Z8Y0000000000000000A", EventID: "evt_01KBX4Z8Y0000000000000000B"},
		{RequestID: "req_1", EventID: "evt_0", Duplicate: true},
		{RequestID: "req_1", EventID: "evt_2", DedupError: `dedup key not computed, accepted without deduplication: evaluate "body.id": no such key: id`},
		{RequestID: "", EventID: "", DedupError: "<b>&amp;</b> \u2028 \x01 \xff é \\ \" \t"},
	} {
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		writeJSON(want, http.StatusOK, res)
		writeAccepted(got, &res)
		if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("%+v:\n got %d %q %q\nwant %d %q %q", res, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
	}
}

// TestReadBodyIsReadAll: readBody returns what io.ReadAll returns, with
// any announced length, right or wrong, and any error.
func TestReadBodyIsReadAll(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, size := range []int{0, 1, 511, 512, 513, 1024, 4000, maxBodyHint, maxBodyHint + 3, 200 << 10} {
		body := bytes.Repeat([]byte("abcdefghij"), size/10+1)[:size]
		for _, hint := range []int64{-1, 0, int64(size) - 1, int64(size), int64(size) + 1, 10 << 20} {
			readers := map[string]func() io.Reader{
				"plain":    func() io.Reader { return bytes.NewReader(body) },
				"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(body)) },
				"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(body)) },
				"error":    func() io.Reader { return io.MultiReader(bytes.NewReader(body), iotest.ErrReader(boom)) },
				"limit": func() io.Reader {
					return http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(body)), 1000)
				},
			}
			for name, r := range readers {
				want, werr := io.ReadAll(r())
				got, gerr := readBody(r(), hint)
				if !bytes.Equal(got, want) || (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
					t.Errorf("%s, %d bytes, hint %d: got %d bytes, %v; io.ReadAll %d bytes, %v", name, size, hint, len(got), gerr, len(want), werr)
				}
			}
		}
	}
}

// TestReadBodyHintIsBounded: an announced length is trusted only up to
// maxBodyHint for the first allocation.
func TestReadBodyHintIsBounded(t *testing.T) {
	t.Parallel()
	b, err := readBody(strings.NewReader("x"), 1<<30)
	if err != nil || string(b) != "x" || cap(b) > maxBodyHint+1 {
		t.Fatalf("got %q (cap %d), %v", b, cap(b), err)
	}
}
