// Helpers for fuzz targets whose code under test reads files.
#ifndef SLABSERVE_FUZZ_FUZZ_INPUT_H_
#define SLABSERVE_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace slabserve::fuzz {

// Writes the input to a per-process scratch file and returns its path; the
// file is rewritten on every call.
std::string WriteScratchFile(const uint8_t* data, size_t size);

}  // namespace slabserve::fuzz

#endif  // SLABSERVE_FUZZ_FUZZ_INPUT_H_
