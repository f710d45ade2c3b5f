import Foundation

/// How the gateway writes its state files (quotas, the consent ledger): whole, to a
/// temporary file made durable with fsync, then renamed over the old one, so a crash
/// leaves the old file or the new one, never a part of either.
enum StateFiles {
    /// Replaces `file` with `data`.
    /// - Throws: `GatewayError` naming the file and the system's reason.
    static func replace(_ file: String, with data: Data) throws {
        let temporary = file + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("cannot create \(temporary)") }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == data.count, synced else { throw failure("cannot write \(temporary)") }
        guard rename(temporary, file) == 0 else { throw failure("cannot replace \(file)") }
    }

    private static func failure(_ what: String) -> GatewayError {
        GatewayError(message: "\(what): \(String(cString: strerror(errno)))")
    }
}
