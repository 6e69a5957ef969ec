package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found in a config file. It names the file, the line
// (1-based; 0 when no line applies, such as a missing [host] table) and the
// field path ("network[1].gateway"). Errors are plain values: they do not
// refer to the document and are safe to keep after Parse returns.
type Error struct {
	// File is the config file path as given to Parse or Load.
	File string
	// Line is the 1-based line of the offending key, or of its table header
	// when the key is absent; 0 when unknown.
	Line int
	// Field is the path of the field, such as "host.port" or
	// "endpoint[0].netns"; empty when the error concerns the whole file.
	Field string
	// Msg describes the problem, naming the value and the rule it breaks.
	Msg string
}

// Error formats e as "FILE:LINE: FIELD: MSG", leaving out the parts that
// are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.File != "" || e.Line > 0 {
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is the list of problems found in one config file, ordered by line.
// Parse and Load return it when they find more than one problem; a single
// problem is returned as a bare *Error. errors.As finds either: Errors
// unwraps to its elements.
type Errors []*Error

// Error joins the messages of all errors, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// asError turns a list of problems into the error Parse returns: nil, the
// single *Error, or Errors sorted by line (stable, so problems on one line
// keep the order in which they were found).
func asError(es []*Error) error {
	switch len(es) {
	case 0:
		return nil
	case 1:
		return es[0]
	}
	sorted := slices.Clone(es)
	slices.SortStableFunc(sorted, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	return Errors(sorted)
}
