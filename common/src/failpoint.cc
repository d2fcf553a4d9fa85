#include "greenlight/common/failpoint.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace greenlight {

void failpoint(std::string_view name) {
  static const std::string armed = [] {
    const char* v = std::getenv("GREENLIGHT_FAILPOINT");
    return std::string(v ? v : "");
  }();
  if (armed.empty() || armed != name) return;
  std::fprintf(stderr, "failpoint %s: exiting now\n", armed.c_str());
  std::fflush(stderr);
  _exit(86);
}

}  // namespace greenlight
