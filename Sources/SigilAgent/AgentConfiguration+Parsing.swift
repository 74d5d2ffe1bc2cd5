import Foundation
import SigilCore
import Yams

extension AgentConfiguration {
    /// Reads and checks a configuration file. Every problem is reported at once, each with
    /// the file, the line, the key (`certificates[1].key.mode`) and what is wrong.
    public static func load(path: String) throws -> AgentConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SigilError.badInput("cannot read the agent configuration \(path): \(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw SigilError.badInput("\(path): not UTF-8 text") }
        return try parse(text, file: path)
    }

    /// Parses configuration text; `file` names it in messages and anchors relative paths.
    public static func parse(_ text: String, file: String) throws -> AgentConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw SigilError.badInput("\(file): not valid YAML: \(error)")
        }
        var reader = ConfigReader(file: file)
        let configuration = reader.configuration(root)
        if !reader.problems.isEmpty || configuration == nil {
            let count = reader.problems.count
            throw SigilError(.badInput, "\(file): \(count) problem\(count == 1 ? "" : "s") in the agent configuration:", reasons: reader.problems)
        }
        return configuration!
    }
}

/// Walks the YAML node tree, collecting problems instead of stopping at the first.
struct ConfigReader {
    let file: String
    let directory: String
    var problems: [String] = []

    init(file: String) {
        self.file = file
        let absolute = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        directory = URL(fileURLWithPath: absolute).deletingLastPathComponent().path
    }

    mutating func problem(_ node: Node?, _ key: String, _ text: String) {
        let line = node?.mark.map { "line \($0.line): " } ?? ""
        problems.append("\(line)\(key): \(text)")
    }

    func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
    }

    /// The mapping at `node`, with unknown keys reported.
    mutating func mapping(_ node: Node?, _ key: String, allowed: Set<String>) -> Node.Mapping? {
        guard let node else { return nil }
        guard let mapping = node.mapping else {
            problem(node, key, "expected a mapping of keys")
            return nil
        }
        for (k, _) in mapping {
            guard let name = k.string else { problem(k, key, "keys must be strings"); continue }
            if !allowed.contains(name) {
                problem(k, key.isEmpty ? name : "\(key).\(name)", "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        return mapping
    }

    mutating func string(_ map: Node.Mapping?, _ name: String, _ key: String, required: Bool = false) -> String? {
        guard let node = map?[name] else {
            if required { problem(nil, key.isEmpty ? name : "\(key).\(name)", "required") }
            return nil
        }
        guard let scalar = node.scalar else {
            problem(node, "\(key.isEmpty ? "" : key + ".")\(name)", "expected a text value")
            return nil
        }
        if scalar.string.isEmpty {
            problem(node, "\(key.isEmpty ? "" : key + ".")\(name)", "must not be empty")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ map: Node.Mapping?, _ name: String, _ key: String) -> Bool? {
        guard let node = map?[name] else { return nil }
        switch node.scalar?.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            problem(node, "\(key).\(name)", "expected true or false")
            return nil
        }
    }

    mutating func duration(_ map: Node.Mapping?, _ name: String, _ key: String) -> ValidityPeriod? {
        guard let text = string(map, name, key) else { return nil }
        do {
            let value = try ValidityPeriod(parsing: text)
            if value.seconds < 1 { problem(map?[name], "\(key).\(name)", "must be at least 1s"); return nil }
            return value
        } catch let error as SigilError {
            problem(map?[name], "\(key.isEmpty ? "" : key + ".")\(name)", error.message)
            return nil
        } catch { return nil }
    }

    // MARK: The file

    mutating func configuration(_ root: Node?) -> AgentConfiguration? {
        guard let root else {
            problem(nil, "certificates", "the file is empty; it must list at least one certificate")
            return nil
        }
        let top = mapping(root, "", allowed: ["state_dir", "check_interval", "backoff", "ca", "certificates"])
        guard let top else { return nil }
        let stateDirectory = string(top, "state_dir", "").map { resolve($0) }
            ?? resolve(URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent + ".state")
        let checkInterval = duration(top, "check_interval", "") ?? ValidityPeriod(seconds: 3_600)
        var backoff = BackoffSettings()
        if let node = top["backoff"], let map = mapping(node, "backoff", allowed: ["base", "max"]) {
            if let base = duration(map, "base", "backoff") { backoff.base = base }
            if let cap = duration(map, "max", "backoff") { backoff.cap = cap }
            if backoff.base > backoff.cap { problem(node, "backoff", "base (\(backoff.base)) exceeds max (\(backoff.cap))") }
        }
        let defaultAuthority = top["ca"].flatMap { authority($0, "ca") }
        var certificates: [ManagedCertificate] = []
        guard let list = top["certificates"] else {
            problem(nil, "certificates", "required: the list of certificates to manage")
            return nil
        }
        guard let items = list.sequence, !items.isEmpty else {
            problem(list, "certificates", "expected a non-empty list")
            return nil
        }
        var seen: [String: Int] = [:]
        var paths: [String: String] = [:]
        for (index, item) in items.enumerated() {
            let key = "certificates[\(index)]"
            guard let certificate = certificate(item, key, defaultAuthority: defaultAuthority, hasDefault: top["ca"] != nil) else { continue }
            if let other = seen[certificate.name] {
                problem(item, "\(key).name", "'\(certificate.name)' is already used by certificates[\(other)]")
            }
            seen[certificate.name] = index
            for (role, target) in certificate.targets {
                if let owner = paths[target.path] {
                    problem(item, "\(key).\(role.rawValue)", "\(target.path) is also written as \(owner)")
                }
                paths[target.path] = "\(key).\(role.rawValue)"
            }
            certificates.append(certificate)
        }
        return AgentConfiguration(file: file, stateDirectory: stateDirectory, backoff: backoff, checkInterval: checkInterval, certificates: certificates)
    }

    // MARK: The CA

    mutating func authority(_ node: Node, _ key: String) -> AuthorityChoice? {
        guard let map = mapping(node, key, allowed: ["acme", "sigil"]) else { return nil }
        switch (map["acme"], map["sigil"]) {
        case (let acme?, nil):
            return acmeAuthority(acme, "\(key).acme").map(AuthorityChoice.acme)
        case (nil, let sigil?):
            return sigilAuthority(sigil, "\(key).sigil").map(AuthorityChoice.sigil)
        case (nil, nil):
            problem(node, key, "choose the CA: 'acme' (an ACME directory) or 'sigil' (Sigil's REST API)")
        default:
            problem(node, key, "give either 'acme' or 'sigil', not both")
        }
        return nil
    }

    mutating func acmeAuthority(_ node: Node, _ key: String) -> ACMEAuthority? {
        guard let map = mapping(node, key, allowed: ["directory", "eab", "email", "ca_bundle", "profile", "challenge", "http01_listen", "http01_webroot", "dns01_hook", "dns01_wait"]) else { return nil }
        let directory = string(map, "directory", key, required: true)
        if let directory, URL(string: directory)?.scheme?.lowercased() != "https" {
            problem(map["directory"], "\(key).directory", "'\(directory)' must be an https:// URL (RFC 8555 §6.1)")
        }
        var authority = ACMEAuthority(directory: directory ?? "")
        if let eab = map["eab"], let eabMap = mapping(eab, "\(key).eab", allowed: ["kid", "hmac_file"]) {
            authority.eabKeyID = string(eabMap, "kid", "\(key).eab", required: true)
            authority.eabHMACFile = string(eabMap, "hmac_file", "\(key).eab", required: true).map { resolve($0) }
        }
        authority.email = string(map, "email", key)
        if let email = authority.email, NameRules.emailProblem(email) != nil {
            problem(map["email"], "\(key).email", "'\(email)' is not an email address")
        }
        authority.caBundle = string(map, "ca_bundle", key).map { resolve($0) }
        if let bundle = authority.caBundle, !FileManager.default.isReadableFile(atPath: bundle) {
            problem(map["ca_bundle"], "\(key).ca_bundle", "cannot read \(bundle)")
        }
        authority.profile = string(map, "profile", key)
        let challenge = string(map, "challenge", key) ?? (map["dns01_hook"] != nil ? "dns-01" : "http-01")
        switch challenge {
        case "http-01":
            for extra in ["dns01_hook", "dns01_wait"] where map[extra] != nil {
                problem(map[extra], "\(key).\(extra)", "belongs to challenge: dns-01, not http-01")
            }
        case "dns-01":
            for extra in ["http01_listen", "http01_webroot"] where map[extra] != nil {
                problem(map[extra], "\(key).\(extra)", "belongs to challenge: http-01, not dns-01")
            }
            if let node = map["dns01_hook"] {
                authority.dns01Hook = reloadCommand(node, "\(key).dns01_hook")
            } else {
                problem(node, "\(key).dns01_hook", "challenge: dns-01 needs the command that publishes the TXT record")
            }
            if let wait = duration(map, "dns01_wait", key) { authority.dns01Wait = wait }
        default:
            problem(map["challenge"], "\(key).challenge", "'\(challenge)' is not supported; the agent answers http-01 or dns-01")
        }
        if let listen = string(map, "http01_listen", key) {
            if HostPort(listen) == nil {
                problem(map["http01_listen"], "\(key).http01_listen", "'\(listen)' must be HOST:PORT (port 1-65535)")
            }
            authority.http01Listen = listen
        }
        if let webroot = string(map, "http01_webroot", key) {
            if map["http01_listen"] != nil {
                problem(map["http01_webroot"], "\(key).http01_webroot", "give either http01_listen (the agent answers) or http01_webroot (the web server answers), not both")
            }
            let path = resolve(webroot)
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) || !isDirectory.boolValue {
                problem(map["http01_webroot"], "\(key).http01_webroot", "\(path) is not a directory")
            }
            authority.http01Webroot = path
        }
        return directory == nil ? nil : authority
    }

    mutating func sigilAuthority(_ node: Node, _ key: String) -> SigilAuthorityEndpoint? {
        guard let map = mapping(node, key, allowed: ["url", "token_file", "token_env", "profile", "ca_bundle"]) else { return nil }
        let url = string(map, "url", key, required: true)
        if let url, URL(string: url)?.scheme?.lowercased() != "https" {
            problem(map["url"], "\(key).url", "'\(url)' must be an https:// URL (a bearer token never travels in clear)")
        }
        var endpoint = SigilAuthorityEndpoint(url: url ?? "")
        endpoint.tokenFile = string(map, "token_file", key).map { resolve($0) }
        endpoint.tokenEnv = string(map, "token_env", key)
        switch (endpoint.tokenFile, endpoint.tokenEnv) {
        case (nil, nil): problem(node, key, "give the API token with token_file or token_env (never inline)")
        case (.some, .some): problem(node, key, "give token_file or token_env, not both")
        default: break
        }
        if let profile = string(map, "profile", key) { endpoint.profile = profile }
        endpoint.caBundle = string(map, "ca_bundle", key).map { resolve($0) }
        if let bundle = endpoint.caBundle, !FileManager.default.isReadableFile(atPath: bundle) {
            problem(map["ca_bundle"], "\(key).ca_bundle", "cannot read \(bundle)")
        }
        return url == nil ? nil : endpoint
    }

    // MARK: One certificate

    mutating func certificate(_ node: Node, _ key: String, defaultAuthority: AuthorityChoice?, hasDefault: Bool) -> ManagedCertificate? {
        let allowed: Set = ["name", "names", "key_type", "reuse_key", "profile", "ca", "key", "certificate", "chain", "fullchain", "reload"]
        guard let map = mapping(node, key, allowed: allowed) else { return nil }
        let name = string(map, "name", key, required: true)
        if let name, name.isEmpty || name.count > 64 || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) || name.hasPrefix(".") {
            problem(map["name"], "\(key).name", "'\(name)' must be 1-64 letters, digits, '-', '_' or '.' (it names files in the state directory)")
        }
        var names: [String] = []
        if let list = map["names"] {
            if let items = list.sequence, !items.isEmpty {
                for (i, item) in items.enumerated() {
                    guard let text = item.scalar?.string, !text.isEmpty else { problem(item, "\(key).names[\(i)]", "expected a DNS name or IP address"); continue }
                    if NameRules.parseIPAddress(text) != nil {
                        names.append(text)
                    } else if let issue = NameRules.dnsNameProblem(text) {
                        problem(item, "\(key).names[\(i)]", issue)
                    } else {
                        names.append(text.lowercased())
                    }
                }
            } else {
                problem(list, "\(key).names", "expected a non-empty list of DNS names and IP addresses")
            }
        } else {
            problem(node, "\(key).names", "required: the DNS names and IP addresses to certify")
        }
        var keyType = KeyType.default
        if let text = string(map, "key_type", key) {
            do {
                keyType = try KeyType(parsing: text)
                if [.mldsa44, .mldsa65, .mldsa87].contains(keyType) {
                    problem(map["key_type"], "\(key).key_type", "ML-DSA keys cannot be used for TLS server certificates yet")
                }
            } catch let error as SigilError { problem(map["key_type"], "\(key).key_type", error.message) } catch {}
        }
        let reuseKey = bool(map, "reuse_key", key) ?? false
        var authority: AuthorityChoice?
        if let ca = map["ca"] {
            authority = self.authority(ca, "\(key).ca")
        } else {
            authority = defaultAuthority
            if !hasDefault { problem(node, "\(key).ca", "no CA: give 'ca' here or at the top of the file") }
        }
        if let profile = string(map, "profile", key) {
            switch authority {
            case .acme(var a): a.profile = profile; authority = .acme(a)
            case .sigil(var s): s.profile = profile; authority = .sigil(s)
            case nil: break
            }
        }
        // RFC 8555 §7.1.3: a CA validates a wildcard only by dns-01.
        if case .acme(let acme) = authority, acme.dns01Hook == nil, let wildcard = names.first(where: { $0.hasPrefix("*.") }) {
            problem(map["names"], "\(key).names", "'\(wildcard)' is a wildcard: ACME CAs validate those only by dns-01 (challenge: dns-01 with a dns01_hook)")
        }
        let keyTarget = target(map["key"], "\(key).key", defaultMode: 0o600, required: true)
        let certificateTarget = target(map["certificate"], "\(key).certificate", defaultMode: 0o644, required: true)
        let chainTarget = target(map["chain"], "\(key).chain", defaultMode: 0o644, required: false)
        let fullchainTarget = target(map["fullchain"], "\(key).fullchain", defaultMode: 0o644, required: false)
        let reload = map["reload"].flatMap { reloadCommand($0, "\(key).reload") }
        guard let name, let authority, let keyTarget, let certificateTarget, !names.isEmpty else { return nil }
        return ManagedCertificate(name: name, names: names, keyType: keyType, reuseKey: reuseKey, key: keyTarget, certificate: certificateTarget,
                                  chain: chainTarget, fullchain: fullchainTarget, reload: reload, authority: authority)
    }

    /// `key: PATH` or `key: {path, owner, group, mode}`.
    mutating func target(_ node: Node?, _ key: String, defaultMode: mode_t, required: Bool) -> DeployTarget? {
        guard let node else {
            if required { problem(nil, key, "required: where to write it (a path, or {path, owner, group, mode})") }
            return nil
        }
        if let scalar = node.scalar {
            guard !scalar.string.isEmpty else { problem(node, key, "must not be empty"); return nil }
            return DeployTarget(path: resolve(scalar.string), mode: defaultMode)
        }
        guard let map = mapping(node, key, allowed: ["path", "owner", "group", "mode"]) else { return nil }
        guard let path = string(map, "path", key, required: true) else { return nil }
        var target = DeployTarget(path: resolve(path), mode: defaultMode)
        target.owner = string(map, "owner", key)
        target.group = string(map, "group", key)
        if let owner = target.owner, FileOwnership.userID(owner) == nil { problem(map["owner"], "\(key).owner", "no user '\(owner)' on this system") }
        if let group = target.group, FileOwnership.groupID(group) == nil { problem(map["group"], "\(key).group", "no group '\(group)' on this system") }
        if let modeNode = map["mode"] {
            // Read the text as written: YAML 1.1 would turn an unquoted 0640 into 416.
            let text = modeNode.scalar?.string ?? ""
            let digits = text.hasPrefix("0o") ? String(text.dropFirst(2)) : text
            if let mode = mode_t(digits, radix: 8), !digits.isEmpty, digits.count <= 4, mode <= 0o777 {
                target.mode = mode
                if mode & 0o007 != 0, key.hasSuffix(".key") {
                    problem(modeNode, "\(key).mode", "\(text) lets every user read the private key; use 0600 or 0640")
                }
            } else {
                problem(modeNode, "\(key).mode", "'\(text)' is not a file mode; write octal permissions such as \"0640\"")
            }
        }
        return target
    }

    /// `reload: [argv...]`, `reload: "cmd arg"` (split on spaces, no shell), or
    /// `reload: {command: [...] | shell: "...", timeout: 60s}`.
    mutating func reloadCommand(_ node: Node, _ key: String) -> ReloadCommand? {
        if let items = node.sequence {
            let argv = items.compactMap { $0.scalar?.string }
            guard argv.count == items.count, !argv.isEmpty, !argv[0].isEmpty else { problem(node, key, "expected a non-empty list of words"); return nil }
            return ReloadCommand(argv: argv)
        }
        if let scalar = node.scalar { return split(scalar.string, node, key).map { ReloadCommand(argv: $0) } }
        guard let map = mapping(node, key, allowed: ["command", "shell", "timeout"]) else { return nil }
        var argv: [String]?
        switch (map["command"], map["shell"]) {
        case (let command?, nil):
            if let items = command.sequence {
                let words = items.compactMap { $0.scalar?.string }
                if words.count == items.count, !words.isEmpty { argv = words } else { problem(command, "\(key).command", "expected a non-empty list of words") }
            } else if let text = command.scalar?.string {
                argv = split(text, command, "\(key).command")
            }
        case (nil, let shell?):
            // The operator asked for a shell explicitly.
            if let text = shell.scalar?.string, !text.isEmpty { argv = ["/bin/sh", "-c", text] } else { problem(shell, "\(key).shell", "expected a command line") }
        case (nil, nil): problem(node, key, "give 'command' (run without a shell) or 'shell' (run with sh -c)")
        default: problem(node, key, "give 'command' or 'shell', not both")
        }
        let timeout = duration(map, "timeout", key) ?? ValidityPeriod(seconds: 60)
        return argv.map { ReloadCommand(argv: $0, timeout: timeout) }
    }

    mutating func split(_ text: String, _ node: Node, _ key: String) -> [String]? {
        if text.contains(where: { "\"'`$|&;<>()*?\\".contains($0) }) {
            problem(node, key, "'\(text)' needs a shell to mean what it says; write it as a list of words, or as {shell: \"...\"} to run it with sh -c")
            return nil
        }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard !words.isEmpty else { problem(node, key, "must not be empty"); return nil }
        return words
    }
}

/// `host:port` (IPv6 as `[::1]:80`).
public struct HostPort: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }
}
