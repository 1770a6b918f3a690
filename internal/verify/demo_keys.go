package verify

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
)

// sendGridDemoKey is a P-256 private key made for mailroom's samples and
// tests (base64 PKCS#8 DER). It is public: never use it for anything else.
const sendGridDemoKey = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdTNAcYLtSLAg9LizXUjgufsmDQhnNIIwmmHkb6Kbk8ahRANCAAS8mcgYDkpouddCwuay1Af+mPhSrezVjby5C44bp6dfMhI1aRoKRvucLJ7j2eW4Wti99NcIJSXmIjH7BbsoBLBX"

// snsDemoKey is an RSA key made for mailroom's SNS samples and tests
// (base64 PKCS#8 DER). It is public: never use it for anything else.
const snsDemoKey = "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDbn7zEHDQ1PgDGIWhvv0sniG3JhYCKIzfB0UkrhuhQVMUkVUhja4ZcxKCqBx7Rv6LV1xEJQXo1b24nU9Loqlu2darQwVZC2YeBai3X42dcsI4q6gcgCLLfGLqt5bhv1xzliuahBpCumfZZfMZkrzNmiktJwjlvQssjYnDO116inIOOvtt4/SEM4dOz7PoqMVm/6/Q7fmNXFYKGl/ZTFUql+l/bKqHFhhgm7uvhYAiU+PuYg+/fyFylqZhdNfraj1lOH/XyDID6bdt+vFS6KNub6IB3uslwESdFFs0nPUkq0p8KUdPvUxisyTNOdyaTXO6tvJBl+o867ZrNjcvsIDy/AgMBAAECggEAYYFBpS+AXkLwxQX//9zF2P9Q/q8uqiWIk5v/CDwU19VK0R6rzLfoJzeEvPf8TtLt0FJzVdCkGSUnmn40nOdFYHRNKfEsAvHgnywsvjRPp28bLyJHl4lFIJcyChJ7F+xBAAfy7HqlsV7ZaFFlIz5Fa7jqRAzewu68kTEbNDmZ4kcX5v8ascBYPu/L9ocqW7a1G1KiTIAoF/nEUJiOzACqw8qnQZ7MDDZ7ZocklBlpY9R4ud1ZSufAYKdiLkpHFA/oFrcXx9i9Z9NDig2Z30QdfXhyfxJwScoeSFTGBr4PXXYCeemSyiny9KBjjw3n28mJJshXTxNLU8mYwakyBkPTgQKBgQDyxBC0WwIFqO3tJsw8+AhbNvnypy4I8y8vd3OIZ7SKCvdzQ9G1T1lNuGR5wFtpJ+cgQP+yYtImNMsxKLZURCmLcjEfPZkeI455T8T7Ezck67840Tyq3NFUfwKFZXI8+KQo35Jahpuy6v+EqBvjF5fWD5Oz5y41Etsl9wjF5eItRwKBgQDnmLa5qCAK/xY5aY35Eg3RQf8wiRnDID2jR8LyoWe7SYZzsqzGow9fQfaIseTCXNQ6PTVg0g0hUi6Mvf83Y7o7mwrvxbDt2ZygXAEZfHKfPC41En6MIbFbp/8trsClnDVcMdJL+eJuAT+Cc4YRolSAt+iLM+ICrDeCvv4y3bfQyQKBgQCyTPqP3H/BtG77TRGYfft1Mw2lANC41hOD41HBj5l0AdX4nIj7h4npoVJ6caMxupLwh4zFcfszAHd0ZZh0j5OLzZTygwVgs3DC/KmKVnSb82IA0vyh6Yj9bENnwjiDO4MmWf5d6puUbzC4N9gzlHJ6T/qFmXfAl1bJrYSOBOd3pQKBgQCTeF+p+o9k0SdSqY74sXFQ9ShMvJBF+oqlJPXSz8ogrOHLXFO+LGiGbJdSVYxn4vpUl1Mc8sPfmtf/UKBpobwdZk1hfk16Nt4QEmW019SY5pY5vywLiQzJY0EO0r7i9YPYz/Sr4lM3Xt4U8ADHy8jpKbIOqZvZvdWfEIUG2L3KWQKBgHfNhNCewDuGzXJuKPh04Zu0vMIL4A1gCPqvUXwW6GU7QkK2hNHharfLgUfKHEsp6LGiOXmm3XQCeBflNDzwctI0dsKtfZnzcAQZiTKgr3+s2uv77Tht7tQI33jZoNuSHUBGkZXYaBxbfo3GuHlfzqX/UTKj557yIu9jwYLrUEtW"

// parsePKCS8 reads a base64 PKCS#8 DER private key of type K (an
// *ecdsa.PrivateKey, an *rsa.PrivateKey), the signing secret of samples of
// the schemes signed with a private key.
func parsePKCS8[K any](s string) (K, error) {
	var zero K
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return zero, errors.New("the secret must be a base64 PKCS#8 private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return zero, fmt.Errorf("the secret must be a base64 PKCS#8 private key: %w", err)
	}
	key, ok := k.(K)
	if !ok {
		return zero, fmt.Errorf("the secret is a %T, want a %T", k, zero)
	}
	return key, nil
}
