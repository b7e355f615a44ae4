/*
 * aurora/common.h - the vocabulary shared by the plugin descriptor
 * (aurora/plugin.h) and the host API (aurora/host_api.h).
 *
 * ABI VERSIONING (read this before changing anything in sdk/include/aurora/)
 *
 *   AURORA_ABI_MAJOR changes only when an existing field, function or
 *   meaning changes. A host refuses a plugin whose major differs from its own.
 *
 *   AURORA_ABI_MINOR grows when something is appended: a hook at the end of
 *   aurora_plugin, a function at the end of aurora_host_api, a field at the
 *   end of a struct, a new enum value. A host refuses a plugin whose minor is
 *   newer than its own (the plugin may rely on a function the host lacks).
 *   An older plugin in a newer host always loads: the host reads only the
 *   first `struct_size` bytes of the plugin's descriptor and treats missing
 *   hooks as NULL.
 *
 *   Structs and tables grow ONLY AT THE END. Nothing is ever removed,
 *   reordered or resized. tests/sdk/abi_layout_test.c pins every offset and
 *   tests/abi/ keeps a plugin built against the frozen v1.0 headers that every
 *   later host must load. docs/abi.md has the rules and the tables.
 *
 * This header is C99 and has no dependency beyond <stdint.h>/<stddef.h>.
 */
#ifndef AURORA_COMMON_H
#define AURORA_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AURORA_ABI_MAJOR 1
#define AURORA_ABI_MINOR 3

/* Exported symbols of a plugin (build with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define AURORA_EXPORT __attribute__((visibility("default")))
#define AURORA_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define AURORA_EXPORT
#define AURORA_PRINTF(fmt_index, first_arg)
#endif

/* Status of a host API call or of a plugin's init. AURORA_OK is 0; every
 * other value is an error. Values are stable; new ones are appended. */
typedef int32_t aurora_status;
enum {
    AURORA_OK = 0,
    AURORA_ERR = 1,             /* unspecified failure (see the log) */
    AURORA_ERR_INVALID = 2,     /* a bad argument: NULL, malformed, out of range */
    AURORA_ERR_NOT_FOUND = 3,   /* no such connection, room, setting */
    AURORA_ERR_CLOSED = 4,      /* the connection or host is closing / closed */
    AURORA_ERR_WRONG_THREAD = 5,/* called from a thread the function forbids */
    AURORA_ERR_DENIED = 6,      /* a plugin refused (e.g. on_join) */
    AURORA_ERR_LIMIT = 7,       /* a configured bound was reached */
    AURORA_ERR_NOMEM = 8
};

/* A string that is not necessarily NUL-terminated. Ownership is stated by
 * every function that takes or returns one. {NULL, 0} is "absent". */
typedef struct aurora_str {
    const char *ptr;
    size_t len;
} aurora_str;

/* Builds an aurora_str from a string LITERAL, in C and C++. The "" makes a
 * pointer argument a compile error (sizeof a pointer would be wrong). */
#define AURORA_STR_LIT(s) aurora_str_make("" s, sizeof("" s) - 1)
static inline aurora_str aurora_str_make(const char *ptr, size_t len) {
    aurora_str s;
    s.ptr = ptr;
    s.len = len;
    return s;
}

/* Log levels, most to least severe. */
typedef int32_t aurora_log_level;
enum {
    AURORA_LOG_ERROR = 0,
    AURORA_LOG_WARN = 1,
    AURORA_LOG_INFO = 2,
    AURORA_LOG_DEBUG = 3
};

/* What a message hook decides (on_message), and what a join hook decides
 * (on_join: CONTINUE admits, DROP refuses). */
typedef int32_t aurora_verdict;
enum {
    AURORA_CONTINUE = 0, /* pass the message to the next plugin */
    AURORA_DROP = 1,     /* stop here; nothing is sent back */
    AURORA_REPLY = 2,    /* stop here; the host sends the reply set with
                            host->msg_set_reply() to the sender */
    AURORA_PENDING = 3   /* the plugin keeps the message and finishes it later
                            with host->msg_resume() from any thread */
};

/* What an authenticate hook decides. */
typedef int32_t aurora_auth_verdict;
enum {
    AURORA_AUTH_ABSTAIN = 0, /* no opinion: ask the next plugin */
    AURORA_AUTH_ACCEPT = 1,  /* identity filled in: the connection is accepted */
    AURORA_AUTH_REJECT = 2   /* refused with the status and reason filled in */
};

/* A connection's id: unique for the life of the host process, never 0, never
 * reused. Plugins keep ids, not handles, across threads and hooks. */
typedef uint64_t aurora_conn_id;

/* Opaque handles. Each function that takes one says which thread may use it
 * and how long it is valid. */
typedef struct aurora_plugin_ctx aurora_plugin_ctx; /* the host's view of one loaded plugin */
typedef struct aurora_conn aurora_conn;             /* a WebSocket connection, during a hook */
typedef struct aurora_handshake aurora_handshake;   /* an upgrade request, during authenticate */
typedef struct aurora_msg aurora_msg;               /* an inbound frame in the pipeline */
typedef struct aurora_http_req aurora_http_req;     /* an HTTP request awaiting its reply */
typedef struct aurora_worker aurora_worker;         /* a thread started by host->spawn */
typedef struct aurora_metric aurora_metric;         /* a registered metric */

/* The two tables (aurora/plugin.h, aurora/host_api.h). */
typedef struct aurora_plugin aurora_plugin;
typedef struct aurora_host_api aurora_host_api;

#ifdef __cplusplus
}
#endif

#endif /* AURORA_COMMON_H */
