internal import CLibGit2

#if canImport(Glibc)
    import Glibc
#endif

/// libgit2 needs one global initialisation per process; a global `let` runs it once,
/// lazily and thread-safely.
///
/// Objects read are not hashed again to check their ids, as git itself does not
/// (`git fsck` does): libgit2's collision-detecting SHA-1 on every read was a
/// fifth of a history replay. Objects reach the repository through git, which
/// checks them as they arrive (`transfer.fsckObjects`, pack index verification).
///
/// Trees up to 1 MiB are cached, not only those up to libgit2's default of 4 KiB:
/// a folder of a few hundred subscriptions is a larger tree, and walking history
/// reads each version of it twice (as one commit's new tree and the next one's old).
/// The caches together hold at most 64 MiB rather than 256: a replay reads each
/// version once or twice, in order, so a smaller cache serves it as well.
private let libgit2Initialized: Int32 = {
    let initialized = git_libgit2_init()
    _ = setu_git_set_strict_hash_verification(0)
    _ = setu_git_set_cache_object_limit(GIT_OBJECT_TREE, 1 << 20)
    _ = setu_git_set_cache_max_size(64 << 20)
    return initialized
}()

/// A git repository opened through libgit2.
///
/// Every method is one synchronous unit of work that returns plain values. A
/// `Repository` is not thread-safe (libgit2 handles are not, and libgit2's last
/// error is per thread): use one from one thread at a time.
public final class Repository {
    private let handle: OpaquePointer
    private let odb: OpaquePointer

    /// The path the repository was opened from.
    public let path: String

    /// Opens the repository at `path` (a work tree, a `.git` folder, a bare
    /// repository, or a `file://` URL of one). Parent folders are not searched.
    ///
    /// - Throws: `GitError` with `.repositoryNotFound` when there is no repository there.
    public convenience init(path: String) throws {
        _ = libgit2Initialized
        var local = path
        if local.hasPrefix("file://") {
            local = String(local.dropFirst("file://".count))
        }
        var repository: OpaquePointer?
        let result = git_repository_open_ext(&repository, local, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil)
        guard result == 0, let repository else {
            let detail = lastErrorMessage()
            throw GitError(
                code: .repositoryNotFound,
                message: "no git repository at '\(path)': \(detail); pass --repo with the path of a marketplace repository",
                function: "git_repository_open_ext")
        }
        try self.init(owning: repository, path: local)
    }

    /// Takes ownership of an opened repository handle (freed on failure too).
    private init(owning repository: OpaquePointer, path: String) throws {
        var database: OpaquePointer?
        guard git_repository_odb(&database, repository) == 0, let database else {
            let error = lastError("git_repository_odb")
            git_repository_free(repository)
            throw error
        }
        self.handle = repository
        self.odb = database
        self.path = path
    }

    deinit {
        git_odb_free(odb)
        git_repository_free(handle)
    }

    /// Creates a new, empty, non-bare repository at `path` (creating the folder).
    public static func create(at path: String, initialBranch: String = "main") throws -> Repository {
        _ = libgit2Initialized
        var options = git_repository_init_options()
        try check(
            git_repository_init_options_init(&options, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)),
            "git_repository_init_options_init")
        options.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue
        var repository: OpaquePointer?
        let result = initialBranch.withCString { branch in
            options.initial_head = branch
            return git_repository_init_ext(&repository, path, &options)
        }
        try check(result, "git_repository_init_ext")
        guard let repository else { throw lastError("git_repository_init_ext") }
        return try Repository(owning: repository, path: path)
    }

    /// Whether the repository has no commits: HEAD names a branch not yet born
    /// and no other reference exists. (libgit2's own check assumes the unborn
    /// branch is the configured default one, which misses `git init -b main`.)
    public var isEmpty: Bool {
        guard git_repository_head_unborn(handle) == 1 else { return false }
        var iterator: OpaquePointer?
        guard git_reference_iterator_new(&iterator, handle) == 0 else { return false }
        defer { git_reference_iterator_free(iterator) }
        var reference: OpaquePointer?
        let result = git_reference_next(&reference, iterator)
        if result == 0 { git_reference_free(reference) }
        return result == GIT_ITEROVER.rawValue
    }

    /// Whether the repository has no work tree.
    public var isBare: Bool {
        git_repository_is_bare(handle) == 1
    }

    /// The folder of the work tree, with a trailing `/`; `nil` for a bare repository.
    public var workTree: String? {
        guard let pointer = git_repository_workdir(handle) else { return nil }
        return String(cString: pointer)
    }

    // MARK: - Revisions and commits

    /// Resolves any revision git understands (`main`, a tag, `HEAD~2`, an id or
    /// its prefix) to the commit it names.
    ///
    /// - Throws: `.emptyRepository` when there are no commits; `.revisionNotFound`
    ///   when the revision names nothing, or names something that is not a commit.
    public func resolveCommit(_ revision: String) throws -> ObjectID {
        if isEmpty {
            throw GitError(
                code: .emptyRepository,
                message: "the repository at '\(path)' has no commits yet; commit the marketplace first, or use --worktree to validate uncommitted files")
        }
        var object: OpaquePointer?
        guard git_revparse_single(&object, handle, revision) == 0, let object else {
            let detail = lastErrorMessage()
            throw GitError(
                code: .revisionNotFound,
                message:
                    "revision '\(revision)' does not exist in '\(path)': \(detail); name a branch, tag or commit that exists (git log --oneline shows them)",
                function: "git_revparse_single")
        }
        defer { git_object_free(object) }
        var commit: OpaquePointer?
        guard git_object_peel(&commit, object, GIT_OBJECT_COMMIT) == 0, let commit else {
            throw GitError(
                code: .revisionNotFound,
                message: "revision '\(revision)' in '\(path)' does not name a commit",
                function: "git_object_peel")
        }
        defer { git_object_free(commit) }
        return ObjectID(git_object_id(commit))
    }

    /// Reads one commit.
    public func commit(_ id: ObjectID) throws -> Commit {
        try withCommit(id) { Self.makeCommit(id: id, handle: $0) }
    }

    /// The first-parent chain from `head`, newest first: `head`, its first parent,
    /// and so on, down to and including `stop` (or to the root commit).
    public func firstParentChain(from head: ObjectID, stoppingAt stop: ObjectID? = nil) throws -> [ObjectID] {
        // A revision walk reads only the parents out of each commit, which is
        // several times quicker than looking every commit up in full.
        var walk: OpaquePointer?
        try check(git_revwalk_new(&walk, handle), "git_revwalk_new")
        defer { git_revwalk_free(walk) }
        try check(git_revwalk_sorting(walk, GIT_SORT_NONE.rawValue), "git_revwalk_sorting")
        try check(git_revwalk_simplify_first_parent(walk), "git_revwalk_simplify_first_parent")
        var headID = git_oid(head)
        try check(git_revwalk_push(walk, &headID), "git_revwalk_push")
        var chain: [ObjectID] = []
        var next = git_oid()
        while true {
            let result = git_revwalk_next(&next, walk)
            if result == GIT_ITEROVER.rawValue { break }
            try check(result, "git_revwalk_next")
            let id = ObjectID(next)
            chain.append(id)
            if id == stop { break }
        }
        return chain
    }

    /// Commits reachable from `tip` but not from `hidden`, oldest first (parents
    /// before children): the commits a merge brings in from its side branch.
    public func commits(reachableFrom tip: ObjectID, hiding hidden: [ObjectID]) throws -> [Commit] {
        var walk: OpaquePointer?
        try check(git_revwalk_new(&walk, handle), "git_revwalk_new")
        defer { git_revwalk_free(walk) }
        try check(git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_REVERSE.rawValue), "git_revwalk_sorting")
        var tipID = git_oid(tip)
        try check(git_revwalk_push(walk, &tipID), "git_revwalk_push")
        for id in hidden {
            var hiddenID = git_oid(id)
            try check(git_revwalk_hide(walk, &hiddenID), "git_revwalk_hide")
        }
        var commits: [Commit] = []
        var next = git_oid()
        while git_revwalk_next(&next, walk) == 0 {
            commits.append(try commit(ObjectID(next)))
        }
        return commits
    }

    /// The best common ancestor of two commits, `nil` when they share none.
    public func mergeBase(_ one: ObjectID, _ other: ObjectID) throws -> ObjectID? {
        var base = git_oid()
        var a = git_oid(one), b = git_oid(other)
        let result = git_merge_base(&base, handle, &a, &b)
        if result == GIT_ENOTFOUND.rawValue { return nil }
        try check(result, "git_merge_base")
        return ObjectID(base)
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    public func isAncestor(_ ancestor: ObjectID, of descendant: ObjectID) throws -> Bool {
        if ancestor == descendant { return true }
        var a = git_oid(ancestor), d = git_oid(descendant)
        let result = git_graph_descendant_of(handle, &d, &a)
        try check(result, "git_graph_descendant_of")
        return result == 1
    }

    /// The first-parent chain from `head` back to the root commit (or `limit`
    /// commits), newest first.
    public func firstParentHistory(from head: ObjectID, limit: Int = .max) throws -> [Commit] {
        var history: [Commit] = []
        var next: ObjectID? = head
        while let id = next, history.count < limit {
            let commit = try self.commit(id)
            history.append(commit)
            next = commit.parents.first
        }
        return history
    }

    // MARK: - Trees and blobs

    /// Every file in `commit`'s tree below the given top-level folders, sorted by
    /// path, read from the object database without checking anything out.
    /// Symlinks and submodules are listed with their kind so the caller can reject
    /// them by path.
    public func files(in commit: ObjectID, under roots: [String]) throws -> [TreeFile] {
        try withCommit(commit) { commitHandle in
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, commitHandle), "git_commit_tree")
            defer { git_tree_free(tree) }
            var files: [TreeFile] = []
            for root in roots {
                var entry: OpaquePointer?
                let found = git_tree_entry_bypath(&entry, tree, root)
                if found == GIT_ENOTFOUND.rawValue { continue }
                try check(found, "git_tree_entry_bypath")
                defer { git_tree_entry_free(entry) }
                try collect(entry: entry!, path: root, into: &files)
            }
            files.sort { $0.path < $1.path }
            return files
        }
    }

    private func collect(entry: OpaquePointer, path: String, into files: inout [TreeFile]) throws {
        let id = ObjectID(git_tree_entry_id(entry))
        switch git_tree_entry_filemode(entry) {
        case GIT_FILEMODE_TREE:
            var oid = git_oid(id)
            var subtree: OpaquePointer?
            try check(git_tree_lookup(&subtree, handle, &oid), "git_tree_lookup")
            defer { git_tree_free(subtree) }
            for index in 0..<git_tree_entrycount(subtree) {
                guard let child = git_tree_entry_byindex(subtree, index) else { continue }
                let name = String(cString: git_tree_entry_name(child))
                try collect(entry: child, path: path + "/" + name, into: &files)
            }
        case GIT_FILEMODE_BLOB_EXECUTABLE:
            files.append(TreeFile(path: path, id: id, kind: .executable))
        case GIT_FILEMODE_LINK:
            files.append(TreeFile(path: path, id: id, kind: .symlink))
        case GIT_FILEMODE_COMMIT:
            files.append(TreeFile(path: path, id: id, kind: .submodule))
        default:
            files.append(TreeFile(path: path, id: id, kind: .file))
        }
    }

    /// The entry at `path` in `commit`'s tree, or `nil` when there is none.
    public func file(in commit: ObjectID, at path: String) throws -> TreeFile? {
        try withCommit(commit) { commitHandle in
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, commitHandle), "git_commit_tree")
            defer { git_tree_free(tree) }
            var entry: OpaquePointer?
            let found = git_tree_entry_bypath(&entry, tree, path)
            if found == GIT_ENOTFOUND.rawValue { return nil }
            try check(found, "git_tree_entry_bypath")
            defer { git_tree_entry_free(entry) }
            var files: [TreeFile] = []
            try collect(entry: entry!, path: path, into: &files)
            return files.count == 1 && files[0].path == path ? files[0] : nil
        }
    }

    /// The size of a blob in bytes, read from its header without loading it.
    public func blobSize(_ id: ObjectID) throws -> Int {
        var oid = git_oid(id)
        var size = 0
        var type = GIT_OBJECT_ANY
        try check(git_odb_read_header(&size, &type, odb, &oid), "git_odb_read_header")
        return size
    }

    /// The bytes of a blob. The size is checked first, and a blob over `maxSize`
    /// is never read.
    ///
    /// - Throws: `.blobTooLarge` when the blob is over `maxSize` bytes.
    public func readBlob(_ id: ObjectID, maxSize: Int) throws -> [UInt8] {
        let size = try blobSize(id)
        guard size <= maxSize else {
            throw GitError(code: .blobTooLarge, message: "blob \(id.short) is \(size) bytes, over the limit of \(maxSize) bytes")
        }
        var oid = git_oid(id)
        var blob: OpaquePointer?
        try check(git_blob_lookup(&blob, handle, &oid), "git_blob_lookup")
        defer { git_blob_free(blob) }
        let count = Int(git_blob_rawsize(blob))
        guard count > 0, let bytes = git_blob_rawcontent(blob) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: bytes, count: count))
    }

    // MARK: - Diffs

    /// The paths that differ between two commits' trees, below the given
    /// top-level folders, sorted by path. `old == nil` compares against an empty tree.
    ///
    /// Trees are compared entry by entry and only subtrees whose ids differ are
    /// entered, as git itself does; libgit2's general diff machinery costs several
    /// times more for this one question, and history replay asks it for every commit.
    public func changedPaths(from old: ObjectID?, to new: ObjectID, under roots: [String]) throws -> [ChangedPath] {
        let oldTree = try old.map { try treeHandle(of: $0) }
        defer { if let oldTree { git_tree_free(oldTree) } }
        let newTree = try treeHandle(of: new)
        defer { git_tree_free(newTree) }
        var changes: [ChangedPath] = []
        for root in roots.sorted() {
            let oldEntry = try oldTree.flatMap { try entry(in: $0, at: root) }
            defer { if let oldEntry { git_tree_entry_free(oldEntry) } }
            let newEntry = try entry(in: newTree, at: root)
            defer { if let newEntry { git_tree_entry_free(newEntry) } }
            try compare(oldEntry, newEntry, path: root, into: &changes)
        }
        return changes
    }

    private func entry(in tree: OpaquePointer, at path: String) throws -> OpaquePointer? {
        var entry: OpaquePointer?
        let found = git_tree_entry_bypath(&entry, tree, path)
        if found == GIT_ENOTFOUND.rawValue { return nil }
        try check(found, "git_tree_entry_bypath")
        return entry
    }

    /// Compares two tree entries at the same path (either may be missing).
    private func compare(_ old: OpaquePointer?, _ new: OpaquePointer?, path: String, into changes: inout [ChangedPath]) throws {
        let oldIsTree = old.map { git_tree_entry_filemode($0) == GIT_FILEMODE_TREE } ?? false
        let newIsTree = new.map { git_tree_entry_filemode($0) == GIT_FILEMODE_TREE } ?? false
        if let old, let new, git_tree_entry_filemode(old) == git_tree_entry_filemode(new),
            git_oid_equal(git_tree_entry_id(old), git_tree_entry_id(new)) != 0
        {
            return
        }
        if oldIsTree || newIsTree {
            let oldTree = oldIsTree ? try lookupTree(old!) : nil
            defer { if let oldTree { git_tree_free(oldTree) } }
            let newTree = newIsTree ? try lookupTree(new!) : nil
            defer { if let newTree { git_tree_free(newTree) } }
            // A file replaced by a folder (or the reverse) is a deletion plus additions.
            if old != nil, !oldIsTree { changes.append(ChangedPath(path: path, status: .deleted)) }
            try compareTrees(oldTree, newTree, prefix: path, into: &changes)
            if let new, !newIsTree { changes.append(ChangedPath(path: path, status: .added, file: treeFile(new, path: path))) }
            return
        }
        switch (old, new) {
        case (nil, let new?):
            changes.append(ChangedPath(path: path, status: .added, file: treeFile(new, path: path)))
        case (.some, nil):
            changes.append(ChangedPath(path: path, status: .deleted))
        case (let old?, let new?):
            let status: ChangedPath.Status = git_tree_entry_filemode(old) == git_tree_entry_filemode(new) ? .modified : .typeChanged
            changes.append(ChangedPath(path: path, status: status, file: treeFile(new, path: path)))
        default:
            break
        }
    }

    /// Walks two trees' sorted entries side by side.
    private func compareTrees(_ old: OpaquePointer?, _ new: OpaquePointer?, prefix: String, into changes: inout [ChangedPath]) throws {
        let oldCount = old.map { git_tree_entrycount($0) } ?? 0
        let newCount = new.map { git_tree_entrycount($0) } ?? 0
        var i = 0, j = 0
        while i < oldCount || j < newCount {
            let oldEntry = i < oldCount ? git_tree_entry_byindex(old, i) : nil
            let newEntry = j < newCount ? git_tree_entry_byindex(new, j) : nil
            let order: Int32
            if let oldEntry, let newEntry {
                order = gitOrder(oldEntry, newEntry)
            } else {
                order = oldEntry == nil ? 1 : -1
            }
            if order == 0 {
                i += 1
                j += 1
                // Most entries are unchanged: skip them before building their paths.
                if git_tree_entry_filemode(oldEntry!) == git_tree_entry_filemode(newEntry!),
                    git_oid_equal(git_tree_entry_id(oldEntry!), git_tree_entry_id(newEntry!)) != 0
                {
                    continue
                }
                let name = String(cString: git_tree_entry_name(newEntry!))
                try compare(oldEntry, newEntry, path: prefix + "/" + name, into: &changes)
            } else if order < 0 {
                let name = String(cString: git_tree_entry_name(oldEntry!))
                try compare(oldEntry, nil, path: prefix + "/" + name, into: &changes)
                i += 1
            } else {
                let name = String(cString: git_tree_entry_name(newEntry!))
                try compare(nil, newEntry, path: prefix + "/" + name, into: &changes)
                j += 1
            }
        }
    }

    /// Git's order of tree entries: by name, a folder's name read as if it ended in '/'.
    private func gitOrder(_ a: OpaquePointer, _ b: OpaquePointer) -> Int32 {
        guard var left = git_tree_entry_name(a).map(UnsafeRawPointer.init)?.assumingMemoryBound(to: UInt8.self),
            var right = git_tree_entry_name(b).map(UnsafeRawPointer.init)?.assumingMemoryBound(to: UInt8.self)
        else { return 0 }
        while left.pointee != 0, left.pointee == right.pointee {
            left += 1
            right += 1
        }
        let slash = UInt8(ascii: "/")
        let l = left.pointee != 0 ? left.pointee : (git_tree_entry_filemode(a) == GIT_FILEMODE_TREE ? slash : 0)
        let r = right.pointee != 0 ? right.pointee : (git_tree_entry_filemode(b) == GIT_FILEMODE_TREE ? slash : 0)
        return Int32(l) - Int32(r)
    }

    private func lookupTree(_ entry: OpaquePointer) throws -> OpaquePointer {
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, handle, git_tree_entry_id(entry)), "git_tree_lookup")
        return tree!
    }

    private func treeFile(_ entry: OpaquePointer, path: String) -> TreeFile {
        let kind: TreeFile.Kind
        switch git_tree_entry_filemode(entry) {
        case GIT_FILEMODE_LINK: kind = .symlink
        case GIT_FILEMODE_COMMIT: kind = .submodule
        case GIT_FILEMODE_BLOB_EXECUTABLE: kind = .executable
        default: kind = .file
        }
        return TreeFile(path: path, id: ObjectID(git_tree_entry_id(entry)), kind: kind)
    }

    private func treeHandle(of commit: ObjectID) throws -> OpaquePointer {
        try withCommit(commit) { commitHandle in
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, commitHandle), "git_commit_tree")
            return tree!
        }
    }

    // MARK: - Signatures

    /// The signature on a commit and the payload it signs; `nil` for an unsigned commit.
    public func signature(of commit: ObjectID) throws -> CommitSignature? {
        // Most commits are unsigned: the parsed header says so without reading the object again.
        let signed = try withCommit(commit) { handle -> Bool in
            guard let header = git_commit_raw_header(handle) else { return false }
            return strncmp(header, "gpgsig ", 7) == 0 || strstr(header, "\ngpgsig ") != nil
        }
        guard signed else { return nil }
        var oid = git_oid(commit)
        var signature = git_buf()
        var payload = git_buf()
        defer {
            git_buf_dispose(&signature)
            git_buf_dispose(&payload)
        }
        let result = git_commit_extract_signature(&signature, &payload, handle, &oid, nil)
        if result == GIT_ENOTFOUND.rawValue { return nil }
        try check(result, "git_commit_extract_signature")
        return CommitSignature(signature: Self.bytes(of: signature), payload: Self.bytes(of: payload))
    }

    private static func bytes(of buffer: git_buf) -> [UInt8] {
        guard let pointer = buffer.ptr, buffer.size > 0 else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: buffer.size))
    }

    // MARK: - Writing

    /// The user's name and email from git configuration (`user.name`, `user.email`), if set.
    public func configuredIdentity() -> Person? {
        var signature: UnsafeMutablePointer<git_signature>?
        guard git_signature_default(&signature, handle) == 0, let signature else { return nil }
        defer { git_signature_free(signature) }
        return Person(UnsafePointer(signature))
    }

    /// Stages every file of the work tree and commits it on the current branch.
    ///
    /// The author is `author` when given, else the user's git configuration.
    public func commitWorkTree(message: String, author: Person? = nil) throws -> ObjectID {
        var index: OpaquePointer?
        try check(git_repository_index(&index, handle), "git_repository_index")
        defer { git_index_free(index) }
        try check(git_index_add_all(index, nil, 0, nil, nil), "git_index_add_all")
        try check(git_index_write(index), "git_index_write")
        var treeID = git_oid()
        try check(git_index_write_tree(&treeID, index), "git_index_write_tree")
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, handle, &treeID), "git_tree_lookup")
        defer { git_tree_free(tree) }

        var signature: UnsafeMutablePointer<git_signature>?
        if let author {
            try check(git_signature_now(&signature, author.name, author.email), "git_signature_now")
        } else if git_signature_default(&signature, handle) != 0 {
            try check(git_signature_now(&signature, "Setu", "setu@localhost"), "git_signature_now")
        }
        defer { git_signature_free(signature) }

        var parent: OpaquePointer?
        var headID = git_oid()
        if git_reference_name_to_id(&headID, handle, "HEAD") == 0 {
            try check(git_commit_lookup(&parent, handle, &headID), "git_commit_lookup")
        }
        defer { if let parent { git_commit_free(parent) } }
        var parents: [OpaquePointer?] = parent.map { [$0] } ?? []
        var commitID = git_oid()
        let result = parents.withUnsafeMutableBufferPointer { buffer in
            git_commit_create(
                &commitID, handle, "HEAD", signature, signature, nil, message, tree,
                buffer.count, buffer.baseAddress)
        }
        try check(result, "git_commit_create")
        return ObjectID(commitID)
    }

    // MARK: - Internals

    private func withCommit<T>(_ id: ObjectID, _ body: (OpaquePointer) throws -> T) throws -> T {
        var oid = git_oid(id)
        var commit: OpaquePointer?
        let result = git_commit_lookup(&commit, handle, &oid)
        guard result == 0, let commit else {
            throw lastError("git_commit_lookup", code: result == GIT_ENOTFOUND.rawValue ? .revisionNotFound : .libgit2)
        }
        defer { git_commit_free(commit) }
        return try body(commit)
    }

    private static func makeCommit(id: ObjectID, handle commit: OpaquePointer) -> Commit {
        var parents: [ObjectID] = []
        for index in 0..<git_commit_parentcount(commit) {
            if let parent = git_commit_parent_id(commit, index) {
                parents.append(ObjectID(parent))
            }
        }
        let message = git_commit_message(commit).map { String(cString: $0) } ?? ""
        return Commit(
            id: id,
            parents: parents,
            tree: ObjectID(git_commit_tree_id(commit)),
            author: Person(git_commit_author(commit)),
            committer: Person(git_commit_committer(commit)),
            message: message)
    }
}

// MARK: - Conversions between libgit2's types and SetuGit's values

extension ObjectID {
    fileprivate init(_ oid: UnsafePointer<git_oid>) {
        // Hex-encoded by hand: ids are made for every tree entry and commit read,
        // and git_oid_tostr plus a C-string copy cost more than the rest of the walk.
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        let hex = withUnsafeBytes(of: oid.pointee.id) { raw in
            String(unsafeUninitializedCapacity: 40) { buffer in
                for (index, byte) in raw.enumerated() {
                    buffer[2 * index] = digits[Int(byte >> 4)]
                    buffer[2 * index + 1] = digits[Int(byte & 0x0F)]
                }
                return 40
            }
        }
        self.init(validatedHex: hex)
    }

    fileprivate init(_ oid: git_oid) {
        var copy = oid
        self.init(&copy)
    }
}

extension git_oid {
    fileprivate init(_ id: ObjectID) {
        self.init()
        _ = git_oid_fromstr(&self, id.hex)
    }
}

extension Person {
    fileprivate init(_ signature: UnsafePointer<git_signature>?) {
        guard let signature = signature?.pointee else {
            self.init(name: "", email: "")
            return
        }
        self.init(
            name: signature.name.map { String(cString: $0) } ?? "",
            email: signature.email.map { String(cString: $0) } ?? "",
            time: Int64(signature.when.time),
            offsetMinutes: Int(signature.when.offset))
    }
}

// MARK: - Mirrors

extension Repository {
    /// Brings a bare mirror of the repository at `url` up to date at `path`, creating it
    /// when missing: every branch of the remote is fetched to the branch of the same name,
    /// moved even when the remote's history was rewritten, and branches the remote no
    /// longer has are removed.
    ///
    /// `url` is anything libgit2 fetches from: a path, `file://`, `https://`, or `ssh://`
    /// where libgit2 was built with SSH.
    ///
    /// - Throws: `GitError` with `.fetchFailed` when the remote cannot be reached or read.
    public static func mirror(from url: String, into path: String) throws -> Repository {
        _ = libgit2Initialized
        var repository: OpaquePointer?
        if git_repository_open_ext(&repository, path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil) != 0 {
            try check(git_repository_init(&repository, path, 1), "git_repository_init")
        }
        guard let repository else { throw lastError("git_repository_init") }
        let mirror = try Repository(owning: repository, path: path)
        try mirror.fetchAllBranches(from: url)
        return mirror
    }

    private func fetchAllBranches(from url: String) throws {
        var remote: OpaquePointer?
        guard git_remote_create_anonymous(&remote, handle, url) == 0, let remote else {
            throw GitError(
                code: .fetchFailed, message: "cannot use '\(url)' as a remote: \(lastErrorMessage())",
                function: "git_remote_create_anonymous")
        }
        defer { git_remote_free(remote) }
        var options = git_fetch_options()
        try check(git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION)), "git_fetch_options_init")
        options.prune = GIT_FETCH_PRUNE
        options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
        let refspec = strdup("+refs/heads/*:refs/heads/*")
        defer { free(refspec) }
        var pointers: [UnsafeMutablePointer<CChar>?] = [refspec]
        let result = pointers.withUnsafeMutableBufferPointer { buffer in
            var refspecs = git_strarray(strings: buffer.baseAddress, count: 1)
            return git_remote_fetch(remote, &refspecs, &options, "setu: fetch")
        }
        guard result == 0 else {
            throw GitError(
                code: .fetchFailed, message: "cannot fetch from '\(url)': \(lastErrorMessage())",
                function: "git_remote_fetch")
        }
    }
}

// MARK: - Errors

private func lastErrorMessage() -> String {
    guard let error = git_error_last(), let message = error.pointee.message else { return "unknown libgit2 error" }
    return String(cString: message).trimmingTrailingNewlines()
}

private func lastError(_ function: String, code: GitError.Code = .libgit2) -> GitError {
    GitError(code: code, message: lastErrorMessage(), function: function)
}

private func check(_ result: Int32, _ function: String) throws {
    if result < 0 { throw lastError(function) }
}

extension String {
    fileprivate func trimmingTrailingNewlines() -> String {
        var text = self
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        return text
    }
}
