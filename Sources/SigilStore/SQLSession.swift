import Foundation
import SQLKit

/// `StoreSession` in SQL both SQLite and PostgreSQL accept: one implementation
/// for every backend, with binds for every value.
public struct SQLSession: StoreSession {
    let db: any SQLDatabase
    /// The chain head as this transaction last wrote it, so consecutive appends
    /// need no SELECT. Only a writer that holds the database's write lock for the
    /// whole transaction may pass one (the SQLite write queue does).
    let auditHead: AuditHeadCache?
    /// PostgreSQL: the advisory lock taken (until the transaction ends) before the
    /// first append, so concurrent writers on any node append one after another.
    let auditLock: Int64?

    public init(_ db: any SQLDatabase) {
        self.db = db
        self.auditHead = nil
        self.auditLock = nil
    }

    init(_ db: any SQLDatabase, auditHead: AuditHeadCache) {
        self.db = db
        self.auditHead = auditHead
        self.auditLock = nil
    }

    /// One transaction on a database with several writers: the head is cached only
    /// after the lock is held, and the cache lives as long as the transaction.
    init(_ db: any SQLDatabase, auditLock: Int64) {
        self.db = db
        self.auditHead = AuditHeadCache()
        self.auditLock = auditLock
    }

    // MARK: Issuers

    public func insertIssuer(_ issuer: IssuerRecord) async throws {
        try await mapDuplicate("issuer '\(issuer.name)' already exists") {
            try await db.raw("""
                INSERT INTO issuers (name, parent_name, certificate_pem, key_blob, key_type, subject, not_before, not_after, is_root, created_at, crl_number, status)
                VALUES (\(bind: issuer.name), \(bind: issuer.parentName), \(bind: issuer.certificatePEM), \(bind: issuer.keyBlob),
                        \(bind: issuer.keyType), \(bind: issuer.subject), \(bind: seconds(issuer.notBefore)), \(bind: seconds(issuer.notAfter)),
                        \(bind: issuer.isRoot ? 1 : 0), \(bind: seconds(issuer.createdAt)), \(bind: issuer.crlNumber), \(bind: issuer.status.rawValue))
                """).run()
        }
    }

    public func issuers() async throws -> [IssuerRecord] {
        try await db.raw("SELECT * FROM issuers ORDER BY created_at, name").all().map(decodeIssuer)
    }

    public func issuer(named name: String) async throws -> IssuerRecord? {
        try await db.raw("SELECT * FROM issuers WHERE name = \(bind: name)").first().map(decodeIssuer)
    }

    public func updateIssuer(_ issuer: IssuerRecord) async throws {
        try await db.raw("""
            UPDATE issuers SET parent_name = \(bind: issuer.parentName), certificate_pem = \(bind: issuer.certificatePEM),
                key_blob = \(bind: issuer.keyBlob), key_type = \(bind: issuer.keyType), subject = \(bind: issuer.subject),
                not_before = \(bind: seconds(issuer.notBefore)), not_after = \(bind: seconds(issuer.notAfter)),
                is_root = \(bind: issuer.isRoot ? 1 : 0), status = \(bind: issuer.status.rawValue) WHERE name = \(bind: issuer.name)
            """).run()
    }

    public func nextCRLNumber(issuer: String) async throws -> Int64 {
        // One statement: the row lock makes the number unique across concurrent writers and nodes.
        guard let row = try await db.raw("UPDATE issuers SET crl_number = crl_number + 1 WHERE name = \(bind: issuer) RETURNING crl_number").first() else {
            throw StoreError(.notFound, "no issuer named '\(issuer)'")
        }
        return try row.decode(column: "crl_number", as: Int64.self)
    }

    private func decodeIssuer(_ row: any SQLRow) throws -> IssuerRecord {
        IssuerRecord(
            name: try row.decode(column: "name", as: String.self),
            parentName: try row.decode(column: "parent_name", as: String?.self),
            certificatePEM: try row.decode(column: "certificate_pem", as: String.self),
            keyBlob: try row.decode(column: "key_blob", as: String.self),
            keyType: try row.decode(column: "key_type", as: String.self),
            subject: try row.decode(column: "subject", as: String.self),
            notBefore: date(try row.decode(column: "not_before", as: Int64.self)),
            notAfter: date(try row.decode(column: "not_after", as: Int64.self)),
            isRoot: try row.decode(column: "is_root", as: Int.self) != 0,
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            crlNumber: try row.decode(column: "crl_number", as: Int64.self),
            status: IssuerStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .active)
    }

    // MARK: Certificates

    public func insertCertificate(_ c: CertificateRecord) async throws {
        let c = c.withKeyFacts()
        try await mapDuplicate("certificate \(c.serial) from \(c.issuer) (fingerprint \(c.fingerprint)) is already recorded") {
            try await db.raw("""
                INSERT INTO certificates (fingerprint, serial, issuer, subject, common_name, sans, not_before, not_after, key_type,
                    key_algorithm, key_size, signature_algorithm, status, source, profile, owner, tags, pem, request_id, revoked_at,
                    revocation_reason, created_at, crl_shard, public_key_sha256, is_ca)
                VALUES (\(bind: c.fingerprint), \(bind: c.serial), \(bind: c.issuer), \(bind: c.subject), \(bind: c.commonName),
                    \(bind: json(c.sans)), \(bind: seconds(c.notBefore)), \(bind: seconds(c.notAfter)), \(bind: c.keyType),
                    \(bind: c.keyAlgorithm), \(bind: c.keySize), \(bind: c.signatureAlgorithm), \(bind: c.storedStatus.rawValue),
                    \(bind: c.source.rawValue), \(bind: c.profile), \(bind: c.owner), \(bind: json(c.tags)), \(bind: c.pem),
                    \(bind: c.requestID), \(bind: c.revokedAt.map(seconds)), \(bind: c.revocationReason), \(bind: seconds(c.createdAt)),
                    \(bind: c.crlShard), \(bind: c.publicKeySHA256), \(bind: c.isCA.map { $0 ? 1 : 0 }))
                """).run()
        }
        try await indexNames(of: c)
    }

    /// The names a certificate is found by: its SAN values and CN, lowercased.
    static func searchNames(_ c: CertificateRecord) -> Set<String> {
        var names = Set(c.sans.map { san in
            san.split(separator: ":", maxSplits: 1).count == 2 ? String(san.split(separator: ":", maxSplits: 1)[1]).lowercased() : san.lowercased()
        })
        if let cn = c.commonName { names.insert(cn.lowercased()) }
        return names
    }

    func indexNames(of c: CertificateRecord) async throws {
        for name in Self.searchNames(c) {
            try await db.raw("""
                INSERT INTO certificate_names (name, rname, fingerprint) VALUES (\(bind: name), \(bind: String(name.reversed())), \(bind: c.fingerprint))
                """).run()
        }
    }

    /// Fills `certificate_names` for certificates recorded before it existed.
    func indexAllCertificateNames() async throws {
        var after = ""
        while true {
            let page = try await db.raw("SELECT * FROM certificates WHERE fingerprint > \(bind: after) ORDER BY fingerprint LIMIT 1000").all().map(decodeCertificate)
            for record in page { try await indexNames(of: record) }
            guard let last = page.last, page.count == 1000 else { return }
            after = last.fingerprint
        }
    }

    public func certificates(serial: String) async throws -> [CertificateRecord] {
        try await db.raw("SELECT * FROM certificates WHERE serial = \(bind: serial.lowercased())").all().map(decodeCertificate)
    }

    public func certificate(fingerprint: String) async throws -> CertificateRecord? {
        try await db.raw("SELECT * FROM certificates WHERE fingerprint = \(bind: fingerprint.lowercased())").first().map(decodeCertificate)
    }

    public func countCertificates() async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM certificates").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// `column` starts with `prefix`: a range over the binary-ordered index on SQLite; LIKE elsewhere,
    /// which stays correct under any collation (a range would not under a linguistic one).
    func appendPrefixMatch(_ column: String, _ prefix: String, to sql: inout SQLQueryString) {
        if db.dialect.name == "sqlite" {
            sql.appendInterpolation(unsafeRaw: "\(column) >= ")
            sql.appendInterpolation(bind: prefix)
            sql.appendInterpolation(unsafeRaw: " AND \(column) < ")
            sql.appendInterpolation(bind: prefix + "\u{FFFF}")
        } else {
            let escaped = prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            sql.appendInterpolation(unsafeRaw: "\(column) LIKE ")
            sql.appendInterpolation(bind: escaped + "%")
            sql.appendLiteral(" ESCAPE '\\'")
        }
    }

    /// Whether a name search matches so many names that walking the inventory in order beats collecting them.
    func planned(_ query: CertificateQuery) async throws -> CertificateQuery {
        guard let search = query.search?.lowercased(), !search.isEmpty else { return query }
        let (column, low) = search.hasPrefix("*") ? ("rname", String(search.dropFirst().reversed())) : ("name", search)
        var sql = SQLQueryString("SELECT COUNT(*) AS n FROM (SELECT 1 FROM certificate_names WHERE ")
        appendPrefixMatch(column, low, to: &sql)
        sql.appendLiteral(" LIMIT 2001) AS matches")
        var planned = query
        planned.broadSearch = try await db.raw(sql).first()?.decode(column: "n", as: Int64.self) ?? 0 > 2000
        return planned
    }

    public func certificates(_ query: CertificateQuery) async throws -> [CertificateRecord] {
        let query = try await planned(query)
        var sql = SQLQueryString("SELECT * FROM certificates WHERE 1 = 1")
        appendConditions(query, to: &sql)
        if query.sort == .notAfter, query.cursor == nil, let after = query.after {
            sql.appendLiteral(" AND (not_after > ")
            sql.appendInterpolation(bind: seconds(after.notAfter))
            sql.appendLiteral(" OR (not_after = ")
            sql.appendInterpolation(bind: seconds(after.notAfter))
            sql.appendLiteral(" AND fingerprint > ")
            sql.appendInterpolation(bind: after.fingerprint)
            sql.appendLiteral("))")
        }
        let backward = query.cursor?.backward ?? false
        // Ties break on the fingerprint in the sort's own direction, so one index serves the whole
        // order, forwards or (for the previous page) backwards.
        let descendingScan = query.sort.descending != backward
        if let cursor = query.cursor {
            // Keyset pagination: (column, fingerprint) strictly after (or before) the cursor row.
            let column = query.sort.column
            let comparison = descendingScan ? "<" : ">"
            func bindValue() {
                if query.sort.numeric { sql.appendInterpolation(bind: Int64(cursor.value) ?? 0) } else { sql.appendInterpolation(bind: cursor.value) }
            }
            sql.appendInterpolation(unsafeRaw: " AND (\(column) \(comparison) ")
            bindValue()
            sql.appendInterpolation(unsafeRaw: " OR (\(column) = ")
            bindValue()
            sql.appendInterpolation(unsafeRaw: " AND fingerprint \(comparison) ")
            sql.appendInterpolation(bind: cursor.fingerprint)
            sql.appendLiteral("))")
        }
        let direction = descendingScan ? " DESC" : ""
        sql.appendInterpolation(unsafeRaw: " ORDER BY \(query.sort.column)\(direction), fingerprint\(direction) LIMIT ")
        sql.appendInterpolation(bind: query.limit)
        if query.offset > 0 {
            sql.appendLiteral(" OFFSET ")
            sql.appendInterpolation(bind: query.offset)
        }
        let rows = try await db.raw(sql).all().map(decodeCertificate)
        return backward ? rows.reversed() : rows
    }

    public func countCertificates(_ query: CertificateQuery) async throws -> Int {
        let query = try await planned(query)
        var sql = SQLQueryString("SELECT COUNT(*) AS n FROM certificates WHERE 1 = 1")
        appendConditions(query, to: &sql)
        return Int(try await db.raw(sql).first()?.decode(column: "n", as: Int64.self) ?? 0)
    }

    public func countCertificates(_ query: CertificateQuery, upTo cap: Int) async throws -> Int {
        let query = try await planned(query)
        // Counting stops at the cap, so a broad filter over a large inventory costs at most `cap` rows.
        var sql = SQLQueryString("SELECT COUNT(*) AS n FROM (SELECT 1 FROM certificates WHERE 1 = 1")
        appendConditions(query, to: &sql)
        sql.appendLiteral(" LIMIT ")
        sql.appendInterpolation(bind: cap)
        sql.appendLiteral(") AS capped")
        return Int(try await db.raw(sql).first()?.decode(column: "n", as: Int64.self) ?? 0)
    }

    /// The filters of a query as SQL conditions with binds (pagination and order excluded).
    private func appendConditions(_ query: CertificateQuery, to sql: inout SQLQueryString) {
        let now = seconds(query.now)
        switch query.status {
        case .revoked?: sql.appendInterpolation(unsafeRaw: " AND status = 'revoked'")
        case .active?: sql.appendLiteral(" AND status = 'active' AND not_after > "); sql.appendInterpolation(bind: now)
        case .expired?: sql.appendLiteral(" AND status = 'active' AND not_after <= "); sql.appendInterpolation(bind: now)
        case nil: break
        }
        if let pattern = query.namePattern {
            let like = pattern.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_").replacingOccurrences(of: "*", with: "%")
            sql.appendLiteral(" AND (common_name LIKE ")
            sql.appendInterpolation(bind: like)
            sql.appendLiteral(" ESCAPE '\\' OR sans LIKE ")
            sql.appendInterpolation(bind: "%:" + like + "\"%")
            sql.appendLiteral(" ESCAPE '\\' OR serial = ")
            sql.appendInterpolation(bind: pattern.lowercased())
            sql.appendLiteral(" OR fingerprint = ")
            sql.appendInterpolation(bind: pattern.lowercased())
            sql.appendLiteral(")")
        }
        if let search = query.search?.lowercased(), !search.isEmpty {
            let hex = search.filter { $0 != ":" }
            // *.example.com: every name ending so, through the reversed-name index; otherwise a name prefix.
            let (column, low) = search.hasPrefix("*") ? ("rname", String(search.dropFirst().reversed())) : ("name", search)
            if query.broadSearch {
                // Most certificates match: walk the inventory in its sort order and probe each row's names.
                sql.appendLiteral(" AND (EXISTS (SELECT 1 FROM certificate_names n WHERE n.fingerprint = certificates.fingerprint AND ")
                appendPrefixMatch("n.\(column)", low, to: &sql)
                sql.appendLiteral(")")
            } else {
                // Few match: collect them from the name index first.
                sql.appendLiteral(" AND (fingerprint IN (SELECT fingerprint FROM certificate_names WHERE ")
                appendPrefixMatch(column, low, to: &sql)
                sql.appendLiteral(")")
            }
            sql.appendLiteral(" OR serial = ")
            sql.appendInterpolation(bind: hex)
            sql.appendLiteral(" OR fingerprint = ")
            sql.appendInterpolation(bind: hex)
            sql.appendLiteral(")")
        }
        if let owner = query.owner { sql.appendLiteral(" AND owner = "); sql.appendInterpolation(bind: owner) }
        // SQLite picks an equality index over the sort's index and then sorts every match; for the
        // few-valued columns (issuer, source, key algorithm) a unary + keeps the sort's index in use (SQLite only).
        let hint = db.dialect.name == "sqlite" ? "+" : ""
        if let issuer = query.issuer { sql.appendInterpolation(unsafeRaw: " AND \(hint)issuer = "); sql.appendInterpolation(bind: issuer) }
        if let profile = query.profile { sql.appendLiteral(" AND profile = "); sql.appendInterpolation(bind: profile) }
        if let source = query.source { sql.appendInterpolation(unsafeRaw: " AND \(hint)source = "); sql.appendInterpolation(bind: source.rawValue) }
        if let algorithm = query.keyAlgorithm { sql.appendInterpolation(unsafeRaw: " AND \(hint)key_algorithm = "); sql.appendInterpolation(bind: algorithm) }
        if let tag = query.tag {
            let escaped = tag.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            sql.appendLiteral(" AND tags LIKE ")
            sql.appendInterpolation(bind: "%\"" + escaped + "\"%")
            sql.appendLiteral(" ESCAPE '\\'")
        }
        if let before = query.expiringBefore {
            sql.appendLiteral(" AND status = 'active' AND not_after > ")
            sql.appendInterpolation(bind: now)
            sql.appendLiteral(" AND not_after <= ")
            sql.appendInterpolation(bind: seconds(before))
        }
    }

    public func updateCertificateRevocation(fingerprint: String, status: StoredCertificateStatus, revokedAt: Date?, reason: Int?, invalidityDate: Date?) async throws {
        try await db.raw("""
            UPDATE certificates SET status = \(bind: status.rawValue), revoked_at = \(bind: revokedAt.map(seconds)),
                revocation_reason = \(bind: reason), invalidity_date = \(bind: invalidityDate.map(seconds)) WHERE fingerprint = \(bind: fingerprint)
            """).run()
    }

    public func updateCertificateOwnership(fingerprint: String, owner: String?, tags: [String]) async throws {
        try await db.raw("UPDATE certificates SET owner = \(bind: owner), tags = \(bind: json(tags)) WHERE fingerprint = \(bind: fingerprint)").run()
    }

    func decodeCertificate(_ row: any SQLRow) throws -> CertificateRecord {
        CertificateRecord(
            serial: try row.decode(column: "serial", as: String.self),
            issuer: try row.decode(column: "issuer", as: String.self),
            subject: try row.decode(column: "subject", as: String.self),
            commonName: try row.decode(column: "common_name", as: String?.self),
            sans: try strings(try row.decode(column: "sans", as: String.self)),
            notBefore: date(try row.decode(column: "not_before", as: Int64.self)),
            notAfter: date(try row.decode(column: "not_after", as: Int64.self)),
            keyType: try row.decode(column: "key_type", as: String.self),
            keyAlgorithm: try row.decode(column: "key_algorithm", as: String.self),
            keySize: try row.decode(column: "key_size", as: Int.self),
            signatureAlgorithm: try row.decode(column: "signature_algorithm", as: String.self),
            fingerprint: try row.decode(column: "fingerprint", as: String.self),
            storedStatus: StoredCertificateStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .active,
            source: CertificateSource(rawValue: try row.decode(column: "source", as: String.self)) ?? .imported,
            profile: try row.decode(column: "profile", as: String?.self),
            owner: try row.decode(column: "owner", as: String?.self),
            tags: try strings(try row.decode(column: "tags", as: String.self)),
            pem: try row.decode(column: "pem", as: String.self),
            requestID: try row.decode(column: "request_id", as: String?.self),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(date),
            revocationReason: try row.decode(column: "revocation_reason", as: Int?.self),
            invalidityDate: try row.decode(column: "invalidity_date", as: Int64?.self).map(date),
            crlShard: try row.decode(column: "crl_shard", as: Int?.self),
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            publicKeySHA256: try row.decode(column: "public_key_sha256", as: String?.self),
            isCA: try row.decode(column: "is_ca", as: Int?.self).map { $0 != 0 })
    }

    public func revokedEntries(issuer: String, shard: Int?, afterFingerprint: String?, limit: Int) async throws -> [RevokedEntry] {
        let rows: [any SQLRow]
        if let shard {
            rows = try await db.raw("""
                SELECT fingerprint, serial, revoked_at, revocation_reason, invalidity_date FROM certificates
                WHERE issuer = \(bind: issuer) AND status = 'revoked' AND crl_shard = \(bind: shard) AND fingerprint > \(bind: afterFingerprint ?? "")
                ORDER BY fingerprint LIMIT \(bind: limit)
                """).all()
        } else {
            rows = try await db.raw("""
                SELECT fingerprint, serial, revoked_at, revocation_reason, invalidity_date FROM certificates
                WHERE issuer = \(bind: issuer) AND status = 'revoked' AND fingerprint > \(bind: afterFingerprint ?? "")
                ORDER BY fingerprint LIMIT \(bind: limit)
                """).all()
        }
        return try rows.map { row in
            RevokedEntry(
                fingerprint: try row.decode(column: "fingerprint", as: String.self),
                serial: try row.decode(column: "serial", as: String.self),
                revokedAt: date(try row.decode(column: "revoked_at", as: Int64?.self) ?? 0),
                reason: try row.decode(column: "revocation_reason", as: Int?.self),
                invalidityDate: try row.decode(column: "invalidity_date", as: Int64?.self).map(date))
        }
    }

    public func saveCRL(_ crl: CRLRecord) async throws {
        let current = try await latestCRLNumber(issuer: crl.issuer)
        if let current, current >= crl.number { return }
        let encoded = Data(crl.der).base64EncodedString()
        if current == nil {
            // Another node may insert the first CRL meanwhile: the newer number wins.
            try await db.raw("""
                INSERT INTO crls (issuer, number, this_update, next_update, entries, der) VALUES (\(bind: crl.issuer), \(bind: crl.number),
                    \(bind: seconds(crl.thisUpdate)), \(bind: seconds(crl.nextUpdate)), \(bind: crl.entries), \(bind: encoded))
                ON CONFLICT (issuer) DO UPDATE SET number = excluded.number, this_update = excluded.this_update,
                    next_update = excluded.next_update, entries = excluded.entries, der = excluded.der WHERE crls.number < excluded.number
                """).run()
        } else {
            try await db.raw("""
                UPDATE crls SET number = \(bind: crl.number), this_update = \(bind: seconds(crl.thisUpdate)), next_update = \(bind: seconds(crl.nextUpdate)),
                    entries = \(bind: crl.entries), der = \(bind: encoded) WHERE issuer = \(bind: crl.issuer) AND number < \(bind: crl.number)
                """).run()
        }
    }

    public func latestCRLNumber(issuer: String) async throws -> Int64? {
        try await db.raw("SELECT number FROM crls WHERE issuer = \(bind: issuer)").first()?.decode(column: "number", as: Int64.self)
    }

    public func crlStatus(issuer: String) async throws -> (number: Int64, thisUpdate: Date, nextUpdate: Date)? {
        guard let row = try await db.raw("SELECT number, this_update, next_update FROM crls WHERE issuer = \(bind: issuer)").first() else { return nil }
        return (try row.decode(column: "number", as: Int64.self), date(try row.decode(column: "this_update", as: Int64.self)),
                date(try row.decode(column: "next_update", as: Int64.self)))
    }

    public func invalidateCRL(issuer: String) async throws {
        try await db.raw("UPDATE crls SET next_update = this_update WHERE issuer = \(bind: issuer) OR issuer LIKE \(bind: issuer + "/%")").run()
    }

    public func latestCRL(issuer: String) async throws -> CRLRecord? {
        guard let row = try await db.raw("SELECT * FROM crls WHERE issuer = \(bind: issuer)").first() else { return nil }
        return CRLRecord(
            issuer: issuer, number: try row.decode(column: "number", as: Int64.self),
            thisUpdate: date(try row.decode(column: "this_update", as: Int64.self)), nextUpdate: date(try row.decode(column: "next_update", as: Int64.self)),
            entries: try row.decode(column: "entries", as: Int.self),
            der: Array(Data(base64Encoded: try row.decode(column: "der", as: String.self)) ?? Data()))
    }

    // MARK: Requests

    public func insertRequest(_ r: RequestRecord) async throws {
        try await mapDuplicate("request \(r.id) already exists") {
            try await db.raw("""
                INSERT INTO requests (id, csr_pem, profile, issuer, days, requester, subject, names, status, reasons, created_at,
                    decided_at, decided_by, certificate_serial)
                VALUES (\(bind: r.id), \(bind: r.csrPEM), \(bind: r.profile), \(bind: r.issuer), \(bind: r.days), \(bind: r.requester),
                    \(bind: r.subject), \(bind: json(r.names)), \(bind: r.status.rawValue), \(bind: json(r.reasons)),
                    \(bind: seconds(r.createdAt)), \(bind: r.decidedAt.map(seconds)), \(bind: r.decidedBy), \(bind: r.certificateSerial))
                """).run()
        }
    }

    public func request(id: String) async throws -> RequestRecord? {
        try await db.raw("SELECT * FROM requests WHERE id = \(bind: id)").first().map(decodeRequest)
    }

    public func requests(status: RequestStatus?) async throws -> [RequestRecord] {
        if let status {
            return try await db.raw("SELECT * FROM requests WHERE status = \(bind: status.rawValue) ORDER BY created_at, id").all().map(decodeRequest)
        }
        return try await db.raw("SELECT * FROM requests ORDER BY created_at, id").all().map(decodeRequest)
    }

    public func updateRequest(_ r: RequestRecord) async throws {
        try await db.raw("""
            UPDATE requests SET status = \(bind: r.status.rawValue), reasons = \(bind: json(r.reasons)),
                decided_at = \(bind: r.decidedAt.map(seconds)), decided_by = \(bind: r.decidedBy),
                certificate_serial = \(bind: r.certificateSerial) WHERE id = \(bind: r.id)
            """).run()
    }

    private func decodeRequest(_ row: any SQLRow) throws -> RequestRecord {
        RequestRecord(
            id: try row.decode(column: "id", as: String.self),
            csrPEM: try row.decode(column: "csr_pem", as: String.self),
            profile: try row.decode(column: "profile", as: String.self),
            issuer: try row.decode(column: "issuer", as: String?.self),
            days: try row.decode(column: "days", as: Int?.self),
            requester: try row.decode(column: "requester", as: String.self),
            subject: try row.decode(column: "subject", as: String.self),
            names: try strings(try row.decode(column: "names", as: String.self)),
            status: RequestStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .pending,
            reasons: try strings(try row.decode(column: "reasons", as: String.self)),
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            decidedAt: try row.decode(column: "decided_at", as: Int64?.self).map(date),
            decidedBy: try row.decode(column: "decided_by", as: String?.self),
            certificateSerial: try row.decode(column: "certificate_serial", as: String?.self))
    }

    // MARK: Tokens

    public func insertToken(_ t: TokenRecord) async throws {
        try await mapDuplicate("a token named '\(t.name)' already exists") {
            try await db.raw("""
                INSERT INTO tokens (id, name, role, secret_hash, allowed_names, created_at, created_by, expires_at, revoked_at, last_used_at)
                VALUES (\(bind: t.id), \(bind: t.name), \(bind: t.role), \(bind: t.secretHash), \(bind: json(t.allowedNames)),
                    \(bind: seconds(t.createdAt)), \(bind: t.createdBy), \(bind: t.expiresAt.map(seconds)), \(bind: t.revokedAt.map(seconds)),
                    \(bind: t.lastUsedAt.map(seconds)))
                """).run()
        }
    }

    public func token(id: String) async throws -> TokenRecord? {
        try await db.raw("SELECT * FROM tokens WHERE id = \(bind: id)").first().map(decodeToken)
    }

    public func tokens() async throws -> [TokenRecord] {
        try await db.raw("SELECT * FROM tokens ORDER BY created_at, name").all().map(decodeToken)
    }

    public func updateToken(_ t: TokenRecord) async throws {
        try await db.raw("""
            UPDATE tokens SET role = \(bind: t.role), allowed_names = \(bind: json(t.allowedNames)), expires_at = \(bind: t.expiresAt.map(seconds)),
                revoked_at = \(bind: t.revokedAt.map(seconds)), last_used_at = \(bind: t.lastUsedAt.map(seconds)) WHERE id = \(bind: t.id)
            """).run()
    }

    private func decodeToken(_ row: any SQLRow) throws -> TokenRecord {
        TokenRecord(
            id: try row.decode(column: "id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            role: try row.decode(column: "role", as: String.self),
            secretHash: try row.decode(column: "secret_hash", as: String.self),
            allowedNames: try strings(try row.decode(column: "allowed_names", as: String.self)),
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            createdBy: try row.decode(column: "created_by", as: String.self),
            expiresAt: try row.decode(column: "expires_at", as: Int64?.self).map(date),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(date),
            lastUsedAt: try row.decode(column: "last_used_at", as: Int64?.self).map(date))
    }

    // MARK: Audit

    @discardableResult
    public func appendAudit(_ draft: AuditDraft) async throws -> AuditEntry {
        let previous: (seq: Int64, hash: String)
        if let cached = auditHead?.value {
            previous = cached
        } else {
            if let auditLock { try await db.raw("SELECT pg_advisory_xact_lock(\(bind: auditLock))").run() }
            let last = try await db.raw("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").first()
            previous = (try last?.decode(column: "seq", as: Int64.self) ?? 0, try last?.decode(column: "hash", as: String.self) ?? AuditChain.genesis)
        }
        let seq = previous.seq + 1
        let prevHash = previous.hash
        let timeMs = Int64((draft.time.timeIntervalSince1970 * 1000).rounded())
        let time = Date(timeIntervalSince1970: Double(timeMs) / 1000)
        let details = AuditChain.canonicalDetails(draft.details)
        let hash = AuditChain.hash(seq: seq, time: time, actor: draft.actor, action: draft.action, object: draft.object, details: details, prevHash: prevHash)
        try await db.raw("""
            INSERT INTO audit (seq, time_ms, actor, action, object, details, prev_hash, hash)
            VALUES (\(bind: seq), \(bind: timeMs), \(bind: draft.actor), \(bind: draft.action), \(bind: draft.object), \(bind: details),
                \(bind: prevHash), \(bind: hash))
            """).run()
        auditHead?.value = (seq, hash)
        return AuditEntry(seq: seq, time: time, actor: draft.actor, action: draft.action, object: draft.object, details: details, prevHash: prevHash, hash: hash)
    }

    public func auditEntries(afterSeq: Int64, limit: Int) async throws -> [AuditEntry] {
        try await db.raw("SELECT * FROM audit WHERE seq > \(bind: afterSeq) ORDER BY seq LIMIT \(bind: limit)").all().map(decodeAudit)
    }

    func decodeAudit(_ row: any SQLRow) throws -> AuditEntry {
        AuditEntry(
            seq: try row.decode(column: "seq", as: Int64.self),
            time: Date(timeIntervalSince1970: Double(try row.decode(column: "time_ms", as: Int64.self)) / 1000),
            actor: try row.decode(column: "actor", as: String.self),
            action: try row.decode(column: "action", as: String.self),
            object: try row.decode(column: "object", as: String.self),
            details: try row.decode(column: "details", as: String.self),
            prevHash: try row.decode(column: "prev_hash", as: String.self),
            hash: try row.decode(column: "hash", as: String.self))
    }

    // MARK: Helpers

    func mapDuplicate(_ message: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            // PostgresNIO keeps server details out of `description`; SQLSTATE 23505 is in the reflection.
            let text = String(describing: error) + String(reflecting: error)
            if text.contains("UNIQUE constraint") || text.contains("duplicate key") || text.contains("23505") || text.contains("constraint failed") {
                throw StoreError(.duplicate, message)
            }
            throw error
        }
    }
}

func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }
func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: Double(seconds)) }

func json(_ strings: [String]) -> String {
    String(decoding: (try? JSONEncoder().encode(strings)) ?? Data("[]".utf8), as: UTF8.self)
}

func strings(_ text: String) throws -> [String] {
    try JSONDecoder().decode([String].self, from: Data(text.utf8))
}

extension SQLSession {
    /// Runs SQL as given, for tests that must break the database on purpose.
    public func execute(unsafeSQL sql: String) async throws {
        try await db.raw(SQLQueryString(sql)).run()
    }
}

/// The audit chain head within one write transaction.
/// @unchecked Sendable: used only by the write queue's single drain task.
final class AuditHeadCache: @unchecked Sendable {
    var value: (seq: Int64, hash: String)?
}
