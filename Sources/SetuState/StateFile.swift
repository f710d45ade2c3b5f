import SetuEntitlements
import SetuManifest
import SetuStorage

/// Writes a state file whole or not at all (`AtomicFile`), saying what it holds when it cannot.
func replaceStateFile(_ path: String, with bytes: [UInt8], what: String) throws {
    do {
        try AtomicFile.replace(path, with: bytes)
    } catch {
        throw ManifestError(code: .io, message: "cannot write \(what) to \(path): \(error.reason)")
    }
}

/// An approval as both state files hold it: a flag, then the commit and the approver.
extension ByteWriter {
    mutating func write(_ approval: Approval?) {
        write(approval != nil)
        if let approval {
            write(approval.commit)
            write(approval.approver)
        }
    }
}

extension ByteReader {
    mutating func readApproval() throws -> Approval? {
        try readBool() ? Approval(commit: try readString(), approver: try readString()) : nil
    }

    /// Steps over an approval `ByteWriter.write(_: Approval?)` wrote.
    mutating func skipApproval() throws {
        if try readBool() {
            try skipRun()
            try skipRun()
        }
    }
}
