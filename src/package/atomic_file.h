// All-or-nothing file writes for packages, deltas and keys.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <functional>
#include <string>

#include "brink/status.h"

namespace brink::package {

// Writes `path` all or nothing: `body` writes into a new temporary file beside it (created
// with `mode`, so a secret key is never readable by others, not even briefly; `body` returns
// false on a failed write), which is flushed to storage and renamed into place. On any
// failure the temporary file is removed and `path` is left as it was.
Status write_file_atomically(const std::string& path, const std::function<bool(std::FILE*)>& body,
                             mode_t mode = 0644);

}  // namespace brink::package
