import SetuGit
import SetuManifest

/// Reads a marketplace's files from a commit, straight from the object database:
/// nothing is checked out, symlinks and submodules are reported by path, and a
/// blob over the size limit is never read.
public enum GitMarketplaceReader {
    /// Every file below the marketplace folders of `commit`.
    public static func files(in repository: Repository, at commit: ObjectID, limits: LoadLimits) throws -> [SourceFile] {
        try repository.files(in: commit, under: marketplaceRoots).map { entry in
            SourceFile(path: entry.path, content: try content(of: entry, in: repository, limits: limits))
        }
    }

    /// What a tree entry holds, as validation sees it.
    public static func content(of entry: TreeFile, in repository: Repository, limits: LoadLimits) throws -> SourceFile.Content {
        switch entry.kind {
        case .symlink:
            return .symlink
        case .submodule:
            return .submodule
        case .file, .executable:
            do {
                return .bytes(try repository.readBlob(entry.id, maxSize: limits.maxFileBytes))
            } catch let error as GitError where error.code == .blobTooLarge {
                return .tooLarge(try repository.blobSize(entry.id))
            }
        }
    }
}
