import SigilCore
@testable import SigilDiscovery
import Testing

@Suite("Scan targets")
struct ScanTargetTests {
    func expand(_ targets: [String], ports: [Int] = [443], sni: String? = nil, limit: Int = ScanTargets.defaultLimit) throws -> [ScanEndpoint] {
        var parsed = try ScanTargets(defaultPorts: ports, serverName: sni, limit: limit)
        for target in targets { try parsed.add(target) }
        return parsed.endpoints
    }

    func rejects(_ target: String, containing text: String, ports: [Int] = [443], limit: Int = ScanTargets.defaultLimit) {
        do {
            _ = try expand([target], ports: ports, limit: limit)
            Issue.record("'\(target)' was accepted")
        } catch let error as SigilError {
            #expect(error.kind == .badInput)
            #expect(error.message.contains(text), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("host:port sends the host as SNI; a host alone takes the default ports")
    func hosts() throws {
        #expect(try expand(["WWW.Example.com:8443"]) == [ScanEndpoint(host: "www.example.com", port: 8443, serverName: "www.example.com")])
        #expect(try expand(["example.com"], ports: [443, 8443]).map(\.location) == ["example.com:443", "example.com:8443"])
        #expect(try expand(["example.com:443,8443-8445"]).map(\.port) == [443, 8443, 8444, 8445])
        #expect(try expand(["example.com:443"], sni: "other.example").first?.serverName == "other.example")
    }

    @Test("addresses send no SNI unless --sni names one; IPv6 in brackets")
    func addresses() throws {
        #expect(try expand(["127.0.0.1:8443"]) == [ScanEndpoint(host: "127.0.0.1", port: 8443, serverName: "")])
        #expect(try expand(["127.0.0.1"], sni: "a.example").first == ScanEndpoint(host: "127.0.0.1", port: 443, serverName: "a.example"))
        let v6 = try expand(["[::1]:8443", "::1", "[2001:db8::1]:1,2"])
        #expect(v6.map(\.location) == ["[::1]:8443", "[::1]:443", "[2001:db8::1]:1", "[2001:db8::1]:2"])
        #expect(v6.allSatisfy { $0.serverName.isEmpty && $0.isAddress })
    }

    @Test("CIDR blocks expand from the network address, with port lists")
    func cidr() throws {
        let endpoints = try expand(["10.0.0.5/30:443,8443"])
        #expect(endpoints.map(\.location) == ["10.0.0.4:443", "10.0.0.4:8443", "10.0.0.5:443", "10.0.0.5:8443",
                                               "10.0.0.6:443", "10.0.0.6:8443", "10.0.0.7:443", "10.0.0.7:8443"])
        #expect(try expand(["192.168.1.9/32"]).map(\.location) == ["192.168.1.9:443"])
        #expect(try expand(["[2001:db8::/126]:443"]).map(\.host) == ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"])
        #expect(try expand(["10.1.0.0/16"]).count == 65_536)
    }

    @Test("ranges: full and short form, across octets, duplicates collapse")
    func ranges() throws {
        #expect(try expand(["10.0.0.1-10.0.0.3"]).map(\.host) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        #expect(try expand(["10.0.0.1-3:8443"]).map(\.location) == ["10.0.0.1:8443", "10.0.0.2:8443", "10.0.0.3:8443"])
        #expect(try expand(["10.0.0.254-10.0.1.1"]).map(\.host) == ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"])
        #expect(try expand(["10.0.0.1-2", "10.0.0.2", "10.0.0.0/31"]).map(\.host) == ["10.0.0.1", "10.0.0.2", "10.0.0.0"])
    }

    @Test("a file of targets: comments, blank lines, several per line; errors name the line")
    func file() throws {
        var parsed = try ScanTargets()
        try parsed.add(fileText: "# web\n\n a.example:443  b.example:8443 # two\n10.0.0.1-2\n", source: "targets.txt")
        #expect(parsed.endpoints.map(\.location) == ["a.example:443", "b.example:8443", "10.0.0.1:443", "10.0.0.2:443"])
        do {
            try parsed.add(fileText: "a.example\nbad_host!:443\n", source: "targets.txt")
            Issue.record("accepted")
        } catch let error as SigilError {
            #expect(error.message.hasPrefix("targets.txt:2: "))
        }
    }

    @Test("absurd expansions are refused before anything runs")
    func limits() {
        rejects("10.0.0.0/8", containing: "the limit is 65536")
        rejects("10.0.0.0/16", containing: "131072 endpoints", ports: [443, 8443])
        rejects("::/0", containing: "too many")
        rejects("10.0.0.0-10.255.255.255", containing: "too many")
        rejects("10.0.0.0/29", containing: "the limit is 4", limit: 4)
    }

    @Test("bad targets", arguments: [
        ("host:0", "not a port"), ("host:70000", "not a port"), ("host:", "empty port"), ("host:80-70", "not a port"), ("host:a", "not a port"),
        ("bad host", "is not a host"), ("-bad.example", "is not a host"), ("01.2.3.4", "is not a host"), ("1.2.3.4.5", "is not a host"),
        ("10.0.0.9-10.0.0.1", "ends before it starts"), ("10.0.0.1-::1", "same family"), ("1.2.3.4/33", "prefix length"), ("1.2.3.4/", "prefix length"),
        ("example.com/24", "not an IP address"), ("[::1", "without ']'"), ("[::1]443", "expected ':port'"), ("   ", "empty target"),
    ])
    func bad(target: String, message: String) {
        rejects(target, containing: message)
    }

    @Test("port lists and --sni are checked")
    func options() throws {
        #expect(try ScanTargets.parsePorts("443,8443,443,10-12") == [443, 8443, 10, 11, 12])
        #expect(throws: SigilError.self) { try ScanTargets.parsePorts("") }
        #expect(throws: SigilError.self) { try ScanTargets.parsePorts("443,,8443") }
        #expect(throws: SigilError.self) { try ScanTargets(serverName: "not a name") }
        #expect(throws: SigilError.self) { try ScanTargets(defaultPorts: []) }
    }
}
