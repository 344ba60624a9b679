package events

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// object writes a JSON object with Python's json.dumps separators and
// escaping, fields in the order written.
type object struct {
	b bytes.Buffer
	n int
}

func (o *object) key(k string) {
	if o.n == 0 {
		o.b.WriteByte('{')
	} else {
		o.b.WriteString(", ")
	}
	o.n++
	writeString(&o.b, k)
	o.b.WriteString(": ")
}

func (o *object) str(k, v string) {
	o.key(k)
	writeString(&o.b, v)
}

func (o *object) boolean(k string, v bool) {
	o.key(k)
	o.b.Write(strconv.AppendBool(o.b.AvailableBuffer(), v))
}

func (o *object) integer(k string, v int) {
	o.key(k)
	o.b.Write(strconv.AppendInt(o.b.AvailableBuffer(), int64(v), 10))
}

// seconds writes d in seconds, to the microsecond.
func (o *object) seconds(k string, d time.Duration) {
	o.key(k)
	s := math.Max(0, math.Round(d.Seconds()*1e6)/1e6)
	o.b.Write(strconv.AppendFloat(o.b.AvailableBuffer(), s, 'f', -1, 64))
}

// bytes closes the object and returns it.
func (o *object) bytes() []byte {
	if o.n == 0 {
		return []byte("{}")
	}
	o.b.WriteByte('}')
	return o.b.Bytes()
}

const hex = "0123456789abcdef"

// writeString writes s as a JSON string with Python's ensure_ascii
// escaping: printable ASCII as is (runs of it in one write), everything
// else, DEL included, escaped.
func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for len(s) > 0 {
		n := 0
		for n < len(s) && s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"' && s[n] != '\\' {
			n++
		}
		b.WriteString(s[:n])
		if n == len(s) {
			break
		}
		r, size := utf8.DecodeRuneInString(s[n:])
		writeEscaped(b, r)
		s = s[n+size:]
	}
	b.WriteByte('"')
}

// writeEscaped writes r as json.dumps escapes it.
func writeEscaped(b *bytes.Buffer, r rune) {
	switch {
	case r == '"':
		b.WriteString(`\"`)
	case r == '\\':
		b.WriteString(`\\`)
	case r == '\n':
		b.WriteString(`\n`)
	case r == '\r':
		b.WriteString(`\r`)
	case r == '\t':
		b.WriteString(`\t`)
	case r == '\b':
		b.WriteString(`\b`)
	case r == '\f':
		b.WriteString(`\f`)
	case r > 0xffff:
		r -= 0x10000
		writeU(b, 0xd800+(r>>10))
		writeU(b, 0xdc00+(r&0x3ff))
	default:
		writeU(b, r)
	}
}

func writeU(b *bytes.Buffer, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hex[r>>12&0xf])
	b.WriteByte(hex[r>>8&0xf])
	b.WriteByte(hex[r>>4&0xf])
	b.WriteByte(hex[r&0xf])
}
