package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// lineMap maps field paths ("host", "network[1]", "network[1].gateway") to
// the line of their first key in the document. Array elements map to the
// line of their [[header]] (or inline table). It is built once by Parse and
// read-only afterwards, so a Config may share it between goroutines.
type lineMap map[string]int

// line returns the line of field, falling back to the closest enclosing
// path that the document spells out ("network[1].gateway" → "network[1]"
// → "network"), and 0 when none is present.
func (m lineMap) line(field string) int {
	for field != "" {
		if l, ok := m[field]; ok {
			return l
		}
		field = parentPath(field)
	}
	return 0
}

// parentPath drops the last component of a field path: "a[1].b" → "a[1]"
// → "a" → "".
func parentPath(field string) string {
	i := strings.LastIndexAny(field, ".[")
	if i < 0 {
		return ""
	}
	return field[:i]
}

// schema lists the keys each table accepts, by generic path (array indices
// left out). It only serves the case check of keys; decoding rejects keys
// that are unknown in any casing.
var schema = map[string][]string{
	"":         {"host", "peer", "network", "endpoint"},
	"peer":     {"name", "address", "port", "public_key", "wg_port", "tunnel_address", "kernel"},
	"network":  {"name", "vni", "subnet", "gateway", "mtu", "encrypted", "egress"},
	"endpoint": {"network", "name", "netns", "ifname", "address", "mac", "aliases"},
	"host": {
		"name", "address", "port", "state_dir", "api_socket", "mtu",
		"private_key_file", "secret_file", "wg_port", "wg_name", "tunnel_address",
		"rotate_every", "gossip_port", "raft_port", "peer_timeout", "dns_upstream", "metrics", "api_group",
	},
}

// pos is a 1-based line and byte column, as go-toml reports them.
type pos struct{ line, col int }

// positions walks the document with the unstable parser and records where
// each field path is spelled out. It also flags keys that differ from a
// known key only by case, which the decoder would silently accept.
type positions struct {
	file   string
	p      unstable.Parser
	starts []int          // byte offset of each line start
	lines  lineMap        // field path → line
	keys   map[pos]string // key start → field path, to name decoder errors
	arrays map[string]int // array table path → number of elements so far
	errs   []*Error
}

// scanPositions parses data and returns what it could learn about it. A
// syntax error stops the walk early; the decoder reports it.
func scanPositions(file string, data []byte) *positions {
	w := &positions{
		file:   file,
		starts: lineStarts(data),
		lines:  lineMap{},
		keys:   map[pos]string{},
		arrays: map[string]int{},
	}
	w.p.Reset(data)
	cur := ""
	for w.p.NextExpression() {
		expr := w.p.Expression()
		switch expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			cur = w.header(expr)
		case unstable.KeyValue:
			w.keyValue(cur, expr)
		}
	}
	return w
}

func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// at converts a byte offset into a line and column.
func (w *positions) at(offset uint32) pos {
	off := int(offset)
	i := sort.Search(len(w.starts), func(i int) bool { return w.starts[i] > off }) - 1
	return pos{line: i + 1, col: off - w.starts[i] + 1}
}

// header handles [a.b] and [[a.b]] and returns the field path of the table.
func (w *positions) header(expr *unstable.Node) string {
	path := ""
	it := expr.Key()
	var first *unstable.Node
	for it.Next() {
		k := it.Node()
		if first == nil {
			first = k
		}
		w.checkCase(path, k)
		path = joinPath(path, string(k.Data))
		n, isArray := w.arrays[path]
		switch {
		case it.IsLast() && expr.Kind == unstable.ArrayTable:
			w.arrays[path] = n + 1
			path = indexPath(path, n)
		case isArray && n > 0:
			path = indexPath(path, n-1)
		}
		w.record(path, w.at(k.Raw.Offset).line)
	}
	if first != nil {
		w.keys[w.at(first.Raw.Offset)] = path
		if g := genericPath(path); expr.Kind == unstable.Table && arrayTables[g] {
			w.errs = append(w.errs, &Error{
				File:  w.file,
				Line:  w.at(first.Raw.Offset).line,
				Field: path,
				Msg:   "expected an array of tables: write [[" + g + "]], not [" + g + "]",
			})
		}
	}
	return path
}

// arrayTables are the top-level keys that hold arrays of tables.
var arrayTables = map[string]bool{"peer": true, "network": true, "endpoint": true}

// keyValue handles "a.b = value" inside the table at base.
func (w *positions) keyValue(base string, kv *unstable.Node) {
	path := base
	it := kv.Key()
	var first *unstable.Node
	for it.Next() {
		k := it.Node()
		if first == nil {
			first = k
		}
		w.checkCase(path, k)
		path = joinPath(path, string(k.Data))
		w.record(path, w.at(k.Raw.Offset).line)
	}
	if first != nil {
		w.keys[w.at(first.Raw.Offset)] = path
	}
	w.value(path, kv.Value(), w.at(first.Raw.Offset).line)
}

// value descends into inline tables and arrays so that their keys and
// elements get positions too. line is the line of the enclosing key, used
// for array elements that carry no position of their own.
func (w *positions) value(path string, v *unstable.Node, line int) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				w.keyValue(path, c)
			}
		}
	case unstable.Array:
		i := 0
		it := v.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			elem := indexPath(path, i)
			l := line
			if c.Kind == unstable.InlineTable || c.Raw.Length > 0 {
				l = w.at(c.Raw.Offset).line
			}
			w.record(elem, l)
			w.value(elem, c, l)
			i++
		}
	}
}

func (w *positions) record(path string, line int) {
	if _, ok := w.lines[path]; !ok {
		w.lines[path] = line
	}
}

// checkCase reports key k under parent if it matches a known key only when
// case is ignored. go-toml matches struct fields case-insensitively, so
// without this check "Name" would be accepted as "name".
func (w *positions) checkCase(parent string, k *unstable.Node) {
	known, ok := schema[genericPath(parent)]
	if !ok {
		return
	}
	name := string(k.Data)
	for _, want := range known {
		if name == want {
			return
		}
	}
	for _, want := range known {
		if strings.EqualFold(name, want) {
			w.errs = append(w.errs, &Error{
				File:  w.file,
				Line:  w.at(k.Raw.Offset).line,
				Field: joinPath(parent, name),
				Msg:   "unknown key (keys are case-sensitive; did you mean " + strconv.Quote(want) + "?)",
			})
			return
		}
	}
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// genericPath drops array indices: "network[1].gateway" → "network.gateway".
func genericPath(path string) string {
	if !strings.Contains(path, "[") {
		return path
	}
	var b strings.Builder
	skip := false
	for _, c := range path {
		switch {
		case c == '[':
			skip = true
		case c == ']':
			skip = false
		case !skip:
			b.WriteRune(c)
		}
	}
	return b.String()
}
