// RAII for libjwt's jwt_t and the strings it returns.
#pragma once

#include <jwt.h>

#include <cstdlib>
#include <memory>

namespace aurora::plugin {

struct JwtFree {
    void operator()(jwt_t *j) const { jwt_free(j); }
};
using JwtHandle = std::unique_ptr<jwt_t, JwtFree>;

// jwt_encode_str / jwt_get_grants_json return malloc'd text.
struct MallocFree {
    void operator()(char *p) const { std::free(p); }
};
using JwtText = std::unique_ptr<char, MallocFree>;

}  // namespace aurora::plugin
