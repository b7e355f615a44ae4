// permessage-deflate (host/src/ws_deflate.h): the negotiation over any
// Sec-WebSocket-Extensions value, and the bounded inflater over any bytes.
//
// Invariants: an accepted offer's answer starts with server_no_context_takeover
// and, read back as an offer, is itself acceptable (it names only known
// parameters with valid values); the window is 9..15; the client keeps its
// context exactly when the answer does not say client_no_context_takeover.
// The inflater never returns more than its bound, recovers after garbage, and
// what the server's compressor makes of the input inflates back to it.
#include <fuzzer/FuzzedDataProvider.h>

#include <string>
#include <vector>

#include "fuzz_check.h"
#include "ws_deflate.h"

using namespace aurora::host;
using namespace aurora::host::ws;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzedDataProvider in(data, size);
    CompressionSettings settings;
    settings.client_context_takeover = in.ConsumeBool();
    const size_t max = in.ConsumeIntegralInRange<size_t>(0, 1 << 16);
    const size_t hard = max + in.ConsumeIntegralInRange<size_t>(0, 1 << 16);
    const std::string offers = in.ConsumeRandomLengthString(512);
    const std::string bytes = in.ConsumeRemainingBytesAsString();

    std::string response;
    std::optional<DeflateParams> p = negotiate_deflate(offers, settings, response);
    if (p) {
        FUZZ_CHECK(response.starts_with("permessage-deflate; server_no_context_takeover"));
        FUZZ_CHECK(p->server_bits >= 9 && p->server_bits <= 15);
        FUZZ_CHECK(p->client_context == (response.find("client_no_context_takeover") == std::string::npos));
        std::string again;
        FUZZ_CHECK(negotiate_deflate(response, settings, again));
    } else {
        FUZZ_CHECK(response.empty());
    }

    static Inflater shared;
    std::string out;
    Inflater::Result r = shared.inflate(bytes, max, hard, false, out);
    FUZZ_CHECK(out.size() <= max);
    FUZZ_CHECK(r == Inflater::Result::Ok || out.empty());
    if (r == Inflater::Result::Ok) {
        // The same bytes inflate the same way again (the reset is complete).
        std::string twice;
        FUZZ_CHECK(shared.inflate(bytes, max, hard, false, twice) == Inflater::Result::Ok && twice == out);
    } else if (r == Inflater::Result::TooLarge) {
        // Over max but inflated to its end: with the hard limit as max it is whole.
        std::string whole;
        FUZZ_CHECK(shared.inflate(bytes, hard, hard, false, whole) == Inflater::Result::Ok);
        FUZZ_CHECK(whole.size() > max && whole.size() <= hard);
    }
    Inflater keep;  // a connection's own stream, fed the input twice
    keep.inflate(bytes, max, hard, true, out);
    keep.inflate(bytes, max, hard, true, out);
    FUZZ_CHECK(out.size() <= max);

    static Deflater deflater{CompressionSettings{}};
    std::vector<unsigned char> z;
    FUZZ_CHECK(deflater.compress(bytes, 9 + static_cast<int>(size % 7), z));
    std::string back;
    FUZZ_CHECK(shared.inflate(std::string(z.begin(), z.end()), bytes.size(), bytes.size(), false, back) == Inflater::Result::Ok);
    FUZZ_CHECK(back == bytes);
    return 0;
}
