/// Step 1 of the pipeline: the request id, sent back in `X-Request-ID`, passed to the
/// upstream and recorded in the hit log.
enum RequestIdentityStage {
    /// Keeps the client's single `X-Request-ID` when it is 1–128 characters of letters,
    /// digits and `-_.:`; otherwise makes a new random one with `random`.
    static func run(_ exchange: Exchange, random: inout some RandomNumberGenerator) {
        var sent: String?
        var count = 0
        for (name, value) in exchange.request.headers where name.utf8.count == 12 && HeaderName.equals(name, "x-request-id") {
            sent = value
            count += 1
        }
        exchange.requestId = requestId(count == 1 ? sent : nil, random: &random)
    }

    static func requestId(_ sent: String?) -> String {
        var random = SystemRandomNumberGenerator()
        return requestId(sent, random: &random)
    }

    static func requestId(_ sent: String?, random generator: inout some RandomNumberGenerator) -> String {
        if let sent, (1...128).contains(sent.utf8.count), sent.utf8.allSatisfy({ ASCIIBytes.isLetterOrDigit($0, or: "-_.:") }) {
            return sent
        }
        let digits = Array("0123456789abcdef".utf8)
        var bytes = [UInt8](repeating: 0, count: 32)
        for half in 0..<2 {
            let random: UInt64 = generator.next()
            for index in 0..<16 {
                bytes[half * 16 + index] = digits[Int(random >> UInt64(60 - 4 * index) & 0xF)]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A fast generator for request ids (wyrand), seeded once from the system's secure
    /// source. Ids must be unique, not secret, and reading the system's source costs a
    /// system call each time.
    struct Random: RandomNumberGenerator {
        private var state: UInt64

        init() {
            var system = SystemRandomNumberGenerator()
            state = system.next()
        }

        mutating func next() -> UInt64 {
            state &+= 0xA076_1D64_78BD_642F
            let product = state.multipliedFullWidth(by: state ^ 0xE703_7ED1_A0B4_28DB)
            return product.high ^ product.low
        }
    }
}
