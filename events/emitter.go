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
	line, err := e.encode(rec)
	name, _ := rec.Schema()
	if err != nil {
		e.metrics.drop(dropInvalid)
		e.log.Error("event dropped: invalid", "schema", name, "error", err)
		return
	}
	e.metrics.emit(name)
	e.sink.Send(line)
}

// encode returns rec's line, or why it does not match its schema. The
// reserved fields come first, in one buffer with the record's.
func (e *Emitter) encode(rec Record) ([]byte, error) {
	name, version := rec.Schema()
	var o object
	o.b.Grow(512)
	o.key("timestamp")
	var ts [len(TimestampFormat) + 8]byte
	o.b.WriteByte('"')
	o.b.Write(e.now().UTC().AppendFormat(ts[:0], TimestampFormat)) // digits only: nothing to escape
	o.b.WriteByte('"')
	o.str("schema", name)
	o.integer("version", version)
	rec.fields(&o, e.redact.String)
	line := o.bytes()
	if e.schemas != nil {
		if err := e.schemas.ValidateLine(line); err != nil {
			return nil, err
		}
	}
	return line, nil
}

// Close flushes and closes the sink, waiting at most until ctx ends.
func (e *Emitter) Close(ctx context.Context) error {
	if e == nil {
		return nil
	}
	return e.sink.Close(ctx)
}
