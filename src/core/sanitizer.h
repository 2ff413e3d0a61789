// Whether this build runs under AddressSanitizer (GCC says so by __SANITIZE_ADDRESS__, clang by __has_feature; the
// fuzz build defines the former for clang too). Code that would hide overruns from it (reading files through
// mappings with a zero tail, big blocks mapped without red zones) takes the plain heap instead.
#pragma once

namespace mae {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace mae
