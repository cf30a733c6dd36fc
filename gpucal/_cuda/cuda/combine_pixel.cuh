// gpucal: one pixel of gpucal.combine -- reject, then combine the n values of a stack.
//
// The semantics are gpucal._xp.stack.combine's (ccdproc 2.5.1 / astropy's sigma_clip):
// non-finite and masked values are rejected; minmax thresholds apply to raw values; values
// are then scaled; clip_extrema ranks (NaN highest, ties by frame order) and sigma-clipping
// bounds (from every finite value) reject more; the kept values are combined.  All
// statistics are double precision.
//
// Nothing per value is held by the thread (no local arrays, so no local memory and no
// launch reserve): the depth n is a runtime argument and one instantiation per dtype serves
// every depth.  What must be ordered goes to `work`, a (n, npix) float64 scratch laid out
// like the stack (value i of pixel p at work[i * npix + p]: a warp's loads coalesce where
// its threads touch the same i, as in filling it; within a sort they scatter):
//
// * one heapsort of the n scaled values (NaN last) when clip_extrema or a sigma clip with a
//   median centre or a MAD deviation asks for order: extrema become two thresholds (the
//   nlow-th and the (n - nhigh)-th value, ties taken in frame order), the clipped runs are
//   index ranges of the sorted values found by binary search;
// * for the median, the kept values sorted (or, without a mask or minmax, their run of the
//   sorted values as it is), the median read off, and the MAD as the k-th smallest
//   deviation by merging the two sorted halves either side of the median (no second sort);
// * mean/std clipping, averages, sums and weights stream over the stack in frame order,
//   deciding each value's fate again on every pass (a few coalesced loads).
//
// Work per pixel: O(n log n) for the sorts (at most two), O(n) a pass and a clipping
// iteration (O(log n) to move a clipped run's ends). Every sum is taken in the order
// the CPU backend takes it and medians and MADs are of the same values, so the results are
// those of the per-thread-array kernel this replaced.
//
// Host and device alike (portable.cuh): the host test harness runs exactly this code on the
// CPU against the CPU backend.

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

// One pixel's column of a (n, npix) array: element i at base[i * stride].
template <typename T>
struct GpucalColumn {
    T* base;
    long long stride;
    GPUCAL_FN T& operator[](int i) const { return base[(long long)i * stride]; }
};

// The order of the sorts: numbers ascending, NaN after every number (NaNs are equal).
GPUCAL_FN bool gpucal_less(double a, double b) { return a < b || (isnan(b) && !isnan(a)); }

// Sort a[0:n] ascending, NaN last, in place: heapsort, O(n log n), no extra storage.
GPUCAL_FN void gpucal_sift_down(GpucalColumn<double> a, int root, int n) {
    double v = a[root];
    for (int child = 2 * root + 1; child < n; child = 2 * root + 1) {
        double c = a[child];
        if (child + 1 < n) {
            double d = a[child + 1];
            if (gpucal_less(c, d)) {
                c = d;
                ++child;
            }
        }
        if (!gpucal_less(v, c)) break;
        a[root] = c;
        root = child;
    }
    a[root] = v;
}

GPUCAL_FN void gpucal_heapsort(GpucalColumn<double> a, int n) {
    for (int root = n / 2 - 1; root >= 0; --root) gpucal_sift_down(a, root, n);
    for (int end = n - 1; end > 0; --end) {
        double top = a[0];
        a[0] = a[end];
        a[end] = top;
        gpucal_sift_down(a, 0, end);
    }
}

// First index in [lo, hi) of sorted s whose value is not before `t` (gpucal_less), i.e. the
// number of values before it; `strict` false: the first index after every value equal to t.
GPUCAL_FN int gpucal_bound(GpucalColumn<double> s, int lo, int hi, double t, bool strict) {
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        bool before = strict ? gpucal_less(s[mid], t) : !gpucal_less(t, s[mid]);
        if (before) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// The same bounds with the comparisons sigma clipping makes (s < lo, s <= hi), on a run of
// finite values: below(t) counts s < t, upto(t) counts s <= t (NaN t: none).
GPUCAL_FN int gpucal_count_below(GpucalColumn<double> s, int lo, int hi, double t) {
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (s[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

GPUCAL_FN int gpucal_count_upto(GpucalColumn<double> s, int lo, int hi, double t) {
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (s[mid] <= t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// Median of sorted s[start:start+n]: the mean of the two middle values for even n.
GPUCAL_FN double gpucal_median_sorted(GpucalColumn<double> s, int start, int n) {
    if (n <= 0) return gpucal_qnan<double>();
    return (s[start + (n - 1) / 2] + s[start + n / 2]) / 2;
}

// Median absolute deviation from `med` of sorted s[start:stop]. The deviations of the
// values below med grow leftwards and those of the others rightwards: merging the two runs
// from med outwards visits the deviations in ascending order, so the k-th is found in
// O(n) without sorting them.
GPUCAL_FN double gpucal_mad_sorted(GpucalColumn<double> s, int start, int stop, double med) {
    int n = stop - start;
    if (n <= 0) return gpucal_qnan<double>();
    int right = gpucal_count_below(s, start, stop, med);  // first value >= med
    int left = right - 1;
    double dl = left >= start ? fabs(s[left] - med) : 0;  // the deviations next in line
    double dr = right < stop ? fabs(s[right] - med) : 0;
    int k1 = (n - 1) / 2, k2 = n / 2;
    double d1 = 0, d2 = 0;
    for (int k = 0; k <= k2; ++k) {
        if (left >= start && (right >= stop || !gpucal_less(dr, dl))) {
            d2 = dl;
            if (--left >= start) dl = fabs(s[left] - med);
        } else {
            d2 = dr;
            if (++right < stop) dr = fabs(s[right] - med);
        }
        if (k == k1) d1 = d2;
    }
    return (d1 + d2) / 2;
}

// Whether each value of a pixel is kept, decided value by value in frame order (the order
// is what breaks clip_extrema's ties): take a fresh copy for every pass over the stack.
struct GpucalKeep {
    const unsigned char* mask;  // the pixel's first mask byte, or null
    long long stride;
    int has_low, has_high;      // clip_extrema: values before tlow / after thigh
    double tlow, thigh;         // (gpucal_less) go; of the values equal to tlow the first
    int low_ties, high_ties;    // low_ties go; of those equal to thigh the first high_ties
                                // stay and the rest go
    double lo, hi;              // sigma-clipping bounds (when prm.sigma)

    // Extrema ranks: advances the tie counters, so call it for every value, in order.
    GPUCAL_FN bool ranked_in(double v) {
        bool in = true;
        if (has_low) {
            if (gpucal_less(v, tlow)) in = false;
            else if (!gpucal_less(tlow, v) && low_ties > 0) {
                --low_ties;
                in = false;
            }
        }
        if (has_high) {
            if (gpucal_less(thigh, v)) in = false;
            else if (!gpucal_less(v, thigh)) {
                if (high_ties > 0) --high_ties;
                else in = false;
            }
        }
        return in;
    }

    // Value i (raw, and scaled: v): finite, unmasked, inside the minmax thresholds, ranked
    // in, inside the sigma bounds.
    GPUCAL_FN bool operator()(const GpucalCombineParams& prm, int i, double raw, double v) {
        bool k = isfinite(raw) && !(mask && mask[i * stride]);
        if (prm.has_min && raw < prm.min_clip) k = false;
        if (prm.has_max && raw > prm.max_clip) k = false;
        if (prm.nlow >= 0 && !ranked_in(v)) k = false;  // ranks count every value
        if (prm.sigma) k = k && v >= lo && v <= hi;
        return k;
    }
};

// A pixel's stack as the passes read it: raw values and their scaled float64 values.
template <typename T>
struct GpucalStack {
    GpucalColumn<const T> x;
    const double* scale;
    int n;
    GPUCAL_FN double raw(int i) const { return (double)x[i]; }
    GPUCAL_FN double value(double raw, int i) const { return scale ? raw * scale[i] : raw; }
};

// Bounds of mean/std clipping, iterating on the kept set in frame order (no sort): the
// values kept after some iterations are the finite ones inside every bounds so far, i.e.
// inside [clo, chi], the intersection.
template <typename T>
GPUCAL_FN void gpucal_bounds_mean_std(const GpucalStack<T>& st, const GpucalCombineParams& p,
                                      double* lo, double* hi) {
    double clo = -gpucal_inf<double>(), chi = gpucal_inf<double>();
    int n = 0;
    for (int i = 0; i < st.n; ++i) n += isfinite(st.value(st.raw(i), i));
    *lo = *hi = gpucal_qnan<double>();
    for (int it = 0; n > 0 && (p.maxiters <= 0 || it < p.maxiters); ++it) {
        double sum = 0, ss = 0;
        for (int i = 0; i < st.n; ++i) {
            double v = st.value(st.raw(i), i);
            if (isfinite(v) && v >= clo && v <= chi) sum += v;
        }
        double mean = sum / n;
        for (int i = 0; i < st.n; ++i) {
            double v = st.value(st.raw(i), i);
            if (isfinite(v) && v >= clo && v <= chi) ss += (v - mean) * (v - mean);
        }
        double std = sqrt(ss / n);
        *lo = mean - p.sigma_lower * std;
        *hi = mean + p.sigma_upper * std;
        int kept = 0;
        for (int i = 0; i < st.n; ++i) {
            double v = st.value(st.raw(i), i);
            kept += isfinite(v) && v >= clo && v <= chi && v >= *lo && v <= *hi;
        }
        if (kept == n || kept == 0) break;
        n = kept;
        if (*lo > clo) clo = *lo;  // neither is NaN: some value lay between them
        if (*hi < chi) chi = *hi;
    }
}

// Bounds of clipping with a median centre or a MAD deviation: the kept values are a run
// [start, stop) of the sorted finite values s[f0:f1], which each iteration shrinks.
GPUCAL_FN void gpucal_bounds_sorted(GpucalColumn<double> s, int f0, int f1,
                                    const GpucalCombineParams& p, double* lo, double* hi) {
    int start = f0, stop = f1;
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
            dev = gpucal_mad_sorted(s, start, stop, med);
            if (p.deviation == GPUCAL_MAD_STD) dev *= GPUCAL_MAD_TO_STD;
        }
        *lo = cen - p.sigma_lower * dev;
        *hi = cen + p.sigma_upper * dev;
        int below = gpucal_count_below(s, f0, f1, *lo);
        int upto = gpucal_count_upto(s, f0, f1, *hi);
        int new_start = below > start ? below : start;
        int new_stop = upto < stop ? upto : stop;
        if (new_start == start && new_stop == stop) break;
        start = new_start;
        stop = new_stop;
    }
}

// Whether a pixel's values must be put in order (the sorted path of gpucal_combine_pixel).
GPUCAL_FN bool gpucal_combine_sorts(const GpucalCombineParams& prm) {
    return prm.nlow >= 0 || (prm.sigma && (prm.cen_median || prm.deviation != GPUCAL_STD));
}

// Whether gpucal_combine_pixel uses its `work` scratch.
GPUCAL_FN bool gpucal_combine_needs_work(const GpucalCombineParams& prm) {
    return prm.method == GPUCAL_MEDIAN || gpucal_combine_sorts(prm);
}

// Reject and combine pixel `p` of an (nframes, npix) stack. `mask`, `scale` and `weights`
// may be null; `work` is an (nframes, npix) float64 scratch, which may be null where
// gpucal_combine_needs_work is false. Writes value, uncertainty (ccdproc's) and the number
// of values kept.
template <typename T>
GPUCAL_FN void gpucal_combine_pixel(const T* x, const unsigned char* mask, const double* scale,
                                    const double* weights, double* work, int nframes,
                                    long long npix, long long p, const GpucalCombineParams& prm,
                                    T* value, T* uncertainty, int* nkept) {
    const int N = nframes;
    const GpucalStack<T> st = {{x + p, npix}, scale, N};
    const GpucalColumn<double> s = {work + p, npix};
    GpucalKeep keep = {mask ? mask + p : nullptr, npix, 0, 0, 0.0, 0.0, 0, 0,
                       gpucal_qnan<double>(), gpucal_qnan<double>()};

    // Every scaled value in order, when ranks or median-based clipping need it.
    const bool sorted = gpucal_combine_sorts(prm);
    int f0 = 0, f1 = 0;  // the finite values: s[f0:f1] (-inf before, +inf and NaN after)
    if (sorted) {
        for (int i = 0; i < N; ++i) s[i] = st.value(st.raw(i), i);
        gpucal_heapsort(s, N);
        f0 = gpucal_bound(s, 0, N, -gpucal_inf<double>(), false);
        f1 = gpucal_bound(s, f0, N, gpucal_inf<double>(), true);
    }
    // clip_extrema keeps ranks [nlow, N - nhigh) of all N values
    const int nlow = prm.nlow < 0 ? 0 : (prm.nlow < N ? prm.nlow : N);
    const int nhigh = prm.nlow < 0 ? 0 : (prm.nhigh < N ? prm.nhigh : N);
    if (nlow > 0) {
        keep.has_low = 1;
        keep.tlow = s[nlow - 1];
        keep.low_ties = nlow - gpucal_bound(s, 0, N, keep.tlow, true);
    }
    if (nhigh > 0) {
        keep.has_high = 1;
        keep.thigh = s[N - nhigh];
        keep.high_ties = N - nhigh - gpucal_bound(s, 0, N, keep.thigh, true);
    }
    if (prm.sigma) {
        if (!prm.cen_median && prm.deviation == GPUCAL_STD)
            gpucal_bounds_mean_std(st, prm, &keep.lo, &keep.hi);
        else
            gpucal_bounds_sorted(s, f0, f1, prm, &keep.lo, &keep.hi);
    }

    double result, unc;
    int n = 0;
    if (prm.method == GPUCAL_MEDIAN) {
        int start = 0;
        if (sorted && !mask && !prm.has_min && !prm.has_max) {
            // Nothing rejects by frame: the kept values are a run of the sorted ones, the
            // finite ones ranked in and inside the bounds.
            int a = f0 > nlow ? f0 : nlow, b = f1 < N - nhigh ? f1 : N - nhigh;
            if (prm.sigma) {
                int below = gpucal_count_below(s, f0, f1, keep.lo);
                int upto = gpucal_count_upto(s, f0, f1, keep.hi);
                a = a > below ? a : below;
                b = b < upto ? b : upto;
            }
            start = a;
            n = b > a ? b - a : 0;
        } else {  // the kept values, in frame order, then sorted
            GpucalKeep k = keep;
            for (int i = 0; i < N; ++i) {
                double raw = st.raw(i), v = st.value(raw, i);
                if (k(prm, i, raw, v)) s[n++] = v;
            }
            gpucal_heapsort(s, n);
        }
        result = gpucal_median_sorted(s, start, n);
        unc = GPUCAL_MAD_TO_STD * gpucal_mad_sorted(s, start, start + n, result) / sqrt((double)n);
    } else {
        double sum = 0, ss = 0, wsum = 0, wtotal = 0;
        int weighed = 0;  // kept values of non-zero weight
        GpucalKeep k = keep;
        for (int i = 0; i < N; ++i) {
            double raw = st.raw(i), v = st.value(raw, i);
            if (!k(prm, i, raw, v)) continue;
            ++n;
            sum += v;
            if (prm.weights) {
                double w = prm.weights == 1 ? weights[i] : weights[i * npix + p];
                wtotal += v * w;
                wsum += w;
                weighed += w != 0;
            }
        }
        double mean = sum / n;
        k = keep;
        for (int i = 0; i < N; ++i) {
            double raw = st.raw(i), v = st.value(raw, i);
            if (k(prm, i, raw, v)) ss += (v - mean) * (v - mean);
        }
        double std = sqrt(ss / n);
        double total = sum, average = mean;
        if (prm.weights) {
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
