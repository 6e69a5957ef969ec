package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// clientFlags are the flags every client command shares: where the
// daemon is, and whether to print JSON.
type clientFlags struct {
	socket func() (string, error)
	json   *bool
}

// addClientFlags adds --socket, -c and --json to fs.
func addClientFlags(fs *flag.FlagSet) *clientFlags {
	return &clientFlags{socket: socketFlags(fs), json: fs.Bool("json", false, "print JSON")}
}

// call resolves the socket and runs f with a client and a context that
// ends after bound plus a margin for the round trip.
func (cf *clientFlags) call(bound time.Duration, f func(context.Context, *api.Client) error) error {
	path, err := cf.socket()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound+5*time.Second)
	defer cancel()
	return f(ctx, api.NewClient(path))
}

// printJSON prints v indented, as every --json output is.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stringList is a flag that may be given several times.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty value")
	}
	*s = append(*s, v)
	return nil
}

// orDash returns s, or "-" for an empty s, for table cells.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
