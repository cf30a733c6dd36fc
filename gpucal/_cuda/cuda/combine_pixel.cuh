// gpucal: one pixel of gpucal.combine -- reject, then combine the N values of a stack.
//
// The semantics are cpu_fallback.stack.combine's (ccdproc 2.5.1 / astropy's sigma_clip):
// non-finite and masked values are rejected; minmax thresholds apply to raw values; values
// are then scaled; clip_extrema ranks (NaN highest, ties by frame order) and sigma-clipping
// bounds (from every finite value) reject more; the kept values are combined.  All
// statistics are double precision.
//
// Host and device alike (portable.cuh): the host test harness runs exactly this code on the
// CPU against cpu_fallback.

#ifndef __CUDACC_RTC__
#include "portable.cuh"
#endif

enum GpucalMethod { GPUCAL_AVERAGE = 0, GPUCAL_MEDIAN = 1, GPUCAL_SUM = 2 };
enum GpucalDeviation { GPUCAL_STD = 0, GPUCAL_MAD_STD = 1, GPUCAL_MAD = 2 };

struct GpucalCombineParams {
    int method;                 // GpucalMethod
    int has_min, has_max;       // minmax clipping thresholds present
    double min_clip, max_clip;
    int nlow, nhigh;            // clip_extrema; nlow < 0: off
    int sigma;                  // sigma clipping on
    double sigma_lower, sigma_upper;
    int maxiters;               // <= 0: until nothing changes
    int cen_median;             // centre: 1 median, 0 mean
    int deviation;              // GpucalDeviation
    int weights;                // 0 none, 1 per frame, 2 per pixel
};

static const double GPUCAL_MAD_TO_STD = 1.482602218505602;

// Sort a[0:n] ascending (insertion sort: n is a stack depth, small).
GPUCAL_FN void gpucal_sort(double* a, int n) {
    for (int i = 1; i < n; ++i) {
        double v = a[i];
        int j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            --j;
        }
        a[j + 1] = v;
    }
}

// Median of sorted s[start:start+n]: the mean of the two middle values for even n.
GPUCAL_FN double gpucal_median_sorted(const double* s, int start, int n) {
    if (n <= 0) return gpucal_qnan<double>();
    return (s[start + (n - 1) / 2] + s[start + n / 2]) / 2;
}

// Median absolute deviation from `med` of sorted s[start:stop] (scratch: d).
template <int N>
GPUCAL_FN double gpucal_mad_sorted(const double* s, int start, int stop, double med, double* d) {
    int n = stop - start;
    for (int i = 0; i < n; ++i) d[i] = fabs(s[start + i] - med);
    gpucal_sort(d, n);
    return gpucal_median_sorted(d, 0, n);
}

// Bounds of mean/std clipping, iterating on the set of kept values (no sort needed).
template <int N>
GPUCAL_FN void gpucal_bounds_mean_std(const double* v, const GpucalCombineParams& p,
                                      double* lo, double* hi) {
    bool in[N];
    int n = 0;
    for (int i = 0; i < N; ++i) {
        in[i] = isfinite(v[i]);
        n += in[i];
    }
    *lo = *hi = gpucal_qnan<double>();
    for (int it = 0; n > 0 && (p.maxiters <= 0 || it < p.maxiters); ++it) {
        double sum = 0, ss = 0;
        for (int i = 0; i < N; ++i) if (in[i]) sum += v[i];
        double mean = sum / n;
        for (int i = 0; i < N; ++i) if (in[i]) ss += (v[i] - mean) * (v[i] - mean);
        double std = sqrt(ss / n);
        *lo = mean - p.sigma_lower * std;
        *hi = mean + p.sigma_upper * std;
        int kept = 0;
        for (int i = 0; i < N; ++i) {
            in[i] = in[i] && v[i] >= *lo && v[i] <= *hi;
            kept += in[i];
        }
        if (kept == n || kept == 0) break;
        n = kept;
    }
}

// Bounds of clipping with a median centre or a MAD deviation: the kept values are a run
// [start, stop) of the sorted finite values, which each iteration shrinks.
template <int N>
GPUCAL_FN void gpucal_bounds_sorted(const double* v, const GpucalCombineParams& p,
                                    double* lo, double* hi) {
    double s[N], d[N];
    int nfin = 0;
    for (int i = 0; i < N; ++i) if (isfinite(v[i])) s[nfin++] = v[i];
    gpucal_sort(s, nfin);
    int start = 0, stop = nfin;
    *lo = *hi = gpucal_qnan<double>();
    for (int it = 0; stop > start && (p.maxiters <= 0 || it < p.maxiters); ++it) {
        int n = stop - start;
        double mean = 0, med = 0, cen, dev;
        if (!p.cen_median || p.deviation == GPUCAL_STD) {
            for (int i = start; i < stop; ++i) mean += s[i];
            mean /= n;
        }
        if (p.cen_median || p.deviation != GPUCAL_STD) med = gpucal_median_sorted(s, start, n);
        cen = p.cen_median ? med : mean;
        if (p.deviation == GPUCAL_STD) {
            double ss = 0;
            for (int i = start; i < stop; ++i) ss += (s[i] - mean) * (s[i] - mean);
            dev = sqrt(ss / n);
        } else {
            dev = gpucal_mad_sorted<N>(s, start, stop, med, d);
            if (p.deviation == GPUCAL_MAD_STD) dev *= GPUCAL_MAD_TO_STD;
        }
        *lo = cen - p.sigma_lower * dev;
        *hi = cen + p.sigma_upper * dev;
        int below = 0, upto = 0;
        for (int i = 0; i < nfin; ++i) {
            below += s[i] < *lo;
            upto += s[i] <= *hi;
        }
        int new_start = below > start ? below : start;
        int new_stop = upto < stop ? upto : stop;
        if (new_start == start && new_stop == stop) break;
        start = new_start;
        stop = new_stop;
    }
}

// Reject and combine pixel `p` of a (N, npix) stack. `mask`, `scale` and `weights` may be
// null. Writes value, uncertainty (ccdproc's) and the number of values kept.
template <int N, typename T>
GPUCAL_FN void gpucal_combine_pixel(const T* x, const unsigned char* mask, const double* scale,
                                    const double* weights, long long npix, long long p,
                                    const GpucalCombineParams& prm, T* value, T* uncertainty,
                                    int* nkept) {
    double v[N];
    bool keep[N];
    for (int i = 0; i < N; ++i) {
        double raw = (double)x[i * npix + p];
        bool k = isfinite(raw) && !(mask && mask[i * npix + p]);
        if (prm.has_min && raw < prm.min_clip) k = false;
        if (prm.has_max && raw > prm.max_clip) k = false;
        v[i] = scale ? raw * scale[i] : raw;
        keep[i] = k;
    }
    if (prm.nlow >= 0) {  // clip_extrema: rank by value, NaN highest, ties by frame order
        for (int i = 0; i < N; ++i) {
            int rank = 0;
            for (int j = 0; j < N; ++j) {
                bool before = isnan(v[i]) ? (isnan(v[j]) ? j < i : true)
                                          : (!isnan(v[j]) && (v[j] < v[i] || (v[j] == v[i] && j < i)));
                rank += before;
            }
            if (rank < prm.nlow || rank >= N - prm.nhigh) keep[i] = false;
        }
    }
    if (prm.sigma) {
        double lo, hi;
        if (!prm.cen_median && prm.deviation == GPUCAL_STD) gpucal_bounds_mean_std<N>(v, prm, &lo, &hi);
        else gpucal_bounds_sorted<N>(v, prm, &lo, &hi);
        for (int i = 0; i < N; ++i) keep[i] = keep[i] && v[i] >= lo && v[i] <= hi;
    }

    int n = 0;
    for (int i = 0; i < N; ++i) n += keep[i];
    double result, unc;
    if (prm.method == GPUCAL_MEDIAN) {
        double a[N], d[N];
        int m = 0;
        for (int i = 0; i < N; ++i) if (keep[i]) a[m++] = v[i];
        gpucal_sort(a, m);
        result = gpucal_median_sorted(a, 0, m);
        unc = GPUCAL_MAD_TO_STD * gpucal_mad_sorted<N>(a, 0, m, result, d) / sqrt((double)n);
    } else {
        double sum = 0, ss = 0, wsum = 0, wtotal = 0;
        for (int i = 0; i < N; ++i) if (keep[i]) sum += v[i];
        double mean = sum / n;
        for (int i = 0; i < N; ++i) if (keep[i]) ss += (v[i] - mean) * (v[i] - mean);
        double std = sqrt(ss / n);
        double total = sum, average = mean;
        if (prm.weights) {
            int weighed = 0;
            for (int i = 0; i < N; ++i) {
                if (!keep[i]) continue;
                double w = prm.weights == 1 ? weights[i] : weights[i * npix + p];
                wtotal += v[i] * w;
                wsum += w;
                weighed += w != 0;
            }
            total = wtotal;
            average = wtotal / wsum;
            if (!weighed) {  // only zero weights kept: no data, as when all are rejected
                n = 0;
                std = gpucal_qnan<double>();
            }
        }
        if (prm.method == GPUCAL_AVERAGE) {
            result = average;
            unc = std / sqrt((double)n);
        } else {
            result = total;
            unc = std * sqrt((double)n);
        }
    }
    value[p] = (T)result;
    uncertainty[p] = (T)unc;
    nkept[p] = n;
}
