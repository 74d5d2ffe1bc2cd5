import Foundation
import Logging
import ServiceLifecycle
import SigilStore
import Synchronization

/// Runs the notifier on the scheduler leader. One loop asks for the
/// `notifications` lock each round (one holder among all nodes on one database;
/// it moves to another node when the holder dies) and, while it holds it,
/// collects events; one loop per channel sends that channel's due deliveries
/// while this node leads, so a slow receiver holds up only its own channel.
public struct NotificationService: Service {
    public let notifier: Notifier

    public init(notifier: Notifier) {
        self.notifier = notifier
    }

    public func run() async throws {
        let lock = notifier.store.schedulerLock(named: "notifications")
        let sender = NotificationSender()
        let leading = Leadership()
        let notifier = self.notifier
        let logger = notifier.logger
        let interval = notifier.configuration.interval
        try? await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        let leader = await lock.acquire()
                        if leading.set(leader) {
                            logger.notice(leader ? "notifications: this node now sends notifications" : "notifications: this node no longer sends notifications")
                        }
                        if leader { await notifier.collect() }
                        try? await Task.sleep(for: interval)
                    }
                }
                for channel in notifier.configuration.channels {
                    group.addTask {
                        while !Task.isCancelled {
                            if leading.value {
                                do {
                                    // A full batch means more may be waiting: go on without sleeping.
                                    while try await notifier.deliverDue(channel: channel.name, sender: sender) == Notifier.deliveryBatch, !Task.isCancelled {}
                                } catch {
                                    logger.warning("notifications: delivery to \(channel.name) failed: \(error)")
                                }
                            }
                            try? await Task.sleep(for: interval)
                        }
                    }
                }
            }
        }
        await lock.release()
        await sender.shutdown()
    }
}

/// Whether this node leads, shared by the collecting loop (which asks the lock) and the delivery loops.
final class Leadership: Sendable {
    private let state = Mutex(false)

    var value: Bool { state.withLock { $0 } }

    /// Records the answer; true when it changed.
    func set(_ leader: Bool) -> Bool {
        state.withLock { current in
            defer { current = leader }
            return current != leader
        }
    }
}
