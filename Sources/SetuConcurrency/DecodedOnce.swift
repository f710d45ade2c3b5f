import Synchronization

/// A value restored from state kept between runs, left in its stored form until
/// something first asks for it, then decoded once, by whichever thread asks first:
/// a run that loads tens of thousands of stored files looks at few of them.
public final class DecodedOnce<Value: Sendable>: Sendable {
    /// The stored form, when the value came from one: it can be written back as it is.
    public let stored: ArraySlice<UInt8>?
    private let decode: (@Sendable (ArraySlice<UInt8>) -> Value)?
    private let decoded: Mutex<Value?>

    /// A value that is decoded already.
    public init(_ value: Value) {
        stored = nil
        decode = nil
        decoded = Mutex(value)
    }

    /// A value `decode` reads from `stored` when first asked for. `decode` does
    /// not fail: the form was checked on loading, or it falls back to reading
    /// the value afresh.
    public init(stored: ArraySlice<UInt8>, decode: @escaping @Sendable (ArraySlice<UInt8>) -> Value) {
        self.stored = stored
        self.decode = decode
        decoded = Mutex(nil)
    }

    /// The value, decoded on first use.
    public var value: Value {
        decoded.withLock { value in
            if let value { return value }
            let read = decode!(stored!)
            value = read
            return read
        }
    }
}
