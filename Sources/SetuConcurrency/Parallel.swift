import Dispatch
import Foundation

/// Work spread over the machine's cores.
public enum Parallel {
    /// The number of cores work is spread over.
    public static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// `body(index)` for every index in `0..<count`, in parallel, results in index
    /// order. Indexes go out in chunks (several per core, so a slow chunk does not
    /// hold up the rest); fewer than `minimum` items run on the calling thread,
    /// where handing them out would cost more than it saves.
    public static func map<Value>(_ count: Int, minimum: Int = 8, _ body: @Sendable (Int) -> Value) -> [Value] {
        guard count >= minimum, cores > 1 else { return (0..<count).map(body) }
        let results = ConcurrentResults<Value>(count: count)
        let chunk = max(1, count / (cores * 8))
        let chunks = (count + chunk - 1) / chunk
        DispatchQueue.concurrentPerform(iterations: chunks) { index in
            for item in index * chunk..<min(count, (index + 1) * chunk) {
                results.set(item, body(item))
            }
        }
        return results.values
    }
}

/// Collects results written from concurrent iterations, each index exactly once.
// @unchecked: each index is written by one iteration only, and read after all of them end.
final class ConcurrentResults<Value>: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<Value?>
    private let count: Int

    init(count: Int) {
        self.count = count
        storage = .allocate(capacity: max(count, 1))
        storage.initialize(repeating: nil, count: count)
    }

    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }

    /// Safe without a lock because each index is written by exactly one
    /// iteration and read only after `concurrentPerform` returns.
    func set(_ index: Int, _ value: Value) {
        storage[index] = value
    }

    var values: [Value] { (0..<count).compactMap { storage[$0] } }
}

/// Hands a value that is only read (a buffer of work) to concurrent iterations.
// @unchecked: what it wraps is only read while shared, and outlives the work that reads it.
public struct UnsafeSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
