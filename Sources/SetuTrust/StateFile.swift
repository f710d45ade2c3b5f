import Foundation
import SetuEntitlements
import SetuManifest

/// Reading a state file, and writing one whole or not at all.
enum StateFile {
    /// The file's bytes, or `nil` when it cannot be read (a missing state is no error: a full replay follows).
    static func read(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return nil }
        let size = Int(status.st_size)
        var complete = true
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            while count < size {
                let result = Foundation.read(descriptor, buffer.baseAddress! + count, size - count)
                if result < 0, errno == EINTR { continue }
                guard result > 0 else {
                    complete = false
                    break
                }
                count += result
            }
        }
        return complete ? bytes : nil
    }

    /// Writes `bytes` beside `path` and renames them over it, so a crash never
    /// leaves half a file behind. Plain POSIX calls: Foundation's `Data.write`
    /// took several times as long for the few megabytes of a replay state.
    static func replace(_ path: String, with bytes: [UInt8], what: String) throws {
        func failure(_ doing: String) -> ManifestError {
            ManifestError(code: .io, message: "cannot write \(what) to \(path): \(doing): \(String(cString: strerror(errno)))")
        }
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw ManifestError(code: .io, message: "cannot write \(what) to \(path): \(error.localizedDescription)")
        }
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("cannot create \(temporary)") }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else {
                let error = failure("cannot write \(temporary)")
                close(descriptor)
                throw error
            }
            written += result
        }
        guard close(descriptor) == 0 else { throw failure("cannot close \(temporary)") }
        guard rename(temporary, path) == 0 else { throw failure("cannot rename \(temporary) to \(path)") }
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
