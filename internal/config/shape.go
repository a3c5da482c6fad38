package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	nodeType        = reflect.TypeFor[yaml.Node]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// checkShape walks the document against fileConfig's yaml tags: every key
// known and written once, mappings and lists where they belong, scalars
// that decode into their field. It records the line of every key and list
// item it meets in p.lines, which later errors use.
func checkShape(p *problems, root *yaml.Node) {
	doc := root
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return
		}
		doc = doc.Content[0]
	}
	if isNull(doc) {
		return // an empty file: every default
	}
	if doc.Kind != yaml.MappingNode {
		p.addAt(doc.Line, "the file must be a mapping of keys (targets:, log:, ...), not %s", describe(doc))
		return
	}
	walk(p, doc, reflect.TypeFor[fileConfig](), "")
}

// walk checks node n against type t; key is n's dotted name ("" at the top).
func walk(p *problems, n *yaml.Node, t reflect.Type, key string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || isNull(n) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return // validated by whoever reads the value
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			p.add(key, "%s: want a mapping (key: value lines), not %s", key, describe(n))
			return
		}
		walkMapping(p, n, t, key)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			p.add(key, "%s: want a list, not %s", key, describe(n))
			return
		}
		for i, item := range n.Content {
			child := fmt.Sprintf("%s[%d]", key, i)
			p.lines[child] = item.Line
			walk(p, item, t.Elem(), child)
		}
	case reflect.Map, reflect.Interface:
		// Free-form: nothing of ours.
	default:
		if n.Kind != yaml.ScalarNode {
			p.add(key, "%s: want %s, not %s", key, scalarWant(t), describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			p.add(key, "%s %q: want %s", key, n.Value, scalarWant(t))
		}
	}
}

func walkMapping(p *problems, n *yaml.Node, t reflect.Type, key string) {
	fields := map[string]reflect.Type{}
	var names []string
	yamlFields(t, fields, &names)
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		child := k.Value
		if key != "" {
			child = key + "." + k.Value
		}
		if k.Tag == "!!merge" {
			p.addAt(k.Line, "merge keys (<<) are not supported")
			continue
		}
		if line, seen := first[k.Value]; seen {
			p.addAt(k.Line, "%s: repeated (first at line %d)", child, line)
			continue
		}
		first[k.Value] = k.Line
		ft, known := fields[k.Value]
		if !known {
			where := ""
			if key != "" {
				where = " of " + key
			}
			p.addAt(k.Line, "unknown key %q (the keys%s are: %s)", child, where, strings.Join(names, ", "))
			continue
		}
		line := k.Line
		if v.Kind == yaml.ScalarNode {
			line = v.Line
		}
		p.lines[child] = line
		walk(p, v, ft, child)
	}
}

// yamlFields lists the keys of struct t as the yaml package names them.
func yamlFields(t reflect.Type, fields map[string]reflect.Type, names *[]string) {
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
			yamlFields(f.Type, fields, names)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		*names = append(*names, name)
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func scalarWant(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}
