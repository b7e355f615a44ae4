// A consumer name that survives a restart: "<hostname>-s<slot>", where the
// slot is the lowest number whose lock file (in `dir`) no other process on
// this machine holds. flock() locks belong to the open file and the kernel
// drops them when the process exits, kill -9 included, so a restarted
// process takes its old slot back (when it was the one that stopped) and
// reads its own pending entries at once instead of waiting `claim_idle_ms`
// for another worker to claim them. Processes on other machines differ by
// hostname; in a container the hostname is the container's.
#pragma once

#include <string>

namespace aurora::ingest {

class ConsumerSlot {
public:
    // `scope` separates unrelated groups on one machine (the stream, the
    // group, the Redis target): their slots are counted apart. Never fails:
    // without a usable `dir` the name is "<hostname>-<pid>" and `error` says why.
    ConsumerSlot(const std::string &dir, const std::string &scope, std::string &error);
    ~ConsumerSlot();
    ConsumerSlot(const ConsumerSlot &) = delete;
    ConsumerSlot &operator=(const ConsumerSlot &) = delete;

    const std::string &name() const { return name_; }
    int slot() const { return slot_; }  // -1 without a lock

private:
    int fd_ = -1;
    int slot_ = -1;
    std::string name_;
};

}  // namespace aurora::ingest
