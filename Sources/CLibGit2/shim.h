#ifndef SETU_CLIBGIT2_SHIM_H
#define SETU_CLIBGIT2_SHIM_H
#include <git2.h>
#include <git2/sys/repository.h>

/* git_libgit2_opts is variadic, which Swift cannot call: one wrapper per option used. */

/* Whether reading an object re-hashes it to check its id (libgit2's default: yes). */
static inline int setu_git_set_strict_hash_verification(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, enabled);
}

/* The largest object of a type that libgit2 keeps in its object cache (default for trees: 4 KiB). */
static inline int setu_git_set_cache_object_limit(git_object_t type, size_t size) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, type, size);
}

/* The most memory libgit2's object caches may hold, all repositories together (default 256 MiB). */
static inline int setu_git_set_cache_max_size(ssize_t size) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, size);
}
#endif
