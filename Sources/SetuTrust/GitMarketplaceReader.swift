import SetuGit
import SetuManifest

/// Reads a marketplace's files from a commit, straight from the object database:
/// nothing is checked out, symlinks and submodules are reported by path, and a
/// blob over the size limit is never read.
public enum GitMarketplaceReader {
    /// Every file below the marketplace folders of `commit`.
    public static func files(in repository: Repository, at commit: ObjectID, limits: LoadLimits) throws -> [SourceFile] {
        try repository.files(in: commit, under: marketplaceRoots).map { entry in
            switch entry.kind {
            case .symlink:
                return SourceFile(path: entry.path, content: .symlink)
            case .submodule:
                return SourceFile(path: entry.path, content: .submodule)
            case .file, .executable:
                do {
                    return SourceFile(path: entry.path, content: .bytes(try repository.readBlob(entry.id, maxSize: limits.maxFileBytes)))
                } catch let error as GitError where error.code == .blobTooLarge {
                    return SourceFile(path: entry.path, content: .tooLarge(try repository.blobSize(entry.id)))
                }
            }
        }
    }
}
