import Foundation

/// Errors a store reports. `message` is safe to show; it names what, not how.
public struct StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// A uniqueness rule held: the same serial for the same issuer, a fingerprint, a name.
        case duplicate
        case notFound
        /// The database cannot be reached or opened.
        case unavailable
        /// The database holds a schema newer than this program knows.
        case schemaTooNew
        case failed
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// Sigil's storage: certificates, requests, issuers and the audit chain.
///
/// Every backend runs the same SQL (`SQLSession`); a backend supplies the
/// connections and the transaction discipline. A `write` body runs inside one
/// transaction together with the audit entries it appends: both commit or
/// neither does, and `write` returns only after the commit is durable.
public protocol Store: Sendable {
    /// Applies forward-only migrations; safe to call on every start.
    func migrate() async throws
    /// Runs `body` on a consistent view of committed data.
    func read<T: Sendable>(_ body: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T
    /// Runs `body` in a transaction. Throws without effect when `body` throws.
    func write<T: Sendable>(_ body: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T
    func close() async throws
    /// The lock that elects the one node doing scheduled work (see `SchedulerLock`).
    func schedulerLock(named name: String) -> any SchedulerLock
}

/// The operations on stored data, the same on every backend.
public protocol StoreSession: Sendable {
    func insertIssuer(_ issuer: IssuerRecord) async throws
    func issuers() async throws -> [IssuerRecord]
    func issuer(named name: String) async throws -> IssuerRecord?
    func updateIssuer(_ issuer: IssuerRecord) async throws
    /// Increments and returns the issuer's CRL number.
    func nextCRLNumber(issuer: String) async throws -> Int64

    /// Throws `.duplicate` when the issuer already has this serial or the fingerprint exists.
    func insertCertificate(_ certificate: CertificateRecord) async throws
    func certificates(serial: String) async throws -> [CertificateRecord]
    func certificate(fingerprint: String) async throws -> CertificateRecord?
    func certificates(_ query: CertificateQuery) async throws -> [CertificateRecord]
    func countCertificates() async throws -> Int
    func updateCertificateRevocation(fingerprint: String, status: StoredCertificateStatus, revokedAt: Date?, reason: Int?, invalidityDate: Date?) async throws
    func updateCertificateOwnership(fingerprint: String, owner: String?, tags: [String]) async throws

    /// Revoked certificates of one issuer in fingerprint order, a page at a time.
    /// With `shard`, only the certificates assigned to that CRL shard.
    func revokedEntries(issuer: String, shard: Int?, afterFingerprint: String?, limit: Int) async throws -> [RevokedEntry]
    /// Keeps the newest CRL per issuer; an older number never replaces a newer one.
    func saveCRL(_ crl: CRLRecord) async throws
    func latestCRLNumber(issuer: String) async throws -> Int64?
    /// Number and validity of the stored CRL, without its bytes.
    func crlStatus(issuer: String) async throws -> (number: Int64, thisUpdate: Date, nextUpdate: Date)?
    /// Marks the issuer's stored CRLs (all shards) as out of date (a revocation happened since).
    func invalidateCRL(issuer: String) async throws
    func latestCRL(issuer: String) async throws -> CRLRecord?

    func insertRequest(_ request: RequestRecord) async throws
    func request(id: String) async throws -> RequestRecord?
    func requests(status: RequestStatus?) async throws -> [RequestRecord]
    func updateRequest(_ request: RequestRecord) async throws

    /// Throws `.duplicate` when the name or id is taken.
    func insertToken(_ token: TokenRecord) async throws
    func token(id: String) async throws -> TokenRecord?
    func tokens() async throws -> [TokenRecord]
    func updateToken(_ token: TokenRecord) async throws

    /// Appends to the hash chain and returns the entry as stored.
    @discardableResult
    func appendAudit(_ draft: AuditDraft) async throws -> AuditEntry
    func auditEntries(afterSeq: Int64, limit: Int) async throws -> [AuditEntry]

    // ACME (RFC 8555) state: any node can answer any request.
    /// Throws `.duplicate` when the provisioner already has an account for this key.
    func insertACMEAccount(_ account: ACMEAccountRecord) async throws
    func acmeAccount(id: String) async throws -> ACMEAccountRecord?
    func acmeAccount(provisioner: String, thumbprint: String) async throws -> ACMEAccountRecord?
    /// Throws `.duplicate` when a key change collides with another account's key.
    func updateACMEAccount(_ account: ACMEAccountRecord) async throws
    func insertACMEOrder(_ order: ACMEOrderRecord) async throws
    func acmeOrder(id: String) async throws -> ACMEOrderRecord?
    func updateACMEOrder(_ order: ACMEOrderRecord) async throws
    /// The account's order ids, newest first.
    func acmeOrderIDs(account: String, limit: Int) async throws -> [String]
    func countACMEOrders(account: String, since: Date) async throws -> Int
    func countACMEOrders(name: String, since: Date) async throws -> Int
    func acmeOrders(replacing certificateID: String) async throws -> [ACMEOrderRecord]
    func insertACMEAuthorization(_ authorization: ACMEAuthorizationRecord) async throws
    func acmeAuthorization(id: String) async throws -> ACMEAuthorizationRecord?
    func updateACMEAuthorization(_ authorization: ACMEAuthorizationRecord) async throws
    /// A valid authorization of the account for the identifier that is still valid at `now`.
    func validACMEAuthorization(account: String, lookup: String, now: Date) async throws -> ACMEAuthorizationRecord?
    /// Throws `.duplicate` when the name is taken.
    func insertEABKey(_ key: ACMEEABKeyRecord) async throws
    func eabKey(id: String) async throws -> ACMEEABKeyRecord?
    func eabKeys() async throws -> [ACMEEABKeyRecord]
    func updateEABKey(_ key: ACMEEABKeyRecord) async throws
    /// Records a nonce as used; throws `.duplicate` when it was used before.
    func consumeACMENonce(_ nonce: String, expires: Date) async throws
    @discardableResult
    func pruneACMENonces(before: Date) async throws -> Int
    // The dashboard.
    func insertDashboardSession(_ session: DashboardSessionRecord) async throws
    func dashboardSession(id: String) async throws -> DashboardSessionRecord?
    func revokeDashboardSession(id: String, at: Date) async throws
    func countCertificates(_ query: CertificateQuery) async throws -> Int
    /// The count, but at most `upTo`.
    func countCertificates(_ query: CertificateQuery, upTo: Int) async throws -> Int
    func certificateStatistics(now: Date) async throws -> CertificateStatistics
    /// Audit entries newest first.
    func auditEntries(_ filter: AuditFilter) async throws -> [AuditEntry]

    func setting(_ name: String) async throws -> String?
    /// Throws `.duplicate` when the setting exists (the first writer wins).
    func insertSetting(_ name: String, value: String) async throws

    // Discovery: where certificates were seen.
    /// Inserts the sighting, or moves `lastSeen` (and the TLS details) of the one already there.
    func recordSighting(_ sighting: CertificateSighting) async throws
    /// The certificate's sightings, most recently seen first.
    func sightings(fingerprint: String) async throws -> [CertificateSighting]
    /// Sightings seen at or after `since`, most recently seen first, at most `limit`.
    func sightings(seenSince since: Date, limit: Int) async throws -> [CertificateSighting]

    // Compliance: the one engine behind `sigil report compliance`, the dashboard and the REST API.
    /// Every check of `ComplianceCheck` over the inventory at `now`, with the crypto-agility
    /// counts. `examples`: at most this many findings per check (counts stay exact); nil: all.
    func complianceReport(_ policy: CompliancePolicy, now: Date, examples: Int?) async throws -> ComplianceReport

    // notifications (issue 7 item 2)
    /// The last audit sequence number turned into events; nil before the first start.
    func notificationCursor(_ name: String) async throws -> Int64?
    /// Moves the cursor from `from` (nil: not set yet) to `to`; false when another node moved it first.
    func advanceNotificationCursor(_ name: String, from: Int64?, to: Int64) async throws -> Bool
    /// Active certificates with `now < not_after <= horizon` in (not_after, fingerprint) order, each with
    /// the smallest threshold already noticed and whether a later certificate for the same names replaced it.
    func expiryCandidates(now: Date, horizon: Date, after: (notAfter: Date, fingerprint: String)?, limit: Int) async throws -> [ExpiryCandidate]
    /// Records the notice of one threshold; false when it was recorded before (by any node).
    func markExpiryNotice(fingerprint: String, thresholdDays: Int, at: Date) async throws -> Bool
    /// Adds a delivery; false (and nothing added) when the event already has one for the channel.
    func enqueueNotification(_ delivery: NotificationDelivery) async throws -> Bool
    /// Pending deliveries (of one channel, or of all) whose next attempt is due, oldest first.
    func dueNotifications(now: Date, channel: String?, limit: Int) async throws -> [NotificationDelivery]
    /// Takes a due delivery until `until`; false when another node took it first.
    func claimNotification(id: String, now: Date, until: Date) async throws -> Bool
    func updateNotification(_ delivery: NotificationDelivery) async throws
    /// The delivery log, newest first.
    func notificationDeliveries(_ filter: NotificationDeliveryFilter) async throws -> [NotificationDelivery]
}
