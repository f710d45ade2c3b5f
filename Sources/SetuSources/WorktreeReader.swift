import Foundation
import SetuManifest

/// Reads a marketplace's files from a folder on disk (a work tree), for
/// validating changes before they are committed.
public enum WorktreeReader {
    /// Every file below the marketplace folders of `root`, sorted by path.
    /// Symlinks are reported, never followed; a folder holding a `.git` entry is
    /// a submodule; files over `limits.maxFileBytes` are not read.
    ///
    /// - Throws: `ManifestError` `.io` when `root` is not a readable folder.
    public static func read(root: String, limits: LoadLimits = .standard) throws -> [SourceFile] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
            throw ManifestError(code: .io, message: "'\(root)' is not a folder; pass --repo with the marketplace's folder")
        }
        var files: [SourceFile] = []
        for top in marketplaceRoots {
            try walk(root: root, relative: top, limits: limits, into: &files)
        }
        return files.sorted { $0.path < $1.path }
    }

    private static func walk(root: String, relative: String, limits: LoadLimits, into files: inout [SourceFile]) throws {
        let full = root + "/" + relative
        var info = stat()
        guard lstat(full, &info) == 0 else { return }
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            files.append(SourceFile(path: relative, content: .symlink))
        case S_IFDIR:
            if relative.split(separator: "/").count > 1, FileManager.default.fileExists(atPath: full + "/.git") {
                files.append(SourceFile(path: relative, content: .submodule))
                return
            }
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: full)
            } catch {
                throw ManifestError(code: .io, message: "cannot list \(full): \(error.localizedDescription)")
            }
            for name in names.sorted() where name != ".git" {
                try walk(root: root, relative: relative + "/" + name, limits: limits, into: &files)
            }
        case S_IFREG:
            let size = Int(info.st_size)
            if size > limits.maxFileBytes {
                files.append(SourceFile(path: relative, content: .tooLarge(size)))
                return
            }
            guard let data = FileManager.default.contents(atPath: full) else {
                throw ManifestError(code: .io, message: "cannot read \(full)")
            }
            files.append(SourceFile(path: relative, content: .bytes([UInt8](data))))
        default:
            return
        }
    }
}
