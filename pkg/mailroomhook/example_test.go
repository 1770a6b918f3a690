package mailroomhook_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/verify"
	"github.com/mailroomhq/mailroom/pkg/mailroomhook"
)

const secret = "whsec_w+0z15CRQXYRd4MkllyrT1XYNPGW85tG"

// A destination that only accepts what mailroom signed.
func ExampleMiddleware() {
	hooks := mailroomhook.Middleware(secret, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println("trusted:", string(body))
	}))

	// What mailroom sends (signed here with the same scheme).
	body := `{"type":"checkout.session.completed"}`
	req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
	req.Header.Set("webhook-id", "dlv_1")
	_ = verify.Sign(verifyCfg(), &verify.Message{Header: req.Header, Body: []byte(body), Now: time.Now()})
	hooks.ServeHTTP(httptest.NewRecorder(), req)

	// A forgery.
	forged := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
	forged.Header = req.Header.Clone()
	forged.Header.Set("webhook-id", "dlv_2")
	rec := httptest.NewRecorder()
	hooks.ServeHTTP(rec, forged)
	fmt.Println("forged:", rec.Code)
	// Output:
	// trusted: {"type":"checkout.session.completed"}
	// forged: 401
}

func ExampleVerify() {
	body := []byte(`{"id":"evt_1"}`)
	h := http.Header{}
	_ = verify.Sign(verifyCfg(), &verify.Message{Header: h, Body: body, Now: time.Now()})
	fmt.Println(mailroomhook.Verify(secret, h, body))
	err := mailroomhook.Verify(secret, h, []byte(`{"id":"evt_2"}`))
	fmt.Println(errors.Is(err, mailroomhook.ErrSignatureMismatch))
	// Output:
	// <nil>
	// true
}
