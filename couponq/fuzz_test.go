package couponq_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/couponq/couponq/couponq"
)

// refValidID is the rule of ValidateID's doc comment, written again from the
// comment rather than from the code: "1 to MaxIDLen bytes of ASCII letters,
// digits and the marks - _ . : @ +".
func refValidID(id string) bool {
	const marks = "-_.:@+"
	if len(id) < 1 || len(id) > 128 {
		return false
	}
	for _, b := range []byte(id) {
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case b < 0x80 && strings.IndexByte(marks, b) >= 0:
		default:
			return false
		}
	}
	return true
}

// FuzzValidateID checks ValidateID, and Request.Validate built on it,
// against the documented rule: it never panics, accepts exactly the IDs the
// rule allows (so an accepted ID has no brace, space, slash or non-ASCII
// byte), and every refusal wraps ErrInvalidID (and so has that Code).
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{
		"", "a", "spring-sale", "u-42", "user@example.com", "a+b", "a.b:c_d-e@f+g", "0",
		strings.Repeat("x", 127), strings.Repeat("x", 128), strings.Repeat("x", 129),
		"a b", "a/b", "a{b}", "{", "}", "\x00", "a\nb", "é", "\xff", "a\x7f", "~", "a,b", "%20", "a#b",
		"..", "@", strings.Repeat("é", 64),
	} {
		f.Add(s)
	}
	if couponq.MaxIDLen != 128 {
		f.Fatalf("MaxIDLen is %d; the reference rule (from the doc comment) says 128", couponq.MaxIDLen)
	}
	f.Fuzz(func(t *testing.T, id string) {
		want := refValidID(id)
		err := couponq.ValidateID(id)
		if want != (err == nil) {
			t.Fatalf("ValidateID(%q) = %v; the documented rule says valid=%v", id, err, want)
		}
		if err != nil {
			if !errors.Is(err, couponq.ErrInvalidID) {
				t.Fatalf("ValidateID(%q) = %v, which does not wrap ErrInvalidID", id, err)
			}
			if c := couponq.Code(err); c != couponq.CodeInvalidID {
				t.Fatalf("Code(ValidateID(%q)) = %q, want %q", id, c, couponq.CodeInvalidID)
			}
			if err.Error() == "" {
				t.Fatalf("ValidateID(%q): empty error message", id)
			}
		} else if strings.ContainsAny(id, "{} /\\\t\r\n\x00") {
			t.Fatalf("ValidateID accepted %q, which holds a brace, space, slash or control byte", id)
		}

		// Request.Validate applies the same rule to each ID it holds; the
		// request ID is optional (empty is fine).
		for _, tc := range []struct {
			name string
			r    couponq.Request
			ok   bool
		}{
			{"campaign", couponq.Request{Campaign: id, User: "u"}, want},
			{"user", couponq.Request{Campaign: "c", User: id}, want},
			{"request id", couponq.Request{Campaign: "c", User: "u", RequestID: id}, want || id == ""},
		} {
			err := tc.r.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Request.Validate with %s %q = %v; want valid=%v", tc.name, id, err, tc.ok)
			}
			if err != nil && !errors.Is(err, couponq.ErrInvalidID) {
				t.Fatalf("Request.Validate with %s %q = %v, which does not wrap ErrInvalidID", tc.name, id, err)
			}
		}
	})
}
