#ifndef SETU_CLIBGIT2_SHIM_H
#define SETU_CLIBGIT2_SHIM_H
#include <git2.h>
#include <git2/sys/repository.h>
#endif
