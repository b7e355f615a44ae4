/*
 * loop_probe: a fixture plugin for ABI 1.2, the service loop (io_watch,
 * io_set, io_stop, timer_start, timer_stop, call_before_sleep). Driven by
 * tests/host/api/test_loop_io.py. Anonymous connections (?user= not needed).
 *
 *   init:       watches a pipe of its own (allowed during init) and arms a
 *               one-shot timer; starts a thread that calls the six functions
 *               off the service thread (each must be refused).
 *   on_message: {"type":"loop"} -> on the service loop, in this order of
 *               registration: a pipe watched for READ; call_before_sleep
 *               writes one byte into it; a one-shot 0 ms timer; a 5 ms
 *               repeating timer that stops itself after 3 ticks. When the
 *               byte was read (the watch stops itself in its callback) and
 *               both timers are done, it sends
 *               {"type":"loop","steps":"hook,...","second_watch":N,
 *                "bad_mask":N,"set_bad":S,"init_timer":N,"worker":"..."}:
 *               second_watch/bad_mask are 1 when io_watch returned NULL for
 *               a second watch of one descriptor / an unknown event bit,
 *               set_bad the status of io_set with an unknown bit,
 *               init_timer 1 once the timer armed in init fired, worker the
 *               off-thread results ("refused" when all six were).
 *               DROP; anything else CONTINUEs.
 *   shutdown:   stops what init watched (allowed in shutdown: the loop has
 *               ended by then).
 */
#define _GNU_SOURCE /* pipe2 */
#include <aurora/aurora.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct run {
    int fds[2];
    aurora_io *io;
    aurora_conn_id conn;
    int ticks, pending; /* pending: io, one-shot, repeating */
    char steps[128];
    int second_watch, bad_mask;
    aurora_status set_bad;
} run;

typedef struct loop_probe {
    const aurora_host_api *host;
    aurora_plugin_ctx *self;
    int init_fds[2];
    aurora_io *init_io;
    aurora_timer *init_timer;
    int init_timer_fired;   /* service thread */
    char worker_result[96]; /* written by the worker before it publishes worker_done */
    int worker_done;        /* __atomic: the worker's release, the service thread's acquire */
    run r; /* one "loop" request at a time is enough for a fixture */
} loop_probe;

static loop_probe g; /* one instance per process */

static void step(run *r, const char *what) {
    size_t n = strlen(r->steps);
    snprintf(r->steps + n, sizeof r->steps - n, "%s%s", n ? "," : "", what);
}

static void finish(run *r) {
    if (--r->pending > 0) return;
    char out[512];
    snprintf(out, sizeof out,
             "{\"type\":\"loop\",\"steps\":\"%s\",\"second_watch\":%d,\"bad_mask\":%d,\"set_bad\":%d,"
             "\"init_timer\":%d,\"worker\":\"%s\"}",
             r->steps, r->second_watch, r->bad_mask, (int)r->set_bad, g.init_timer_fired,
             __atomic_load_n(&g.worker_done, __ATOMIC_ACQUIRE) ? g.worker_result : "running");
    g.host->send(g.self, r->conn, aurora_str_make(out, strlen(out)));
}

static void on_readable(void *arg, uint32_t ready) {
    run *r = arg;
    char b;
    if (!(ready & AURORA_IO_READ) || read(r->fds[0], &b, 1) != 1) return;
    step(r, "io");
    g.host->io_stop(r->io); /* from inside its own callback */
    close(r->fds[0]);
    close(r->fds[1]);
    finish(r);
}

static void before_sleep(void *arg) {
    run *r = arg;
    step(r, "before_sleep");
    if (write(r->fds[1], "x", 1) != 1) step(r, "write_failed");
}

/* Timers carry the run and find their own handle through it. */
static aurora_timer *g_once, *g_repeat;

static void on_once(void *arg) {
    run *r = arg;
    step(r, "timer");
    g.host->timer_stop(g_once); /* a fired one-shot is stopped too, from inside */
    finish(r);
}

static void on_repeat(void *arg) {
    run *r = arg;
    if (++r->ticks < 3) return;
    step(r, "repeat3");
    g.host->timer_stop(g_repeat);
    finish(r);
}

static void on_init_timer(void *arg) {
    (void)arg;
    g.init_timer_fired = 1;
}

static void on_init_pipe(void *arg, uint32_t ready) {
    (void)arg;
    (void)ready;
}

static void noop(void *arg) { (void)arg; }

static void off_thread(aurora_worker *w, void *arg) {
    (void)arg;
    const aurora_host_api *h = g.host;
    int refused = h->io_watch(g.self, g.init_fds[1], AURORA_IO_WRITE, on_init_pipe, NULL) == NULL;
    refused += h->io_set(g.init_io, AURORA_IO_WRITE) == AURORA_ERR_WRONG_THREAD;
    refused += h->timer_start(g.self, 1, 0, noop, NULL) == NULL;
    refused += h->call_before_sleep(g.self, noop, NULL) == AURORA_ERR_WRONG_THREAD;
    snprintf(g.worker_result, sizeof g.worker_result, "%s", refused == 4 ? "refused" : "accepted");
    __atomic_store_n(&g.worker_done, 1, __ATOMIC_RELEASE);
    while (!h->worker_should_stop(w)) h->worker_wait(w, 1000);
}

static aurora_status lp_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state) {
    memset(&g, 0, sizeof g);
    g.host = host;
    g.self = self;
    if (!AURORA_HOST_HAS(host, call_before_sleep)) return AURORA_ERR;
    if (pipe2(g.init_fds, O_NONBLOCK | O_CLOEXEC) != 0) return AURORA_ERR;
    g.init_io = host->io_watch(self, g.init_fds[0], AURORA_IO_READ, on_init_pipe, NULL);
    g.init_timer = host->timer_start(self, 0, 0, on_init_timer, NULL);
    if (!g.init_io || !g.init_timer) return AURORA_ERR;
    if (host->spawn(self, "loop-probe", off_thread, NULL) != AURORA_OK) return AURORA_ERR;
    *state = &g;
    return AURORA_OK;
}

static void lp_shutdown(void *state) {
    loop_probe *p = state;
    p->host->io_stop(p->init_io);
    p->host->timer_stop(p->init_timer);
    close(p->init_fds[0]);
    close(p->init_fds[1]);
}

static aurora_verdict lp_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    loop_probe *p = state;
    aurora_str type = p->host->msg_type(msg);
    if (type.len != 4 || memcmp(type.ptr, "loop", 4) != 0) return AURORA_CONTINUE;
    run *r = &p->r;
    memset(r, 0, sizeof *r);
    r->conn = p->host->conn_id(conn);
    r->pending = 3;
    if (pipe2(r->fds, O_NONBLOCK | O_CLOEXEC) != 0) return AURORA_DROP;
    step(r, "hook");
    r->io = p->host->io_watch(p->self, r->fds[0], AURORA_IO_READ, on_readable, r);
    r->second_watch = p->host->io_watch(p->self, r->fds[0], AURORA_IO_READ, on_readable, r) == NULL;
    r->bad_mask = p->host->io_watch(p->self, r->fds[1], 4u, on_readable, r) == NULL;
    r->set_bad = p->host->io_set(r->io, 8u);
    p->host->call_before_sleep(p->self, before_sleep, r);
    g_once = p->host->timer_start(p->self, 0, 0, on_once, r);
    g_repeat = p->host->timer_start(p->self, 5, 5, on_repeat, r);
    return AURORA_DROP;
}

static const aurora_plugin loop_probe_plugin = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "loop_probe",
    .version = "1.0.0",
    .description = "ABI 1.2 fixture: descriptors, timers, before-sleep calls",
    .init = lp_init,
    .shutdown = lp_shutdown,
    .on_message = lp_on_message,
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &loop_probe_plugin; }
