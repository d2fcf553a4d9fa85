// Which event loop a new client connection lives on (private to the proxy module).
#pragma once

#include <cstddef>

namespace greenlight::proxy {

// Every loop accepts on every listener, so a burst of connections (a client's pool opening 64
// at once) lands on whichever loop woke first unless it is spread. The loop that accepted keeps
// the connection while it holds at most `slack` more than the loop holding the fewest (no
// hand-off between threads while the loops are level); otherwise that loop gets it.
// `held(i)`: the connections loop i holds now.
template <class Held>
size_t balancedLoop(size_t accepting, size_t loops, Held held, double slack) {
  const double own = held(accepting);
  size_t least = accepting;
  double fewest = own;
  for (size_t i = 0; i < loops; ++i) {
    const double n = held(i);
    if (n < fewest) {
      fewest = n;
      least = i;
    }
  }
  return own > fewest + slack ? least : accepting;
}

}  // namespace greenlight::proxy
