package events

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaFiles are the JSON Schemas of every event this service emits, one
// file per schema version.
//
//go:embed schemas/*.json
var schemaFiles embed.FS

// reservedFields are added by the emitter to every event; schemas may not
// declare them (upstream's rule).
var reservedFields = []string{"timestamp", "schema", "version"}

// TimestampFormat is the Go layout of an event's timestamp: Python's
// "%Y-%m-%dT%H:%M:%S.%fZ", UTC with microseconds.
const TimestampFormat = "2006-01-02T15:04:05.000000Z"

type schemaKey struct {
	name    string
	version int
}

// Schemas are the compiled event schemas embedded in the binary.
type Schemas struct {
	byKey map[schemaKey]*jsonschema.Schema
}

// LoadSchemas compiles the embedded schemas. Each file names its schema with
// "$id" and its version with "version"; a schema declaring a reserved field
// is an error, as upstream.
func LoadSchemas() (*Schemas, error) {
	files, err := fs.Glob(schemaFiles, "schemas/*.json")
	if err != nil {
		return nil, err
	}
	s := &Schemas{byKey: make(map[schemaKey]*jsonschema.Schema)}
	c := jsonschema.NewCompiler()
	for _, f := range files {
		raw, err := schemaFiles.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var head struct {
			ID         string                     `json:"$id"`
			Version    int                        `json:"version"`
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, fmt.Errorf("event schema %s: %w", f, err)
		}
		for _, r := range reservedFields {
			if _, ok := head.Properties[r]; ok {
				return nil, fmt.Errorf("event schema %s: %s field is reserved by event emitter & can not be explicitly set in schema", f, r)
			}
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("event schema %s: %w", f, err)
		}
		loc := "https://binderbuild.invalid/events/" + f
		if err := c.AddResource(loc, doc); err != nil {
			return nil, fmt.Errorf("event schema %s: %w", f, err)
		}
		sch, err := c.Compile(loc)
		if err != nil {
			return nil, fmt.Errorf("event schema %s: %w", f, err)
		}
		s.byKey[schemaKey{head.ID, head.Version}] = sch
	}
	return s, nil
}

// Validate checks an event's fields (without the reserved ones) against the
// schema name at version.
func (s *Schemas) Validate(name string, version int, payload []byte) error {
	sch, ok := s.byKey[schemaKey{name, version}]
	if !ok {
		return fmt.Errorf("schema %s version %d not registered", name, version)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("event %s v%d: %w", name, version, err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("event %s v%d: %w", name, version, err)
	}
	return nil
}

// ValidateLine checks one emitted line: the reserved fields (a timestamp in
// TimestampFormat, a registered schema and version) and the other fields
// against that schema. Tests use it on every event they see.
func (s *Schemas) ValidateLine(line []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return fmt.Errorf("event line %q: %w", line, err)
	}
	var ts, name string
	var version int
	for key, dst := range map[string]any{"timestamp": &ts, "schema": &name, "version": &version} {
		raw, ok := obj[key]
		if !ok {
			return fmt.Errorf("event line %s: no %q", line, key)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("event line %s: %q: %w", line, key, err)
		}
		delete(obj, key)
	}
	if _, err := time.Parse(TimestampFormat, ts); err != nil || len(ts) != len(TimestampFormat) {
		return fmt.Errorf("event line %s: timestamp %q is not in %s", line, ts, TimestampFormat)
	}
	payload, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	if err := s.Validate(name, version, payload); err != nil {
		return errors.Join(fmt.Errorf("event line %s", line), err)
	}
	return nil
}
