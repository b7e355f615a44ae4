// The plugin's housekeeping thread: creates the indexes at start-up (retried
// until MongoDB answers; consumers insert nothing before), pings MongoDB so
// that /ready reflects an outage even when no message flows, exports the
// group's lag and pending count (XINFO GROUPS) and the dead-letter stream's
// length, and at shutdown unblocks the consumers' XREADGROUP BLOCK (CLIENT
// UNBLOCK) so that SIGTERM does not wait `block_ms`.
//
// Thread contract: run() on its own worker thread; reads the shared
// IngestContext, writes its atomics.
#pragma once

#include <aurora/aurora.h>

#include "ingest_context.h"

namespace aurora::ingest {

void run_group_monitor(IngestContext &ctx, aurora_worker *w);

}  // namespace aurora::ingest
