// gpucal.combine's fused kernel: one thread per output pixel, every rejection and the
// combination in one launch. The depth is a runtime argument: a thread keeps no array of
// its own (no local memory), and what it must sort lies in `work`, an (nframes, npix)
// float64 scratch (see combine_pixel.cuh). One instantiation per dtype serves every depth.
// combine_pixel.cuh is prepended to this source when it is compiled (see _cuda/combine.py).

template <typename T>
__global__ void
gpucal_combine_stack(const T* x, const unsigned char* mask, const double* scale,
                     const double* weights, double* work, int nframes, long long npix,
                     int has_mask, int has_scale, int method, int has_min, int has_max,
                     double min_clip, double max_clip, int nlow, int nhigh, int sigma,
                     double sigma_lower, double sigma_upper, int maxiters, int cen_median,
                     int deviation, int weights_kind, T* value, T* uncertainty, int* nkept) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= npix) return;
    GpucalCombineParams prm = {method,      has_min,     has_max,  min_clip,   max_clip,
                               nlow,        nhigh,       sigma,    sigma_lower, sigma_upper,
                               maxiters,    cen_median,  deviation, weights_kind};
    gpucal_combine_pixel<T>(x, has_mask ? mask : nullptr, has_scale ? scale : nullptr,
                            weights_kind ? weights : nullptr, work, nframes, npix, p, prm, value,
                            uncertainty, nkept);
}
