// What every harness shares: FUZZ_CHECK(cond), an invariant that aborts with
// a message (libFuzzer then saves the input as a crash), and the input as a
// string_view.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                             \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);       \
            std::abort();                                                                            \
        }                                                                                            \
    } while (0)

inline std::string_view fuzz_bytes(const uint8_t *data, size_t size) {
    return std::string_view(reinterpret_cast<const char *>(data), size);
}
