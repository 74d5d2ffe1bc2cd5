/// The schema, as forward-only migrations. A released migration is never edited:
/// changes are new entries. Types are the common subset of SQLite and PostgreSQL
/// (TEXT, BIGINT, INTEGER); times are Unix seconds, audit times milliseconds.
enum Migrations {
    static let all: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE issuers (
                name TEXT PRIMARY KEY,
                parent_name TEXT,
                certificate_pem TEXT NOT NULL,
                key_blob TEXT NOT NULL,
                key_type TEXT NOT NULL,
                subject TEXT NOT NULL,
                not_before BIGINT NOT NULL,
                not_after BIGINT NOT NULL,
                is_root INTEGER NOT NULL,
                created_at BIGINT NOT NULL,
                crl_number BIGINT NOT NULL DEFAULT 0,
                status TEXT NOT NULL DEFAULT 'active'
            )
            """,
            """
            CREATE TABLE certificates (
                fingerprint TEXT PRIMARY KEY,
                serial TEXT NOT NULL,
                issuer TEXT NOT NULL,
                subject TEXT NOT NULL,
                common_name TEXT,
                sans TEXT NOT NULL,
                not_before BIGINT NOT NULL,
                not_after BIGINT NOT NULL,
                key_type TEXT NOT NULL,
                key_algorithm TEXT NOT NULL,
                key_size INTEGER NOT NULL,
                signature_algorithm TEXT NOT NULL,
                status TEXT NOT NULL,
                source TEXT NOT NULL,
                profile TEXT,
                owner TEXT,
                tags TEXT NOT NULL,
                pem TEXT NOT NULL,
                request_id TEXT,
                revoked_at BIGINT,
                revocation_reason INTEGER,
                created_at BIGINT NOT NULL,
                UNIQUE (issuer, serial)
            )
            """,
            "CREATE INDEX certificates_not_after ON certificates (not_after, fingerprint)",
            "CREATE INDEX certificates_serial ON certificates (serial)",
            "CREATE INDEX certificates_status ON certificates (status, not_after)",
            "CREATE INDEX certificates_common_name ON certificates (common_name)",
            "CREATE INDEX certificates_owner ON certificates (owner)",
            """
            CREATE TABLE requests (
                id TEXT PRIMARY KEY,
                csr_pem TEXT NOT NULL,
                profile TEXT NOT NULL,
                issuer TEXT,
                days INTEGER,
                requester TEXT NOT NULL,
                subject TEXT NOT NULL,
                names TEXT NOT NULL,
                status TEXT NOT NULL,
                reasons TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                decided_at BIGINT,
                decided_by TEXT,
                certificate_serial TEXT
            )
            """,
            "CREATE INDEX requests_status ON requests (status, created_at)",
            """
            CREATE TABLE audit (
                seq BIGINT PRIMARY KEY,
                time_ms BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                object TEXT NOT NULL,
                details TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )
            """,
        ]),
        (2, [
            """
            CREATE TABLE tokens (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                role TEXT NOT NULL,
                secret_hash TEXT NOT NULL,
                allowed_names TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                created_by TEXT NOT NULL,
                expires_at BIGINT,
                revoked_at BIGINT,
                last_used_at BIGINT
            )
            """,
            "ALTER TABLE certificates ADD COLUMN invalidity_date BIGINT",
        ]),
        (3, [
            "CREATE INDEX certificates_revoked ON certificates (issuer, status, fingerprint)",
            """
            CREATE TABLE crls (
                issuer TEXT PRIMARY KEY,
                number BIGINT NOT NULL,
                this_update BIGINT NOT NULL,
                next_update BIGINT NOT NULL,
                entries BIGINT NOT NULL,
                der TEXT NOT NULL
            )
            """,
        ]),
        (4, [
            "ALTER TABLE certificates ADD COLUMN crl_shard INTEGER",
        ]),
        // ACME (RFC 8555): each object is a JSON body plus the columns it is looked up by.
        (5, [
            """
            CREATE TABLE acme_accounts (
                id TEXT PRIMARY KEY,
                provisioner TEXT NOT NULL,
                thumbprint TEXT NOT NULL,
                status TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                UNIQUE (provisioner, thumbprint)
            )
            """,
            """
            CREATE TABLE acme_orders (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL,
                status TEXT NOT NULL,
                replaces TEXT,
                expires BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                body TEXT NOT NULL
            )
            """,
            "CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at)",
            "CREATE INDEX acme_orders_replaces ON acme_orders (replaces)",
            """
            CREATE TABLE acme_order_names (
                order_id TEXT NOT NULL,
                name TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX acme_order_names_name ON acme_order_names (name, created_at)",
            """
            CREATE TABLE acme_authorizations (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL,
                lookup TEXT NOT NULL,
                status TEXT NOT NULL,
                expires BIGINT NOT NULL,
                body TEXT NOT NULL
            )
            """,
            "CREATE INDEX acme_authorizations_reuse ON acme_authorizations (account_id, lookup, status, expires)",
            """
            CREATE TABLE acme_eab_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                created_at BIGINT NOT NULL,
                body TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE acme_nonces (
                nonce TEXT PRIMARY KEY,
                expires BIGINT NOT NULL
            )
            """,
            "CREATE INDEX acme_nonces_expires ON acme_nonces (expires)",
            """
            CREATE TABLE settings (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )
            """,
        ]),
        // The dashboard: sign-in sessions, and indexes for its inventory filters and audit view.
        (6, [
            """
            CREATE TABLE dashboard_sessions (
                id TEXT PRIMARY KEY,
                token_id TEXT NOT NULL,
                name TEXT NOT NULL,
                role TEXT NOT NULL,
                csrf TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                revoked_at BIGINT
            )
            """,
            // Every name a certificate carries, and reversed, so name, prefix and *.suffix searches use an index.
            """
            CREATE TABLE certificate_names (
                name TEXT NOT NULL,
                rname TEXT NOT NULL,
                fingerprint TEXT NOT NULL
            )
            """,
            "CREATE INDEX certificate_names_name ON certificate_names (name)",
            "CREATE INDEX certificate_names_rname ON certificate_names (rname)",
            "CREATE INDEX certificate_names_fingerprint ON certificate_names (fingerprint)",
            "CREATE INDEX certificates_display_name ON certificates ((COALESCE(common_name, '')), fingerprint)",
            "CREATE INDEX certificates_serial_order ON certificates (serial, fingerprint)",
            "CREATE INDEX certificates_profile ON certificates (profile, not_after)",
            "CREATE INDEX certificates_issuer ON certificates (issuer, not_after)",
            "CREATE INDEX certificates_algorithm ON certificates (key_algorithm, key_size)",
            "CREATE INDEX certificates_source ON certificates (source, not_after)",
            "CREATE INDEX certificates_created ON certificates (created_at, fingerprint)",
            "CREATE INDEX audit_actor ON audit (actor, seq)",
            "CREATE INDEX audit_action ON audit (action, seq)",
            "CREATE INDEX audit_object ON audit (object, seq)",
            "CREATE INDEX audit_time ON audit (time_ms)",
        ]),
        // Discovery: where and when each certificate was seen in use (a TLS endpoint) or at rest (a file).
        (7, [
            """
            CREATE TABLE certificate_sightings (
                fingerprint TEXT NOT NULL,
                location TEXT NOT NULL,
                server_name TEXT NOT NULL DEFAULT '',
                kind TEXT NOT NULL,
                host TEXT,
                port INTEGER,
                address TEXT,
                path TEXT,
                tls_version TEXT,
                cipher TEXT,
                chain_position INTEGER NOT NULL DEFAULT 0,
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                PRIMARY KEY (fingerprint, location, server_name)
            )
            """,
            "CREATE INDEX certificate_sightings_last_seen ON certificate_sightings (last_seen)",
            "CREATE INDEX certificate_sightings_location ON certificate_sightings (location, server_name)",
        ]),
        // Notifications (issue 7 item 2): expiry notices sent once per certificate and threshold (the
        // primary key is the guarantee, across restarts and nodes), the audit cursor events are read
        // from, and the durable outbox of deliveries (one per event and channel).
        (8, [
            """
            CREATE TABLE notification_marks (
                fingerprint TEXT NOT NULL,
                threshold_days INTEGER NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (fingerprint, threshold_days)
            )
            """,
            """
            CREATE TABLE notification_cursors (
                name TEXT PRIMARY KEY,
                seq BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE notification_outbox (
                id TEXT PRIMARY KEY,
                event_id TEXT NOT NULL,
                event TEXT NOT NULL,
                channel TEXT NOT NULL,
                target TEXT NOT NULL,
                payload TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt BIGINT NOT NULL,
                last_error TEXT,
                created_at BIGINT NOT NULL,
                delivered_at BIGINT,
                UNIQUE (event_id, channel)
            )
            """,
            "CREATE INDEX notification_outbox_due ON notification_outbox (status, next_attempt)",
            "CREATE INDEX notification_outbox_created ON notification_outbox (created_at, id)",
        ]),
        // Compliance: which certificates share a key, and which are CAs (an issuer known to the inventory).
        (9, [
            "ALTER TABLE certificates ADD COLUMN public_key_sha256 TEXT",
            "ALTER TABLE certificates ADD COLUMN is_ca INTEGER",
            "CREATE INDEX certificates_public_key ON certificates (public_key_sha256)",
            "CREATE INDEX certificates_ca_subject ON certificates (is_ca, subject)",
        ]),
    ]

    static var latest: Int { all.map(\.version).max() ?? 0 }

    /// Work a migration needs beyond SQL, run in its transaction right after its statements.
    static let backfills: [Int: @Sendable (SQLSession) async throws -> Void] = [
        6: { session in try await session.indexAllCertificateNames() },
        9: { session in try await session.fillKeyFacts() },
    ]
}
