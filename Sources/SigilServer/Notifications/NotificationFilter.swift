import Foundation

/// Which events a channel wants: by type, and optionally by the certificate's
/// owner and tags from the inventory. An empty list means "any"; owners and
/// tags must both match when both are given; a certificate matches a tag list
/// when it carries at least one of the tags.
public struct NotificationFilter: Sendable, Equatable {
    public var events: Set<NotificationEventType>
    public var owners: Set<String>
    public var tags: Set<String>

    public init(events: Set<NotificationEventType> = [], owners: Set<String> = [], tags: Set<String> = []) {
        self.events = events
        self.owners = owners
        self.tags = tags
    }

    public func accepts(_ event: NotificationEvent) -> Bool {
        // A test message goes wherever it is sent: it checks the channel, not the routing.
        if event.type == .test { return true }
        if !events.isEmpty && !events.contains(event.type) { return false }
        if !owners.isEmpty {
            guard let owner = event.owner, owners.contains(owner) else { return false }
        }
        if !tags.isEmpty && tags.isDisjoint(with: event.tags) { return false }
        return true
    }
}
