// The tiny golden models (tests/golden) that backend tests run on, one of
// each architecture, and a state budget that holds a crowd on any of them.
#ifndef SLABSERVE_ENGINE_BACKEND_TEST_UTIL_H_
#define SLABSERVE_ENGINE_BACKEND_TEST_UTIL_H_

#include <cstddef>
#include <string>

namespace slabserve::testing {

// Their files are in the runfiles of every test that depends on
// //engine/backend:test_util.
inline constexpr const char* kGoldenModels[] = {"griffin_tiny", "hawk_tiny",
                                                "srm_tiny"};

inline constexpr size_t kGoldenStateBudgetBytes = size_t{256} << 20;

// The directory of golden model `name`, relative to the runfiles root.
inline std::string GoldenModelDir(const std::string& name) {
  return "tests/golden/" + name;
}

}  // namespace slabserve::testing

#endif  // SLABSERVE_ENGINE_BACKEND_TEST_UTIL_H_
