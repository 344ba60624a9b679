package events

import (
	"context"
	"log/slog"
	"time"
)

// Emitter writes records as JSON lines: "timestamp", "schema" and
// "version" first, then the record's fields, with Python's separators so
// that lines look like upstream BinderHub's. Every record is passed through
// the Redactor. Records are valid by construction, as the tests of each
// record type check against its schema; with ValidateWith an emitter also
// checks every record and drops (and logs) an invalid one. A nil *Emitter
// emits nothing.
//
// Emit never blocks on I/O: sinks queue lines in a bounded buffer.
type Emitter struct {
	sink Sink
	// schemas validates every record when set (ValidateWith); production
	// does not pay for decoding each line again.
	schemas *Schemas
	redact  *Redactor
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
}

// NewEmitter returns an emitter writing to sink. redact, m and log may be
// nil. The emitter owns sink: Close closes it.
func NewEmitter(sink Sink, redact *Redactor, m *Metrics, log *slog.Logger) (*Emitter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Emitter{sink: sink, redact: redact, metrics: m, log: log, now: time.Now}, nil
}

// ValidateWith makes e check every record against s and drop invalid ones.
func (e *Emitter) ValidateWith(s *Schemas) { e.schemas = s }

// Emit validates rec, adds the reserved fields and hands the line to the
// sink without waiting for it to be written.
func (e *Emitter) Emit(rec Record) {
	if e == nil {
		return
	}
	name, _ := rec.Schema()
	if line := e.encode(rec); e.valid(name, line) {
		e.metrics.emit(name)
		e.sink.Send(line)
	}
}

// Prepared is a record encoded once to be emitted many times, each time
// with its own timestamp: the build event of an image found again and
// again costs a copy, not an encoding.
type Prepared struct {
	name string
	// rest is the line after the timestamp: `, "schema": ...}`.
	rest []byte
	// count counts an emission in the metrics, bound once.
	count func()
}

// Prepare encodes rec for EmitPrepared.
func (e *Emitter) Prepare(rec Record) Prepared {
	if e == nil {
		return Prepared{}
	}
	o := object{n: 1} // the timestamp comes first
	o.b.Grow(448)
	e.body(&o, rec)
	name, _ := rec.Schema()
	return Prepared{name: name, rest: o.bytes(), count: e.metrics.emitCounter(name)}
}

// EmitPrepared emits p, stamped now, as Emit emits its record.
func (e *Emitter) EmitPrepared(p Prepared) {
	if e == nil || p.rest == nil {
		return
	}
	line := make([]byte, 0, len(timestampKey)+len(TimestampFormat)+8+len(p.rest))
	line = append(e.stamp(line), p.rest...)
	if e.valid(p.name, line) {
		p.count()
		e.sink.Send(line)
	}
}

// valid reports whether line may be sent: always, unless the emitter
// checks records (ValidateWith) and line's schema refuses it.
func (e *Emitter) valid(name string, line []byte) bool {
	if e.schemas == nil {
		return true
	}
	if err := e.schemas.ValidateLine(line); err != nil {
		e.metrics.drop(dropInvalid)
		e.log.Error("event dropped: invalid", "schema", name, "error", err)
		return false
	}
	return true
}

const timestampKey = `{"timestamp": "`

// encode returns rec's line: the reserved fields come first, in one
// buffer with the record's.
func (e *Emitter) encode(rec Record) []byte {
	o := object{n: 1}
	o.b.Grow(512)
	o.b.Write(e.stamp(o.b.AvailableBuffer()))
	e.body(&o, rec)
	return o.bytes()
}

// stamp appends the opening of a line, up to its timestamp's value.
func (e *Emitter) stamp(line []byte) []byte {
	line = append(line, timestampKey...)
	line = appendTimestamp(line, e.now()) // digits only: nothing to escape
	return append(line, '"')
}

// appendTimestamp appends t in TimestampFormat, in UTC: AppendFormat
// reads the layout again at each call, which costs more than the rest of a
// prepared event.
func appendTimestamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimestampFormat)
	}
	hour, minute, second := t.Clock()
	b = appendDigits(b, year, 4)
	b = appendDigits(append(b, '-'), int(month), 2)
	b = appendDigits(append(b, '-'), day, 2)
	b = appendDigits(append(b, 'T'), hour, 2)
	b = appendDigits(append(b, ':'), minute, 2)
	b = appendDigits(append(b, ':'), second, 2)
	b = appendDigits(append(b, '.'), t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendDigits appends the width last decimal digits of v, v >= 0.
func appendDigits(b []byte, v, width int) []byte {
	b = append(b, make([]byte, width)...)
	for i := len(b) - 1; i >= len(b)-width; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// body writes rec's schema, version and fields after the timestamp.
func (e *Emitter) body(o *object, rec Record) {
	name, version := rec.Schema()
	o.str("schema", name)
	o.integer("version", version)
	rec.fields(o, e.redact.String)
}

// Close flushes and closes the sink, waiting at most until ctx ends.
func (e *Emitter) Close(ctx context.Context) error {
	if e == nil {
		return nil
	}
	return e.sink.Close(ctx)
}
