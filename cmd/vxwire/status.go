package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// socketFlags adds the flags every client command shares and returns a
// function resolving the socket path: --socket, else -c FILE's
// host.api_socket, else VXWIRE_SOCKET, else the default.
func socketFlags(fs interface {
	String(name, value, usage string) *string
}) func() (string, error) {
	sock := fs.String("socket", "", "daemon API socket")
	file := fs.String("c", "", "config file whose host.api_socket to use")
	return func() (string, error) {
		if *sock != "" {
			return *sock, nil
		}
		if *file != "" {
			cfg, err := config.Load(*file)
			if err != nil {
				return "", err
			}
			return cfg.Host.APISocket, nil
		}
		return api.SocketPath(""), nil
	}
}

func cmdStatus(args []string, stdout io.Writer) error {
	fs := newFlags("status")
	socket := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := socket()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := api.NewClient(path).Status(ctx)
	if err != nil {
		return &connError{err}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(stdout, st)
	return nil
}

func printStatus(w io.Writer, st *api.Status) {
	fmt.Fprintf(w, "host %s on %s\n", st.Host, st.Address)
	fmt.Fprintf(w, "  rx %d frames %d bytes, tx %d frames %d bytes%s\n\n",
		st.Counters.RxFrames, st.Counters.RxBytes, st.Counters.TxFrames, st.Counters.TxBytes, drops(st.Counters))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tVNI\tSUBNET\tGATEWAY\tMTU\tFDB\tRX FRAMES\tTX FRAMES\tDROPS")
	for _, n := range st.Networks {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", n.Name, n.VNI, n.Subnet, n.Gateway, n.MTU, n.FDB,
			n.Counters.RxFrames, n.Counters.TxFrames, dropList(n.Counters))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "PEER\tADDRESS\tRX FRAMES\tRX BYTES\tTX FRAMES\tTX BYTES\tDROPS")
	for _, p := range st.Peers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", p.Name, p.Address,
			p.Counters.RxFrames, p.Counters.RxBytes, p.Counters.TxFrames, p.Counters.TxBytes, dropList(p.Counters))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "ENDPOINT\tNETWORK\tADDRESS\tMAC\tNETNS\tRX FRAMES\tTX FRAMES\tDROPS")
	for _, e := range st.Endpoints {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", e.Name, e.Network, e.Address, e.MAC, e.NetNS,
			e.Counters.RxFrames, e.Counters.TxFrames, dropList(e.Counters))
	}
	tw.Flush()
}

func drops(c api.Counters) string {
	if len(c.Drops) == 0 {
		return ""
	}
	return ", drops " + dropList(c)
}

func dropList(c api.Counters) string {
	if len(c.Drops) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(c.Drops))
	for k := range c.Drops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, c.Drops[k])
	}
	return strings.Join(parts, ",")
}
