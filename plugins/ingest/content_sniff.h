// What an upload is, from its bytes (never from what the client says): the
// few types Aurora accepts, each recognised by its signature, and text.
//
//     sniff_type(body)  -> "image/png", ... , "text/plain", "text/html",
//                          or "" (not a type Aurora knows)
//
// "text/html" is reported so that a caller can refuse it by name: text
// that opens with a tag, a comment, a declaration or a processing
// instruction (after white space and a BOM; stricter than the WHATWG
// sniffing standard's list of HTML tags) is never served. SVG is not an
// image here: it runs scripts.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace aurora::ingest {

// The types a deployment may accept (setting upload_types).
std::span<const std::string_view> sniffable_types();

std::string_view sniff_type(std::string_view data);

// The file name an upload is stored and served under: the last component
// of `given` (after any '/' or '\'), 1-255 bytes of UTF-8 without control
// characters; "" with `error` otherwise.
std::string upload_filename(std::string_view given, std::string &error);

// Content-Disposition for `filename`: images inline, everything else as an
// attachment; an ASCII fallback ("filename=") and the UTF-8 name
// ("filename*=", RFC 6266 / 5987).
std::string content_disposition(std::string_view type, std::string_view filename);

}  // namespace aurora::ingest
