// gpucal: what lets one kernel source compile as CUDA device code (NVRTC, through CuPy) and
// as plain C++ (the host test harnesses, which run exactly the kernels' code on the CPU).
// The launchers put this file first in every kernel's source; host code #includes it.
#ifndef GPUCAL_PORTABLE_CUH
#define GPUCAL_PORTABLE_CUH

#ifdef __CUDACC_RTC__
#define GPUCAL_FN __device__ inline
template <typename T> GPUCAL_FN T gpucal_qnan();
template <> GPUCAL_FN float gpucal_qnan<float>() { return __int_as_float(0x7fc00000); }
template <> GPUCAL_FN double gpucal_qnan<double>() {
    return __longlong_as_double(0x7ff8000000000000LL);
}
template <typename T> GPUCAL_FN T gpucal_inf();
template <> GPUCAL_FN double gpucal_inf<double>() {
    return __longlong_as_double(0x7ff0000000000000LL);
}
#else
#include <cmath>
#include <limits>
#define GPUCAL_FN inline
using std::fabs;
using std::isfinite;
using std::isnan;
using std::sqrt;
template <typename T> inline T gpucal_qnan() { return std::numeric_limits<T>::quiet_NaN(); }
template <typename T> inline T gpucal_inf() { return std::numeric_limits<T>::infinity(); }
#endif

#endif  // GPUCAL_PORTABLE_CUH
