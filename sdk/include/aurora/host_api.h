/*
 * aurora/host_api.h - what the host gives a plugin.
 *
 * The host passes `const aurora_host_api *host` and `aurora_plugin_ctx *self`
 * to the plugin's init hook. Both stay valid until the plugin's shutdown hook
 * returns. Plugins call the host ONLY through this table; they never link
 * against the host binary, so one plugin .so works in aurora-host, in a
 * product that embeds libaurora_host, and under the Python test driver.
 *
 * VERSIONING. The table starts with struct_size and the host's ABI version.
 * Functions are only appended (see aurora/common.h). A plugin that wants a
 * function added in minor N checks first:
 *
 *     if (AURORA_HOST_HAS(host, some_new_function)) host->some_new_function(...);
 *
 * THREADS. Three kinds of callers appear below:
 *   - "main thread": the thread that runs init/shutdown;
 *   - "service thread": the thread of the host's own libuv loop. It owns
 *     the connections plugins see and runs every hook except init/shutdown.
 *     The host frames WebSocket connections itself, on libuv TCP handles;
 *     libwebsockets joins that loop as a foreign loop and serves HTTP only;
 *   - "any thread": also the plugin's own threads (host->spawn) and threads
 *     of libraries the plugin uses. These functions copy what they need,
 *     queue it and wake the service thread; they never block on the network.
 * Calling a service-thread function from another thread returns
 * AURORA_ERR_WRONG_THREAD (or an empty result) and logs once.
 *
 * OWNERSHIP. Strings passed IN are copied before the call returns unless a
 * function says otherwise. Strings returned OUT (aurora_str) point into host
 * memory: never free them, and use them only for as long as the function
 * says (typically: during the current hook, or while the handle is valid).
 * Returned strings are NOT NUL-terminated unless stated.
 *
 * HANDLES, and how long each stays valid (the one statement of it; the
 * functions below only repeat it):
 *   - host, self, and every aurora_metric: until the plugin's shutdown hook
 *     returns.
 *   - aurora_conn *: during the hook that received it. Keep the
 *     aurora_conn_id instead: a plain number, never dangling; functions
 *     given the id of a connection that is gone return AURORA_ERR_NOT_FOUND
 *     (or ignore it, where they say so).
 *   - aurora_handshake *: during the authenticate hook.
 *   - aurora_msg *: from on_message until its verdict: the hook's return
 *     value, or for AURORA_PENDING until msg_resume returns (any thread,
 *     exactly once; then it is gone).
 *   - aurora_http_req *: from the route handler until http_reply (any
 *     thread, exactly once), even if the client has left (reference
 *     counted: see aurora_http_handler).
 *   - aurora_io *, aurora_timer * (v1.2): until io_stop / timer_stop, at
 *     the latest until the plugin's shutdown hook returns.
 *   - aurora_worker *: from spawn until the plugin's shutdown hook returns,
 *     so other threads and hooks may worker_wake it at any time; after the
 *     host has joined the thread (at shutdown, before the shutdown hook)
 *     worker_wake does nothing.
 */
#ifndef AURORA_HOST_API_H
#define AURORA_HOST_API_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A handler for an HTTP route. Service thread. `req` stays valid until the
 * plugin calls host->http_reply(req, ...) exactly once, from any thread,
 * now or later (e.g. after hashing a password on a worker thread).
 *
 * LIFETIME, by construction: the request is reference counted between the
 * host and the plugin. The handler runs only once the whole body is in
 * (whatever the method), and the plugin's reference lasts until its reply
 * has been applied on the service thread. If the client leaves meanwhile,
 * or the host answers by itself (408 for a body too slow, 413), the request
 * stays readable by the plugin and its reply is discarded. A second
 * http_reply on the same request is a plugin bug: the host logs it and
 * ignores it if the request is still known, but the handle may already be
 * freed. */
typedef void (*aurora_http_handler)(void *userdata, aurora_http_req *req);

/* The body of a thread started with host->spawn. Runs on its own thread until
 * it returns; it should return soon after host->worker_should_stop(w) turns
 * 1. `w` stays valid until the plugin's shutdown hook returns (HANDLES). */
typedef void (*aurora_worker_fn)(aurora_worker *w, void *arg);

/* ABI v1.2: a descriptor or a timer on the service loop (io_watch,
 * timer_start). Opaque; see HANDLES above and the functions. */
typedef struct aurora_io aurora_io;
typedef struct aurora_timer aurora_timer;
#define AURORA_IO_READ 1u
#define AURORA_IO_WRITE 2u
/* Service thread. `ready`: what the descriptor is ready for (a mask). */
typedef void (*aurora_io_fn)(void *arg, uint32_t ready);
/* Service thread. */
typedef void (*aurora_timer_fn)(void *arg);

struct aurora_host_api {
    /* --- ABI v1.0 -------------------------------------------------------- */
    uint32_t struct_size; /* sizeof(aurora_host_api) as the host was built */
    uint16_t abi_major;   /* the host's AURORA_ABI_MAJOR */
    uint16_t abi_minor;   /* the host's AURORA_ABI_MINOR */

    /* ---- Logging and configuration. Any thread. ---- */

    /* One log line with the time, level and plugin name. `fmt` is printf.
     * `self` is required (NULL: nothing is logged). Not named `log`, which
     * <tgmath.h> defines as a macro. */
    void (*log_msg)(aurora_plugin_ctx *self, aurora_log_level level, const char *fmt, ...) AURORA_PRINTF(3, 4);
    /* The same, tagged with a connection id. */
    void (*log_conn)(aurora_plugin_ctx *self, aurora_log_level level, aurora_conn_id conn, const char *fmt, ...)
        AURORA_PRINTF(4, 5);
    /* 1 if a line at `level` would be written (to skip building costly ones). */
    int32_t (*log_enabled)(aurora_plugin_ctx *self, aurora_log_level level);

    /* The plugin's `config` object from the host config, as JSON text
     * ("{}" when absent). NUL-terminated. Valid until shutdown returns. */
    aurora_str (*config_json)(aurora_plugin_ctx *self);
    /* A shared setting by dotted key: "redis.url", "mongo.url", "jwt.secret",
     * "listen.host", "listen.port", "web_root". NUL-terminated; {NULL,0} if
     * unset. The value is the host config's. aurora-host applies the
     * environment overrides (AURORA_HOST, AURORA_PORT, AURORA_REDIS_URL, ...:
     * docs/configuration.md) to its config file before it loads plugins, so
     * there they are included; a host embedded through aurora/embed.h
     * (aurora_host_create) applies none, and the value is the config as the
     * program gave it. Valid until shutdown returns. */
    aurora_str (*setting)(aurora_plugin_ctx *self, const char *key);

    /* ---- Connections, during a hook. Service thread. ----
     * `conn` handles are valid only during the hook that received them. */

    aurora_conn_id (*conn_id)(const aurora_conn *conn);
    /* Identity set by the authenticate hook that accepted the connection
     * (empty for anonymous connections). Valid while `conn` is. */
    aurora_str (*conn_user_id)(const aurora_conn *conn);
    aurora_str (*conn_username)(const aurora_conn *conn);
    /* The client's address as text ("127.0.0.1"). With the config's
     * trusted_proxies empty, or a TCP peer that matches none of them, it is
     * the peer's address. When the peer is a trusted proxy, it is the
     * nearest address in X-Forwarded-For (read right to left) that is not
     * itself a trusted proxy; the peer's address again if the header is
     * absent, lists only trusted proxies, or has an entry that is not an IP
     * address before such an address. hs_remote_addr and http_remote_addr
     * are chosen the same way. Valid while `conn` is. */
    aurora_str (*conn_remote_addr)(const aurora_conn *conn);
    /* One pointer per plugin per connection, NULL at first. The plugin owns
     * what it stores and frees it in on_disconnect. */
    void *(*conn_get_data)(aurora_plugin_ctx *self, const aurora_conn *conn);
    void (*conn_set_data)(aurora_plugin_ctx *self, aurora_conn *conn, void *data);

    /* ---- The upgrade request, during authenticate. Service thread. ----
     * Results are valid during the authenticate call only. */

    /* A request header by case-insensitive name ("origin", "user-agent"). */
    aurora_str (*hs_header)(const aurora_handshake *hs, const char *name);
    /* A query-string parameter, percent-decoded. */
    aurora_str (*hs_query)(const aurora_handshake *hs, const char *key);
    aurora_str (*hs_path)(const aurora_handshake *hs);
    /* The bearer token: from the subprotocol "Bearer.<token>", else from
     * "Authorization: Bearer <token>", else from "?token=". */
    aurora_str (*hs_token)(const aurora_handshake *hs);
    aurora_str (*hs_remote_addr)(const aurora_handshake *hs);

    /* ---- Messages in the pipeline. ----
     * Service thread during on_message; any thread while the plugin owns a
     * PENDING message. Results are valid while the message is. */

    /* The frame as JSON text (or what a plugin replaced it with). */
    aurora_str (*msg_payload)(const aurora_msg *msg);
    /* The frame's "type"; "message" for the seed's plain {"text": ...}. */
    aurora_str (*msg_type)(const aurora_msg *msg);
    aurora_conn_id (*msg_conn_id)(const aurora_msg *msg);
    /* Replace the payload seen by the plugins after this one (a filter that
     * rewrites text). `json` is copied; it must be a JSON object. */
    aurora_status (*msg_set_payload)(aurora_msg *msg, aurora_str json);
    /* The reply sent to the sender when the verdict is AURORA_REPLY: a JSON
     * object (AURORA_ERR_INVALID otherwise). Copied. */
    aurora_status (*msg_set_reply)(aurora_msg *msg, aurora_str json);
    /* Finish a PENDING message: CONTINUE runs the rest of the pipeline, DROP
     * discards it, REPLY sends the reply set with msg_set_reply. Call exactly
     * once, from any thread; `msg` is invalid after the call. If the sender
     * has closed meanwhile, the message still goes through the rest of the
     * pipeline (what the server received is processed) and only its answers
     * are dropped: the connection's on_disconnect runs after its last
     * PENDING message is finished (or after 30 s, if a plugin never
     * resumes; a later resume is then discarded). */
    aurora_status (*msg_resume)(aurora_msg *msg, aurora_verdict verdict);

    /* ---- Sending. Any thread. ----
     * Asynchronous: the frame is queued and written by the service thread.
     * AURORA_OK means queued, not delivered. A connection whose send queue
     * stays over its bound is closed (1008) rather than allowed to grow. */

    /* One text frame to one connection. `payload` is copied. A connection
     * that no longer exists is ignored (the call still returns AURORA_OK
     * from threads other than the service thread, which cannot know). */
    aurora_status (*send)(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str payload);
    /* One text frame to every connection of this host process in `room`,
     * except `except` (0 for none). The payload is copied once and shared by
     * every recipient's queue. */
    aurora_status (*broadcast)(aurora_plugin_ctx *self, aurora_str room, aurora_str payload, aurora_conn_id except);
    /* Close a connection with a WebSocket close code (1000-4999) and reason.
     * Frames already queued for it (by any thread, before this call was
     * processed) are sent first; nothing queued afterwards is. */
    aurora_status (*close)(aurora_plugin_ctx *self, aurora_conn_id conn, uint16_t code, aurora_str reason);

    /* ---- Rooms of this host process. Service thread. ----
     * A room name is 1 to 256 bytes (AURORA_ERR_INVALID otherwise); which
     * names clients may use is the business of the plugin that joins them. */

    /* Runs every plugin's on_join; if none refuses, adds the connection.
     * AURORA_ERR_DENIED if refused, AURORA_ERR_LIMIT over `max_rooms_per_conn`,
     * AURORA_OK if added or already a member. */
    aurora_status (*room_join)(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str room);
    /* Removes the connection, then runs every plugin's on_leave. */
    aurora_status (*room_leave)(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str room);
    /* 1 if the connection is in the room, else 0. */
    int32_t (*room_has)(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str room);
    /* Local members of a room (this process only). */
    uint32_t (*room_size)(aurora_plugin_ctx *self, aurora_str room);

    /* ---- HTTP. ---- */

    /* Main thread, during init only. Routes `method` ("GET", "POST", ...) on
     * `path` ("/api/auth/login"); with `prefix` = 1 every path under it
     * ("/api/rooms/"). Paths the host serves itself (/health, /ready,
     * /metrics) cannot be taken. Both strings are copied. */
    aurora_status (*http_route)(aurora_plugin_ctx *self, const char *method, const char *path, int32_t prefix,
                                aurora_http_handler handler, void *userdata);
    /* Request getters: any thread, valid until http_reply. */
    aurora_str (*http_method)(const aurora_http_req *req);
    aurora_str (*http_path)(const aurora_http_req *req);
    aurora_str (*http_query)(const aurora_http_req *req, const char *key); /* percent-decoded */
    aurora_str (*http_header)(const aurora_http_req *req, const char *name);
    aurora_str (*http_body)(const aurora_http_req *req); /* at most the route's limit (http_route_limits) */
    aurora_str (*http_remote_addr)(const aurora_http_req *req);
    /* Answer a request: any thread, exactly once; `req` is invalid after.
     * `content_type` NUL-terminated (NULL = application/json).
     * `extra_headers` is zero or more "Name: value\r\n" lines. Everything is
     * copied. If the client has gone, the reply is discarded. */
    aurora_status (*http_reply)(aurora_http_req *req, uint16_t status, const char *content_type,
                                aurora_str extra_headers, aurora_str body);

    /* ---- Threads. ---- */

    /* Main thread, during init only. Starts `fn(w, arg)` on a new thread
     * named `name` (copied). At shutdown the host sets the stop flag, wakes
     * worker_wait, joins the thread, and only then calls the plugin's
     * shutdown hook. */
    aurora_status (*spawn)(aurora_plugin_ctx *self, const char *name, aurora_worker_fn fn, void *arg);
    /* The worker's own thread: 1 once the host asked it to stop. */
    int32_t (*worker_should_stop)(const aurora_worker *w);
    /* The worker's own thread: sleeps up to timeout_ms or until stop is
     * asked or worker_wake is called; returns worker_should_stop(w). */
    int32_t (*worker_wait)(aurora_worker *w, uint32_t timeout_ms);
    /* Any thread: ends the current or next worker_wait of `w` early. */
    void (*worker_wake)(aurora_worker *w);

    /* ---- Metrics, exported at GET /metrics in Prometheus text format. ----
     * Registration: main thread during init; the name is prefixed with
     * "aurora_<plugin>_"; `labels` is a constant label set such as
     * `reason="full"` or NULL. The same name may be registered with several
     * label sets. Returns NULL on a bad name. Updates: any thread, lock-free. */
    aurora_metric *(*metric_counter)(aurora_plugin_ctx *self, const char *name, const char *help, const char *labels);
    aurora_metric *(*metric_gauge)(aurora_plugin_ctx *self, const char *name, const char *help, const char *labels);
    /* `bounds`: ascending upper bounds (copied); NULL/0 for the default
     * latency buckets in seconds (0.0001 .. 10). */
    aurora_metric *(*metric_histogram)(aurora_plugin_ctx *self, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t n_bounds);
    void (*metric_add)(aurora_metric *m, double delta);   /* counter (delta >= 0) or gauge */
    void (*metric_set)(aurora_metric *m, double value);   /* gauge */
    void (*metric_observe)(aurora_metric *m, double value); /* histogram */

    /* ---- Clock. Any thread. ---- */
    uint64_t (*now_monotonic_ns)(void);
    uint64_t (*now_wall_ms)(void); /* Unix time in milliseconds */

    /* ---- Running code on the service thread. ---- */

    /* Any thread. Queues fn(arg) to run on the service thread, in one FIFO
     * with everything else this thread queued (send, broadcast, close,
     * msg_resume, http_reply): e.g. a fan-out thread can broadcast message
     * N, then have a connection join the room, then broadcast N+1, and the
     * connection gets N+1 and not N. From the service thread itself, fn runs
     * after the current hook returns. Queued calls always run, at the latest
     * while the host shuts down (before any plugin's shutdown hook).
     * AURORA_ERR_CLOSED once the host no longer accepts work: fn will not
     * run, so the caller still owns arg. */
    aurora_status (*call_on_service)(aurora_plugin_ctx *self, void (*fn)(void *arg), void *arg);

    /* --- ABI v1.1 -------------------------------------------------------- */

    /* ---- Raw messages (conformance suites, binary protocols). ----
     * By default the host answers by itself every message that is not a
     * JSON object frame (a binary message, text that is not JSON, a bad
     * "type"): plugins only ever see JSON objects. */

    /* Main thread, during init only. From now on this plugin's on_message
     * also receives those messages, verbatim: msg_type is "" for them and
     * msg_is_binary tells a binary one from text. They go to the plugins
     * that asked for them only, in pipeline order; if none of them answers
     * (REPLY/DROP), the host sends its usual error. The frame limits and
     * budgets apply as to every message. AURORA_ERR_WRONG_THREAD after init. */
    aurora_status (*accept_raw_messages)(aurora_plugin_ctx *self);
    /* 1 if the message came in binary frames, else 0. As msg_payload. */
    int32_t (*msg_is_binary)(const aurora_msg *msg);
    /* One binary frame to one connection: as send (any thread, copied,
     * queued in order with the connection's other frames). */
    aurora_status (*send_binary)(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str payload);

    /* ---- What the host parsed, and its own error frame. ----
     * The host has parsed every JSON message before a plugin sees it: a
     * plugin need not parse it again to answer it. */

    /* The message's "ref" as JSON text, as the host echoes it in replies: a
     * string with its quotes, or a number; {NULL,0} if it had none (and for
     * raw messages). Not NUL-terminated. As msg_payload. */
    aurora_str (*msg_ref)(const aurora_msg *msg);
    /* Sets the message's reply to the host's error frame,
     * {"type":"error","code":code,"message":message,"ref":<its ref>} ("ref"
     * only if it had one): the frame the host itself sends for a refused
     * message (docs/protocol.md, "Errors"). `code` ([a-z0-9_]+, at most 64
     * characters) and `message` (UTF-8) are NUL-terminated and copied; the
     * host escapes them. Then return AURORA_REPLY (or msg_resume(msg,
     * AURORA_REPLY)). AURORA_ERR_INVALID for a bad code. As msg_set_reply. */
    aurora_status (*msg_reply_error)(aurora_msg *msg, const char *code, const char *message);
    /* The same error frame to one connection, for answers that come after
     * the verdict (e.g. from a plugin thread). `ref`: what msg_ref gave
     * (copied), or {NULL,0}; AURORA_ERR_INVALID if it is not a JSON string
     * or number, or for a bad code. As send (any thread, queued in order
     * with the connection's other frames). */
    aurora_status (*send_error)(aurora_plugin_ctx *self, aurora_conn_id conn, const char *code, const char *message,
                                aurora_str ref);

    /* --- ABI v1.2 -------------------------------------------------------- */

    /* ---- Descriptors and timers on the service loop. ----
     * A plugin that talks to a network service through a non-blocking client
     * (hiredis's async API, a socket of its own) can run it on the host's
     * loop, as Redis and nginx modules do: no thread of its own, no hand-off
     * per request. The callbacks below run on the service thread like hooks,
     * and like hooks they must never block.
     *
     * Who may call: the service thread, or the main thread while the
     * plugin's init hook runs (e.g. to connect before the loop starts), or
     * the main thread in the plugin's shutdown hook (io_stop and timer_stop
     * only). AURORA_ERR_WRONG_THREAD (or NULL) otherwise.
     *
     * HANDLES. An aurora_io or aurora_timer stays valid until the plugin
     * stops it (io_stop, timer_stop; a one-shot timer that fired too), at
     * the latest until its shutdown hook returns: the host frees what is
     * left then. Once the service loop has ended (the host is stopping,
     * before the shutdown hook) no callback runs any more; stopping is still
     * allowed and needed for nothing but tidiness. */

    /* Service thread or init. Watches `fd` (the plugin's: the host never
     * reads, writes or closes it) for `events`, a mask of AURORA_IO_READ and
     * AURORA_IO_WRITE (0: registered, nothing watched yet). fn(arg, ready)
     * runs on the service thread in every loop iteration where the
     * descriptor is ready; an error or a hang-up is reported as
     * AURORA_IO_READ (the next read tells which). fn may call io_set and
     * io_stop on its own handle. One watch per descriptor. NULL for a bad
     * argument, a second watch of the same descriptor, or the wrong thread. */
    aurora_io *(*io_watch)(aurora_plugin_ctx *self, int fd, uint32_t events, aurora_io_fn fn, void *arg);
    /* Service thread or init. Changes what `io` watches. Cheap when nothing
     * changes; otherwise one system call: prefer keeping READ armed and
     * writing before sleep (call_before_sleep) to toggling WRITE per
     * request. AURORA_ERR_INVALID for a bad mask. */
    aurora_status (*io_set)(aurora_io *io, uint32_t events);
    /* See "who may call". fn never runs again once io_stop returns, and the
     * handle is gone. Call it before closing the descriptor. */
    void (*io_stop)(aurora_io *io);

    /* Service thread or init. fn(arg) runs on the service thread once
     * `after_ms` milliseconds from now, then every `repeat_ms` if it is not
     * 0. NULL for a bad argument or the wrong thread. */
    aurora_timer *(*timer_start)(aurora_plugin_ctx *self, uint64_t after_ms, uint64_t repeat_ms, aurora_timer_fn fn,
                                 void *arg);
    /* See "who may call". fn never runs again once timer_stop returns, and
     * the handle is gone: stop every timer, a one-shot one after it fired
     * too (from inside fn is allowed). */
    void (*timer_stop)(aurora_timer *timer);

    /* Service thread or init. fn(arg) runs once on the service thread before
     * the loop next waits for events: after every callback and hook of the
     * current iteration, before the host writes the frames queued in it.
     * Work that many hooks of one iteration produce goes out together (e.g.
     * a pipeline of Redis commands in one write), as Redis' beforeSleep
     * does. fn may queue another call, which runs in the same pass.
     * AURORA_ERR_WRONG_THREAD elsewhere; AURORA_ERR_CLOSED once the loop has
     * ended (fn will not run). */
    aurora_status (*call_before_sleep)(aurora_plugin_ctx *self, void (*fn)(void *arg), void *arg);

    /* --- ABI v1.3 -------------------------------------------------------- */

    /* ---- A route's own body limits (uploads). ----
     * Main thread, during init only, after http_route of the same method,
     * path and prefix by this plugin. Requests to that route may carry up to
     * `max_body_bytes` (1 .. 1 GiB; 0: the host's limits.http_max_body_bytes)
     * and have `body_timeout_ms` (1 .. 3,600,000; 0: the host's
     * limits.http_body_timeout_ms) for the whole body to arrive; larger or
     * slower bodies get 413 or 408 and never reach the plugin, as for every
     * route. The host holds a body in memory until http_reply: a large limit
     * costs that much per request in flight. http_body returns up to the
     * route's limit. AURORA_ERR_INVALID for a route this plugin has not
     * added or a value out of range; AURORA_ERR_WRONG_THREAD after init. */
    aurora_status (*http_route_limits)(aurora_plugin_ctx *self, const char *method, const char *path, int32_t prefix,
                                       uint64_t max_body_bytes, uint32_t body_timeout_ms);

    /* --- append new functions below this line, bump AURORA_ABI_MINOR ---- */
};

/* 1 if the host's table is large enough to contain `field`. */
#define AURORA_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(aurora_host_api, field) + sizeof((host)->field) && (host)->field != NULL)

#ifdef __cplusplus
}
#endif

#endif /* AURORA_HOST_API_H */
