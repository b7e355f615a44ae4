// Getting each connection's queued frames onto its socket.
//
// Frames queued during a loop iteration go out in one non-blocking write per
// connection just before the loop sleeps (a libuv prepare handle, as Redis
// does with beforeSleep): the heartbeat ping first, then the frames in
// order, up to about kCoalesceBytes per write. aurora.ndjson clients get the
// text frames that wait together as ONE frame, a message per line. What
// the socket does not take goes to one uv_write, and the connection's queue
// waits for its completion. permessage-deflate happens here: a broadcast is
// compressed once, at its first recipient that negotiated it.
//
// THREADS: [service] only.
#pragma once

#include <aurora/host_api.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "conn.h"

namespace aurora::host {
class Host;

class Outbound {
public:
    explicit Outbound(Host &host) : host_(host) {}
    void start(uv_loop_t *loop);  // installs the before-sleep flush
    void stop();                  // removes it (the loop closes the handle)

    // c has frames (or a ping) to write: they go before the loop sleeps.
    void mark(aurora_conn *c);
    // A uv_write of c's leftover bytes completed.
    void on_write_done(aurora_conn *c, int status);

private:
    static constexpr size_t kCoalesceBytes = 64 * 1024;  // one write carries at most about this much

    void flush();
    bool write_queued(aurora_conn *c);  // false: the socket is dead
    // The frame as it goes to c: its deflated payload when c negotiated
    // compression and that pays; nullptr for the plain payload.
    const std::vector<unsigned char> *deflated_for(aurora_conn *c, OutFrame &f);
    void append_data_frame(aurora_conn *c, const std::vector<unsigned char> &payload);

    Host &host_;
    bool started_ = false;
    uv_prepare_t before_sleep_{};
    std::vector<aurora_conn_id> pending_, flushing_;  // connections with frames to write before sleeping
    std::vector<unsigned char> coalesce_buf_;        // reused by write_queued
    std::vector<unsigned char> batch_buf_, batch_deflated_;  // an ndjson batch, before and after compression
    std::unique_ptr<ws::Deflater> deflater_;          // made at the first compressed frame
};

}  // namespace aurora::host
