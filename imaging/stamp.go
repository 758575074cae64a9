package imaging

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

// StampLen is the length of an encoded modification stamp.
const StampLen = 11

var stampEncoding = base64.RawURLEncoding.Strict()

// EncodeStamp encodes a Unix-ms modification time as the 11-character
// base64url stamp (no padding) of its big-endian int64 bytes, as used in
// image URLs. Negative values are encoded as 0.
func EncodeStamp(ms int64) string {
	if ms < 0 {
		ms = 0
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(ms))
	return stampEncoding.EncodeToString(b[:])
}

// DecodeStamp decodes an 11-character URL stamp into Unix ms. It accepts
// only the canonical encoding of a non-negative int64.
func DecodeStamp(s string) (int64, error) {
	if len(s) != StampLen {
		return 0, fmt.Errorf("stamp %q: want %d characters, got %d", s, StampLen, len(s))
	}
	var b [8]byte
	n, err := stampEncoding.Decode(b[:], []byte(s))
	if err != nil || n != 8 {
		return 0, fmt.Errorf("stamp %q: not canonical base64url", s)
	}
	v := int64(binary.BigEndian.Uint64(b[:]))
	if v < 0 {
		return 0, fmt.Errorf("stamp %q: negative time", s)
	}
	return v, nil
}
