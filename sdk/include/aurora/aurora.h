/*
 * aurora/aurora.h - everything a plugin includes.
 *
 *   aurora/common.h    ABI version, status codes, strings, handles, verdicts
 *   aurora/plugin.h    the plugin descriptor and its hooks (what you give)
 *   aurora/host_api.h  the host API table (what you get)
 *
 * Embedding the host in a program: aurora/embed.h (libaurora_host).
 * Manuals: docs/abi.md (rules and tables), docs/plugin-guide.md (a plugin
 * from scratch, walking through samples/echo).
 */
#ifndef AURORA_AURORA_H
#define AURORA_AURORA_H

#include "common.h"
#include "host_api.h"
#include "plugin.h"

#endif /* AURORA_AURORA_H */
