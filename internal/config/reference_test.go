package config

import (
	"bufio"
	"bytes"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// referencePath is the fully commented reference config.
const referencePath = "../../examples/reference.toml"

// schemaKeys returns every key the loader accepts, as "table.key", read from
// the toml tags of the raw* types Parse decodes into.
func schemaKeys() []string {
	var keys []string
	file := reflect.TypeFor[rawFile]()
	for i := range file.NumField() {
		f := file.Field(i)
		table := f.Tag.Get("toml")
		t := f.Type
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		for j := range t.NumField() {
			keys = append(keys, table+"."+t.Field(j).Tag.Get("toml"))
		}
	}
	sort.Strings(keys)
	return keys
}

// documentKeys returns the keys data sets, as "table.key".
func documentKeys(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	add := func(table string, m map[string]any) {
		for k := range m {
			out[table+"."+k] = true
		}
	}
	for table, v := range doc {
		switch v := v.(type) {
		case map[string]any:
			add(table, v)
		case []any:
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					add(table, m)
				}
			}
		}
	}
	return out
}

// TestReferenceConfig checks examples/reference.toml against the loader:
// it parses, it sets every key the loader accepts (so a key added later
// without documenting it fails here), and every key in it has a comment
// right above it.
func TestReferenceConfig(t *testing.T) {
	data, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("reference.toml", data); err != nil {
		t.Fatalf("the reference config does not parse: %v", err)
	}
	have := documentKeys(t, data)
	schema := schemaKeys()
	if len(schema) < 30 {
		t.Fatalf("found only %d keys in the loader's types: %v", len(schema), schema)
	}
	for _, k := range schema {
		if !have[k] {
			t.Errorf("examples/reference.toml lacks %s", k)
		}
	}

	// Every key line follows a comment line.
	sc := bufio.NewScanner(bytes.NewReader(data))
	prev, n := "", 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "[") && !strings.HasPrefix(prev, "#") {
			t.Errorf("reference.toml:%d: %q has no comment above it", n, line)
		}
		prev = line
	}
}

// TestSchemaKeysComplete guards schemaKeys itself: it must find the keys
// that a sample of the loader's fields use.
func TestSchemaKeysComplete(t *testing.T) {
	got := strings.Join(schemaKeys(), " ")
	for _, k := range []string{"host.name", "host.rotate_every", "peer.public_key", "network.egress", "endpoint.aliases"} {
		if !strings.Contains(" "+got+" ", " "+k+" ") {
			t.Errorf("schemaKeys lacks %s: %s", k, got)
		}
	}
}
