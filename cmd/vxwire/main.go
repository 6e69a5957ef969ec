// Command vxwire is the vxwire daemon and its command-line client.
//
//	vxwire up -c FILE            run the daemon in the foreground
//	vxwire config check -c FILE  validate a config file
//	vxwire status | peers        show the daemon's state and counters
//	vxwire network create|ls|inspect|rm
//	vxwire attach | detach | endpoint ls
//	vxwire genkey | vxwire pubkey
//	vxwire gensecret             print a new cluster secret
//
// See vxwire help for flags and exit codes.
package main

import (
	"os"
)

func main() {
	if code, ok := runtimeMode(os.Args[1:], os.Stdin, os.Stderr); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
