import Foundation

/// Where commands write. Production uses the process's standard streams; tests
/// bind a capturing console with `Console.$current.withValue`.
public final class Console: @unchecked Sendable {
    // @unchecked: the buffers are guarded by `lock`.
    private let lock = NSLock()
    private let writeOut: (@Sendable ([UInt8]) -> Void)?
    private let writeErr: (@Sendable ([UInt8]) -> Void)?
    private var capturedOut: [UInt8] = []
    private var capturedErr: [UInt8] = []
    public let isInteractive: Bool
    /// Environment seen by commands (tests inject their own).
    public let environment: [String: String]

    @TaskLocal public static var current = Console.standard

    public static let standard = Console(
        out: { bytes in FileHandle.standardOutput.write(Data(bytes)) },
        err: { bytes in FileHandle.standardError.write(Data(bytes)) },
        isInteractive: isatty(STDIN_FILENO) == 1,
        environment: ProcessInfo.processInfo.environment)

    public init(out: (@Sendable ([UInt8]) -> Void)?, err: (@Sendable ([UInt8]) -> Void)?, isInteractive: Bool, environment: [String: String]) {
        self.writeOut = out
        self.writeErr = err
        self.isInteractive = isInteractive
        self.environment = environment
    }

    /// A console that keeps everything written to it, for tests.
    public static func capturing(environment: [String: String] = [:]) -> Console {
        Console(out: nil, err: nil, isInteractive: false, environment: environment)
    }

    public func write(_ bytes: [UInt8]) {
        if let writeOut { writeOut(bytes) } else { lock.withLock { capturedOut += bytes } }
    }

    public func print(_ text: String = "") { write(Array((text + "\n").utf8)) }

    public func error(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        if let writeErr { writeErr(bytes) } else { lock.withLock { capturedErr += bytes } }
    }

    public var standardOutput: String { lock.withLock { String(decoding: capturedOut, as: UTF8.self) } }
    public var standardOutputBytes: [UInt8] { lock.withLock { capturedOut } }
    public var standardError: String { lock.withLock { String(decoding: capturedErr, as: UTF8.self) } }
}
