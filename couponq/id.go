package couponq

import "fmt"

// MaxIDLen is the longest campaign, user or request ID accepted, in bytes.
const MaxIDLen = 128

// ValidateID reports whether id is a usable campaign, user or request ID:
// 1 to MaxIDLen bytes of ASCII letters, digits and the marks - _ . : @ +.
// Braces, spaces, slashes and anything else are refused, so IDs are safe in
// Redis keys (no stray hash tags), URLs, logs and message headers.
// The error wraps ErrInvalidID.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return fmt.Errorf("%w: byte %d (%q) not allowed", ErrInvalidID, i, id[i])
		}
	}
	return nil
}

func idByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '-', '_', '.', ':', '@', '+':
		return true
	}
	return false
}
