// What an upload is and how it is served (plugins/ingest/content_sniff.h),
// on any bytes:
//
//   - sniff_type names only a type it knows, and "text/plain" only for
//     UTF-8 without control characters that no browser takes for markup;
//   - a file name kept is 1-255 bytes of UTF-8 without control characters
//     or path separators;
//   - Content-Disposition is one header value: no CR, LF or NUL, no quote
//     inside the quoted ASCII name, inline only for images.
#include <algorithm>
#include <string>

#include "content_sniff.h"
#include "fuzz_check.h"
#include "json.h"

using namespace aurora::ingest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view in = fuzz_bytes(data, size);

    const std::string_view type = sniff_type(in);
    auto known = sniffable_types();
    FUZZ_CHECK(type.empty() || type == "text/html" || std::find(known.begin(), known.end(), type) != known.end());
    if (type == "text/plain" || type == "text/html") FUZZ_CHECK(aurora::plugin::valid_utf8(in));
    if (type == "text/plain") {
        // Never markup: no '<' first after white space and a BOM that opens
        // a tag the sniffing standard lists.
        std::string_view t = in.starts_with("\xEF\xBB\xBF") ? in.substr(3) : in;
        t.remove_prefix(std::min(t.size(), t.find_first_not_of(" \t\n\r\f")));
        FUZZ_CHECK(!(t.starts_with("<html") || t.starts_with("<script") || t.starts_with("<svg") ||
                     t.starts_with("<?xml") || t.starts_with("<!--")));
        for (unsigned char c : in) FUZZ_CHECK(c >= 0x20 || c == '\t' || c == '\n' || c == '\r' || c == '\f');
    }

    std::string error;
    const std::string name = upload_filename(in, error);
    if (name.empty()) {
        FUZZ_CHECK(!error.empty());
    } else {
        FUZZ_CHECK(name.size() <= 255 && aurora::plugin::valid_utf8(name));
        FUZZ_CHECK(name.find_first_of(std::string_view("/\\\0\r\n\t", 6)) == std::string::npos);
        FUZZ_CHECK(name != "." && name != "..");
    }

    const std::string cd = content_disposition(type, name.empty() ? std::string(in) : name);
    FUZZ_CHECK(cd.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
    FUZZ_CHECK(cd.starts_with(type.starts_with("image/") ? "inline; filename=\"" : "attachment; filename=\""));
    const size_t open = cd.find('"'), close = cd.find('"', open + 1);
    FUZZ_CHECK(close != std::string::npos && cd.find('"', close + 1) == std::string::npos);
    for (unsigned char c : cd) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
    return 0;
}
