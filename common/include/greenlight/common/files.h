// Small file helpers. writeFileAtomic never leaves a half-written file: it writes a temporary
// file in the same directory, fsyncs it, renames it over the target and fsyncs the directory,
// so after a crash the file holds either the old or the new content. Thread-safe.
#pragma once

#include <string>

#include "greenlight/common/status.h"

namespace greenlight {

Status writeFileAtomic(const std::string& path, const std::string& content, int mode = 0600);
StatusOr<std::string> readWholeFile(const std::string& path);

}  // namespace greenlight
