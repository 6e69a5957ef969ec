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
		{"host gossip_address multicast", doc([]string{`[host]`, `name = "h1"`, `address = "198.18.0.1"`, `gossip_address = "224.0.0.1"`}), []string{
			`h1.toml:4: host.gossip_address: 224.0.0.1 is a multicast address; use a unicast address`}},
		{"peer gossip_address duplicate", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`, `gossip_address = "198.19.0.9"`,
			`[[peer]]`, `name = "h3"`, `address = "198.18.0.3"`, `gossip_address = "198.19.0.9"`}), []string{
			`h1.toml:11: peer[1].gossip_address: 198.19.0.9 is already the gossip address of peer[0]`}},
		{"peer gossip_address is host's", doc([]string{`[host]`, `name = "h1"`, `address = "198.18.0.1"`, `gossip_address = "198.19.0.1"`,
			`[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`, `gossip_address = "198.19.0.1"`}), []string{
			`h1.toml:8: peer[0].gossip_address: 198.19.0.1 is one of the host's own addresses`}},
		{"peer gossip_address is host's data address", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`, `gossip_address = "198.18.0.1"`}), []string{
			`h1.toml:7: peer[0].gossip_address: 198.18.0.1 is one of the host's own addresses`}},
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
		{"host endpoint with ifname", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `network = "blue"`, `name = "web"`, `ifname = "eth1"`}), []string{
			`h1.toml:11: endpoint[0].ifname: a host endpoint (no netns) has no interface; leave ifname out, or set netns`}},
		{"two host endpoints", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `network = "blue"`, `name = "a"`, `[[endpoint]]`, `network = "blue"`, `name = "b"`}), []string{
			`h1.toml:11: endpoint[1].netns: network blue already has a host endpoint, endpoint[0]; a host has one per network`}},
		{"socks not loopback", doc([]string{`[host]`, `name = "h1"`, `address = "198.18.0.1"`, `socks = "0.0.0.0:1080"`}), []string{
			`h1.toml:4: host.socks: 0.0.0.0:1080 is not a loopback IPv4 address and port, such as 127.0.0.1:1080; only this host may use it`}},
		{"forward without host endpoint", doc(hostBlock, blueBlock, []string{`[[forward]]`, `network = "blue"`, `listen = "127.0.0.1:8080"`, `to = "web:80"`}), []string{
			`h1.toml:9: forward[0].network: network blue has no host endpoint on this host; add an [[endpoint]] without netns to it`}},
		{"forward bad target", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `network = "blue"`, `name = "me"`, `[[forward]]`, `network = "blue"`, `listen = "127.0.0.1:8080"`, `to = "web"`, `proto = "sctp"`}), []string{
			`h1.toml:14: forward[0].to: "web" is not NAME:PORT or IPV4:PORT`,
			`h1.toml:15: forward[0].proto: proto "sctp" is neither "tcp" nor "udp"`}},
		{"forward listen clash", doc([]string{`[host]`, `name = "h1"`, `address = "198.18.0.1"`, `socks = "127.0.0.1:1080"`}, blueBlock, []string{`[[endpoint]]`, `network = "blue"`, `name = "me"`, `[[forward]]`, `network = "blue"`, `listen = "127.0.0.1:1080"`, `to = "web:80"`}), []string{
			`h1.toml:14: forward[0].listen: tcp 127.0.0.1:1080 is already used by host.socks`}},
		{"expose twice", doc(hostBlock, blueBlock, []string{`[[endpoint]]`, `network = "blue"`, `name = "me"`, `[[expose]]`, `network = "blue"`, `port = 3000`, `to = "127.0.0.1:3000"`, `[[expose]]`, `network = "blue"`, `port = 3000`, `to = "127.0.0.1:3001"`}), []string{
			`h1.toml:17: expose[1].port: tcp port 3000 of network blue is already exposed by expose[0]`}},
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

		// Host: the encrypted path, membership and services.
		{"private key file relative", doc(hostBlock, []string{`private_key_file = "h1.key"`}), []string{
			`h1.toml:4: host.private_key_file: "h1.key" is not an absolute path`}},
		{"secret file relative", doc(hostBlock, []string{`secret_file = "./secret"`}), []string{
			`h1.toml:4: host.secret_file: "./secret" is not an absolute path`}},
		{"wg port zero", doc(hostBlock, []string{`wg_port = 0`}), []string{
			`h1.toml:4: host.wg_port: port 0 is out of range 1..65535`}},
		{"wg port is vxlan port", doc(hostBlock, []string{`private_key_file = "/k"`, `wg_port = 4789`}), []string{
			`h1.toml:5: host.wg_port: port 4789 is also host.port (VXLAN); the encrypted path needs a port of its own`}},
		{"vxlan port is default wg port", doc(hostBlock, []string{`port = 51820`, `private_key_file = "/k"`}), []string{
			`h1.toml:1: host.wg_port: port 51820 is also host.port (VXLAN); the encrypted path needs a port of its own`}},
		{"wg name long", doc(hostBlock, []string{`wg_name = "vxwire0123456789"`}), []string{
			`h1.toml:4: host.wg_name: "vxwire0123456789" is 16 bytes long; interface names are limited to 15`}},
		{"wg name colon", doc(hostBlock, []string{`wg_name = "wg:0"`}), []string{
			`h1.toml:4: host.wg_name: "wg:0" is not a valid interface name: use only A-Z, a-z, 0-9, '_', '.' and '-'`}},
		{"wg name empty", doc(hostBlock, []string{`wg_name = ""`}), []string{
			`h1.toml:4: host.wg_name: "" is not a valid interface name`}},
		{"wg name type", doc(hostBlock, []string{`wg_name = 0`}), []string{
			`h1.toml:4: host.wg_name: expected a string, got integer 0`}},
		{"tunnel address invalid", doc(hostBlock, []string{`tunnel_address = "100.64.0"`}), []string{
			`h1.toml:4: host.tunnel_address: "100.64.0" is not a valid IPv4 address`}},
		{"tunnel address multicast", doc(hostBlock, []string{`tunnel_address = "224.0.0.1"`}), []string{
			`h1.toml:4: host.tunnel_address: 224.0.0.1 is not a unicast address; tunnel addresses are normally in 100.64.0.0/10`}},
		{"tunnel address is a peer's derived one", doc(hostBlock, []string{`tunnel_address = "100.82.0.2"`}, peerBlock), []string{
			`h1.toml:5: peer[0].tunnel_address: 100.82.0.2 (derived from address 198.18.0.2) is already the tunnel address of host h1; set tunnel_address on one of them`}},
		{"derived tunnel addresses collide", doc(hostBlock, peerBlock, []string{`[[peer]]`, `name = "h3"`, `address = "198.82.0.2"`}), []string{
			`h1.toml:7: peer[1].tunnel_address: 100.82.0.2 (derived from address 198.82.0.2) is already the tunnel address of peer[0] h2 (derived from address 198.18.0.2); set tunnel_address on one of them`}},
		{"explicit tunnel addresses collide", doc(hostBlock, peerBlock, []string{`tunnel_address = "100.64.0.9"`, `[[peer]]`, `name = "h3"`, `address = "198.18.0.3"`, `tunnel_address = "100.64.0.9"`}), []string{
			`h1.toml:11: peer[1].tunnel_address: 100.64.0.9 is already the tunnel address of peer[0] h2`}},
		{"explicit tunnel address is the host's derived one", doc(hostBlock, peerBlock, []string{`tunnel_address = "100.82.0.1"`}), []string{
			`h1.toml:7: peer[0].tunnel_address: 100.82.0.1 is already the tunnel address of host h1 (derived from address 198.18.0.1); set tunnel_address on one of them`}},
		{"rotate every without unit", doc(hostBlock, []string{`rotate_every = "12"`}), []string{
			`h1.toml:4: host.rotate_every: "12" is not a duration: write a number with a unit (s, m, h), such as "30s" or "12h"`}},
		{"flood rate negative", doc(hostBlock, []string{`flood_rate = -1`}), []string{
			`h1.toml:4: host.flood_rate: -1 frames/s is out of range: use 0 (no limit) or 1..10000000`}},
		{"flood rate not a number", doc(hostBlock, []string{`flood_rate = "fast"`}), []string{
			`h1.toml:4: host.flood_rate: expected an integer, got string "fast"`}},
		{"flood burst zero", doc(hostBlock, []string{`flood_burst = 0`}), []string{
			`h1.toml:4: host.flood_burst: 0 frames is out of range: use 1..10000000`}},
		{"procs negative", doc(hostBlock, []string{`procs = -1`}), []string{
			`h1.toml:4: host.procs: -1 threads is out of range: use 0 (automatic) or 1..4096`}},
		{"procs too many", doc(hostBlock, []string{`procs = 5000`}), []string{
			`h1.toml:4: host.procs: 5000 threads is out of range: use 0 (automatic) or 1..4096`}},
		{"procs not a number", doc(hostBlock, []string{`procs = "all"`}), []string{
			`h1.toml:4: host.procs: expected an integer, got string "all"`}},
		{"rotate every short", doc(hostBlock, []string{`rotate_every = "500ms"`}), []string{
			`h1.toml:4: host.rotate_every: 500ms is too short: use 0 to disable rotation, or at least 1s`}},
		{"rotate every negative", doc(hostBlock, []string{`rotate_every = "-1h"`}), []string{
			`h1.toml:4: host.rotate_every: -1h is negative`}},
		{"rotate every integer", doc(hostBlock, []string{`rotate_every = 12`}), []string{
			`h1.toml:4: host.rotate_every: expected a duration string such as "30s" or "12h", got integer 12`}},
		{"gossip port big", doc(hostBlock, []string{`gossip_port = 70000`}), []string{
			`h1.toml:4: host.gossip_port: port 70000 is out of range 1..65535`}},
		{"gossip port is vxlan port", doc(hostBlock, []string{`gossip_port = 4789`}), []string{
			`h1.toml:4: host.gossip_port: port 4789 is also host.port (VXLAN); gossip needs a port of its own`}},
		{"raft port is gossip port", doc(hostBlock, []string{`raft_port = 7946`}), []string{
			`h1.toml:4: host.raft_port: port 7946 is also host.gossip_port (TCP); the address-block log needs a port of its own`}},
		{"gossip port is wg port", doc(hostBlock, []string{`private_key_file = "/k"`, `gossip_port = 51820`}), []string{
			`h1.toml:5: host.gossip_port: port 51820 is also host.wg_port (WireGuard); gossip needs a port of its own`}},
		{"peer timeout zero", doc(hostBlock, []string{`peer_timeout = "0s"`}), []string{
			`h1.toml:4: host.peer_timeout: 0s is too short: use at least 1s`}},
		{"peer timeout type", doc(hostBlock, []string{`peer_timeout = 30`}), []string{
			`h1.toml:4: host.peer_timeout: expected a duration string such as "30s" or "12h", got integer 30`}},
		{"dns upstream not an array", doc(hostBlock, []string{`dns_upstream = "192.0.2.53"`}), []string{
			`h1.toml:4: host.dns_upstream: expected an array of strings, got string "192.0.2.53"`}},
		{"dns upstream entries", doc(hostBlock, []string{`dns_upstream = ["192.0.2.53", 53, "dns.example", "192.0.2.53:53", "0.0.0.0", "192.0.2.54:0", "[2001:db8::1]", "ff02::1", "fe80::1%a b", ""]`}), []string{
			`h1.toml:4: host.dns_upstream[1]: expected a string, got integer 53`,
			`h1.toml:4: host.dns_upstream[2]: "dns.example" is not a DNS server address: use IP or IP:PORT, such as 192.0.2.53 or 192.0.2.53:5353`,
			`h1.toml:4: host.dns_upstream[3]: 192.0.2.53:53 is already listed as host.dns_upstream[0]`,
			`h1.toml:4: host.dns_upstream[4]: 0.0.0.0 is unspecified; use the address of a DNS server`,
			`h1.toml:4: host.dns_upstream[5]: 192.0.2.54:0 has port 0`,
			`h1.toml:4: host.dns_upstream[6]: "[2001:db8::1]" is not a DNS server address: use IP or IP:PORT, such as 192.0.2.53 or 192.0.2.53:5353`,
			`h1.toml:4: host.dns_upstream[7]: ff02::1 is a multicast address; use the address of a DNS server`,
			`h1.toml:4: host.dns_upstream[8]: "fe80::1%a b" has an invalid IPv6 zone: use an interface name`,
			`h1.toml:4: host.dns_upstream[9]: must not be empty`}},
		{"dns upstream on several lines", doc(hostBlock, []string{`dns_upstream = [`, `  "192.0.2.53",`, `  "192.0.2.300",`, `]`}), []string{
			`h1.toml:6: host.dns_upstream[1]: "192.0.2.300" is not a DNS server address: use IP or IP:PORT, such as 192.0.2.53 or 192.0.2.53:5353`}},
		{"metrics without address", doc(hostBlock, []string{`metrics = "9100"`}), []string{
			`h1.toml:4: host.metrics: "9100" is not a listen address IP:PORT, such as 127.0.0.1:9100 or [::1]:9100`}},
		{"metrics port zero", doc(hostBlock, []string{`metrics = "127.0.0.1:0"`}), []string{
			`h1.toml:4: host.metrics: 127.0.0.1:0 has port 0; choose a port`}},
		{"metrics multicast", doc(hostBlock, []string{`metrics = "224.0.0.1:9100"`}), []string{
			`h1.toml:4: host.metrics: 224.0.0.1 is a multicast address; use a unicast address`}},
		{"api group empty", doc(hostBlock, []string{`api_group = ""`}), []string{
			`h1.toml:4: host.api_group: must not be empty; leave the key out to keep the API socket to root`}},
		{"api group type", doc(hostBlock, []string{`api_group = 1000`}), []string{
			`h1.toml:4: host.api_group: expected a string, got integer 1000`}},
		{"new host key case", doc(hostBlock, []string{`WG_port = 51821`}), []string{
			`h1.toml:4: host.WG_port: unknown key (keys are case-sensitive; did you mean "wg_port"?)`}},

		// Peers: keys and the encrypted path.
		{"public key short", doc(hostBlock, peerBlock, []string{`public_key = "abc"`}), []string{
			`h1.toml:7: peer[0].public_key: "abc" is not a base64 WireGuard key (44 characters, as wg pubkey prints)`}},
		{"public key not base64", doc(hostBlock, peerBlock, []string{`public_key = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Spjqqb!mo="`}), []string{
			`h1.toml:7: peer[0].public_key: "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Spjqqb!mo=" is not a base64 WireGuard key (44 characters, as wg pubkey prints)`}},
		{"public key url encoding", doc(hostBlock, peerBlock, []string{`public_key = "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo="`}), []string{
			`h1.toml:7: peer[0].public_key: "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo=" is not a base64 WireGuard key (44 characters, as wg pubkey prints)`}},
		{"public key hex", doc(hostBlock, peerBlock, []string{`public_key = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"`}), []string{
			`h1.toml:7: peer[0].public_key: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" is not a base64 WireGuard key (44 characters, as wg pubkey prints)`}},
		{"public key zero", doc(hostBlock, peerBlock, []string{`public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`}), []string{
			`h1.toml:7: peer[0].public_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= is the all-zero key`}},
		{"public key duplicate", doc(hostBlock, peerBlock, []string{`public_key = "` + testPubBob + `"`, `[[peer]]`, `name = "h3"`, `address = "198.18.0.3"`, `public_key = "` + testPubBob + `"`}), []string{
			`h1.toml:11: peer[1].public_key: ` + testPubBob + ` is already the public key of peer[0]`}},
		{"peer wg port", doc(hostBlock, peerBlock, []string{`wg_port = 65536`}), []string{
			`h1.toml:7: peer[0].wg_port: port 65536 is out of range 1..65535`}},
		{"peer wg port is its vxlan port", doc(hostBlock, peerBlock, []string{`port = 4790`, `wg_port = 4790`, `public_key = "` + testPubBob + `"`}), []string{
			`h1.toml:8: peer[0].wg_port: port 4790 is also peer[0].port (VXLAN); the encrypted path needs a port of its own`}},
		{"peer tunnel address", doc(hostBlock, peerBlock, []string{`tunnel_address = "100.64.0.0/10"`}), []string{
			`h1.toml:7: peer[0].tunnel_address: "100.64.0.0/10" is not a valid IPv4 address`}},

		// Networks: encryption and egress.
		{"encrypted type", doc(hostBlock, blueBlock, []string{`encrypted = "yes"`}), []string{
			`h1.toml:8: network[0].encrypted: expected a boolean (true or false), got string "yes"`}},
		{"egress type", doc(hostBlock, blueBlock, []string{`egress = 1`}), []string{
			`h1.toml:8: network[0].egress: expected a boolean (true or false), got integer 1`}},
		{"encrypted without keys", doc(hostBlock, blueBlock, []string{`encrypted = true`}), []string{
			`h1.toml:8: network[0].encrypted: the network is encrypted but host.private_key_file is not set`,
			`h1.toml:8: network[0].encrypted: the network is encrypted but no peer has a public_key`}},
		{"encrypted without peer keys", doc(hostBlock, []string{`private_key_file = "/etc/vxwire/h1.key"`}, peerBlock, blueBlock, []string{`encrypted = true`},
			[]string{`[[network]]`, `name = "red"`, `vni = 257`, `subnet = "10.78.0.0/24"`, `encrypted = true`}), []string{
			`h1.toml:12: network[0].encrypted: the network is encrypted but no peer has a public_key`}},
		{"encrypted without private key", doc(hostBlock, peerBlock, []string{`public_key = "` + testPubBob + `"`}, blueBlock, []string{`egress = false`, `encrypted = true`}), []string{
			`h1.toml:13: network[0].encrypted: the network is encrypted but host.private_key_file is not set`}},
		{"encrypted with a wrong private key path", doc(hostBlock, []string{`private_key_file = "h1.key"`}, peerBlock, []string{`public_key = "` + testPubBob + `"`}, blueBlock, []string{`encrypted = true`}), []string{
			`h1.toml:4: host.private_key_file: "h1.key" is not an absolute path`}},
		{"encrypted network mtu", doc(hostBlock, blueBlock, []string{`encrypted = false`, `mtu = 9001`},
			[]string{`[[network]]`, `name = "red"`, `vni = 257`, `subnet = "10.78.0.0/24"`, `encrypted = true`, `mtu = 575`}), []string{
			`h1.toml:9: network[0].mtu: mtu 9001 is out of range: use 0 (underlay MTU - 50) or 576..9000`,
			`h1.toml:14: network[1].encrypted: the network is encrypted but host.private_key_file is not set`,
			`h1.toml:14: network[1].encrypted: the network is encrypted but no peer has a public_key`,
			`h1.toml:15: network[1].mtu: mtu 575 is out of range: use 0 (underlay MTU - 110) or 576..9000`}},

		// Endpoints: aliases.
		{"aliases not an array", doc(hostBlock, blueBlock, ep(`aliases = "db"`)), []string{
			`h1.toml:12: endpoint[0].aliases: expected an array of strings, got string "db"`}},
		{"aliases entries", doc(hostBlock, blueBlock, ep(`aliases = ["api", "API", "api", "web", 1, "-x", "", "a.b"]`)), []string{
			`h1.toml:12: endpoint[0].aliases[1]: "API" is not a DNS label: use only a-z, 0-9 and '-'`,
			`h1.toml:12: endpoint[0].aliases[2]: alias "api" is already listed as endpoint[0].aliases[0]`,
			`h1.toml:12: endpoint[0].aliases[3]: alias "web" is the endpoint's name`,
			`h1.toml:12: endpoint[0].aliases[4]: expected a string, got integer 1`,
			`h1.toml:12: endpoint[0].aliases[5]: "-x" is not a DNS label: it must not begin or end with '-'`,
			`h1.toml:12: endpoint[0].aliases[6]: must not be empty`,
			`h1.toml:12: endpoint[0].aliases[7]: "a.b" is not a DNS label: use only a-z, 0-9 and '-'`}},
		{"aliases long", doc(hostBlock, blueBlock, ep(`aliases = [`, `  "`+longName(64)+`",`, `]`)), []string{
			`h1.toml:13: endpoint[0].aliases[0]: "` + longName(64) + `" is longer than 63 bytes (a DNS label)`}},
	}
}

// Test keys: the X25519 key pairs of RFC 7748, section 6.1, in base64.
const (
	testPrivAlice = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
	testPubAlice  = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
	testPubBob    = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="
)

// peerBlock is a peer h2; following hostBlock it is lines 4-6.
var peerBlock = []string{`[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`}

// longName returns a DNS-label-valid name of n bytes.
func longName(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}
