// Finds stop strings in a completion's streamed text. Text that might be the
// start of a stop string is held back until it is known not to be one, so
// the client never receives any part of a stop string.
#ifndef SLABSERVE_SERVER_STOP_MATCHER_H_
#define SLABSERVE_SERVER_STOP_MATCHER_H_

#include <string>
#include <string_view>
#include <vector>

namespace slabserve::server {

class StopMatcher {
 public:
  // `stops` must not contain empty strings.
  explicit StopMatcher(std::vector<std::string> stops);

  // Takes the next piece of text; returns what may be sent now. Once a stop
  // string is found, returns the text before it, stopped() becomes true and
  // later calls return nothing.
  std::string Feed(std::string_view text);
  // At the end of the stream: the held-back text (it matched no stop string).
  std::string Flush();

  bool stopped() const { return stopped_; }

 private:
  const std::vector<std::string> stops_;
  std::string pending_;  // a suffix that is a prefix of some stop string
  bool stopped_ = false;
};

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_STOP_MATCHER_H_
