/*
 * stress.c - a fixture plugin for the end-to-end tests of the host
 * (tests/e2e/host/). It is not installed and not meant for production.
 *
 * It drives the host's hot paths from outside the service thread:
 *
 *   - at init it starts `threads` workers (host->spawn) that sleep in
 *     host->worker_wait until a client sends {"type":"start"}; each worker
 *     then broadcasts `messages` frames {"type":"burst","t":<worker index>,
 *     "seq":<0..messages-1>} to `room`, and returns when done or when the
 *     host asks it to stop. A test checks that every member of the room
 *     receives every frame, in order per worker;
 *   - {"type":"blob","bytes":N,"count":K} queues K frames of about N bytes
 *     to the sender with host->send from the service thread, faster than any
 *     client can read them: the way to overflow a connection's send queue.
 *
 * Config (every key optional; an unknown key or a bad value fails init with
 * a log line naming the key):
 *
 *   | key      | type             | default   | meaning                              |
 *   |----------|------------------|-----------|--------------------------------------|
 *   | threads  | integer 0-256    | 8         | broadcasting workers                 |
 *   | messages | integer 0-10^8   | 10000     | frames each worker broadcasts        |
 *   | room     | non-empty string | "stress"  | room of the bursts, default of join  |
 *   | ready    | bool             | true      | what the is_ready hook answers       |
 *
 * Messages (on_message; anything else is CONTINUE):
 *
 *   {"type":"join","room":R}  host->room_join(conn, R) (R defaults to `room`),
 *                             reply {"type":"joined","room":R}, or
 *                             {"type":"error","code":"join_failed","status":S}
 *   {"type":"start"}          wakes the workers once, reply {"type":"started",
 *                             "threads":T,"messages":M,"already":B}
 *   {"type":"blob","bytes":N,"count":K}
 *                             K frames {"type":"blob","seq":i,"pad":"xx.."} of
 *                             max(N, header) bytes to the sender, then reply
 *                             {"type":"blob_done","count":K,"bytes":N}; if a
 *                             send fails (the host closed the connection) the
 *                             rest is skipped and nothing is replied (DROP).
 *
 * THREADS. on_message and is_ready run on the service thread; the workers
 * on their own threads. Shared between them, with __atomic builtins (the
 * file is C99): stress_state.started (written by the service thread, read
 * by the workers) and worker_slot.worker (written once by its worker, read
 * by the service thread to wake it). Everything else is written during init
 * and only read afterwards.
 */
#include <aurora/aurora.h>

#include <cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRESS_MAX_THREADS 256
#define STRESS_MAX_MESSAGES 100000000.0
#define STRESS_MAX_BLOB_BYTES (16 * 1024 * 1024)
#define STRESS_MAX_BLOB_COUNT 1000000
#define STRESS_WAIT_MS 1000u

typedef struct stress_state stress_state;

typedef struct worker_slot {
    stress_state *st;
    uint32_t index;
    aurora_worker *worker; /* set by the worker thread once it runs (atomic) */
} worker_slot;

struct stress_state {
    const aurora_host_api *host;
    aurora_plugin_ctx *self;
    uint32_t threads;
    uint32_t messages;
    char *room;
    size_t room_len;
    int32_t ready;
    int32_t started; /* 0 until the first "start" (atomic) */
    worker_slot *slots;
};

/* ---- config ------------------------------------------------------------ */

/* An integer-valued JSON number in [lo, hi], else -1 (and a log line). */
static int config_integer(stress_state *st, const cJSON *item, double lo, double hi, double *out) {
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) || item->valuedouble < lo ||
        item->valuedouble > hi) {
        st->host->log_msg(st->self, AURORA_LOG_ERROR, "config: \"%s\" must be an integer in [%.0f, %.0f]",
                      item->string, lo, hi);
        return -1;
    }
    *out = item->valuedouble;
    return 0;
}

static aurora_status parse_config(stress_state *st) {
    aurora_str text = st->host->config_json(st->self);
    cJSON *root = cJSON_ParseWithLength(text.ptr, text.len);
    const char *room = "stress";
    aurora_status status = AURORA_OK;
    const cJSON *item;
    double value;

    st->threads = 8;
    st->messages = 10000;
    st->ready = 1;
    if (!cJSON_IsObject(root)) {
        st->host->log_msg(st->self, AURORA_LOG_ERROR, "config: not a JSON object");
        cJSON_Delete(root);
        return AURORA_ERR_INVALID;
    }
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "threads") == 0) {
            if (config_integer(st, item, 0, STRESS_MAX_THREADS, &value) != 0) {
                status = AURORA_ERR_INVALID;
                break;
            }
            st->threads = (uint32_t)value;
        } else if (strcmp(item->string, "messages") == 0) {
            if (config_integer(st, item, 0, STRESS_MAX_MESSAGES, &value) != 0) {
                status = AURORA_ERR_INVALID;
                break;
            }
            st->messages = (uint32_t)value;
        } else if (strcmp(item->string, "room") == 0) {
            if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
                st->host->log_msg(st->self, AURORA_LOG_ERROR, "config: \"room\" must be a non-empty string");
                status = AURORA_ERR_INVALID;
                break;
            }
            room = item->valuestring;
        } else if (strcmp(item->string, "ready") == 0) {
            if (!cJSON_IsBool(item)) {
                st->host->log_msg(st->self, AURORA_LOG_ERROR, "config: \"ready\" must be true or false");
                status = AURORA_ERR_INVALID;
                break;
            }
            st->ready = cJSON_IsTrue(item) ? 1 : 0;
        } else {
            st->host->log_msg(st->self, AURORA_LOG_ERROR,
                          "config: unknown key \"%s\" (known: threads, messages, room, ready)", item->string);
            status = AURORA_ERR_INVALID;
            break;
        }
    }
    if (status == AURORA_OK) {
        st->room_len = strlen(room);
        st->room = malloc(st->room_len + 1);
        if (!st->room) {
            status = AURORA_ERR_NOMEM;
        } else {
            memcpy(st->room, room, st->room_len + 1);
        }
    }
    cJSON_Delete(root);
    return status;
}

/* ---- workers ----------------------------------------------------------- */

static void burst_worker(aurora_worker *w, void *arg) {
    worker_slot *slot = arg;
    stress_state *st = slot->st;
    const aurora_host_api *host = st->host;
    aurora_str room = aurora_str_make(st->room, st->room_len);
    char frame[96];
    uint32_t seq;
    int logged_failure = 0;

    __atomic_store_n(&slot->worker, w, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&st->started, __ATOMIC_ACQUIRE)) {
        if (host->worker_wait(w, STRESS_WAIT_MS)) {
            return;
        }
    }
    for (seq = 0; seq < st->messages; ++seq) {
        int n = snprintf(frame, sizeof frame, "{\"type\":\"burst\",\"t\":%u,\"seq\":%u}", slot->index, seq);
        aurora_status status;
        for (;;) {
            if (host->worker_should_stop(w)) {
                host->log_msg(st->self, AURORA_LOG_INFO, "worker %u stopped at seq %u", slot->index, seq);
                return;
            }
            status = host->broadcast(st->self, room, aurora_str_make(frame, (size_t)n), 0);
            if (status == AURORA_OK) {
                break;
            }
            if (status == AURORA_ERR_CLOSED) {
                host->log_msg(st->self, AURORA_LOG_INFO, "worker %u: host closing at seq %u", slot->index, seq);
                return;
            }
            /* A full hand-off queue (or no memory): back off and retry the
             * same seq, so the receivers' order check stays meaningful. */
            if (!logged_failure) {
                host->log_msg(st->self, AURORA_LOG_WARN, "worker %u: broadcast returned %d at seq %u, retrying",
                          slot->index, (int)status, seq);
                logged_failure = 1;
            }
            host->worker_wait(w, 1);
        }
    }
    host->log_msg(st->self, AURORA_LOG_INFO, "worker %u broadcast %u frames to room %s", slot->index, st->messages,
              st->room);
}

/* ---- replies ----------------------------------------------------------- */

/* Sets `reply` (consumed) as the message's reply; REPLY, or DROP if it
 * could not be built. */
static aurora_verdict reply_with(stress_state *st, aurora_msg *msg, cJSON *reply) {
    char *text = reply ? cJSON_PrintUnformatted(reply) : NULL;
    aurora_verdict verdict = AURORA_DROP;
    if (text && st->host->msg_set_reply(msg, aurora_str_make(text, strlen(text))) == AURORA_OK) {
        verdict = AURORA_REPLY;
    }
    cJSON_free(text);
    cJSON_Delete(reply);
    return verdict;
}

static aurora_verdict reply_error(stress_state *st, aurora_msg *msg, const char *code, const char *message) {
    cJSON *reply = cJSON_CreateObject();
    cJSON_AddStringToObject(reply, "type", "error");
    cJSON_AddStringToObject(reply, "code", code);
    cJSON_AddStringToObject(reply, "message", message);
    return reply_with(st, msg, reply);
}

/* ---- message handlers (service thread) --------------------------------- */

static aurora_verdict handle_join(stress_state *st, aurora_conn *conn, aurora_msg *msg, const cJSON *frame) {
    const cJSON *room_item = cJSON_GetObjectItemCaseSensitive(frame, "room");
    const char *room = st->room;
    aurora_status status;
    cJSON *reply;

    if (room_item) {
        if (!cJSON_IsString(room_item) || room_item->valuestring[0] == '\0') {
            return reply_error(st, msg, "bad_field", "room must be a non-empty string");
        }
        room = room_item->valuestring;
    }
    status = st->host->room_join(st->self, st->host->conn_id(conn), aurora_str_make(room, strlen(room)));
    reply = cJSON_CreateObject();
    if (status == AURORA_OK) {
        cJSON_AddStringToObject(reply, "type", "joined");
        cJSON_AddStringToObject(reply, "room", room);
    } else {
        cJSON_AddStringToObject(reply, "type", "error");
        cJSON_AddStringToObject(reply, "code", "join_failed");
        cJSON_AddNumberToObject(reply, "status", status);
    }
    return reply_with(st, msg, reply);
}

static aurora_verdict handle_start(stress_state *st, aurora_msg *msg) {
    int32_t already = __atomic_exchange_n(&st->started, 1, __ATOMIC_ACQ_REL);
    cJSON *reply = cJSON_CreateObject();
    uint32_t i;

    if (!already) {
        /* A worker that has not stored its handle yet checks `started`
         * before it first waits, so it cannot miss the start. */
        for (i = 0; i < st->threads; ++i) {
            aurora_worker *w = __atomic_load_n(&st->slots[i].worker, __ATOMIC_ACQUIRE);
            if (w) {
                st->host->worker_wake(w);
            }
        }
        st->host->log_msg(st->self, AURORA_LOG_INFO, "start: %u workers x %u frames to room %s", st->threads,
                      st->messages, st->room);
    }
    cJSON_AddStringToObject(reply, "type", "started");
    cJSON_AddNumberToObject(reply, "threads", st->threads);
    cJSON_AddNumberToObject(reply, "messages", st->messages);
    cJSON_AddBoolToObject(reply, "already", already != 0);
    return reply_with(st, msg, reply);
}

static aurora_verdict handle_blob(stress_state *st, aurora_conn *conn, aurora_msg *msg, const cJSON *frame) {
    const cJSON *bytes_item = cJSON_GetObjectItemCaseSensitive(frame, "bytes");
    const cJSON *count_item = cJSON_GetObjectItemCaseSensitive(frame, "count");
    aurora_conn_id id = st->host->conn_id(conn);
    size_t bytes, cap;
    int count, i;
    char *buf;
    cJSON *reply;

    if (!cJSON_IsNumber(bytes_item) || bytes_item->valuedouble < 1 || bytes_item->valuedouble > STRESS_MAX_BLOB_BYTES ||
        !cJSON_IsNumber(count_item) || count_item->valuedouble < 1 ||
        count_item->valuedouble > STRESS_MAX_BLOB_COUNT) {
        return reply_error(st, msg, "bad_field", "blob needs bytes in [1, 16777216] and count in [1, 1000000]");
    }
    bytes = (size_t)bytes_item->valuedouble;
    count = (int)count_item->valuedouble;
    cap = bytes + 64;
    buf = malloc(cap);
    if (!buf) {
        return reply_error(st, msg, "internal", "out of memory");
    }
    for (i = 0; i < count; ++i) {
        int head = snprintf(buf, cap, "{\"type\":\"blob\",\"seq\":%d,\"pad\":\"", i);
        size_t len = (size_t)head;
        aurora_status status;
        if (bytes > len + 2) {
            memset(buf + len, 'x', bytes - len - 2);
            len = bytes - 2;
        }
        buf[len++] = '"';
        buf[len++] = '}';
        status = st->host->send(st->self, id, aurora_str_make(buf, len));
        if (status != AURORA_OK) {
            st->host->log_conn(st->self, AURORA_LOG_INFO, id, "blob: send %d of %d returned %d, stopping", i, count,
                               (int)status);
            free(buf);
            return AURORA_DROP;
        }
    }
    free(buf);
    reply = cJSON_CreateObject();
    cJSON_AddStringToObject(reply, "type", "blob_done");
    cJSON_AddNumberToObject(reply, "count", count);
    cJSON_AddNumberToObject(reply, "bytes", (double)bytes);
    return reply_with(st, msg, reply);
}

/* ---- hooks ------------------------------------------------------------- */

static int str_is(aurora_str s, const char *lit) {
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static aurora_verdict stress_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    stress_state *st = state;
    aurora_str type = st->host->msg_type(msg);
    aurora_str payload;
    aurora_verdict verdict;
    cJSON *frame;

    if (!str_is(type, "join") && !str_is(type, "start") && !str_is(type, "blob")) {
        return AURORA_CONTINUE;
    }
    if (str_is(type, "start")) {
        return handle_start(st, msg);
    }
    payload = st->host->msg_payload(msg);
    frame = cJSON_ParseWithLength(payload.ptr, payload.len);
    if (!frame) {
        return reply_error(st, msg, "internal", "stress: cannot parse a frame the host accepted");
    }
    verdict = str_is(type, "join") ? handle_join(st, conn, msg, frame) : handle_blob(st, conn, msg, frame);
    cJSON_Delete(frame);
    return verdict;
}

static int32_t stress_is_ready(void *state) {
    return ((stress_state *)state)->ready;
}

static aurora_status stress_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out) {
    stress_state *st = calloc(1, sizeof *st);
    aurora_status status;
    uint32_t i;

    if (!st) {
        host->log_msg(self, AURORA_LOG_ERROR, "out of memory");
        return AURORA_ERR_NOMEM;
    }
    st->host = host;
    st->self = self;
    status = parse_config(st);
    if (status != AURORA_OK) {
        free(st->room);
        free(st);
        return status;
    }
    st->slots = calloc(st->threads ? st->threads : 1, sizeof *st->slots);
    if (!st->slots) {
        host->log_msg(self, AURORA_LOG_ERROR, "out of memory");
        free(st->room);
        free(st);
        return AURORA_ERR_NOMEM;
    }
    for (i = 0; i < st->threads; ++i) {
        char name[32];
        st->slots[i].st = st;
        st->slots[i].index = i;
        snprintf(name, sizeof name, "stress-%u", i);
        status = host->spawn(self, name, burst_worker, &st->slots[i]);
        if (status != AURORA_OK) {
            /* Workers already started may still run until the host stops
             * them, so their state is deliberately not freed here. */
            host->log_msg(self, AURORA_LOG_ERROR, "spawn of worker %u failed with status %d", i, (int)status);
            return status;
        }
    }
    host->log_msg(self, AURORA_LOG_INFO, "ready: %u workers, %u frames each, room %s", st->threads, st->messages,
              st->room);
    *state_out = st;
    return AURORA_OK;
}

static void stress_shutdown(void *state) {
    stress_state *st = state;
    free(st->slots);
    free(st->room);
    free(st);
}

static const aurora_plugin stress_descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "stress",
    .version = "1.0.0",
    .description = "e2e fixture: threaded room bursts and send-queue floods",
    .init = stress_init,
    .shutdown = stress_shutdown,
    .on_message = stress_on_message,
    .is_ready = stress_is_ready,
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &stress_descriptor;
}
