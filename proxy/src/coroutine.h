// The data plane's coroutine types (private to the proxy module). Every coroutine runs on an
// io_context (one per event loop), so they are typed with its executor rather than Asio's
// default any_io_executor: each suspension and resumption otherwise copies, queries and destroys
// a type-erased executor (about 1% of the proxy's CPU per request).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio.hpp>

namespace greenlight::proxy {

using LoopExecutor = boost::asio::io_context::executor_type;
template <class T>
using Task = boost::asio::awaitable<T, LoopExecutor>;
inline constexpr boost::asio::use_awaitable_t<LoopExecutor> kAwait{};
// Errors come back as values (Boost 1.74 has redirect_error, not as_tuple).
inline auto ecOut(boost::system::error_code& ec) { return boost::asio::redirect_error(kAwait, ec); }

}  // namespace greenlight::proxy
