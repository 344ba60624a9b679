package builder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Resources are extra resources of the build container, written as JSON
// ({"requests": {"cpu": "1"}, "limits": {"memory": "4Gi"}}), upstream's
// KubernetesBuildExecutor.resources. Unknown fields are refused.
type Resources struct {
	Requests corev1.ResourceList `json:"requests,omitempty"`
	Limits   corev1.ResourceList `json:"limits,omitempty"`
}

// UnmarshalText parses the JSON form; empty text means none.
func (r *Resources) UnmarshalText(text []byte) error {
	*r = Resources{}
	if len(bytes.TrimSpace(text)) == 0 {
		return nil
	}
	// A type without UnmarshalText, so that json decodes the object.
	type plain Resources
	return strictJSON(text, (*plain)(r))
}

// EnvVars are extra environment variables of the build container, a JSON
// object of name to value (upstream's KubernetesBuildExecutor.extra_envs).
type EnvVars map[string]string

// UnmarshalText parses the JSON form; empty text means none.
func (e *EnvVars) UnmarshalText(text []byte) error {
	*e = nil
	if len(bytes.TrimSpace(text)) == 0 {
		return nil
	}
	var m map[string]string
	if err := strictJSON(text, &m); err != nil {
		return err
	}
	for name := range m {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return fmt.Errorf("invalid variable name %q", name)
		}
	}
	*e = m
	return nil
}

// strictJSON decodes exactly one JSON value with no unknown fields.
func strictJSON(text []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("want JSON: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("want one JSON value")
	}
	return nil
}

// list returns the variables sorted by name, so pods are reproducible.
func (e EnvVars) list() []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, name := range slices.Sorted(maps.Keys(e)) {
		out = append(out, corev1.EnvVar{Name: name, Value: e[name]})
	}
	return out
}

// overlay sets every resource of extra on r, replacing the same names.
func (extra Resources) overlay(r corev1.ResourceRequirements) corev1.ResourceRequirements {
	for name, q := range extra.Requests {
		r.Requests[name] = q
	}
	for name, q := range extra.Limits {
		r.Limits[name] = q
	}
	return r
}
