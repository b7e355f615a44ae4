/*
 * abi_layout_test.c - pins the ABI v1.0 layout of the public headers.
 *
 * Every size, offset, signature and constant that a compiled plugin or host
 * depends on is written here as a LITERAL, for LP64 (x86_64, aarch64). If a
 * change to sdk/include/aurora/ moves one of them, this file stops compiling:
 * that change breaks every plugin already built. Compiled as C11 for
 * _Static_assert and _Generic; the headers themselves are C99 (checked by
 * headers_c99_check.c) and C++-safe (headers_cxx_check.cpp).
 *
 * When AURORA_ABI_MINOR is bumped (docs/abi.md, "Adding a function"): add the
 * pins of the appended fields below, update the sizeof pins and the minor
 * pin, and leave every existing line as it is.
 */
#include <aurora/aurora.h>
#include <aurora/embed.h>

#include <stdio.h>
#include <string.h>

#if !(defined(__LP64__) || defined(_LP64))
#error "the layout pins below are written for LP64 targets (x86_64, aarch64)"
#endif

#define PIN(cond) _Static_assert(cond, #cond)
#define PIN_FIELD(type, field, offset, size)                                                  \
    _Static_assert(offsetof(type, field) == (offset), #type "." #field " moved");            \
    _Static_assert(sizeof(((type *)0)->field) == (size), #type "." #field " changed size")
/* The exact type of a field: a changed hook or function signature is an ABI
 * break just like a moved offset. _Generic does not evaluate its operand. */
#define PIN_TYPE(type, field, field_type) \
    _Static_assert(_Generic(((type *)0)->field, field_type: 1, default: 0), #type "." #field " changed type")

/* ---- Versions and constants ------------------------------------------ */

PIN(AURORA_ABI_MAJOR == 1);
/* Bumping the minor means something was appended: pin it below, then
 * update this line. */
PIN(AURORA_ABI_MINOR == 3);
PIN(AURORA_PLUGIN_V1_0_SIZE == 104);

/* ---- Scalar typedefs ---------------------------------------------------- */

PIN(sizeof(aurora_status) == 4);
PIN(sizeof(aurora_log_level) == 4);
PIN(sizeof(aurora_verdict) == 4);
PIN(sizeof(aurora_auth_verdict) == 4);
PIN(sizeof(aurora_conn_id) == 8);
PIN((aurora_status)-1 < 0);       /* signed */
PIN((aurora_conn_id)-1 > 0);      /* unsigned */

/* ---- Enum values --------------------------------------------------------- */

PIN(AURORA_OK == 0);
PIN(AURORA_ERR == 1);
PIN(AURORA_ERR_INVALID == 2);
PIN(AURORA_ERR_NOT_FOUND == 3);
PIN(AURORA_ERR_CLOSED == 4);
PIN(AURORA_ERR_WRONG_THREAD == 5);
PIN(AURORA_ERR_DENIED == 6);
PIN(AURORA_ERR_LIMIT == 7);
PIN(AURORA_ERR_NOMEM == 8);

PIN(AURORA_LOG_ERROR == 0);
PIN(AURORA_LOG_WARN == 1);
PIN(AURORA_LOG_INFO == 2);
PIN(AURORA_LOG_DEBUG == 3);

PIN(AURORA_CONTINUE == 0);
PIN(AURORA_DROP == 1);
PIN(AURORA_REPLY == 2);
PIN(AURORA_PENDING == 3);

PIN(AURORA_AUTH_ABSTAIN == 0);
PIN(AURORA_AUTH_ACCEPT == 1);
PIN(AURORA_AUTH_REJECT == 2);

/* embed.h: equal to aurora-host's exit codes (DESIGN §8). */
PIN(AURORA_HOST_EXIT_OK == 0);
PIN(AURORA_HOST_EXIT_FATAL == 1);
PIN(AURORA_HOST_EXIT_BAD_CONFIG == 2);

/* ---- aurora_str ------------------------------------------------------------ */

PIN(sizeof(aurora_str) == 16);
PIN(_Alignof(aurora_str) == 8);
PIN_FIELD(aurora_str, ptr, 0, 8);
PIN_FIELD(aurora_str, len, 8, 8);
PIN_TYPE(aurora_str, ptr, const char *);
PIN_TYPE(aurora_str, len, size_t);

/* ---- aurora_identity ------------------------------------------------------- */

PIN(sizeof(aurora_identity) == 64);
PIN_FIELD(aurora_identity, struct_size, 0, 4);
PIN_FIELD(aurora_identity, user_id, 8, 16);
PIN_FIELD(aurora_identity, username, 24, 16);
PIN_FIELD(aurora_identity, reject_status, 40, 4);
PIN_FIELD(aurora_identity, reject_reason, 48, 16);
PIN_TYPE(aurora_identity, struct_size, uint32_t);
PIN_TYPE(aurora_identity, user_id, aurora_str);
PIN_TYPE(aurora_identity, username, aurora_str);
PIN_TYPE(aurora_identity, reject_status, uint32_t);
PIN_TYPE(aurora_identity, reject_reason, aurora_str);

/* ---- aurora_plugin (the plugin's descriptor) --------------------------------- */

PIN(sizeof(aurora_plugin) == 104);
PIN_FIELD(aurora_plugin, struct_size, 0, 4);
PIN_FIELD(aurora_plugin, abi_major, 4, 2);
PIN_FIELD(aurora_plugin, abi_minor, 6, 2);
PIN_FIELD(aurora_plugin, name, 8, 8);
PIN_FIELD(aurora_plugin, version, 16, 8);
PIN_FIELD(aurora_plugin, description, 24, 8);
PIN_FIELD(aurora_plugin, init, 32, 8);
PIN_FIELD(aurora_plugin, shutdown, 40, 8);
PIN_FIELD(aurora_plugin, authenticate, 48, 8);
PIN_FIELD(aurora_plugin, on_connect, 56, 8);
PIN_FIELD(aurora_plugin, on_disconnect, 64, 8);
PIN_FIELD(aurora_plugin, on_join, 72, 8);
PIN_FIELD(aurora_plugin, on_leave, 80, 8);
PIN_FIELD(aurora_plugin, on_message, 88, 8);
PIN_FIELD(aurora_plugin, is_ready, 96, 8);

PIN_TYPE(aurora_plugin, struct_size, uint32_t);
PIN_TYPE(aurora_plugin, abi_major, uint16_t);
PIN_TYPE(aurora_plugin, abi_minor, uint16_t);
PIN_TYPE(aurora_plugin, name, const char *);
PIN_TYPE(aurora_plugin, version, const char *);
PIN_TYPE(aurora_plugin, description, const char *);
PIN_TYPE(aurora_plugin, init, aurora_status (*)(const aurora_host_api *, aurora_plugin_ctx *, void **));
PIN_TYPE(aurora_plugin, shutdown, void (*)(void *));
PIN_TYPE(aurora_plugin, authenticate,
         aurora_auth_verdict (*)(void *, const aurora_handshake *, aurora_identity *));
PIN_TYPE(aurora_plugin, on_connect, void (*)(void *, aurora_conn *));
PIN_TYPE(aurora_plugin, on_disconnect, void (*)(void *, aurora_conn *));
PIN_TYPE(aurora_plugin, on_join, aurora_verdict (*)(void *, aurora_conn *, aurora_str));
PIN_TYPE(aurora_plugin, on_leave, void (*)(void *, aurora_conn *, aurora_str));
PIN_TYPE(aurora_plugin, on_message, aurora_verdict (*)(void *, aurora_conn *, aurora_msg *));
PIN_TYPE(aurora_plugin, is_ready, int32_t (*)(void *));

PIN(_Generic((aurora_plugin_entry_fn)0, const aurora_plugin *(*)(void): 1, default: 0));

/* ---- aurora_host_api (the host's function table) ------------------------------ */

PIN(sizeof(aurora_host_api) == 512);
PIN_FIELD(aurora_host_api, struct_size, 0, 4);
PIN_FIELD(aurora_host_api, abi_major, 4, 2);
PIN_FIELD(aurora_host_api, abi_minor, 6, 2);
/* Logging and configuration */
PIN_FIELD(aurora_host_api, log_msg, 8, 8);
PIN_FIELD(aurora_host_api, log_conn, 16, 8);
PIN_FIELD(aurora_host_api, log_enabled, 24, 8);
PIN_FIELD(aurora_host_api, config_json, 32, 8);
PIN_FIELD(aurora_host_api, setting, 40, 8);
/* Connections */
PIN_FIELD(aurora_host_api, conn_id, 48, 8);
PIN_FIELD(aurora_host_api, conn_user_id, 56, 8);
PIN_FIELD(aurora_host_api, conn_username, 64, 8);
PIN_FIELD(aurora_host_api, conn_remote_addr, 72, 8);
PIN_FIELD(aurora_host_api, conn_get_data, 80, 8);
PIN_FIELD(aurora_host_api, conn_set_data, 88, 8);
/* Handshake */
PIN_FIELD(aurora_host_api, hs_header, 96, 8);
PIN_FIELD(aurora_host_api, hs_query, 104, 8);
PIN_FIELD(aurora_host_api, hs_path, 112, 8);
PIN_FIELD(aurora_host_api, hs_token, 120, 8);
PIN_FIELD(aurora_host_api, hs_remote_addr, 128, 8);
/* Messages */
PIN_FIELD(aurora_host_api, msg_payload, 136, 8);
PIN_FIELD(aurora_host_api, msg_type, 144, 8);
PIN_FIELD(aurora_host_api, msg_conn_id, 152, 8);
PIN_FIELD(aurora_host_api, msg_set_payload, 160, 8);
PIN_FIELD(aurora_host_api, msg_set_reply, 168, 8);
PIN_FIELD(aurora_host_api, msg_resume, 176, 8);
/* Sending */
PIN_FIELD(aurora_host_api, send, 184, 8);
PIN_FIELD(aurora_host_api, broadcast, 192, 8);
PIN_FIELD(aurora_host_api, close, 200, 8);
/* Rooms */
PIN_FIELD(aurora_host_api, room_join, 208, 8);
PIN_FIELD(aurora_host_api, room_leave, 216, 8);
PIN_FIELD(aurora_host_api, room_has, 224, 8);
PIN_FIELD(aurora_host_api, room_size, 232, 8);
/* HTTP */
PIN_FIELD(aurora_host_api, http_route, 240, 8);
PIN_FIELD(aurora_host_api, http_method, 248, 8);
PIN_FIELD(aurora_host_api, http_path, 256, 8);
PIN_FIELD(aurora_host_api, http_query, 264, 8);
PIN_FIELD(aurora_host_api, http_header, 272, 8);
PIN_FIELD(aurora_host_api, http_body, 280, 8);
PIN_FIELD(aurora_host_api, http_remote_addr, 288, 8);
PIN_FIELD(aurora_host_api, http_reply, 296, 8);
/* Threads */
PIN_FIELD(aurora_host_api, spawn, 304, 8);
PIN_FIELD(aurora_host_api, worker_should_stop, 312, 8);
PIN_FIELD(aurora_host_api, worker_wait, 320, 8);
PIN_FIELD(aurora_host_api, worker_wake, 328, 8);
/* Metrics */
PIN_FIELD(aurora_host_api, metric_counter, 336, 8);
PIN_FIELD(aurora_host_api, metric_gauge, 344, 8);
PIN_FIELD(aurora_host_api, metric_histogram, 352, 8);
PIN_FIELD(aurora_host_api, metric_add, 360, 8);
PIN_FIELD(aurora_host_api, metric_set, 368, 8);
PIN_FIELD(aurora_host_api, metric_observe, 376, 8);
/* Clock */
PIN_FIELD(aurora_host_api, now_monotonic_ns, 384, 8);
PIN_FIELD(aurora_host_api, now_wall_ms, 392, 8);
PIN_FIELD(aurora_host_api, call_on_service, 400, 8);
/* ABI v1.1: raw messages */
PIN_FIELD(aurora_host_api, accept_raw_messages, 408, 8);
PIN_FIELD(aurora_host_api, msg_is_binary, 416, 8);
PIN_FIELD(aurora_host_api, send_binary, 424, 8);
PIN_FIELD(aurora_host_api, msg_ref, 432, 8);
PIN_FIELD(aurora_host_api, msg_reply_error, 440, 8);
PIN_FIELD(aurora_host_api, send_error, 448, 8);
/* ABI v1.2: descriptors and timers on the service loop */
PIN_FIELD(aurora_host_api, io_watch, 456, 8);
PIN_FIELD(aurora_host_api, io_set, 464, 8);
PIN_FIELD(aurora_host_api, io_stop, 472, 8);
PIN_FIELD(aurora_host_api, timer_start, 480, 8);
PIN_FIELD(aurora_host_api, timer_stop, 488, 8);
PIN_FIELD(aurora_host_api, call_before_sleep, 496, 8);
/* ABI v1.3: a route's own body limits */
PIN_FIELD(aurora_host_api, http_route_limits, 504, 8);
PIN(AURORA_IO_READ == 1u);
PIN(AURORA_IO_WRITE == 2u);

PIN_TYPE(aurora_host_api, struct_size, uint32_t);
PIN_TYPE(aurora_host_api, abi_major, uint16_t);
PIN_TYPE(aurora_host_api, abi_minor, uint16_t);
PIN_TYPE(aurora_host_api, log_msg, void (*)(aurora_plugin_ctx *, aurora_log_level, const char *, ...));
PIN_TYPE(aurora_host_api, log_conn,
         void (*)(aurora_plugin_ctx *, aurora_log_level, aurora_conn_id, const char *, ...));
PIN_TYPE(aurora_host_api, log_enabled, int32_t (*)(aurora_plugin_ctx *, aurora_log_level));
PIN_TYPE(aurora_host_api, config_json, aurora_str (*)(aurora_plugin_ctx *));
PIN_TYPE(aurora_host_api, setting, aurora_str (*)(aurora_plugin_ctx *, const char *));
PIN_TYPE(aurora_host_api, conn_id, aurora_conn_id (*)(const aurora_conn *));
PIN_TYPE(aurora_host_api, conn_user_id, aurora_str (*)(const aurora_conn *));
PIN_TYPE(aurora_host_api, conn_username, aurora_str (*)(const aurora_conn *));
PIN_TYPE(aurora_host_api, conn_remote_addr, aurora_str (*)(const aurora_conn *));
PIN_TYPE(aurora_host_api, conn_get_data, void *(*)(aurora_plugin_ctx *, const aurora_conn *));
PIN_TYPE(aurora_host_api, conn_set_data, void (*)(aurora_plugin_ctx *, aurora_conn *, void *));
PIN_TYPE(aurora_host_api, hs_header, aurora_str (*)(const aurora_handshake *, const char *));
PIN_TYPE(aurora_host_api, hs_query, aurora_str (*)(const aurora_handshake *, const char *));
PIN_TYPE(aurora_host_api, hs_path, aurora_str (*)(const aurora_handshake *));
PIN_TYPE(aurora_host_api, hs_token, aurora_str (*)(const aurora_handshake *));
PIN_TYPE(aurora_host_api, hs_remote_addr, aurora_str (*)(const aurora_handshake *));
PIN_TYPE(aurora_host_api, msg_payload, aurora_str (*)(const aurora_msg *));
PIN_TYPE(aurora_host_api, msg_type, aurora_str (*)(const aurora_msg *));
PIN_TYPE(aurora_host_api, msg_conn_id, aurora_conn_id (*)(const aurora_msg *));
PIN_TYPE(aurora_host_api, msg_set_payload, aurora_status (*)(aurora_msg *, aurora_str));
PIN_TYPE(aurora_host_api, msg_set_reply, aurora_status (*)(aurora_msg *, aurora_str));
PIN_TYPE(aurora_host_api, msg_resume, aurora_status (*)(aurora_msg *, aurora_verdict));
PIN_TYPE(aurora_host_api, send, aurora_status (*)(aurora_plugin_ctx *, aurora_conn_id, aurora_str));
PIN_TYPE(aurora_host_api, broadcast,
         aurora_status (*)(aurora_plugin_ctx *, aurora_str, aurora_str, aurora_conn_id));
PIN_TYPE(aurora_host_api, close, aurora_status (*)(aurora_plugin_ctx *, aurora_conn_id, uint16_t, aurora_str));
PIN_TYPE(aurora_host_api, room_join, aurora_status (*)(aurora_plugin_ctx *, aurora_conn_id, aurora_str));
PIN_TYPE(aurora_host_api, room_leave, aurora_status (*)(aurora_plugin_ctx *, aurora_conn_id, aurora_str));
PIN_TYPE(aurora_host_api, room_has, int32_t (*)(aurora_plugin_ctx *, aurora_conn_id, aurora_str));
PIN_TYPE(aurora_host_api, room_size, uint32_t (*)(aurora_plugin_ctx *, aurora_str));
PIN_TYPE(aurora_host_api, http_route,
         aurora_status (*)(aurora_plugin_ctx *, const char *, const char *, int32_t, aurora_http_handler, void *));
PIN_TYPE(aurora_host_api, http_method, aurora_str (*)(const aurora_http_req *));
PIN_TYPE(aurora_host_api, http_path, aurora_str (*)(const aurora_http_req *));
PIN_TYPE(aurora_host_api, http_query, aurora_str (*)(const aurora_http_req *, const char *));
PIN_TYPE(aurora_host_api, http_header, aurora_str (*)(const aurora_http_req *, const char *));
PIN_TYPE(aurora_host_api, http_body, aurora_str (*)(const aurora_http_req *));
PIN_TYPE(aurora_host_api, http_remote_addr, aurora_str (*)(const aurora_http_req *));
PIN_TYPE(aurora_host_api, http_reply,
         aurora_status (*)(aurora_http_req *, uint16_t, const char *, aurora_str, aurora_str));
PIN_TYPE(aurora_host_api, spawn, aurora_status (*)(aurora_plugin_ctx *, const char *, aurora_worker_fn, void *));
PIN_TYPE(aurora_host_api, worker_should_stop, int32_t (*)(const aurora_worker *));
PIN_TYPE(aurora_host_api, worker_wait, int32_t (*)(aurora_worker *, uint32_t));
PIN_TYPE(aurora_host_api, worker_wake, void (*)(aurora_worker *));
PIN_TYPE(aurora_host_api, metric_counter,
         aurora_metric *(*)(aurora_plugin_ctx *, const char *, const char *, const char *));
PIN_TYPE(aurora_host_api, metric_gauge,
         aurora_metric *(*)(aurora_plugin_ctx *, const char *, const char *, const char *));
PIN_TYPE(aurora_host_api, metric_histogram,
         aurora_metric *(*)(aurora_plugin_ctx *, const char *, const char *, const char *, const double *, size_t));
PIN_TYPE(aurora_host_api, metric_add, void (*)(aurora_metric *, double));
PIN_TYPE(aurora_host_api, metric_set, void (*)(aurora_metric *, double));
PIN_TYPE(aurora_host_api, metric_observe, void (*)(aurora_metric *, double));
PIN_TYPE(aurora_host_api, now_monotonic_ns, uint64_t (*)(void));
PIN_TYPE(aurora_host_api, now_wall_ms, uint64_t (*)(void));
PIN_TYPE(aurora_host_api, call_on_service, aurora_status (*)(aurora_plugin_ctx *, void (*)(void *), void *));
PIN_TYPE(aurora_host_api, accept_raw_messages, aurora_status (*)(aurora_plugin_ctx *));
PIN_TYPE(aurora_host_api, msg_is_binary, int32_t (*)(const aurora_msg *));
PIN_TYPE(aurora_host_api, send_binary, aurora_status (*)(aurora_plugin_ctx *, aurora_conn_id, aurora_str));
PIN_TYPE(aurora_host_api, msg_ref, aurora_str (*)(const aurora_msg *));
PIN_TYPE(aurora_host_api, msg_reply_error, aurora_status (*)(aurora_msg *, const char *, const char *));
PIN_TYPE(aurora_host_api, send_error,
         aurora_status (*)(aurora_plugin_ctx *, aurora_conn_id, const char *, const char *, aurora_str));
PIN_TYPE(aurora_host_api, io_watch, aurora_io *(*)(aurora_plugin_ctx *, int, uint32_t, aurora_io_fn, void *));
PIN_TYPE(aurora_host_api, io_set, aurora_status (*)(aurora_io *, uint32_t));
PIN_TYPE(aurora_host_api, io_stop, void (*)(aurora_io *));
PIN_TYPE(aurora_host_api, timer_start,
         aurora_timer *(*)(aurora_plugin_ctx *, uint64_t, uint64_t, aurora_timer_fn, void *));
PIN_TYPE(aurora_host_api, timer_stop, void (*)(aurora_timer *));
PIN_TYPE(aurora_host_api, call_before_sleep, aurora_status (*)(aurora_plugin_ctx *, void (*)(void *), void *));
PIN_TYPE(aurora_host_api, http_route_limits,
         aurora_status (*)(aurora_plugin_ctx *, const char *, const char *, int32_t, uint64_t, uint32_t));

PIN(_Generic((aurora_http_handler)0, void (*)(void *, aurora_http_req *): 1, default: 0));
PIN(_Generic((aurora_worker_fn)0, void (*)(aurora_worker *, void *): 1, default: 0));
PIN(_Generic((aurora_io_fn)0, void (*)(void *, uint32_t): 1, default: 0));
PIN(_Generic((aurora_timer_fn)0, void (*)(void *): 1, default: 0));

/* ---- Runtime checks -------------------------------------------------------- */

/* From headers_c99_check.c and headers_cxx_check.cpp: the layout as a strict
 * C99 and a C++20 compiler see it, so all three agree. */
size_t aurora_c99_sizeof_plugin(void);
size_t aurora_c99_sizeof_host_api(void);
size_t aurora_cxx_sizeof_plugin(void);
size_t aurora_cxx_sizeof_host_api(void);
size_t aurora_cxx_offsetof_now_wall_ms(void);

static int failures = 0;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what);
        failures++;
    }
}

static aurora_str fake_config_json(aurora_plugin_ctx *self) {
    (void)self;
    return AURORA_STR_LIT("{}");
}

int main(void) {
    check(strcmp(AURORA_PLUGIN_ENTRY_SYMBOL, "aurora_plugin_entry") == 0, "AURORA_PLUGIN_ENTRY_SYMBOL");

    aurora_str lit = AURORA_STR_LIT("echo");
    check(lit.len == 4 && memcmp(lit.ptr, "echo", 4) == 0, "AURORA_STR_LIT length excludes the NUL");

    check(aurora_c99_sizeof_plugin() == sizeof(aurora_plugin), "C99 and C11 agree on sizeof(aurora_plugin)");
    check(aurora_c99_sizeof_host_api() == sizeof(aurora_host_api), "C99 and C11 agree on sizeof(aurora_host_api)");
    check(aurora_cxx_sizeof_plugin() == sizeof(aurora_plugin), "C++ and C agree on sizeof(aurora_plugin)");
    check(aurora_cxx_sizeof_host_api() == sizeof(aurora_host_api), "C++ and C agree on sizeof(aurora_host_api)");
    check(aurora_cxx_offsetof_now_wall_ms() == offsetof(aurora_host_api, now_wall_ms),
          "C++ and C agree on offsetof(aurora_host_api, now_wall_ms)");

    /* AURORA_HOST_HAS on a table from an older (shorter) host: fields past
     * struct_size read as absent even though the memory behind them is set. */
    aurora_host_api table;
    memset(&table, 0, sizeof table);
    table.config_json = fake_config_json;
    table.struct_size = (uint32_t)offsetof(aurora_host_api, config_json);
    check(!AURORA_HOST_HAS(&table, config_json), "AURORA_HOST_HAS: field beyond struct_size is absent");
    table.struct_size = (uint32_t)(offsetof(aurora_host_api, config_json) + sizeof(void *));
    check(AURORA_HOST_HAS(&table, config_json), "AURORA_HOST_HAS: field within struct_size is present");
    check(!AURORA_HOST_HAS(&table, log_msg), "AURORA_HOST_HAS: NULL field within struct_size is absent");

    if (failures != 0) {
        fprintf(stderr, "%d layout check(s) failed\n", failures);
        return 1;
    }
    printf("layout ok\n");
    return 0;
}
