// Package accesslog formats the service's access lines: one request each,
// as slog's JSON handler writes the record, or written directly without the
// logger on the warm path.
package accesslog

import (
	"log/slog"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Message is the access line's msg.
const Message = "request"

// Line is one request of the access log, already redacted.
type Line struct {
	Method, Path string
	Status       int
	Bytes        int
	Duration     time.Duration
	Client       netip.Addr
	ID           string
}

func (l Line) durationMS() float64 { return float64(l.Duration.Microseconds()) / 1000 }

func (l Line) clientIP() string {
	if !l.Client.IsValid() {
		return ""
	}
	return l.Client.String()
}

// Attrs are l's fields as the logger writes them; AppendJSON writes the
// same line without the logger.
func (l Line) Attrs() []slog.Attr {
	return []slog.Attr{
		slog.String("method", l.Method),
		slog.String("path", l.Path),
		slog.Int("status", l.Status),
		slog.Int("bytes", l.Bytes),
		slog.Float64("duration_ms", l.durationMS()),
		slog.String("client_ip", l.clientIP()),
		slog.String("request_id", l.ID),
	}
}

// AppendJSON appends l as slog's JSON handler writes its record (level
// INFO, Message, time t) and a newline: one append per field instead of a
// record, its attributes and a handler chain per request.
func (l Line) AppendJSON(b []byte, t time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"`+Message+`","method":`...)
	b = appendJSONString(b, l.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, l.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(l.Bytes), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, l.durationMS(), 'f', -1, 64)
	b = append(b, `,"client_ip":"`...)
	if l.Client.IsValid() {
		b = l.Client.AppendTo(b)
	}
	b = append(b, `","request_id":`...)
	b = appendJSONString(b, l.ID)
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string the way slog's JSON handler
// does: UTF-8 kept, control characters, quotes, backslashes, U+2028 and
// U+2029 escaped, invalid bytes as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
