package config

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkYAML walks a decoded YAML document against the Go type it will be
// decoded into and reports, all at once and in the file's own terms, every
// field the type does not have and every value of the wrong kind:
// "line 7: upstreams[main].buckets[0].limit: expected a whole number, got
// \"lots\"". yaml.v3's own errors stop at the first custom type that fails
// and name Go types ("cannot unmarshal !!str into int64"), which a user
// writing YAML cannot act on.
func checkYAML(doc *yaml.Node, t reflect.Type, p *Problems) {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return
		}
		doc = doc.Content[0]
	}
	checkNode(doc, t, "", p)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func checkNode(n *yaml.Node, t reflect.Type, path string, p *Problems) {
	if n.Kind == yaml.AliasNode {
		// Not followed: a chain of aliases can expand exponentially (the
		// "billion laughs"); the decoder, which limits that, still checks
		// what they stand for.
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null leaves the default
	}
	at := func(format string, args ...any) {
		p.add("line %d: %s: %s", n.Line, cmpOr(path, "(top level)"), fmt.Sprintf(format, args...))
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			at("%s", strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		checkNode(n, t.Elem(), path, p)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			at("expected a mapping of fields (key: value), got %s", nodeKind(n))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[key.Value]
			if !ok {
				p.add("line %d: %s: unknown field%s", key.Line, joinPath(path, key.Value), suggest(key.Value, fields))
				continue
			}
			checkNode(val, ft, joinPath(path, key.Value), p)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			at("expected a mapping (key: value), got %s", nodeKind(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkNode(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			at("expected a list, got %s", nodeKind(n))
			return
		}
		for i, c := range n.Content {
			checkNode(c, t.Elem(), path+"["+elementLabel(c, i)+"]", p)
		}
	case reflect.Interface:
	default:
		if n.Kind != yaml.ScalarNode {
			at("expected %s, got %s", scalarWord(t), nodeKind(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			at("expected %s, got %q", scalarWord(t), n.Value)
		}
	}
}

// yamlFields maps the YAML keys of struct type t, inline fields included,
// to their types, as yaml.v3 names them.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// suggest names the known field closest to a misspelt one, or lists them.
func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	best, bestD := "", 3
	for name := range fields {
		names = append(names, name)
		if d := editDistance(key, name); d < bestD {
			best, bestD = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	slices.Sort(names)
	return " (known fields: " + strings.Join(names, ", ") + ")"
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// elementLabel is how a list element is named in a path: by its name (or
// match) when it has one, as validation names it, else by its index.
func elementLabel(n *yaml.Node, i int) string {
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k := n.Content[j].Value; (k == "name" || k == "match") && n.Content[j+1].Kind == yaml.ScalarNode && n.Content[j+1].Value != "" {
				return n.Content[j+1].Value
			}
		}
	}
	return strconv.Itoa(i)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// scalarWord says in YAML terms what a scalar of type t must be.
func scalarWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return "a single value"
}

// validateListen checks a HOST:PORT to listen on: a port number, not a
// service name, from 0 (any free port) to 65535.
func validateListen(listen string, p *Problems) {
	if listen == "" {
		p.add("listen: required (HOST:PORT)")
		return
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		p.add("listen: %q is not HOST:PORT", listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add("listen: port %q of %q is not a number from 0 to 65535", port, listen)
	}
}
