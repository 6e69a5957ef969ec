// Package tests holds vxwire's end-to-end tests. They run the real vxwire
// binary inside network namespaces and check it against programs nobody on
// the project wrote: Linux kernel VXLAN, tshark, ping.
//
// The tests need root (network namespaces, veth, TAP). As any other user,
// or with -short, they skip and say why. TestMain builds ./cmd/vxwire once
// per run into a temporary directory; set VXWIRE_BIN to test a binary
// built elsewhere instead. Tools used: ip, bridge, ping, ethtool, tshark,
// timeout (Debian packages iproute2, iputils-ping, ethtool, tshark,
// coreutils); a test whose tool is missing skips and names the package.
//
// Every test gets its own namespaces and links, named with a prefix unique
// to the test ("vx1a2b-h1"), and removes them, its daemons and its files
// when it ends, whether it passed or not. Tests never sleep for a fixed
// time: they poll until a deadline. Each test file starts with a drawing of
// its topology.
package tests
