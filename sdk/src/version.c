#include "aurora/version.h"

const char *aurora_sdk_version(void) { return AURORA_VERSION_STRING; }
