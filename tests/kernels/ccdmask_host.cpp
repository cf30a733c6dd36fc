// Host harness: runs ccdmask's kernel bodies (ccdmask_pixel.cuh) on the CPU, pixel after
// pixel and column after column, with the arguments the CUDA kernels take (cuda/ccdmask.cu).
#include <vector>

#include "ccdmask_pixel.cuh"

template <typename T>
static void rank_filter(const T* src, long long H, long long W, int h, int w,
                        const double* pcts, int nranks, T* out) {
    std::vector<T> buf(h * w);
    for (long long p = 0; p < H * W; ++p)
        gpucal_rank_pixel<T>(src, H, W, h, w, pcts, nranks, p, buf.data(), out);
}

extern "C" void rank_filter_f32(const float* src, long long H, long long W, int h, int w,
                                const double* pcts, int nranks, float* out) {
    rank_filter(src, H, W, h, w, pcts, nranks, out);
}

extern "C" void rank_filter_f64(const double* src, long long H, long long W, int h, int w,
                                const double* pcts, int nranks, double* out) {
    rank_filter(src, H, W, h, w, pcts, nranks, out);
}

extern "C" void fill_column_gaps(unsigned char* mask, long long nl, long long nc, int ngood) {
    for (long long col = 0; col < nc; ++col) gpucal_fill_column(mask, nl, nc, col, ngood);
}
