package main

import (
	"context"
	"fmt"
	"io"
	"os"
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
			// Parse, not Load: finding the socket must not need the key
			// and secret files (root's only) or the endpoints' namespaces.
			data, err := os.ReadFile(*file)
			if err != nil {
				return "", err
			}
			cfg, err := config.Parse(*file, data)
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
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return cf.call(api.ReadTimeout, func(ctx context.Context, c *api.Client) error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, st)
		}
		printStatus(stdout, st)
		return nil
	})
}

func cmdPeers(args []string, stdout io.Writer) error {
	fs := newFlags("peers")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return cf.call(api.ReadTimeout, func(ctx context.Context, c *api.Client) error {
		ps, err := c.Peers(ctx)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, ps)
		}
		printPeers(stdout, ps, time.Now())
		return nil
	})
}

func printPeers(w io.Writer, ps []api.PeerStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tADDRESS\tPATH MTU\tRX FRAMES\tRX BYTES\tTX FRAMES\tTX BYTES\tHANDSHAKE\tKEY EPOCH\tDROPS")
	for _, p := range ps {
		hs, epoch := "-", "-"
		if wg := p.WireGuard; wg != nil {
			hs, epoch = "never", fmt.Sprint(wg.KeyEpoch)
			if !wg.LastHandshake.IsZero() {
				hs = now.Sub(wg.LastHandshake).Round(time.Second).String() + " ago"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", p.Name, p.Address, pathMTU(p), p.Counters.RxFrames, p.Counters.RxBytes,
			p.Counters.TxFrames, p.Counters.TxBytes, hs, epoch, dropList(p.Counters))
	}
	tw.Flush()
}

// pathMTU formats a peer's path MTU, "-" while unknown.
func pathMTU(p api.PeerStatus) string {
	if p.PathMTU > 0 {
		return fmt.Sprint(p.PathMTU)
	}
	return "-"
}

func printStatus(w io.Writer, st *api.Status) {
	mode := ""
	if st.Rootless {
		mode = " (rootless)"
	}
	fmt.Fprintf(w, "host %s on %s%s\n", st.Host, st.Address, mode)
	fmt.Fprintf(w, "  rx %d frames %d bytes, tx %d frames %d bytes%s\n",
		st.Counters.RxFrames, st.Counters.RxBytes, st.Counters.TxFrames, st.Counters.TxBytes, drops(st.Counters))
	fmt.Fprintf(w, "  process: %d goroutines, %d fds, rss %.1f MiB\n\n",
		st.Process.Goroutines, st.Process.FDs, float64(st.Process.RSSBytes)/(1<<20))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tVNI\tSUBNET\tGATEWAY\tMTU\tFDB\tRX FRAMES\tTX FRAMES\tDROPS")
	for _, n := range st.Networks {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", n.Name, n.VNI, n.Subnet, n.Gateway, n.MTU, n.FDB,
			n.Counters.RxFrames, n.Counters.TxFrames, dropList(n.Counters))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "GATEWAY\tRX FRAMES\tTX FRAMES\tEGRESS TCP\tEGRESS UDP\tEGRESS ICMP\tDIAL ERRORS\tDROPS")
	for _, n := range st.Networks {
		if g := n.GatewayStats; g != nil {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d/%d\t%d/%d\t%d/%d\t%d\t%s\n", n.Name, g.Counters.RxFrames, g.Counters.TxFrames,
				g.EgressTCPOpen, g.EgressTCPTotal, g.EgressUDPOpen, g.EgressUDPTotal, g.EgressICMPOpen, g.EgressICMPTotal,
				g.DialErrors, dropList(g.Counters))
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "PEER\tADDRESS\tPATH MTU\tRX FRAMES\tRX BYTES\tTX FRAMES\tTX BYTES\tDROPS")
	for _, p := range st.Peers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", p.Name, p.Address, pathMTU(p),
			p.Counters.RxFrames, p.Counters.RxBytes, p.Counters.TxFrames, p.Counters.TxBytes, dropList(p.Counters))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "ENDPOINT\tNETWORK\tADDRESS\tMAC\tNETNS\tRX FRAMES\tTX FRAMES\tDROPS")
	for _, e := range st.Endpoints {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", e.Name, e.Network, e.Address, e.MAC, e.NetNS,
			e.Counters.RxFrames, e.Counters.TxFrames, dropList(e.Counters))
	}
	if len(st.Failed) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "FAILED ENDPOINT\tNETWORK\tNETNS\tREASON")
		for _, f := range st.Failed {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, f.Network, f.NetNS, f.Reason)
		}
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
