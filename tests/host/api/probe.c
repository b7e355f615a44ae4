/*
 * probe: a fixture plugin that exercises the parts of the host API the echo
 * sample does not: PENDING messages resumed from another thread, HTTP replies
 * from another thread, on_join refusals, per-connection data, authenticate.
 * Place it BEFORE echo in the pipeline. Driven by tests/host/api/test_host_api.py.
 *
 *   authenticate: ?user=NAME -> ACCEPT (user_id NAME, username "user-NAME");
 *                 else a bearer token T (host->hs_token) -> ACCEPT as user T;
 *                 ?deny=1 -> REJECT 403 "denied by probe"; otherwise ABSTAIN.
 *   on_message:   {"type":"defer_reply"} -> PENDING; the worker replies
 *                   {"type":"deferred","conn":ID} and resumes with REPLY.
 *                 {"type":"defer_drop"}  -> PENDING; the worker resumes DROP.
 *                 {"type":"echo","defer":true,...} -> PENDING; the worker
 *                   resumes CONTINUE, so the next plugin (echo) answers.
 *                 {"type":"whoami"} -> {"type":"whoami","user":...,"name":...,
 *                   "count":N,"addr":...} where N counts this connection's frames
 *                   (conn_get_data/conn_set_data).
 *                 {"type":"send_from_thread","n":K} -> the worker sends K
 *                   frames {"type":"threaded","seq":i} with host->send.
 *                 {"type":"join_via_worker"} -> the worker broadcasts
 *                   {"type":"ordered","seq":1} to room "ordered", then joins
 *                   the connection to it with host->call_on_service, then
 *                   broadcasts seq 2: the connection must get 2 and not 1.
 *                 {"type":"shout",...} -> the whole frame broadcast (service
 *                   thread) to room "shouts", the sender included; DROP.
 *                 {"type":"ref_of"} -> {"type":"ref_of","ref":R}: R is what
 *                   msg_ref gave (null if {NULL,0}).
 *                 {"type":"refuse"} -> msg_reply_error(msg, "probe_refused",
 *                   "refused by \"probe\""), REPLY.
 *                 {"type":"refuse_bad_code"} -> msg_reply_error with the code
 *                   "Bad Code"; replies {"type":"status","status":S}.
 *                 {"type":"refuse_later"} -> send_error(conn, "later",
 *                   "sent with send_error", msg_ref), then send_error with a
 *                   ref that is not a string or number, with a bad code, with
 *                   a ref that is not UTF-8, and with the ref text "01"
 *                   (sent as its canonical 1):
 *                   {"type":"status","bad_ref":S1,"bad_code":S2,"bad_utf8":S3}; DROP.
 *                 {"type":"stall","ms":N} -> sleeps N ms ON THE SERVICE
 *                   THREAD (the whole loop stops, as under a slow plugin);
 *                   DROP.
 *                 anything else counts and CONTINUEs.
 *   on_join:      refuses the room "forbidden".
 *                 Any deferred message may carry "hold_ms":N: the worker
 *                   waits N ms before resuming it.
 *   HTTP:         GET /probe/sync -> 200 {"sync":true} from the service thread.
 *                 POST /probe/async -> the worker answers 201 with the body
 *                   echoed and header "X-Probe: async".
 *                 GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS /probe/held?ms=N ->
 *                   the worker holds the request N ms (default 200), then
 *                   reads every getter and answers 200
 *                   {"method":M,"body_len":L}: a request whose client left
 *                   meanwhile must still be readable (ASan checks).
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <aurora/aurora.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { JOB_MSG, JOB_HTTP, JOB_HELD, JOB_SEND, JOB_ORDER } job_kind;

typedef struct job {
    job_kind kind;
    aurora_msg *msg;
    aurora_verdict verdict;
    aurora_http_req *req;
    aurora_conn_id conn;
    int count;
    int hold_ms;
    struct job *next;
} job;

typedef struct probe {
    const aurora_host_api *host;
    aurora_plugin_ctx *self;
    pthread_mutex_t mu;
    job *head, *tail; /* guarded by mu */
    aurora_worker *worker; /* set by the worker itself; guarded by mu */
    aurora_metric *deferred;
} probe;

static probe g_probe; /* one instance per process is enough for a fixture */

static void push(probe *p, job *j) {
    pthread_mutex_lock(&p->mu);
    if (p->tail) p->tail->next = j;
    else p->head = j;
    p->tail = j;
    aurora_worker *w = p->worker;
    pthread_mutex_unlock(&p->mu);
    if (w) p->host->worker_wake(w);
}

static job *pop(probe *p) {
    pthread_mutex_lock(&p->mu);
    job *j = p->head;
    if (j) {
        p->head = j->next;
        if (!p->head) p->tail = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return j;
}

typedef struct join_call {
    probe *p;
    aurora_conn_id conn;
} join_call;

static void join_on_service(void *arg) { /* service thread, via call_on_service */
    join_call *jc = arg;
    jc->p->host->room_join(jc->p->self, jc->conn, AURORA_STR_LIT("ordered"));
    free(jc);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void run_job(probe *p, job *j) {
    char buf[256];
    if (j->hold_ms > 0) sleep_ms(j->hold_ms);
    switch (j->kind) {
    case JOB_HELD: {
        aurora_str m = p->host->http_method(j->req), path = p->host->http_path(j->req);
        aurora_str body = p->host->http_body(j->req), q = p->host->http_query(j->req, "ms");
        aurora_str h = p->host->http_header(j->req, "content-length"), a = p->host->http_remote_addr(j->req);
        size_t sum = path.len + q.len + h.len + a.len; /* touch every getter's memory */
        for (size_t i = 0; i < body.len; ++i) sum += (unsigned char)body.ptr[i];
        int n = snprintf(buf, sizeof buf, "{\"method\":\"%.*s\",\"body_len\":%zu,\"sum\":%zu}", (int)m.len,
                         m.ptr ? m.ptr : "", body.len, sum);
        p->host->http_reply(j->req, 200, NULL, aurora_str_make(NULL, 0), aurora_str_make(buf, (size_t)n));
        break;
    }
    case JOB_MSG:
        if (j->verdict == AURORA_REPLY) {
            int n = snprintf(buf, sizeof buf, "{\"type\":\"deferred\",\"conn\":%llu}",
                             (unsigned long long)p->host->msg_conn_id(j->msg));
            p->host->msg_set_reply(j->msg, aurora_str_make(buf, (size_t)n));
        }
        p->host->metric_add(p->deferred, 1);
        p->host->msg_resume(j->msg, j->verdict);
        break;
    case JOB_HTTP: {
        aurora_str body = p->host->http_body(j->req);
        p->host->http_reply(j->req, 201, "application/json", AURORA_STR_LIT("X-Probe: async\r\n"), body);
        break;
    }
    case JOB_ORDER: {
        p->host->broadcast(p->self, AURORA_STR_LIT("ordered"), AURORA_STR_LIT("{\"type\":\"ordered\",\"seq\":1}"), 0);
        join_call *jc = calloc(1, sizeof *jc);
        if (jc) {
            jc->p = p;
            jc->conn = j->conn;
            if (p->host->call_on_service(p->self, join_on_service, jc) != AURORA_OK) free(jc);
        }
        p->host->broadcast(p->self, AURORA_STR_LIT("ordered"), AURORA_STR_LIT("{\"type\":\"ordered\",\"seq\":2}"), 0);
        break;
    }
    case JOB_SEND:
        for (int i = 0; i < j->count; ++i) {
            int n = snprintf(buf, sizeof buf, "{\"type\":\"threaded\",\"seq\":%d}", i);
            p->host->send(p->self, j->conn, aurora_str_make(buf, (size_t)n));
        }
        break;
    }
    free(j);
}

static void worker_main(aurora_worker *w, void *arg) {
    probe *p = arg;
    pthread_mutex_lock(&p->mu);
    p->worker = w;
    pthread_mutex_unlock(&p->mu);
    while (!p->host->worker_should_stop(w)) {
        job *j;
        while ((j = pop(p)) != NULL) run_job(p, j);
        p->host->worker_wait(w, 1000);
    }
    job *j; /* finish what is queued: a PENDING message must always be resumed */
    while ((j = pop(p)) != NULL) run_job(p, j);
}

static int has(aurora_str payload, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= payload.len; ++i) {
        if (memcmp(payload.ptr + i, needle, n) == 0) return 1;
    }
    return 0;
}

/* The integer after `key` in a JSON text (enough for a fixture), or `dflt`. */
static int field_int(aurora_str payload, const char *key, int dflt) {
    size_t n = strlen(key);
    for (size_t i = 0; i + n < payload.len; ++i) {
        if (memcmp(payload.ptr + i, key, n) != 0) continue;
        int v = 0, any = 0;
        size_t k = i + n;
        while (k < payload.len && payload.ptr[k] == ' ') ++k;
        for (; k < payload.len && payload.ptr[k] >= '0' && payload.ptr[k] <= '9'; ++k, any = 1)
            v = v * 10 + (payload.ptr[k] - '0');
        return any ? v : dflt;
    }
    return dflt;
}

static int str_is(aurora_str s, const char *lit) { return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0; }

static void http_sync(void *ud, aurora_http_req *req) {
    probe *p = ud;
    p->host->http_reply(req, 200, NULL, aurora_str_make(NULL, 0), AURORA_STR_LIT("{\"sync\":true}"));
}

static void http_async(void *ud, aurora_http_req *req) {
    probe *p = ud;
    job *j = calloc(1, sizeof *j);
    if (!j) {
        p->host->http_reply(req, 500, NULL, aurora_str_make(NULL, 0), AURORA_STR_LIT("{}"));
        return;
    }
    j->kind = JOB_HTTP;
    j->req = req;
    push(p, j);
}

static void http_held(void *ud, aurora_http_req *req) {
    probe *p = ud;
    job *j = calloc(1, sizeof *j);
    if (!j) {
        p->host->http_reply(req, 500, NULL, aurora_str_make(NULL, 0), AURORA_STR_LIT("{}"));
        return;
    }
    aurora_str ms = p->host->http_query(req, "ms");
    j->kind = JOB_HELD;
    j->req = req;
    j->hold_ms = 200;
    if (ms.len && ms.len < 6) {
        j->hold_ms = 0;
        for (size_t i = 0; i < ms.len && ms.ptr[i] >= '0' && ms.ptr[i] <= '9'; ++i) j->hold_ms = j->hold_ms * 10 + (ms.ptr[i] - '0');
    }
    push(p, j);
}

static aurora_status probe_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state) {
    probe *p = &g_probe;
    memset(p, 0, sizeof *p);
    p->host = host;
    p->self = self;
    pthread_mutex_init(&p->mu, NULL);
    p->deferred = host->metric_counter(self, "deferred_total", "Messages resumed from the worker", NULL);
    if (host->http_route(self, "GET", "/probe/sync", 0, http_sync, p) != AURORA_OK ||
        host->http_route(self, "POST", "/probe/async", 0, http_async, p) != AURORA_OK ||
        host->http_route(self, "GET", "/probe/held", 0, http_held, p) != AURORA_OK ||
        host->http_route(self, "POST", "/probe/held", 0, http_held, p) != AURORA_OK ||
        host->http_route(self, "PUT", "/probe/held", 0, http_held, p) != AURORA_OK ||
        host->http_route(self, "PATCH", "/probe/held", 0, http_held, p) != AURORA_OK ||
        host->http_route(self, "DELETE", "/probe/held", 0, http_held, p) != AURORA_OK ||
        host->http_route(self, "OPTIONS", "/probe/held", 0, http_held, p) != AURORA_OK ||
        host->spawn(self, "probe", worker_main, p) != AURORA_OK) {
        host->log_msg(self, AURORA_LOG_ERROR, "cannot register routes or start the worker");
        return AURORA_ERR;
    }
    /* ABI 1.3: one route with limits of its own (8 KiB, 1 s for the body);
     * with config {"check_route_limits": true}, limits for a route this
     * plugin has not added, or out of range, are tried too: each is refused
     * (the host logs an error line for each; the test reads the count). */
    if (!AURORA_HOST_HAS(host, http_route_limits) ||
        host->http_route(self, "POST", "/probe/big", 0, http_async, p) != AURORA_OK ||
        host->http_route_limits(self, "POST", "/probe/big", 0, 8192, 1000) != AURORA_OK) {
        host->log_msg(self, AURORA_LOG_ERROR, "cannot set /probe/big's limits");
        return AURORA_ERR;
    }
    aurora_str cfg = host->config_json(self);
    int check = 0;
    for (size_t i = 0; cfg.ptr && i + 18 <= cfg.len && !check; ++i)
        check = memcmp(cfg.ptr + i, "check_route_limits", 18) == 0;
    if (!check) {
        *state = p;
        return AURORA_OK;
    }
    int refused = (host->http_route_limits(self, "POST", "/probe/none", 0, 8192, 0) == AURORA_ERR_INVALID) +
                  (host->http_route_limits(self, "POST", "/probe/big", 1, 8192, 0) == AURORA_ERR_INVALID) +
                  (host->http_route_limits(self, "POST", "/probe/big", 0, ((uint64_t)1 << 30) + 1, 0) ==
                   AURORA_ERR_INVALID) +
                  (host->http_route_limits(self, "POST", "/probe/big", 0, 0, 3600001) == AURORA_ERR_INVALID);
    host->log_msg(self, AURORA_LOG_INFO, "http_route_limits refused %d of 4", refused);
    *state = p;
    return AURORA_OK;
}

static void probe_shutdown(void *state) {
    probe *p = state;
    pthread_mutex_destroy(&p->mu);
}

static aurora_auth_verdict probe_authenticate(void *state, const aurora_handshake *hs, aurora_identity *id) {
    probe *p = state;
    aurora_str deny = p->host->hs_query(hs, "deny");
    if (deny.len) {
        id->reject_status = 403;
        id->reject_reason = AURORA_STR_LIT("denied by probe");
        return AURORA_AUTH_REJECT;
    }
    aurora_str user = p->host->hs_query(hs, "user");
    if (!user.len) user = p->host->hs_token(hs);
    if (!user.len) return AURORA_AUTH_ABSTAIN;
    static char name[128]; /* service thread only; copied by the host on return */
    int n = snprintf(name, sizeof name, "user-%.*s", (int)user.len, user.ptr);
    if (n < 0) return AURORA_AUTH_ABSTAIN;
    if ((size_t)n >= sizeof name) n = (int)sizeof name - 1; /* snprintf returns the untruncated length */
    id->user_id = user;
    id->username = aurora_str_make(name, (size_t)n);
    return AURORA_AUTH_ACCEPT;
}

static void probe_on_connect(void *state, aurora_conn *conn) {
    probe *p = state;
    int *count = calloc(1, sizeof *count);
    p->host->conn_set_data(p->self, conn, count);
}

static void probe_on_disconnect(void *state, aurora_conn *conn) {
    probe *p = state;
    free(p->host->conn_get_data(p->self, conn));
    p->host->conn_set_data(p->self, conn, NULL);
}

static aurora_verdict probe_on_join(void *state, aurora_conn *conn, aurora_str room) {
    (void)state;
    (void)conn;
    return str_is(room, "forbidden") ? AURORA_DROP : AURORA_CONTINUE;
}

static aurora_verdict defer(probe *p, aurora_msg *msg, aurora_verdict verdict) {
    job *j = calloc(1, sizeof *j);
    if (!j) return AURORA_DROP;
    j->kind = JOB_MSG;
    j->msg = msg;
    j->verdict = verdict;
    j->hold_ms = field_int(p->host->msg_payload(msg), "\"hold_ms\":", 0);
    push(p, j);
    return AURORA_PENDING;
}

static aurora_verdict probe_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    probe *p = state;
    int *count = p->host->conn_get_data(p->self, conn);
    if (count) ++*count;
    aurora_str type = p->host->msg_type(msg);
    aurora_str payload = p->host->msg_payload(msg);
    if (str_is(type, "defer_reply")) return defer(p, msg, AURORA_REPLY);
    if (str_is(type, "defer_drop")) return defer(p, msg, AURORA_DROP);
    if (str_is(type, "stall")) {
        sleep_ms(field_int(payload, "\"ms\":", 0));
        return AURORA_DROP;
    }
    if (str_is(type, "echo") && has(payload, "\"defer\":true")) return defer(p, msg, AURORA_CONTINUE);
    if (str_is(type, "whoami")) {
        aurora_str u = p->host->conn_user_id(conn), n = p->host->conn_username(conn);
        aurora_str a = p->host->conn_remote_addr(conn);
        char buf[8192];
        int len = snprintf(buf, sizeof buf,
                           "{\"type\":\"whoami\",\"user\":\"%.*s\",\"name\":\"%.*s\",\"count\":%d,\"addr\":\"%.*s\"}",
                           (int)u.len, u.ptr ? u.ptr : "", (int)n.len, n.ptr ? n.ptr : "", count ? *count : -1,
                           (int)a.len, a.ptr ? a.ptr : "");
        if (len < 0 || (size_t)len >= sizeof buf) return AURORA_DROP; /* would not fit: a fixture limit */
        p->host->msg_set_reply(msg, aurora_str_make(buf, (size_t)len));
        return AURORA_REPLY;
    }
    if (str_is(type, "ref_of")) {
        aurora_str ref = p->host->msg_ref(msg);
        char buf[512];
        int len = ref.ptr ? snprintf(buf, sizeof buf, "{\"type\":\"ref_of\",\"ref\":%.*s}", (int)ref.len, ref.ptr)
                          : snprintf(buf, sizeof buf, "{\"type\":\"ref_of\",\"ref\":null}");
        if (len < 0 || (size_t)len >= sizeof buf) return AURORA_DROP; /* a fixture limit */
        p->host->msg_set_reply(msg, aurora_str_make(buf, (size_t)len));
        return AURORA_REPLY;
    }
    if (str_is(type, "refuse")) {
        return p->host->msg_reply_error(msg, "probe_refused", "refused by \"probe\"") == AURORA_OK ? AURORA_REPLY
                                                                                                  : AURORA_DROP;
    }
    if (str_is(type, "refuse_bad_code")) {
        char buf[64];
        int len = snprintf(buf, sizeof buf, "{\"type\":\"status\",\"status\":%d}",
                           (int)p->host->msg_reply_error(msg, "Bad Code", "x"));
        p->host->msg_set_reply(msg, aurora_str_make(buf, (size_t)len));
        return AURORA_REPLY;
    }
    if (str_is(type, "refuse_later")) {
        aurora_conn_id id = p->host->conn_id(conn);
        p->host->send_error(p->self, id, "later", "sent with send_error", p->host->msg_ref(msg));
        int bad_ref = (int)p->host->send_error(p->self, id, "later", "x", AURORA_STR_LIT("{\"a\":1}"));
        int bad_code = (int)p->host->send_error(p->self, id, "Later!", "x", aurora_str_make(NULL, 0));
        int bad_utf8 = (int)p->host->send_error(p->self, id, "later", "x", AURORA_STR_LIT("\"\xff\""));
        p->host->send_error(p->self, id, "canonical", "x", AURORA_STR_LIT("01")); /* sent with ref 1 */
        char buf[128];
        int len = snprintf(buf, sizeof buf, "{\"type\":\"status\",\"bad_ref\":%d,\"bad_code\":%d,\"bad_utf8\":%d}",
                           bad_ref, bad_code, bad_utf8);
        p->host->send(p->self, id, aurora_str_make(buf, (size_t)len));
        return AURORA_DROP;
    }
    if (str_is(type, "shout")) {
        p->host->broadcast(p->self, AURORA_STR_LIT("shouts"), payload, 0);
        return AURORA_DROP;
    }
    if (str_is(type, "join_via_worker")) {
        job *j = calloc(1, sizeof *j);
        if (!j) return AURORA_DROP;
        j->kind = JOB_ORDER;
        j->conn = p->host->conn_id(conn);
        push(p, j);
        return AURORA_DROP;
    }
    if (str_is(type, "send_from_thread")) {
        job *j = calloc(1, sizeof *j);
        if (!j) return AURORA_DROP;
        j->kind = JOB_SEND;
        j->conn = p->host->conn_id(conn);
        j->count = field_int(payload, "\"n\":", 1);
        push(p, j);
        return AURORA_DROP;
    }
    return AURORA_CONTINUE;
}

static const aurora_plugin probe_plugin = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "probe",
    .version = "1.0.0",
    .description = "test fixture: PENDING, async HTTP, join refusal, conn data, authenticate",
    .init = probe_init,
    .shutdown = probe_shutdown,
    .authenticate = probe_authenticate,
    .on_connect = probe_on_connect,
    .on_disconnect = probe_on_disconnect,
    .on_join = probe_on_join,
    .on_message = probe_on_message,
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &probe_plugin; }
