// Host harness: runs gpucal's fused combine kernel body (combine_pixel.cuh) on the CPU,
// one pixel after another, with the arguments the CUDA kernel takes (cuda/combine.cu).
// Built once by tests/test_combine_kernel.py: the stack depth is an argument, as on the GPU.
#include "combine_pixel.cuh"

template <typename T>
static void run(const T* x, const unsigned char* mask, const double* scale,
                const double* weights, double* work, int nframes, long long npix, int has_mask,
                int has_scale, int method, int has_min, int has_max, double min_clip,
                double max_clip, int nlow, int nhigh, int sigma, double sigma_lower,
                double sigma_upper, int maxiters, int cen_median, int deviation,
                int weights_kind, T* value, T* uncertainty, int* nkept) {
    GpucalCombineParams prm = {method,   has_min,    has_max,   min_clip,    max_clip,
                               nlow,     nhigh,      sigma,     sigma_lower, sigma_upper,
                               maxiters, cen_median, deviation, weights_kind};
    for (long long p = 0; p < npix; ++p)
        gpucal_combine_pixel<T>(x, has_mask ? mask : nullptr, has_scale ? scale : nullptr,
                                weights_kind ? weights : nullptr, work, nframes, npix, p, prm,
                                value, uncertainty, nkept);
}

#define GPUCAL_HOST_ENTRY(NAME, T)                                                            \
    extern "C" void NAME(const T* x, const unsigned char* mask, const double* scale,           \
                         const double* weights, double* work, int nframes, long long npix,    \
                         int has_mask, int has_scale, int method, int has_min, int has_max,   \
                         double min_clip, double max_clip, int nlow, int nhigh, int sigma,    \
                         double sigma_lower, double sigma_upper, int maxiters, int cen_median, \
                         int deviation, int weights_kind, T* value, T* uncertainty,           \
                         int* nkept) {                                                         \
        run<T>(x, mask, scale, weights, work, nframes, npix, has_mask, has_scale, method,     \
               has_min, has_max, min_clip, max_clip, nlow, nhigh, sigma, sigma_lower,         \
               sigma_upper, maxiters, cen_median, deviation, weights_kind, value,             \
               uncertainty, nkept);                                                           \
    }

GPUCAL_HOST_ENTRY(combine_f32, float)
GPUCAL_HOST_ENTRY(combine_f64, double)
