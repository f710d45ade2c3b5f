import Dispatch

/// Work started on another thread at once, whose result is waited for when asked.
// @unchecked: `result` is written once by the work, then read only while holding `finished`.
public final class Background<Value: Sendable>: @unchecked Sendable {
    private let finished = DispatchSemaphore(value: 0)
    // Written by the work, then read (or taken) only between waiting on `finished`
    // and signalling it again, which lets one caller at a time in.
    private var result: Result<Value, Error>?

    public init(_ work: @escaping @Sendable () throws -> Value) {
        DispatchQueue.global().async {
            self.result = Result(catching: work)
            self.finished.signal()
        }
    }

    /// Whether the work has ended, without waiting for it.
    public var isFinished: Bool {
        guard finished.wait(timeout: .now()) == .success else { return false }
        finished.signal()
        return true
    }

    public func value() throws -> Value {
        finished.wait()
        finished.signal()
        return try result!.get()
    }

    /// Waits for the work and hands its result over, keeping nothing: the caller's value
    /// is then the only reference to its storage. Nil once taken.
    public func take() throws -> Value? {
        finished.wait()
        defer { finished.signal() }
        let taken = result
        result = nil
        return try taken?.get()
    }
}
