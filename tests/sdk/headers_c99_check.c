/*
 * headers_c99_check.c - the public headers are strict C99.
 *
 * Built with -std=c99 -pedantic-errors (tests/sdk/CMakeLists.txt): a C11
 * feature, a GNU extension or a C++-ism in sdk/include/aurora/ fails the
 * build. Also compiles the minimal plugin of aurora/plugin.h as written
 * there, and pins two sizes with the C99 negative-array trick.
 */
#include <aurora/aurora.h>
#include <aurora/embed.h>
#include <aurora/version.h>

#include <stddef.h>

typedef char c99_pin_plugin_size[(sizeof(aurora_plugin) == 104) ? 1 : -1];
typedef char c99_pin_host_api_size[(sizeof(aurora_host_api) == 512) ? 1 : -1];

/* The minimal plugin from the top comment of aurora/plugin.h. */
static const aurora_plugin desc = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR, .abi_minor = AURORA_ABI_MINOR,
    .name = "hello", .version = "1.0.0", .description = "says nothing",
};

size_t aurora_c99_sizeof_plugin(void);
size_t aurora_c99_sizeof_host_api(void);

size_t aurora_c99_sizeof_plugin(void) {
    return desc.struct_size;
}

size_t aurora_c99_sizeof_host_api(void) {
    return sizeof(aurora_host_api);
}
