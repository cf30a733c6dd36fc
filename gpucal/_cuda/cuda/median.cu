// L.A.Cosmic's median filters: one thread per pixel of a (frames, ny, nx) stack of n
// pixels, the window in registers. The separable filter is two launches (rows, then
// columns of the row medians). median_pixel.cuh is prepended to this source when it is
// compiled (see _cuda/median.py).

template <int H>
__global__ void gpucal_median_rows(const float* src, float* rows, long long nx, long long n) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p < n) gpucal_median_row_pixel<H>(src, rows, nx, p);
}

template <int H>
__global__ void gpucal_median_columns(const float* src, const float* rows, float* out,
                                      long long ny, long long nx, long long n) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p < n) gpucal_median_column_pixel<H>(src, rows, out, ny, nx, p);
}

template <int H>
__global__ void gpucal_median_box(const float* src, float* out, long long ny, long long nx,
                                  long long n) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p < n) gpucal_median_box_pixel<H>(src, out, ny, nx, p);
}
