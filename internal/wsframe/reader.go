package wsframe

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// Close codes (RFC 6455, section 7.4.1) a Reader's errors carry.
const (
	CloseNormal        = 1000
	CloseProtocolError = 1002
	CloseUnsupported   = 1003 // a kind of data the endpoint does not accept (binary)
	CloseNoStatus      = 1005 // never sent: a close frame without a code
	CloseInvalidData   = 1007 // text that is not UTF-8
	CloseTooBig        = 1009
)

// maxControl bounds a control frame's payload (RFC 6455, section 5.5).
const maxControl = 125

// CloseError is why a Reader stopped reading a client: the close code the
// server is to answer with (CloseProtocolError, CloseInvalidData or
// CloseTooBig) and a short reason for the close frame and the log.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wsframe: client frames: %s (close %d)", e.Reason, e.Code)
}

func protocolError(reason string) error { return &CloseError{CloseProtocolError, reason} }

// Reader reads what a WebSocket client sends (RFC 6455, section 5: masked
// frames), with the checks a server owes its client: masking, no reserved
// bits (no extension is ever negotiated), known opcodes, control frames
// whole and small, continuation frames only inside a fragmented message,
// a bound on a message's size, UTF-8 text and well-formed close frames.
// It never writes: answering (a pong, a close frame) is the caller's, so
// that one owner writes the connection.
//
// It reads the connection in small pieces, with no buffer of its own
// between messages: a client sends little (pongs, rare messages), and an
// idle connection then keeps no read buffer.
type Reader struct {
	r   io.Reader
	max int
	hdr [14]byte
	// msg is the fragmented data message being read; op is its opcode, 0
	// while no message is open.
	msg []byte
	op  byte
}

// NewReader returns a Reader of r that refuses data messages over max
// bytes (CloseTooBig); max must be positive.
func NewReader(r io.Reader, max int) *Reader { return &Reader{r: r, max: max} }

// Next reads until it has a whole data message (Text or Binary, fragments
// joined) or a control frame (Ping, Pong, Close), and returns its opcode
// and payload, which the caller may keep. A Close frame's payload has
// been checked (ParseClose succeeds on it). Errors: the reader's own (io.EOF,
// a timeout), io.ErrUnexpectedEOF for a connection cut inside a frame, or
// a *CloseError for frames a client may not send; a data frame over the
// bound is refused from its header, before its payload is read. After an
// error the Reader is not to be used again. O(size of the frames).
func (r *Reader) Next() (opcode byte, payload []byte, err error) {
	for {
		fin, op, payload, err := r.frame()
		if err != nil {
			return 0, nil, err
		}
		switch op {
		case Ping, Pong:
			return op, payload, nil
		case Close:
			if _, _, err := ParseClose(payload); err != nil {
				return 0, nil, err
			}
			return op, payload, nil
		case Continuation:
			if r.op == 0 {
				return 0, nil, protocolError("continuation frame outside a fragmented message")
			}
			r.msg = append(r.msg, payload...)
		default: // Text, Binary (frame refuses the rest)
			if r.op != 0 {
				return 0, nil, protocolError("new message inside a fragmented message")
			}
			r.op, r.msg = op, payload
		}
		if !fin {
			continue
		}
		op, msg := r.op, r.msg
		r.op, r.msg = 0, nil
		if op == Text && !utf8.Valid(msg) {
			return 0, nil, &CloseError{CloseInvalidData, "text message is not UTF-8"}
		}
		return op, msg, nil
	}
}

// frame reads one frame and unmasks its payload.
func (r *Reader) frame() (fin bool, op byte, payload []byte, err error) {
	h := r.hdr[:2]
	if err := r.read(h, false); err != nil {
		return false, 0, nil, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	masked, size := h[1]&0x80 != 0, uint64(h[1]&0x7f)
	switch {
	case h[0]&0x70 != 0:
		return false, 0, nil, protocolError("reserved bits set")
	case !masked:
		return false, 0, nil, protocolError("unmasked client frame")
	case op >= Close && op <= Pong:
		if !fin {
			return false, 0, nil, protocolError("fragmented control frame")
		}
		if size > maxControl {
			return false, 0, nil, protocolError("control frame over 125 bytes")
		}
	case op > Binary:
		return false, 0, nil, protocolError(fmt.Sprintf("reserved opcode %#x", op))
	}
	ext := 0
	switch size {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	h = r.hdr[2 : 2+ext+4]
	if err := r.read(h, true); err != nil {
		return false, 0, nil, err
	}
	switch ext {
	case 2:
		size = uint64(binary.BigEndian.Uint16(h))
	case 8:
		size = binary.BigEndian.Uint64(h)
		if size>>63 != 0 {
			return false, 0, nil, protocolError("frame length with the high bit set")
		}
	}
	if op < Close && size > uint64(r.max-len(r.msg)) {
		return false, 0, nil, &CloseError{CloseTooBig, fmt.Sprintf("message over %d bytes", r.max)}
	}
	mask := h[ext:]
	payload = make([]byte, size)
	if err := r.read(payload, true); err != nil {
		return false, 0, nil, err
	}
	for i := range payload {
		payload[i] ^= mask[i&3]
	}
	return fin, op, payload, nil
}

// read fills p; inside a frame, a connection that ends is
// io.ErrUnexpectedEOF.
func (r *Reader) read(p []byte, inside bool) error {
	n, err := io.ReadFull(r.r, p)
	if err == io.EOF && (inside || n > 0) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseClose reads a close frame's payload: its code (CloseNoStatus when
// it has none) and reason. Errors (*CloseError): a one-byte payload, a
// code no endpoint may send (RFC 6455, section 7.4; 1004-1006, 1015 and
// the unassigned ones), a reason that is not UTF-8.
func ParseClose(payload []byte) (code int, reason string, err error) {
	switch {
	case len(payload) == 0:
		return CloseNoStatus, "", nil
	case len(payload) == 1:
		return 0, "", protocolError("close frame of one byte")
	}
	code = int(binary.BigEndian.Uint16(payload))
	if !validCloseCode(code) {
		return 0, "", protocolError(fmt.Sprintf("close code %d", code))
	}
	if !utf8.Valid(payload[2:]) {
		return 0, "", &CloseError{CloseInvalidData, "close reason is not UTF-8"}
	}
	return code, string(payload[2:]), nil
}

// validCloseCode reports whether a peer may send code: the codes of RFC
// 6455 meant for the wire, those IANA registered since (1012-1014), and
// those of libraries and applications (3000-4999).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}
