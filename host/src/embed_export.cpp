// libaurora_host.so: the embedding API (aurora/embed.h) is defined in
// host.cpp and pulled in whole from aurora_host_core; this unit only gives
// the shared library a source of its own.
#include <aurora/embed.h>
