// The ABI 1.2 functions on the service loop (io_watch, io_set, io_stop,
// timer_start, timer_stop, call_before_sleep): loop_api.cpp, over LoopIo.
#pragma once

#include <aurora/host_api.h>

namespace aurora::host {
void fill_loop_api(aurora_host_api &a);  // sets the six entries of the table
}  // namespace aurora::host
