/*
 * aurora/plugin.h - what a plugin gives the host.
 *
 * A PLUGIN is a shared object (.so) that exports exactly one symbol:
 *
 *     AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void);
 *
 * It returns a pointer to a static descriptor that lives as long as the
 * library is loaded. The host calls it once, right after dlopen, on the main
 * thread, and checks:
 *   - abi_major == the host's AURORA_ABI_MAJOR,
 *   - abi_minor <= the host's AURORA_ABI_MINOR,
 *   - struct_size >= the size of the v1.0 descriptor (AURORA_PLUGIN_V1_0_SIZE),
 *   - name is a non-empty string of [a-z0-9_] (it names the plugin in logs,
 *     metrics and config).
 * On any failure the host unloads the library and refuses to start, naming
 * the file, the reason and both versions.
 *
 * The minimal plugin:
 *
 *     #include <aurora/aurora.h>
 *     static const aurora_plugin desc = {
 *         .struct_size = sizeof(aurora_plugin),
 *         .abi_major = AURORA_ABI_MAJOR, .abi_minor = AURORA_ABI_MINOR,
 *         .name = "hello", .version = "1.0.0", .description = "says nothing",
 *     };
 *     AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &desc; }
 *
 * (In C++, designated initializers must follow declaration order and g++
 * warns about the hooks left out under -Wextra: list them as nullptr, or
 * fill the struct field by field in a function.)
 *
 * NAMES. The descriptor's `name` identifies the code. The config's
 * `plugins[].name` names the instance: it is what logs, metrics
 * ("aurora_<instance>_...") and errors show. Loading one .so twice under two
 * instance names maps the library once, so its globals are shared: a plugin
 * that supports several instances keeps everything in its `state`.
 *
 * HOOKS. Every hook is optional (NULL = not interested). `state` is the
 * pointer the plugin stored in *state_out during init. Unless stated
 * otherwise a hook runs on the SERVICE THREAD (the one thread of the host's
 * libuv loop, which owns the connections plugins see; aurora/host_api.h,
 * THREADS) and MUST NOT BLOCK: no network or disk I/O, no password
 * hashing, no waiting on locks held by slow work. Work that blocks
 * belongs on the plugin's own threads (host->spawn), which talk back through
 * the thread-safe host functions (send, broadcast, msg_resume, http_reply).
 * A hook must not let a C++ exception or a longjmp escape.
 *
 * Hooks run in the order of the `plugins` array of the host config; that
 * order is the message pipeline.
 *
 * See aurora/host_api.h for what a plugin may ask of the host, and
 * docs/plugin-guide.md for a walk through samples/echo.
 */
#ifndef AURORA_PLUGIN_H
#define AURORA_PLUGIN_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an authenticate hook fills in. The host zeroes it and sets
 * struct_size before the call; the plugin writes only fields that fit in
 * struct_size. Strings are copied by the host when the hook returns, so they
 * may point into the plugin's stack or buffers. */
typedef struct aurora_identity {
    uint32_t struct_size;
    /* ACCEPT: who the peer is. user_id is required; username defaults to it. */
    aurora_str user_id;
    aurora_str username;
    /* REJECT: the HTTP status of the refused upgrade (401 if 0) and a short
     * reason (logged and sent as the response body). */
    uint32_t reject_status;
    aurora_str reject_reason;
} aurora_identity;

struct aurora_plugin {
    /* --- ABI v1.0 ------------------------------------------------------ */
    uint32_t struct_size; /* sizeof(aurora_plugin) as the plugin saw it */
    uint16_t abi_major;   /* AURORA_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;   /* AURORA_ABI_MINOR the plugin was built with */
    const char *name;        /* required: [a-z0-9_]+, static */
    const char *version;     /* the plugin's own version, static, may be NULL */
    const char *description; /* one line, static, may be NULL */

    /* Main thread, once, before the host starts serving. `host` and `self`
     * stay valid until shutdown returns; keep them. The plugin's own config
     * is host->config_json(self). Return AURORA_OK, or an error after logging
     * the reason with host->log_msg: the host then calls no other hook (not even
     * shutdown), unloads the plugin and exits with code 2. May start threads
     * with host->spawn. */
    aurora_status (*init)(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out);

    /* Main thread, once, after the service loop stopped and every thread the
     * plugin started with host->spawn has been joined. Free everything. No
     * host function other than log/config may be called from here. */
    void (*shutdown)(void *state);

    /* Service thread, for each WebSocket upgrade request, in pipeline order
     * until a plugin ACCEPTs or REJECTs. If every plugin ABSTAINs the host
     * accepts an anonymous connection only when its config allows it
     * (`allow_anonymous`), else rejects with 401. `hs` is valid during the
     * call only. Must be quick (a JWT check, not a database query). */
    aurora_auth_verdict (*authenticate)(void *state, const aurora_handshake *hs, aurora_identity *identity);

    /* Service thread, after the upgrade completed / after the connection
     * closed (for every connection that got on_connect). `conn` is valid
     * during the call only; keep host->conn_id(conn) instead. */
    void (*on_connect)(void *state, aurora_conn *conn);
    void (*on_disconnect)(void *state, aurora_conn *conn);

    /* Service thread, when host->room_join is called for a connection:
     * AURORA_CONTINUE admits, AURORA_DROP refuses (any other value is an
     * error, logged, and refuses too). `room` is valid during the call only.
     * on_leave runs after the connection left the room (including when it
     * disconnects). */
    aurora_verdict (*on_join)(void *state, aurora_conn *conn, aurora_str room);
    void (*on_leave)(void *state, aurora_conn *conn, aurora_str room);

    /* Service thread, for every well-formed inbound frame, in pipeline
     * order, until a plugin returns something other than CONTINUE. The host
     * has already checked that the frame is valid UTF-8, a JSON object within
     * the size limit, and that `type` (if present) is a string. `msg` is
     * valid during the call; if the hook returns AURORA_PENDING the plugin
     * owns it until it calls host->msg_resume(msg, verdict) exactly once,
     * from any thread. A message nobody handles is answered with an error
     * `unhandled`. */
    aurora_verdict (*on_message)(void *state, aurora_conn *conn, aurora_msg *msg);

    /* Service thread, for GET /ready: 1 if the plugin can serve (its
     * Redis/MongoDB connections are up), 0 if not. NULL means always ready.
     * Must return at once (read a flag your threads maintain). */
    int32_t (*is_ready)(void *state);

    /* --- append new hooks below this line, bump AURORA_ABI_MINOR -------- */
};

/* Size of the v1.0 descriptor: the smallest struct_size a host accepts. */
#define AURORA_PLUGIN_V1_0_SIZE (offsetof(aurora_plugin, is_ready) + sizeof(void *))

/* The one symbol a plugin exports. */
#define AURORA_PLUGIN_ENTRY_SYMBOL "aurora_plugin_entry"
typedef const aurora_plugin *(*aurora_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* AURORA_PLUGIN_H */
