package wsframe

import "unicode/utf8"

// The writing side: frames as a server sends them (final, unmasked; RFC
// 6455, section 5.2). They append to a caller's buffer, so that a writer
// can build a message in a buffer it keeps, or a header on its stack
// before a payload it writes with writev without copying it.

// MaxHeader is the longest header AppendHeader appends: 2 bytes, and an
// 8-byte length for payloads over 65,535 bytes.
const MaxHeader = 10

// AppendHeader appends the header of a final, unmasked frame of opcode
// for a payload of n bytes.
func AppendHeader(dst []byte, opcode byte, n int) []byte {
	dst = append(dst, 0x80|opcode)
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xffff:
		return append(dst, 126, byte(n>>8), byte(n))
	default:
		return append(dst, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// AppendFrame appends payload as one final, unmasked frame of opcode: a
// whole Text message, or a Ping or Pong, whose payload the caller keeps
// within 125 bytes (a pong echoes a ping's, which Reader bounds).
func AppendFrame(dst []byte, opcode byte, payload []byte) []byte {
	return append(AppendHeader(dst, opcode, len(payload)), payload...)
}

// AppendClose appends a close frame from a server (unmasked) with code
// and reason, which should be under 124 bytes; it is cut to fit.
func AppendClose(dst []byte, code int, reason string) []byte {
	if len(reason) > maxControl-2 {
		cut := maxControl - 2
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = append(dst, 0x80|Close, byte(2+len(reason)), byte(code>>8), byte(code))
	return append(dst, reason...)
}
