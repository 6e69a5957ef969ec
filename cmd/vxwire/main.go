// Command vxwire is the vxwire daemon and its command-line client.
//
//	vxwire up -c FILE            run the daemon in the foreground
//	vxwire config check -c FILE  validate a config file
//	vxwire status [-c FILE | --socket PATH] [--json]
//	vxwire genkey | vxwire pubkey
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
