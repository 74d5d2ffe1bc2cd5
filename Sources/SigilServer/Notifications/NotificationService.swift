import Foundation
import Logging
import ServiceLifecycle
import SigilStore

/// Runs the notifier on the scheduler leader: each round, it asks for the
/// `notifications` lock (one holder among all nodes on one database; it moves to
/// another node when the holder dies) and, while it holds it, collects events
/// and sends due deliveries.
public struct NotificationService: Service {
    public let notifier: Notifier

    public init(notifier: Notifier) {
        self.notifier = notifier
    }

    public func run() async throws {
        let lock = notifier.store.schedulerLock(named: "notifications")
        let sender = NotificationSender()
        let logger = notifier.logger
        let interval = notifier.configuration.interval
        try? await cancelWhenGracefulShutdown {
            var leading = false
            while !Task.isCancelled {
                let leader = await lock.acquire()
                if leader != leading {
                    leading = leader
                    logger.notice(leader ? "notifications: this node now sends notifications" : "notifications: this node no longer sends notifications")
                }
                if leader { await notifier.runOnce(sender: sender) }
                try? await Task.sleep(for: interval)
            }
        }
        await lock.release()
        await sender.shutdown()
    }
}
