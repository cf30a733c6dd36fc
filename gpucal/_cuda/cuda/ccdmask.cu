// ccdmask's kernels: one thread per pixel for the rank filter (its window in local memory,
// CAPACITY values at most), one thread per column for the gap fill.
// ccdmask_pixel.cuh is prepended to this source when it is compiled (see _cuda/ccdmask.py).

template <int CAPACITY, typename T>
__global__ void gpucal_rank_filter(const T* src, long long H, long long W, int h, int w,
                                   const double* pcts, int nranks, T* out) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= H * W) return;
    T buf[CAPACITY];
    gpucal_rank_pixel<T>(src, H, W, h, w, pcts, nranks, p, buf, out);
}

extern "C" __global__ void gpucal_fill_column_gaps(unsigned char* mask, long long nl,
                                                   long long nc, int ngood) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col < nc) gpucal_fill_column(mask, nl, nc, col, ngood);
}
