// gpucal: L.A.Cosmic's exact median filters, one output pixel at a time.
//
// Semantics are cpu_fallback.medians' (astroscrappy's medfilt3/5/7 and sepmedfilt3/5/7/9)
// with h = H: the full filter gives each pixel at least H from every edge the median of its
// (2H+1)² window; the separable one takes the median of each (2H+1)-wide row window, then
// for the same interior the median of a (2H+1)-tall column window of those row medians.
// Every other pixel is the input's. Pixel p of a C-contiguous (frames, ny, nx) stack is
// (frame * ny + y) * nx + x, so no window leaves its frame. Values must be finite.
//
// Host and device alike (portable.cuh): the host test harness runs exactly this code on the
// CPU against cpu_fallback.

#ifndef __CUDACC_RTC__
#include "portable.cuh"
#endif

// The median of K values (K odd), exactly, reordering v. Bubble passes carry the smallest
// remaining value down to v[i] for i = 0 .. K/2, so v[K/2] is the median: a comparator
// network, exact with ties, without data-dependent branches. Unrolled, every index is a
// compile-time constant and v stays in registers (an array indexed at run time would go to
// local memory); the compiler drops the maxima nothing reads.
template <int K>
GPUCAL_FN float gpucal_median_select(float (&v)[K]) {
#pragma unroll
    for (int i = 0; i <= K / 2; ++i) {
#pragma unroll
        for (int j = K - 1; j > i; --j) {
            float lo = fminf(v[j - 1], v[j]);
            v[j] = fmaxf(v[j - 1], v[j]);
            v[j - 1] = lo;
        }
    }
    return v[K / 2];
}

GPUCAL_FN bool gpucal_interior(long long i, long long n, int h) { return i >= h && i < n - h; }

// Separable pass 1: rows[p] is the median of src's 1 × (2H+1) window centred on p where
// that window fits in the row, else src[p] (the second pass reads only the former).
template <int H>
GPUCAL_FN void gpucal_median_row_pixel(const float* src, float* rows, long long nx,
                                       long long p) {
    if (!gpucal_interior(p % nx, nx, H)) {
        rows[p] = src[p];
        return;
    }
    float v[2 * H + 1];
#pragma unroll
    for (int k = 0; k < 2 * H + 1; ++k) v[k] = src[p - H + k];
    rows[p] = gpucal_median_select(v);
}

// Separable pass 2: out[p] is the median of the (2H+1) × 1 window of `rows` centred on an
// interior pixel p, else the original src[p].
template <int H>
GPUCAL_FN void gpucal_median_column_pixel(const float* src, const float* rows, float* out,
                                          long long ny, long long nx, long long p) {
    if (!gpucal_interior(p % nx, nx, H) || !gpucal_interior(p / nx % ny, ny, H)) {
        out[p] = src[p];
        return;
    }
    float v[2 * H + 1];
#pragma unroll
    for (int k = 0; k < 2 * H + 1; ++k) v[k] = rows[p + (k - H) * nx];
    out[p] = gpucal_median_select(v);
}

// Full filter: out[p] is the median of the (2H+1)² window centred on an interior pixel p,
// else src[p].
template <int H>
GPUCAL_FN void gpucal_median_box_pixel(const float* src, float* out, long long ny,
                                       long long nx, long long p) {
    if (!gpucal_interior(p % nx, nx, H) || !gpucal_interior(p / nx % ny, ny, H)) {
        out[p] = src[p];
        return;
    }
    constexpr int W = 2 * H + 1;
    float v[W * W];
#pragma unroll
    for (int dy = 0; dy < W; ++dy)
#pragma unroll
        for (int dx = 0; dx < W; ++dx) v[dy * W + dx] = src[p + (dy - H) * nx + dx - H];
    out[p] = gpucal_median_select(v);
}
