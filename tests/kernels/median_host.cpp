// Host harness: runs the median kernels' bodies (median_pixel.cuh) on the CPU, pixel after
// pixel, with the arguments the CUDA kernels take (cuda/median.cu).
#include <vector>

#include "median_pixel.cuh"

template <int K>
static void select_all(const float* values, long long count, float* out) {
    for (long long g = 0; g < count; ++g) {
        float v[K];
        for (int k = 0; k < K; ++k) v[k] = values[g * K + k];
        out[g] = gpucal_median_select(v);
    }
}

// out[g] = median of values[g * k .. g * k + k - 1]; returns -1 for a k with no instance.
extern "C" int median_select(const float* values, long long count, int k, float* out) {
    switch (k) {
        case 3: select_all<3>(values, count, out); return 0;
        case 5: select_all<5>(values, count, out); return 0;
        case 7: select_all<7>(values, count, out); return 0;
        case 9: select_all<9>(values, count, out); return 0;
        case 25: select_all<25>(values, count, out); return 0;
        case 49: select_all<49>(values, count, out); return 0;
        default: return -1;
    }
}

template <int H>
static void filter(const float* src, float* out, long long ny, long long nx, long long n,
                   int separable) {
    if (!separable) {
        for (long long p = 0; p < n; ++p) gpucal_median_box_pixel<H>(src, out, ny, nx, p);
        return;
    }
    std::vector<float> rows(n);
    for (long long p = 0; p < n; ++p) gpucal_median_row_pixel<H>(src, rows.data(), nx, p);
    for (long long p = 0; p < n; ++p)
        gpucal_median_column_pixel<H>(src, rows.data(), out, ny, nx, p);
}

// The median filter of n pixels of (frames, ny, nx) frames; returns -1 for an unsupported
// size (the full filter has sizes 3, 5, 7; the separable one 3, 5, 7, 9).
extern "C" int median_filter(const float* src, float* out, long long ny, long long nx,
                             long long n, int size, int separable) {
    switch (size) {
        case 3: filter<1>(src, out, ny, nx, n, separable); return 0;
        case 5: filter<2>(src, out, ny, nx, n, separable); return 0;
        case 7: filter<3>(src, out, ny, nx, n, separable); return 0;
        case 9:
            if (!separable) return -1;
            filter<4>(src, out, ny, nx, n, separable);
            return 0;
        default: return -1;
    }
}
