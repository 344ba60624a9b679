package upgrades

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// ErrNoPath means a file has no value at the configured path.
var ErrNoPath = errors.New("path not found")

// scalar is a located YAML scalar: its value and where its bytes are.
type scalar struct {
	node *yaml.Node
	// start and end are byte offsets of the scalar's text in the file,
	// quotes excluded.
	start, end int
}

// parseYAML parses one YAML document.
func parseYAML(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("malformed YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("malformed YAML: empty document")
	}
	return doc.Content[0], nil
}

// lookup finds the node at a dotted path: mapping keys (a key may itself
// contain dots) and sequence indexes. Aliases are followed, and merge keys
// ("<<") searched when a key is not in the mapping itself.
func lookup(n *yaml.Node, path string) (*yaml.Node, bool) {
	n = deref(n)
	if path == "" {
		return n, true
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == "<<" {
				continue
			}
			if path == k {
				return deref(n.Content[i+1]), true
			}
			if rest, ok := strings.CutPrefix(path, k+"."); ok {
				if found, ok := lookup(n.Content[i+1], rest); ok {
					return found, true
				}
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "<<" {
				if found, ok := lookup(n.Content[i+1], path); ok {
					return found, true
				}
			}
		}
	case yaml.SequenceNode:
		head, rest, _ := strings.Cut(path, ".")
		i, err := strconv.Atoi(head)
		if err == nil && i >= 0 && i < len(n.Content) {
			return lookup(n.Content[i], rest)
		}
	}
	return nil, false
}

// deref follows an alias to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// chartDependency finds the version scalar of the Chart.yaml dependency
// called chart.
func chartDependency(root *yaml.Node, chart string) (*yaml.Node, error) {
	deps, ok := lookup(root, "dependencies")
	if !ok || deps.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%w: no dependencies list", ErrNoPath)
	}
	for _, d := range deps.Content {
		if n, ok := lookup(d, "name"); ok && n.Value == chart {
			v, ok := lookup(d, "version")
			if !ok {
				return nil, fmt.Errorf("%w: dependency %q has no version", ErrNoPath, chart)
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: no dependency named %q", ErrNoPath, chart)
}

// locate returns where n's text is in data. Only single-line plain, single-
// and double-quoted scalars can be edited in place.
func locate(data []byte, n *yaml.Node) (scalar, error) {
	if n.Kind != yaml.ScalarNode {
		return scalar{}, fmt.Errorf("value at line %d is not a scalar", n.Line)
	}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return scalar{}, fmt.Errorf("value at line %d is a block scalar; write it on one line", n.Line)
	}
	start, err := offset(data, n.Line, n.Column)
	if err != nil {
		return scalar{}, err
	}
	lineEnd := bytes.IndexByte(data[start:], '\n')
	if lineEnd < 0 {
		lineEnd = len(data) - start
	}
	line := data[start : start+lineEnd]
	var end int
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0, n.Style&yaml.SingleQuotedStyle != 0:
		q := line[0]
		i := bytes.IndexByte(line[1:], q)
		if i < 0 || bytes.IndexByte(line[1:1+i], '\\') >= 0 || string(line[1:1+i]) != n.Value {
			return scalar{}, fmt.Errorf("quoted value at line %d has escapes or spans lines; write it plainly", n.Line)
		}
		start, end = start+1, start+1+i
	default:
		if !bytes.HasPrefix(line, []byte(n.Value)) {
			return scalar{}, fmt.Errorf("value at line %d spans lines; write it on one line", n.Line)
		}
		end = start + len(n.Value)
	}
	return scalar{node: n, start: start, end: end}, nil
}

// offset converts yaml.v3's 1-based line and column (in characters) to a
// byte offset.
func offset(data []byte, line, col int) (int, error) {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return 0, fmt.Errorf("line %d beyond the end of the file", line)
		}
		off += i + 1
	}
	for c := 1; c < col; c++ {
		if off >= len(data) || data[off] == '\n' {
			return 0, fmt.Errorf("column %d beyond the end of line %d", col, line)
		}
		_, size := utf8.DecodeRune(data[off:])
		off += size
	}
	return off, nil
}

// replace returns data with the scalar's text replaced by value; every
// other byte stays as it was.
func replace(data []byte, s scalar, value string) ([]byte, error) {
	// Versions and image names never need these; refusing them keeps the
	// edit a plain byte swap in any quoting style.
	if value == "" || strings.ContainsAny(value, "\"'\\\n\r# ") {
		return nil, fmt.Errorf("new value %q is empty or has quotes, backslashes, spaces or newlines", value)
	}
	out := make([]byte, 0, len(data)+len(value))
	out = append(out, data[:s.start]...)
	out = append(out, value...)
	return append(out, data[s.end:]...), nil
}
