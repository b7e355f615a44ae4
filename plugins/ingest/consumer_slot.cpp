#include "consumer_slot.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace aurora::ingest {

namespace {

constexpr int kMaxSlots = 1024;

std::string hostname() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || !host[0]) return "ingest";
    return host;
}

// FNV-1a: a short, stable file name for any scope text.
uint64_t fnv1a(const std::string &s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

}  // namespace

ConsumerSlot::ConsumerSlot(const std::string &dir, const std::string &scope, std::string &error) {
    char prefix[64];
    std::snprintf(prefix, sizeof prefix, "/aurora-ingest-%016llx-", static_cast<unsigned long long>(fnv1a(scope)));
    for (int n = 0; n < kMaxSlots; ++n) {
        std::string path = dir + prefix + std::to_string(n) + ".lock";
        // O_NOFOLLOW: a link planted in a shared /tmp is not followed. A file
        // another user owns (EACCES) is skipped like a slot in use.
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && (errno == EACCES || errno == ELOOP)) continue;
        if (fd < 0) {
            error = "cannot open " + path + ": " + std::strerror(errno);
            break;
        }
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            fd_ = fd;
            slot_ = n;
            name_ = hostname() + "-s" + std::to_string(n);
            return;
        }
        int e = errno;
        ::close(fd);
        if (e != EWOULDBLOCK) {
            error = "cannot lock " + path + ": " + std::strerror(e);
            break;
        }
    }
    if (error.empty()) error = "all " + std::to_string(kMaxSlots) + " slots in " + dir + " are held";
    name_ = hostname() + "-" + std::to_string(static_cast<int>(getpid()));
}

ConsumerSlot::~ConsumerSlot() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace aurora::ingest
