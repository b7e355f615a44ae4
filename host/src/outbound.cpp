// Writing the connections' queues (outbound.h).
#include "outbound.h"

#include "host.h"
#include "log.h"

namespace aurora::host {

void Outbound::start(uv_loop_t *loop) {
    uv_prepare_init(loop, &before_sleep_);
    before_sleep_.data = this;
    uv_prepare_start(&before_sleep_, [](uv_prepare_t *p) { static_cast<Outbound *>(p->data)->flush(); });
    started_ = true;
}

void Outbound::stop() {
    if (!started_) return;
    started_ = false;
    uv_prepare_stop(&before_sleep_);
    uv_close(reinterpret_cast<uv_handle_t *>(&before_sleep_), nullptr);
    pending_.clear();
}

void Outbound::mark(aurora_conn *c) {
    if (!c->write_pending && !c->writing && c->tcp_open) {  // written before the loop sleeps
        c->write_pending = true;
        pending_.push_back(c->id);
    }
}

void Outbound::flush() {
    // The plugins' before-sleep calls first: what they do (a Redis pipeline
    // written, a reply answered from its buffer) may queue frames that then
    // leave in this same pass.
    host_.loop_io().run_before_sleep();
    if (pending_.empty()) return;
    flushing_.swap(pending_);
    for (aurora_conn_id id : flushing_) {
        aurora_conn *c = host_.find_conn(id);
        if (!c) continue;
        c->write_pending = false;
        if (!c->tcp_open || c->writing || c->close_written || (c->outq.empty() && !c->ping_due)) continue;
        if (!write_queued(c)) host_.drop_now(c);
    }
    flushing_.clear();
}

// One write of what waits in c's queue (up to about kCoalesceBytes): the
// heartbeat ping first, then the frames in order (for aurora.ndjson
// clients, text frames waiting together become one frame with a message per
// line). False when the socket is dead.
bool Outbound::write_queued(aurora_conn *c) {
    const HostMetrics &m = host_.m();
    const bool ping = c->ping_due;
    c->ping_due = false;
    static constexpr unsigned char kPing[4] = {0x89, 0x02, 'h', 'b'};  // with a payload: some clients drop empty pongs
    coalesce_buf_.assign(kPing, kPing + (ping ? sizeof kPing : 0));
    size_t frames = 0, payload = 0;
    while (!c->outq.empty() && coalesce_buf_.size() < kCoalesceBytes) {
        OutFramePtr f = c->outq.pop_front();
        c->out_bytes -= f->len();
        unsigned char head[10];
        if (f->opcode == ws::kText && c->ndjson && !c->outq.empty() && c->outq.front()->opcode == ws::kText) {
            // Several text frames waiting: one frame, one message per line.
            // Measured first (the header goes in front), then copied once.
            size_t more = 0, total = f->len();
            while (more < c->outq.size() && c->outq.at(more)->opcode == ws::kText && total < kCoalesceBytes)
                total += 1 + c->outq.at(more++)->len();
            if (c->deflate) {  // a batch is this connection's own: compressed here, for it alone
                batch_buf_.assign(f->data(), f->data() + f->len());
                for (size_t i = 0; i < more; ++i) {
                    OutFramePtr g = c->outq.pop_front();
                    c->out_bytes -= g->len();
                    batch_buf_.push_back('\n');
                    batch_buf_.insert(batch_buf_.end(), g->data(), g->data() + g->len());
                }
                append_data_frame(c, batch_buf_);
            } else {
                size_t h = ws::write_header(head, ws::kText, total);
                coalesce_buf_.insert(coalesce_buf_.end(), head, head + h);
                coalesce_buf_.insert(coalesce_buf_.end(), f->data(), f->data() + f->len());
                for (size_t i = 0; i < more; ++i) {
                    OutFramePtr g = c->outq.pop_front();
                    c->out_bytes -= g->len();
                    coalesce_buf_.push_back('\n');
                    coalesce_buf_.insert(coalesce_buf_.end(), g->data(), g->data() + g->len());
                }
            }
            m.messages_batched->add(static_cast<double>(1 + more));
            ++frames;
            payload += total;
            continue;
        }
        const std::vector<unsigned char> *z = deflated_for(c, *f);
        size_t h = ws::write_header(head, f->opcode, z ? z->size() : f->len(), z != nullptr);
        coalesce_buf_.insert(coalesce_buf_.end(), head, head + h);
        if (z) coalesce_buf_.insert(coalesce_buf_.end(), z->begin(), z->end());
        else coalesce_buf_.insert(coalesce_buf_.end(), f->data(), f->data() + f->len());
        ++frames;
        payload += f->len();
        if (f->opcode == ws::kClose) {  // nothing follows a close frame
            c->close_written = true;
            c->outq.clear();
            c->out_bytes = 0;
            break;
        }
    }
    if (coalesce_buf_.empty()) return true;
    m.frames_out->add(static_cast<double>(frames));
    m.bytes_out->add(static_cast<double>(payload));
    uv_buf_t b = uv_buf_init(reinterpret_cast<char *>(coalesce_buf_.data()), static_cast<unsigned>(coalesce_buf_.size()));
    int n = uv_try_write(reinterpret_cast<uv_stream_t *>(&c->tcp), &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
        AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "write failed (%s); closing", uv_strerror(n));
        return false;
    }
    size_t done = n > 0 ? static_cast<size_t>(n) : 0;
    if (done == coalesce_buf_.size()) {
        if (c->close_written) host_.after_close_written(c);
        else if (!c->outq.empty()) mark(c);
        return true;
    }
    // The socket is full: uv_write keeps the rest, and the queue waits for it.
    c->wbuf.assign(coalesce_buf_.begin() + static_cast<std::ptrdiff_t>(done), coalesce_buf_.end());
    uv_buf_t rest = uv_buf_init(reinterpret_cast<char *>(c->wbuf.data()), static_cast<unsigned>(c->wbuf.size()));
    c->writing = true;
    int rc = uv_write(&c->wreq, reinterpret_cast<uv_stream_t *>(&c->tcp), &rest, 1,
                      [](uv_write_t *req, int status) {
                          auto *conn = static_cast<aurora_conn *>(req->handle->data);
                          conn->host->outbound().on_write_done(conn, status);
                      });
    if (rc != 0) {
        c->writing = false;
        return false;
    }
    return true;
}

// The compressed payload of f for c (cached on f: the first recipient
// compresses, the others reuse it), or nullptr to send f as it is.
const std::vector<unsigned char> *Outbound::deflated_for(aurora_conn *c, OutFrame &f) {
    const HostMetrics &m = host_.m();
    if (!c->deflate || (f.opcode != ws::kText && f.opcode != ws::kBinary) || f.len() < host_.config().compression.min_bytes)
        return nullptr;
    const int bits = c->deflate_params.server_bits;
    if (f.deflated_bits != bits) {
        if (!deflater_) deflater_ = std::make_unique<ws::Deflater>(host_.config().compression);
        f.deflated_bits = static_cast<uint8_t>(bits);
        m.deflate_runs->add(1);
        std::string_view plain(reinterpret_cast<const char *>(f.data()), f.len());
        if (!deflater_->compress(plain, bits, f.deflated) || f.deflated.size() >= f.len()) f.deflated.clear();
    }
    if (f.deflated.empty()) return nullptr;
    m.deflate_in->add(static_cast<double>(f.len()));
    m.deflate_out->add(static_cast<double>(f.deflated.size()));
    return &f.deflated;
}

// An ndjson batch for c (text), compressed when that pays, onto coalesce_buf_.
void Outbound::append_data_frame(aurora_conn *c, const std::vector<unsigned char> &payload) {
    const HostMetrics &m = host_.m();
    if (!deflater_) deflater_ = std::make_unique<ws::Deflater>(host_.config().compression);
    std::string_view plain(reinterpret_cast<const char *>(payload.data()), payload.size());
    bool z = payload.size() >= host_.config().compression.min_bytes &&
             deflater_->compress(plain, c->deflate_params.server_bits, batch_deflated_) &&
             batch_deflated_.size() < payload.size();
    if (z) {
        m.deflate_runs->add(1);
        m.deflate_in->add(static_cast<double>(payload.size()));
        m.deflate_out->add(static_cast<double>(batch_deflated_.size()));
    }
    const std::vector<unsigned char> &out = z ? batch_deflated_ : payload;
    unsigned char head[10];
    size_t h = ws::write_header(head, ws::kText, out.size(), z);
    coalesce_buf_.insert(coalesce_buf_.end(), head, head + h);
    coalesce_buf_.insert(coalesce_buf_.end(), out.begin(), out.end());
}

void Outbound::on_write_done(aurora_conn *c, int status) {
    c->writing = false;
    c->wbuf.clear();
    if (!c->tcp_open) return;  // closing: the write was cancelled
    if (status < 0) {
        AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "write failed (%s); closing", uv_strerror(status));
        return host_.drop_now(c);
    }
    if (c->close_written) return host_.after_close_written(c);
    if (!c->outq.empty() || c->ping_due) mark(c);
}

}  // namespace aurora::host
