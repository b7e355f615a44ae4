// headers_cxx_check.cpp - the public headers are usable from C++20.
//
// Built with -std=c++20 -pedantic-errors -Wold-style-cast
// (tests/sdk/CMakeLists.txt). The tables must be standard-layout and
// trivially copyable, so C and C++ see the same bytes; main() in
// abi_layout_test.c compares the sizes both languages compute.
#include <aurora/aurora.h>
#include <aurora/embed.h>
#include <aurora/version.h>

#include <cstddef>
#include <type_traits>

static_assert(std::is_standard_layout_v<aurora_plugin> && std::is_trivially_copyable_v<aurora_plugin>);
static_assert(std::is_standard_layout_v<aurora_host_api> && std::is_trivially_copyable_v<aurora_host_api>);
static_assert(std::is_standard_layout_v<aurora_identity> && std::is_trivially_copyable_v<aurora_identity>);
static_assert(std::is_standard_layout_v<aurora_str> && std::is_trivially_copyable_v<aurora_str>);
static_assert(sizeof(aurora_plugin) == 104 && offsetof(aurora_plugin, is_ready) == 96);
static_assert(sizeof(aurora_host_api) == 512 && offsetof(aurora_host_api, http_route_limits) == 504);

namespace {

// A C++ plugin may use C++20 designated initializers, in declaration order.
// Unlike C, g++ -Wextra (-Wmissing-field-initializers) wants every member
// named, so the unused hooks are spelled out as nullptr.
constexpr aurora_plugin cxx_desc = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "hello_cxx",
    .version = "1.0.0",
    .description = "says nothing, in C++",
    .init = nullptr,
    .shutdown = nullptr,
    .authenticate = nullptr,
    .on_connect = nullptr,
    .on_disconnect = nullptr,
    .on_join = nullptr,
    .on_leave = nullptr,
    .on_message = nullptr,
    .is_ready = nullptr,
};

}  // namespace

extern "C" {
std::size_t aurora_cxx_sizeof_plugin(void);
std::size_t aurora_cxx_sizeof_host_api(void);
std::size_t aurora_cxx_offsetof_now_wall_ms(void);
}

std::size_t aurora_cxx_sizeof_plugin(void) {
    return cxx_desc.struct_size;
}

std::size_t aurora_cxx_sizeof_host_api(void) {
    return sizeof(aurora_host_api);
}

std::size_t aurora_cxx_offsetof_now_wall_ms(void) {
    return offsetof(aurora_host_api, now_wall_ms);
}
