package config

// errorCases lists documents with the exact errors each must produce. It
// also seeds FuzzParse. In every document built with doc(hostBlock, ...)
// lines 1-3 are the host; with blueBlock following, lines 4-7 are the
// network blue.
func errorCases() []errorCase {
	ep := func(lines ...string) []string {
		return append([]string{`[[endpoint]]`, `network = "blue"`, `name = "web"`, `netns = "/run/netns/c1"`}, lines...)
	}
	return []errorCase{
		// Syntax, shape and strictness: go-toml positions.
		{"syntax", doc([]string{`[host`}), []string{
			`h1.toml:1: expected ']' to close table name`}},
		{"duplicate key", doc(hostBlock, []string{`name = "h2"`}), []string{
			`h1.toml:4: host.name: key name is already defined`}},
		{"host not a table", doc([]string{`host = 5`}), []string{
			`h1.toml:1: host: expected a table ([host]), got integer`}},
		{"peer not an array", doc(hostBlock, []string{`peer = "h2"`}), []string{
			`h1.toml:4: host.peer: unknown key`}},
		{"peer not an array at root", doc([]string{`peer = "h2"`}, hostBlock), []string{
			`h1.toml:1: peer: expected an array of tables ([[peer]]), got string`}},
		{"peer as a table", doc(hostBlock, []string{`[peer]`, `name = "h2"`, `address = "198.18.0.2"`}), []string{
			`h1.toml:4: peer: expected an array of tables: write [[peer]], not [peer]`}},
		{"unknown key", doc(hostBlock, []string{`prot = 4789`}), []string{
			`h1.toml:4: host.prot: unknown key`}},
		{"unknown key in array table", doc(hostBlock, blueBlock, blueBlock[:1], []string{`name = "red"`, `vni = 257`, `subnet = "10.78.0.0/24"`, `gatway = "10.78.0.1"`}), []string{
			`h1.toml:12: network[1].gatway: unknown key`}},
		{"unknown key in inline array", doc([]string{`peer = [{name = "h2", address = "198.18.0.2"}, {name = "h3", adress = "198.18.0.3"}]`}, hostBlock), []string{
			`h1.toml:1: peer[1].adress: unknown key`,
			`h1.toml:1: peer[1].address: required key is missing`}},
		{"unknown table", doc(hostBlock, []string{`[hosts]`, `name = "x"`}), []string{
			`h1.toml:4: hosts: unknown table`}},
		{"unknown subtable", doc(hostBlock, []string{`[host.extra]`, `a = 1`}), []string{
			`h1.toml:4: host.extra: unknown table`}},
		{"key case", doc([]string{`[host]`, `Name = "h1"`, `address = "198.18.0.1"`}), []string{
			`h1.toml:2: host.Name: unknown key (keys are case-sensitive; did you mean "name"?)`}},
		{"table case", doc([]string{`[Host]`, `name = "h1"`, `address = "198.18.0.1"`}), []string{
			`h1.toml:1: Host: unknown key (keys are case-sensitive; did you mean "host"?)`}},

		// Types: every leaf is checked, all are reported.
		{"wrong types", doc([]string{`[host]`, `name = 1`, `address = ["198.18.0.1"]`, `port = "4789"`, `mtu = 1500.0`, `state_dir = true`, `api_socket = {a = 1}`}), []string{
			`h1.toml:2: host.name: expected a string, got integer 1`,
			`h1.toml:3: host.address: expected a string, got an array`,
			`h1.toml:4: host.port: expected an integer, got string "4789"`,
			`h1.toml:5: host.mtu: expected an integer, got float 1500`,
			`h1.toml:6: host.state_dir: expected a string, got boolean true`,
			`h1.toml:7: host.api_socket: expected a string, got a table`}},
		{"date", doc(hostBlock, blueBlock[:3], []string{`subnet = 1979-05-27`}), []string{
			`h1.toml:7: network[0].subnet: expected a string, got date/time 1979-05-27`}},
		{"control character", doc([]string{`[host]`, `name = "h\u00011"`, `address = "198.18.0.1"`}), []string{
			`h1.toml:2: host.name: "h\x011" contains control characters`}},

		// Host.
		{"no host", doc(blueBlock), []string{
			`h1.toml: host: missing [host] table`}},
		{"empty file", "", []string{
			`h1.toml: host: missing [host] table`}},
		{"host name missing", doc([]string{`[host]`, `address = "198.18.0.1"`}), []string{
			`h1.toml:1: host.name: required key is missing`}},
		{"host name empty", doc([]string{`[host]`, `name = ""`, `address = "198.18.0.1"`}), []string{
			`h1.toml:2: host.name: must not be empty`}},
		{"host address missing", doc([]string{`[host]`, `name = "h1"`}), []string{
			`h1.toml:1: host.address: required key is missing`}},
		{"host address invalid", doc([]string{`[host]`, `name = "h1"`, `address = "198.18.0"`}), []string{
			`h1.toml:3: host.address: "198.18.0" is not a valid IPv4 address`}},
		{"host address ipv6", doc([]string{`[host]`, `name = "h1"`, `address = "2001:db8::1"`}), []string{
			`h1.toml:3: host.address: "2001:db8::1" is not a valid IPv4 address`}},
		{"host address mapped", doc([]string{`[host]`, `name = "h1"`, `address = "::ffff:198.18.0.1"`}), []string{
			`h1.toml:3: host.address: "::ffff:198.18.0.1" is not a valid IPv4 address`}},
		{"host address unspecified", doc([]string{`[host]`, `name = "h1"`, `address = "0.0.0.0"`}), []string{
			`h1.toml:3: host.address: 0.0.0.0 is unspecified; use the address of an interface`}},
		{"host address multicast", doc([]string{`[host]`, `name = "h1"`, `address = "239.1.1.1"`}), []string{
			`h1.toml:3: host.address: 239.1.1.1 is a multicast address; use a unicast address`}},
		{"host address broadcast", doc([]string{`[host]`, `name = "h1"`, `address = "255.255.255.255"`}), []string{
			`h1.toml:3: host.address: 255.255.255.255 is the broadcast address; use a unicast address`}},
		{"host port zero", doc(hostBlock, []string{`port = 0`}), []string{
			`h1.toml:4: host.port: port 0 is out of range 1..65535`}},
		{"host port too big", doc(hostBlock, []string{`port = 65536`}), []string{
			`h1.toml:4: host.port: port 65536 is out of range 1..65535`}},
		{"host port negative", doc(hostBlock, []string{`port = -1`}), []string{
			`h1.toml:4: host.port: port -1 is out of range 1..65535`}},
		{"host mtu small", doc(hostBlock, []string{`mtu = 575`}), []string{
			`h1.toml:4: host.mtu: mtu 575 is out of range: use 0 (detect) or 576..65535`}},
		{"host mtu big", doc(hostBlock, []string{`mtu = 65536`}), []string{
			`h1.toml:4: host.mtu: mtu 65536 is out of range: use 0 (detect) or 576..65535`}},
		{"state dir relative", doc(hostBlock, []string{`state_dir = "var/lib/vxwire"`}), []string{
			`h1.toml:4: host.state_dir: "var/lib/vxwire" is not an absolute path`}},
		{"api socket relative", doc(hostBlock, []string{`api_socket = "vxwire.sock"`}), []string{
			`h1.toml:4: host.api_socket: "vxwire.sock" is not an absolute path`}},
		{"api socket long", doc(hostBlock, []string{`api_socket = "/run/` + longName(110) + `"`}), []string{
			`h1.toml:4: host.api_socket: /run/` + longName(110) + ` is 115 bytes long; unix socket paths are limited to 107`}},

		// Peers.
		{"peer name missing", doc(hostBlock, []string{`[[peer]]`, `address = "198.18.0.2"`}), []string{
			`h1.toml:4: peer[0].name: required key is missing`}},
		{"peer name duplicate", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`, `[[peer]]`, `name = "h2"`, `address = "198.18.0.3"`}), []string{
			`h1.toml:8: peer[1].name: name "h2" is already used by peer[0]`}},
		{"peer name is host", doc(hostBlock, []string{`[[peer]]`, `name = "h1"`, `address = "198.18.0.2"`}), []string{
			`h1.toml:5: peer[0].name: name "h1" is the host's own name`}},
		{"peer address missing", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`}), []string{
			`h1.toml:4: peer[0].address: required key is missing`}},
		{"peer address invalid", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`, `address = "h2.example"`}), []string{
			`h1.toml:6: peer[0].address: "h2.example" is not a valid IPv4 address`}},
		{"peer address multicast", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`, `address = "224.0.0.1"`}), []string{
			`h1.toml:6: peer[0].address: 224.0.0.1 is a multicast address; use a unicast address`}},
		{"peer address duplicate", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`, `[[peer]]`, `name = "h3"`, `address = "198.18.0.2"`}), []string{
			`h1.toml:9: peer[1].address: 198.18.0.2 is already used by peer[0]`}},
		{"peer address is host", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`, `address = "198.18.0.1"`}), []string{
			`h1.toml:6: peer[0].address: 198.18.0.1 is the host's own address`}},
		{"peer port", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`, `port = 0`}), []string{
			`h1.toml:7: peer[0].port: port 0 is out of range 1..65535`}},

		// Networks.
		{"network name missing", doc(hostBlock, []string{`[[network]]`, `vni = 256`, `subnet = "10.77.0.0/24"`}), []string{
			`h1.toml:4: network[0].name: required key is missing`}},
		{"network name upper case", doc(hostBlock, []string{`[[network]]`, `name = "Blue"`, `vni = 256`, `subnet = "10.77.0.0/24"`}), []string{
			`h1.toml:5: network[0].name: "Blue" is not a DNS label: use only a-z, 0-9 and '-'`}},
		{"network name hyphen", doc(hostBlock, []string{`[[network]]`, `name = "-blue"`, `vni = 256`, `subnet = "10.77.0.0/24"`}), []string{
			`h1.toml:5: network[0].name: "-blue" is not a DNS label: it must not begin or end with '-'`}},
		{"network name long", doc(hostBlock, []string{`[[network]]`, `name = "` + longName(64) + `"`, `vni = 256`, `subnet = "10.77.0.0/24"`}), []string{
			`h1.toml:5: network[0].name: "` + longName(64) + `" is longer than 63 bytes (a DNS label)`}},
		{"network name duplicate", doc(hostBlock, blueBlock, []string{`[[network]]`, `name = "blue"`, `vni = 257`, `subnet = "10.78.0.0/24"`}), []string{
			`h1.toml:9: network[1].name: name "blue" is already used by network[0]`}},
		{"vni missing", doc(hostBlock, []string{`[[network]]`, `name = "blue"`, `subnet = "10.77.0.0/24"`}), []string{
			`h1.toml:4: network[0].vni: required key is missing`}},
		{"vni small", doc(hostBlock, []string{`[[network]]`, `name = "blue"`, `vni = 255`, `subnet = "10.77.0.0/24"`}), []string{
			`h1.toml:6: network[0].vni: vni 255 is out of range 256..16777215`}},
		{"vni big", doc(hostBlock, []string{`[[network]]`, `name = "blue"`, `vni = 16777216`, `subnet = "10.77.0.0/24"`}), []string{
			`h1.toml:6: network[0].vni: vni 16777216 is out of range 256..16777215`}},
		{"vni duplicate", doc(hostBlock, blueBlock, []string{`[[network]]`, `name = "red"`, `vni = 256`, `subnet = "10.78.0.0/24"`}), []string{
			`h1.toml:10: network[1].vni: vni 256 is already used by network[0]`}},
		{"subnet missing", doc(hostBlock, blueBlock[:3]), []string{
			`h1.toml:4: network[0].subnet: required key is missing`}},
		{"subnet invalid", doc(hostBlock, blueBlock[:3], []string{`subnet = "10.77.0.0"`}), []string{
			`h1.toml:7: network[0].subnet: "10.77.0.0" is not a valid IPv4 prefix (want a.b.c.d/n)`}},
		{"subnet ipv6", doc(hostBlock, blueBlock[:3], []string{`subnet = "fd00::/64"`}), []string{
			`h1.toml:7: network[0].subnet: "fd00::/64" is not a valid IPv4 prefix (want a.b.c.d/n)`}},
		{"subnet too small", doc(hostBlock, blueBlock[:3], []string{`subnet = "10.77.0.0/31"`}), []string{
			`h1.toml:7: network[0].subnet: 10.77.0.0/31 is too small: the prefix length must be at most 30`}},
		{"subnet not masked", doc(hostBlock, blueBlock[:3], []string{`subnet = "10.77.0.5/24"`}), []string{
			`h1.toml:7: network[0].subnet: 10.77.0.5/24 has host bits set; use 10.77.0.0/24`}},
		{"subnet overlap", doc(hostBlock, blueBlock, []string{`[[network]]`, `name = "red"`, `vni = 257`, `subnet = "10.77.0.128/25"`}), []string{
			`h1.toml:11: network[1].subnet: 10.77.0.128/25 overlaps subnet 10.77.0.0/24 of network[0]`}},
		{"subnet overlap wider", doc(hostBlock, blueBlock, []string{`[[network]]`, `name = "red"`, `vni = 257`, `subnet = "10.0.0.0/8"`}), []string{
			`h1.toml:11: network[1].subnet: 10.0.0.0/8 overlaps subnet 10.77.0.0/24 of network[0]`}},
		{"gateway outside", doc(hostBlock, blueBlock, []string{`gateway = "10.9.0.1"`}), []string{
			`h1.toml:8: network[0].gateway: 10.9.0.1 is outside subnet 10.77.0.0/24`}},
		{"gateway network address", doc(hostBlock, blueBlock, []string{`gateway = "10.77.0.0"`}), []string{
			`h1.toml:8: network[0].gateway: 10.77.0.0 is the network address of subnet 10.77.0.0/24`}},
		{"gateway broadcast", doc(hostBlock, blueBlock, []string{`gateway = "10.77.0.255"`}), []string{
			`h1.toml:8: network[0].gateway: 10.77.0.255 is the broadcast address of subnet 10.77.0.0/24`}},
		{"gateway invalid", doc(hostBlock, blueBlock, []string{`gateway = "10.77.0.256"`}), []string{
			`h1.toml:8: network[0].gateway: "10.77.0.256" is not a valid IPv4 address`}},
		{"network mtu small", doc(hostBlock, blueBlock, []string{`mtu = 575`}), []string{
			`h1.toml:8: network[0].mtu: mtu 575 is out of range: use 0 (underlay MTU - 50) or 576..9000`}},
		{"network mtu big", doc(hostBlock, blueBlock, []string{`mtu = 9001`}), []string{
			`h1.toml:8: network[0].mtu: mtu 9001 is out of range: use 0 (underlay MTU - 50) or 576..9000`}},

		// Endpoints.
		{"endpoint network missing", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `name = "web"`, `netns = "/run/netns/c1"`}), []string{
			`h1.toml:8: endpoint[0].network: required key is missing`}},
		{"endpoint network unknown", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `network = "green"`, `name = "web"`, `netns = "/run/netns/c1"`}), []string{
			`h1.toml:9: endpoint[0].network: no network is named "green"`}},
		{"endpoint name missing", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `network = "blue"`, `netns = "/run/netns/c1"`}), []string{
			`h1.toml:8: endpoint[0].name: required key is missing`}},
		{"endpoint name invalid", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `network = "blue"`, `name = "web_1"`, `netns = "/run/netns/c1"`}), []string{
			`h1.toml:10: endpoint[0].name: "web_1" is not a DNS label: use only a-z, 0-9 and '-'`}},
		{"endpoint name duplicate", doc(hostBlock, blueBlock, ep(), ep(`ifname = "eth1"`)), []string{
			`h1.toml:14: endpoint[1].name: name "web" is already used by endpoint[0] in network blue`}},
		{"netns missing", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `network = "blue"`, `name = "web"`}), []string{
			`h1.toml:8: endpoint[0].netns: required key is missing`}},
		{"netns relative", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `network = "blue"`, `name = "web"`, `netns = "netns/c1"`}), []string{
			`h1.toml:11: endpoint[0].netns: "netns/c1" is not an absolute path`}},
		{"ifname long", doc(hostBlock, blueBlock, ep(`ifname = "eth0123456789abcd"`)), []string{
			`h1.toml:12: endpoint[0].ifname: "eth0123456789abcd" is 17 bytes long; interface names are limited to 15`}},
		{"ifname slash", doc(hostBlock, blueBlock, ep(`ifname = "eth/0"`)), []string{
			`h1.toml:12: endpoint[0].ifname: "eth/0" is not a valid interface name: '/', ':', spaces and non-printable characters are not allowed`}},
		{"ifname dot", doc(hostBlock, blueBlock, ep(`ifname = ".."`)), []string{
			`h1.toml:12: endpoint[0].ifname: ".." is not a valid interface name`}},
		{"ifname empty", doc(hostBlock, blueBlock, ep(`ifname = ""`)), []string{
			`h1.toml:12: endpoint[0].ifname: "" is not a valid interface name`}},
		{"ifname duplicate in netns", doc(hostBlock, blueBlock, ep(), []string{`[[endpoint]]`, `network = "blue"`, `name = "db"`, `netns = "/run/netns/c1"`}), []string{
			`h1.toml:12: endpoint[1].ifname: eth0 in /run/netns/c1 is already used by endpoint[0]`}},
		{"endpoint address invalid", doc(hostBlock, blueBlock, ep(`address = "10.77.0"`)), []string{
			`h1.toml:12: endpoint[0].address: "10.77.0" is not a valid IPv4 address`}},
		{"endpoint address outside", doc(hostBlock, blueBlock, ep(`address = "10.78.0.10"`)), []string{
			`h1.toml:12: endpoint[0].address: 10.78.0.10 is outside subnet 10.77.0.0/24 of network blue`}},
		{"endpoint address gateway", doc(hostBlock, blueBlock, ep(`address = "10.77.0.1"`)), []string{
			`h1.toml:12: endpoint[0].address: 10.77.0.1 is the gateway of network blue`}},
		{"endpoint address network", doc(hostBlock, blueBlock, ep(`address = "10.77.0.0"`)), []string{
			`h1.toml:12: endpoint[0].address: 10.77.0.0 is the network address of subnet 10.77.0.0/24 of network blue`}},
		{"endpoint address broadcast", doc(hostBlock, blueBlock, ep(`address = "10.77.0.255"`)), []string{
			`h1.toml:12: endpoint[0].address: 10.77.0.255 is the broadcast address of subnet 10.77.0.0/24 of network blue`}},
		{"endpoint address duplicate", doc(hostBlock, blueBlock, ep(`address = "10.77.0.10"`),
			[]string{`[[endpoint]]`, `network = "blue"`, `name = "db"`, `netns = "/run/netns/c2"`, `address = "10.77.0.10"`}), []string{
			`h1.toml:17: endpoint[1].address: 10.77.0.10 is already used by endpoint[0] in network blue`}},
		{"mac invalid", doc(hostBlock, blueBlock, ep(`mac = "02:00:00:00:00"`)), []string{
			`h1.toml:12: endpoint[0].mac: "02:00:00:00:00" is not a valid MAC address`}},
		{"mac eui64", doc(hostBlock, blueBlock, ep(`mac = "02:00:00:00:00:00:00:01"`)), []string{
			`h1.toml:12: endpoint[0].mac: 02:00:00:00:00:00:00:01 is not a 48-bit Ethernet MAC address`}},
		{"mac multicast", doc(hostBlock, blueBlock, ep(`mac = "03:00:00:00:00:01"`)), []string{
			`h1.toml:12: endpoint[0].mac: 03:00:00:00:00:01 is a multicast address; the lowest bit of the first octet must be 0`}},
		{"mac zero", doc(hostBlock, blueBlock, ep(`mac = "00:00:00:00:00:00"`)), []string{
			`h1.toml:12: endpoint[0].mac: 00:00:00:00:00:00 is the all-zero address`}},
		{"mac duplicate", doc(hostBlock, blueBlock, ep(`mac = "02:00:00:00:00:01"`),
			[]string{`[[endpoint]]`, `network = "blue"`, `name = "db"`, `netns = "/run/netns/c2"`, `mac = "02-00-00-00-00-01"`}), []string{
			`h1.toml:17: endpoint[1].mac: 02:00:00:00:00:01 is already used by endpoint[0] in network blue`}},
	}
}

// longName returns a DNS-label-valid name of n bytes.
func longName(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}
