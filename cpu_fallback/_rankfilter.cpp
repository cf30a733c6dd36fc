// Exact windowed rank statistics (median, percentiles) of a 2-D image, for the CPU.
//
// scipy.ndimage's rank filters copy and select the whole window for every pixel
// (O(h*w) with a quickselect); ccdmask needs three of them, which makes it slow.
// Here each output row keeps its window as w sorted column strips and, for every
// requested rank, a pointer into each strip: the elements before the pointers are
// the `rank` smallest of the window. Moving one pixel right drops a strip and adds
// one (its pointer: the count of its values below the previous answer), and the
// pointers walk the few steps to the new rank. Moving one row down updates every
// strip by one removal and one insertion. Results are exact window elements, so
// they equal scipy's wherever scipy is defined. The steps are data-dependent and
// short, so they are written without data-dependent branches where that is cheap
// (vector compares, counts and selects): a mispredicted branch costs more than the work.
//
// Semantics (what cpu_fallback.filters.rank_filter documents):
//   * window rows i - h/2 ... i - h/2 + h - 1, columns likewise (scipy, origin 0);
//   * borders reflect: d c b a | a b c d | d c b a (scipy mode="reflect");
//   * NaN takes no part; n = number of non-NaN window values;
//   * median: rank n // 2; percentile p: rank int(n * p / 100.0), n - 1 for p = 100
//     (scipy's formulas with n for the window size); n == 0 gives NaN.
//
// The module works on C-contiguous buffers and releases the GIL, so Python threads
// can run disjoint row bands at once.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

namespace {

typedef Py_ssize_t idx;

inline idx reflect(idx i, idx n) {
    if (n == 1) return 0;
    idx period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

template <typename T>
inline bool same(T a, T b) {  // the same bits: equal, including the sign of zero
    typedef typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type U;
    U x, y;
    std::memcpy(&x, &a, sizeof(T));
    std::memcpy(&y, &b, sizeof(T));
    return x == y;
}

// Smallest / largest of n values, n a multiple of the vector width: the walks below
// call these for every step, so they use GCC/Clang vector extensions where available.
#if defined(__GNUC__) || defined(__clang__)
template <bool lowest, typename T>
inline T extreme(const T* v, idx n) {
    typedef T V __attribute__((vector_size(16)));  // SSE2, the x86-64 baseline
    constexpr idx L = sizeof(V) / sizeof(T);
    V m, x;
    std::memcpy(&m, v, sizeof(V));
    for (idx k = L; k < n; k += L) {
        std::memcpy(&x, v + k, sizeof(V));
        m = lowest ? (x < m ? x : m) : (x > m ? x : m);
    }
    T e = m[0];
    for (idx i = 1; i < L; ++i) e = lowest ? (m[i] < e ? m[i] : e) : (m[i] > e ? m[i] : e);
    return e;
}
// The first index of the smallest / largest of n values, in one pass (n as above).
template <bool lowest, typename T>
inline idx arg_extreme(const T* v, idx n, T& e) {
    typedef T V __attribute__((vector_size(16)));
    typedef typename std::conditional<sizeof(T) == 4, int32_t, int64_t>::type I;
    typedef I IV __attribute__((vector_size(16)));
    constexpr idx L = sizeof(V) / sizeof(T);
    V m, x;
    IV at, best;
    for (idx i = 0; i < L; ++i) at[i] = static_cast<I>(i);
    std::memcpy(&m, v, sizeof(V));
    best = at;
    for (idx k = L; k < n; k += L) {
        std::memcpy(&x, v + k, sizeof(V));
        at += static_cast<I>(L);
        auto better = lowest ? x < m : x > m;  // strict: each lane keeps its first index
        m = better ? x : m;
        best = better ? at : best;
    }
    e = m[0];
    idx b = best[0];
    for (idx i = 1; i < L; ++i) {  // no branches: the winning lane is unpredictable
        bool better = (lowest ? m[i] < e : m[i] > e) | ((m[i] == e) & (best[i] < b));
        e = better ? m[i] : e;
        b = better ? static_cast<idx>(best[i]) : b;
    }
    return b;
}
constexpr idx lanes(idx bytes) { return 16 / bytes; }
// How many of the first n values are below x (sorted or not); `nv` values, a multiple
// of the vector width, are read.
template <typename T>
inline idx count_less(const T* v, idx n, idx nv, T x) {
    typedef T V __attribute__((vector_size(16)));
    typedef typename std::conditional<sizeof(T) == 4, int32_t, int64_t>::type I;
    typedef I IV __attribute__((vector_size(16)));
    constexpr idx L = sizeof(V) / sizeof(T);
    V xv, a;
    IV at, nn, count = {};
    for (idx i = 0; i < L; ++i) xv[i] = x, at[i] = static_cast<I>(i), nn[i] = static_cast<I>(n);
    for (idx k = 0; k < nv; k += L, at += static_cast<I>(L)) {
        std::memcpy(&a, v + k, sizeof(V));
        count -= (a < xv) & (at < nn);  // a true comparison is -1
    }
    idx total = 0;
    for (idx i = 0; i < L; ++i) total += count[i];
    return total;
}

// Strips up to this tall are updated with vectors (ccdmask's windows are 7 and 15).
constexpr idx kMaxVectorStrip = 64;

// s[k] leaves a sorted strip and x enters at position j (the count of the remaining
// values below x), all lanes at once: lane i takes s[i], s[i + 1], s[i - 1] or x.
// Reads s[-1] ... s[nv] (the strips are padded), writes s[0] ... s[nv - 1].
template <typename T>
inline void move_within(T* s, idx nv, idx k, idx j, T x) {
    typedef T V __attribute__((vector_size(16)));
    typedef typename std::conditional<sizeof(T) == 4, int32_t, int64_t>::type I;
    typedef I IV __attribute__((vector_size(16)));
    constexpr idx L = sizeof(V) / sizeof(T);
    V xv, cur, up, down;
    IV at, kk, jj;
    for (idx i = 0; i < L; ++i)
        xv[i] = x, at[i] = static_cast<I>(i), kk[i] = static_cast<I>(k), jj[i] = static_cast<I>(j);
    alignas(16) T out[kMaxVectorStrip];
    for (idx q = 0; q < nv; q += L, at += static_cast<I>(L)) {
        std::memcpy(&cur, s + q, sizeof(V));
        std::memcpy(&up, s + q + 1, sizeof(V));
        std::memcpy(&down, s + q - 1, sizeof(V));
        V before = at < kk ? cur : up;     // t[i]: the strip without s[k]
        V after = at <= kk ? down : cur;   // t[i - 1]
        V o = at < jj ? before : (at == jj ? xv : after);
        std::memcpy(out + q, &o, sizeof(V));
    }
    std::memcpy(s, out, nv * sizeof(T));
}
#else
template <bool lowest, typename T>
inline T extreme(const T* v, idx n) {
    T e = v[0];
    for (idx k = 1; k < n; ++k) e = lowest ? (v[k] < e ? v[k] : e) : (v[k] > e ? v[k] : e);
    return e;
}
template <bool lowest, typename T>
inline idx arg_extreme(const T* v, idx n, T& e) {
    idx b = 0;
    for (idx k = 1; k < n; ++k)
        if (lowest ? v[k] < v[b] : v[k] > v[b]) b = k;
    e = v[b];
    return b;
}
template <typename T>
inline idx count_less(const T* v, idx n, idx, T x) {
    idx total = 0;
    for (idx k = 0; k < n; ++k) total += v[k] < x;
    return total;
}
constexpr idx lanes(idx) { return 1; }
#endif

template <typename T>
struct Strips {
    idx cap;                 // strip capacity: window height, rounded up to whole vectors
    std::vector<T> v;        // W strips of `cap` values (`len` of them sorted), padded
    std::vector<idx> len;    // non-NaN values held by each strip

    Strips(idx ncols, idx h)
        : cap((h + lanes(sizeof(T)) - 1) / lanes(sizeof(T)) * lanes(sizeof(T))),
          v(ncols * cap + 2), len(ncols, 0) {}
    T* at(idx c) { return v.data() + 1 + c * cap; }  // one value of padding on each side

    void insert(idx c, T x) {
        if (x != x) return;
        T* s = at(c);
        idx k = len[c]++;
        while (k > 0 && s[k - 1] > x) { s[k] = s[k - 1]; --k; }
        s[k] = x;
    }
    void remove(idx c, T x) {
        if (x != x) return;
        T* s = at(c);
        idx n = len[c], k = find(s, n, x);
        if (k == n) return;
        for (; k + 1 < n; ++k) s[k] = s[k + 1];
        len[c] = n - 1;
    }
    // One row down: `gone` leaves the strip, `come` enters; the strip stays sorted.
    void replace(idx c, T gone, T come) {
        if (gone != gone || come != come) {
            remove(c, gone);
            insert(c, come);
            return;
        }
        T* s = at(c);
        idx n = len[c];
#if defined(__GNUC__) || defined(__clang__)
        if (cap <= kMaxVectorStrip) {  // no data-dependent branches: the common case
            idx k = count_less(s, n, cap, gone);  // the first value equal to `gone`
            if (k < n && same(s[k], gone)) {
                move_within(s, cap, k, count_less(s, n, cap, come) - (gone < come), come);
                return;
            }
        }
#endif
        idx k = find(s, n, gone);
        if (k == n) {  // not found (cannot happen for values read from the image)
            insert(c, come);
            return;
        }
        for (; k > 0 && s[k - 1] > come; --k) s[k] = s[k - 1];
        for (; k + 1 < n && s[k + 1] < come; ++k) s[k] = s[k + 1];
        s[k] = come;
    }

private:
    idx find(const T* s, idx n, T x) const {  // an element equal to x, same sign of zero first
        idx first = count_less(s, n, cap, x);
        for (idx k = first; k < n && s[k] == x; ++k)
            if (same(s[k], x)) return k;
        return first < n && s[first] == x ? first : n;
    }
};

inline idx target_rank(idx n, double pct) {
    if (pct < 0) return n / 2;  // median
    if (pct >= 100.0) return n - 1;
    return static_cast<idx>(static_cast<double>(n) * pct / 100.0);
}


// Rank filter of rows [r0, r1) of a (H, W) image into out[(k, r - r0, c)].
template <typename T>
void rank_rows(const T* src, T* out, idx H, idx W, idx h, idx w, idx r0, idx r1,
               const std::vector<double>& pcts) {
    const idx top = h / 2, left = w / 2, nr = static_cast<idx>(pcts.size());
    const T nan = std::numeric_limits<T>::quiet_NaN();
    Strips<T> strips(W, h);
    for (idx c = 0; c < W; ++c)
        for (idx k = 0; k < h; ++k) strips.insert(c, src[reflect(r0 - top + k, H) * W + c]);

    // The window: a ring of w strips, the oldest at `head`. For each rank r and slot s,
    // p[r][s] elements of the strip are "taken"; the taken elements of all slots are the
    // smallest of the window. next[r][s] / prev[r][s] cache the strip's first element not
    // taken / last element taken (+inf / -inf past the ends; rows padded to a whole
    // number of vectors with the same sentinels) so that the walks scan short vectors.
    const T inf = std::numeric_limits<T>::infinity();
    const idx L = lanes(sizeof(T)), ws = (w + L - 1) / L * L;
    std::vector<idx> slot_col(w), p(nr * w), taken(nr);
    std::vector<T> next(nr * ws, inf), prev(nr * ws, -inf), answer(nr);
    std::vector<idx> want(nr, 0);  // target ranks for `want_n` values
    idx want_n = -1;

    auto cache = [&](idx r, idx s) {
        idx c = slot_col[s], k = p[r * w + s];
        const T* strip = strips.at(c);
        next[r * ws + s] = k < strips.len[c] ? strip[k] : inf;
        prev[r * ws + s] = k > 0 ? strip[k - 1] : -inf;
    };
    // A slot that can give (up) or return (down) an element. The sentinels tie with real
    // infinities, so a tie at infinity is settled by the pointers themselves.
    auto pick = [&](idx r, auto up_tag) {
        constexpr bool up = decltype(up_tag)::value;
        const T* v = (up ? next.data() : prev.data()) + r * ws;
        T e;
        idx s = arg_extreme<up>(v, ws, e);
        if (e == (up ? inf : -inf)) {
            for (s = 0; s < w; ++s) {
                idx k = p[r * w + s];
                if (up ? k < strips.len[slot_col[s]] : k > 0) return s;
            }
        }
        return s;
    };
    auto walk = [&](idx r, idx want) {  // move rank r's pointers until `want` are taken
        for (; taken[r] < want; ++taken[r]) {
            idx s = pick(r, std::true_type{});
            ++p[r * w + s];
            cache(r, s);
        }
        for (; taken[r] > want; --taken[r]) {
            idx s = pick(r, std::false_type{});
            --p[r * w + s];
            cache(r, s);
        }
        return extreme<true>(next.data() + r * ws, ws);
    };

    for (idx row = r0; row < r1; ++row) {
        if (row > r0) {  // slide the strips down one row
            idx gone = reflect(row - 1 - top, H) * W, come = reflect(row - top + h - 1, H) * W;
            for (idx c = 0; c < W; ++c) strips.replace(c, src[gone + c], src[come + c]);
        }
        idx n = 0, head = 0;
        for (idx s = 0; s < w; ++s) {
            slot_col[s] = reflect(s - left, W);
            n += strips.len[slot_col[s]];
        }
        std::fill(p.begin(), p.end(), 0);
        std::fill(taken.begin(), taken.end(), 0);
        for (idx r = 0; r < nr; ++r)
            for (idx s = 0; s < w; ++s) cache(r, s);
        for (idx col = 0; col < W; ++col) {
            if (col > 0) {  // slide right: the oldest strip leaves, a new one comes in
                idx c_new = reflect(col - left + w - 1, W);
                n += strips.len[c_new] - strips.len[slot_col[head]];
                slot_col[head] = c_new;
                const T* strip = strips.at(c_new);
                idx len = strips.len[c_new];
                for (idx r = 0; r < nr; ++r) {
                    // Take the new strip's elements below the last answer: the taken
                    // elements stay the smallest of the window.
                    idx lo = answer[r] == answer[r] ? count_less(strip, len, strips.cap, answer[r]) : 0;
                    taken[r] += lo - p[r * w + head];
                    p[r * w + head] = lo;
                    cache(r, head);
                }
                head = head + 1 == w ? 0 : head + 1;
            }
            T* o = out + (row - r0) * W + col;
            if (n != want_n) {  // n changes only next to NaN
                for (idx r = 0; r < nr; ++r) want[r] = target_rank(n, pcts[r]);
                want_n = n;
            }
            for (idx r = 0; r < nr; ++r) {
                if (n == 0) {  // nothing but NaN: reset to an empty taken set
                    answer[r] = nan;
                    for (idx s = 0; s < w; ++s) { p[r * w + s] = 0; cache(r, s); }
                    taken[r] = 0;
                } else {
                    answer[r] = walk(r, want[r]);
                }
                o[r * (r1 - r0) * W] = answer[r];
            }
        }
    }
}

// ---- Certain outliers of ccdmask's spread test, from ranks of binned values ----------------
//
// ccdmask flags x when x < -lsigma*s or x > hsigma*s, s = (P_hi - P_lo) / spread of the
// window around x. Only that decision is needed, not the percentiles: the values are
// put into 255 ordered bins (a monotone map, so rank order is kept), a sliding window
// histogram of bin numbers finds the bin of each rank cheaply, and the lowest and
// highest image value of that bin bound the percentile. The arithmetic is monotone in
// each percentile (IEEE rounding is), so the bounds bound the thresholds: most pixels
// are decided here (0: inside, 1: outlier) and the rest (2) are left to the exact path.

constexpr int kNanBin = 255;     // NaN: no part in the ranks
constexpr int kTopBin = 254;     // at or above the binned range (+inf included)
constexpr double kInnerBins = 253.0;  // bins 1 ... 253 split the range evenly; 0 is below it

// Bin numbers of `n` values, [lo, hi) split into the inner bins, and each bin's lowest and
// highest value (bmin, bmax: kTopBin + 1 entries, filled by the caller with +inf / -inf).
template <typename T>
void quantize(const T* src, uint8_t* q, idx n, double lo, double hi, T* bmin, T* bmax) {
    const double scale = kInnerBins / (hi - lo);
    for (idx i = 0; i < n; ++i) {
        T x = src[i];
        int b = kNanBin;
        if (x == x) {
            double y = (static_cast<double>(x) - lo) * scale;  // monotone in x
            b = y < 0.0 ? 0 : y >= kInnerBins ? kTopBin : 1 + static_cast<int>(y);
            bmin[b] = x < bmin[b] ? x : bmin[b];
            bmax[b] = x > bmax[b] ? x : bmax[b];
        }
        q[i] = static_cast<uint8_t>(b);
    }
}

// Decide rows [r0, r1) of the spread test: state 0 (inside), 1 (outlier), 2 (undecided).
template <typename T>
void classify(const T* src, const uint8_t* q, uint8_t* state, idx H, idx W, idx h, idx w,
              idx r0, idx r1, double p_lo, double p_hi, const T* bmin, const T* bmax,
              double lsigma, double hsigma, double spread) {
    const idx top = h / 2, left = w / 2;
    const T low_factor = static_cast<T>(-lsigma), high_factor = static_cast<T>(hsigma);
    const T sp = static_cast<T>(spread);
    std::vector<const uint8_t*> rows(h);
    std::vector<idx> col_at(W + w - 1);  // image column of window column i - left
    for (idx i = 0; i < W + w - 1; ++i) col_at[i] = reflect(i - left, W);
    idx want_n = -1, want_lo = 0, want_hi = 0;
    for (idx row = r0; row < r1; ++row) {
        for (idx k = 0; k < h; ++k) rows[k] = q + reflect(row - top + k, H) * W;
        idx hist[256] = {};
        for (idx s = 0; s < w; ++s)
            for (idx k = 0; k < h; ++k) ++hist[rows[k][col_at[s]]];
        int b_lo = 0, b_hi = 0;  // the bin of each rank, and how many values lie below it
        idx below_lo = 0, below_hi = 0;
        for (idx col = 0; col < W; ++col) {
            if (col > 0) {  // slide right: a column of bins leaves, one comes in
                const idx c_in = col_at[col + w - 1], c_out = col_at[col - 1];
                for (idx k = 0; k < h; ++k) {
                    const int a = rows[k][c_in], d = rows[k][c_out];
                    ++hist[a];
                    --hist[d];
                    below_lo += (a < b_lo) - (d < b_lo);
                    below_hi += (a < b_hi) - (d < b_hi);
                }
            }
            const idx at = row * W + col, n = h * w - hist[kNanBin];
            const T x = src[at];
            uint8_t decision = 0;  // NaN x, or no values in the window: never an outlier
            if (x == x && n > 0) {
                if (n != want_n) {
                    want_lo = target_rank(n, p_lo), want_hi = target_rank(n, p_hi);
                    want_n = n;
                }
                for (; below_lo > want_lo; below_lo -= hist[--b_lo]) {}
                for (; below_lo + hist[b_lo] <= want_lo; below_lo += hist[b_lo++]) {}
                for (; below_hi > want_hi; below_hi -= hist[--b_hi]) {}
                for (; below_hi + hist[b_hi] <= want_hi; below_hi += hist[b_hi++]) {}
                const T lo_min = bmin[b_lo], lo_max = bmax[b_lo];
                const T hi_min = bmin[b_hi], hi_max = bmax[b_hi];
                decision = 2;
                if (std::isfinite(lo_min) && std::isfinite(lo_max) && std::isfinite(hi_min) &&
                    std::isfinite(hi_max)) {
                    // The same operations, in the same precision, as the exact test.
                    const T s_min = (hi_min - lo_max) / sp, s_max = (hi_max - lo_min) / sp;
                    const T t1 = low_factor * s_min, t2 = low_factor * s_max;
                    const T u1 = high_factor * s_min, u2 = high_factor * s_max;
                    if (t1 == t1 && t2 == t2 && u1 == u1 && u2 == u2) {
                        const T t_lo = t1 < t2 ? t1 : t2, t_hi = t1 < t2 ? t2 : t1;
                        const T u_lo = u1 < u2 ? u1 : u2, u_hi = u1 < u2 ? u2 : u1;
                        if (x < t_lo || x > u_hi) decision = 1;
                        else if (x >= t_hi && x <= u_lo) decision = 0;
                    }
                }
            }
            state[at - r0 * W] = decision;
        }
    }
}

PyObject* py_quantize(PyObject*, PyObject* args) {
    Py_buffer src, q, bmin, bmax;
    double lo, hi;
    int is_double;
    if (!PyArg_ParseTuple(args, "y*w*ddw*w*p", &src, &q, &lo, &hi, &bmin, &bmax, &is_double))
        return nullptr;
    const idx item = is_double ? 8 : 4, n = src.len / item;
    PyObject* result = nullptr;
    if (src.len % item || q.len != n || bmin.len != (kTopBin + 1) * item || bmax.len != bmin.len ||
        !(hi > lo) || !std::isfinite(hi - lo)) {
        PyErr_SetString(PyExc_ValueError, "quantize: buffer sizes or range do not match");
    } else {
        Py_BEGIN_ALLOW_THREADS
        if (is_double)
            quantize(static_cast<const double*>(src.buf), static_cast<uint8_t*>(q.buf), n, lo,
                     hi, static_cast<double*>(bmin.buf), static_cast<double*>(bmax.buf));
        else
            quantize(static_cast<const float*>(src.buf), static_cast<uint8_t*>(q.buf), n, lo,
                     hi, static_cast<float*>(bmin.buf), static_cast<float*>(bmax.buf));
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&q);
    PyBuffer_Release(&bmin);
    PyBuffer_Release(&bmax);
    return result;
}

PyObject* py_classify(PyObject*, PyObject* args) {
    Py_buffer src, q, state, bmin, bmax;
    Py_ssize_t H, W, h, w, r0, r1;
    double p_lo, p_hi, lsigma, hsigma, spread;
    int is_double;
    if (!PyArg_ParseTuple(args, "y*y*w*nnnnnnddy*y*dddp", &src, &q, &state, &H, &W, &h, &w, &r0,
                          &r1, &p_lo, &p_hi, &bmin, &bmax, &lsigma, &hsigma, &spread, &is_double))
        return nullptr;
    const idx item = is_double ? 8 : 4;
    PyObject* result = nullptr;
    if (H < 1 || W < 1 || h < 1 || w < 1 || r0 < 0 || r1 > H || r0 > r1 || !(spread > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "classify: bad shape, window, row range or spread");
    } else if (src.len != H * W * item || q.len != H * W || state.len != (r1 - r0) * W ||
               bmin.len != (kTopBin + 1) * item || bmax.len != bmin.len) {
        PyErr_SetString(PyExc_ValueError, "classify: buffer sizes do not match the shape");
    } else {
        bool oom = false;
        Py_BEGIN_ALLOW_THREADS
        try {
            const uint8_t* qb = static_cast<const uint8_t*>(q.buf);
            uint8_t* sb = static_cast<uint8_t*>(state.buf);
            if (is_double)
                classify(static_cast<const double*>(src.buf), qb, sb, H, W, h, w, r0, r1, p_lo,
                         p_hi, static_cast<const double*>(bmin.buf),
                         static_cast<const double*>(bmax.buf), lsigma, hsigma, spread);
            else
                classify(static_cast<const float*>(src.buf), qb, sb, H, W, h, w, r0, r1, p_lo,
                         p_hi, static_cast<const float*>(bmin.buf),
                         static_cast<const float*>(bmax.buf), lsigma, hsigma, spread);
        } catch (const std::bad_alloc&) {
            oom = true;
        }
        Py_END_ALLOW_THREADS
        if (oom) PyErr_NoMemory();
        else result = Py_NewRef(Py_None);
    }
    for (Py_buffer* b : {&src, &q, &state, &bmin, &bmax}) PyBuffer_Release(b);
    return result;
}

PyObject* py_rank_rows(PyObject*, PyObject* args) {
    Py_buffer src, out;
    Py_ssize_t H, W, h, w, r0, r1;
    int is_double;
    PyObject* pct_seq;
    if (!PyArg_ParseTuple(args, "y*w*nnnnnnpO", &src, &out, &H, &W, &h, &w, &r0, &r1,
                          &is_double, &pct_seq))
        return nullptr;
    PyObject* result = nullptr;
    std::vector<double> pcts;
    PyObject* fast = PySequence_Fast(pct_seq, "percentiles must be a sequence");
    if (fast) {
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); ++i)
            pcts.push_back(PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i)));
        Py_DECREF(fast);
    }
    idx item = is_double ? 8 : 4;
    if (PyErr_Occurred()) {
    } else if (H < 1 || W < 1 || h < 1 || w < 1 || r0 < 0 || r1 > H || r0 > r1 || pcts.empty()) {
        PyErr_SetString(PyExc_ValueError, "rank_rows: bad shape, window or row range");
    } else if (src.len != H * W * item ||
               out.len != static_cast<idx>(pcts.size()) * (r1 - r0) * W * item) {
        PyErr_SetString(PyExc_ValueError, "rank_rows: buffer sizes do not match the shape");
    } else {
        bool oom = false;
        Py_BEGIN_ALLOW_THREADS
        try {
            if (is_double)
                rank_rows(static_cast<const double*>(src.buf), static_cast<double*>(out.buf),
                          H, W, h, w, r0, r1, pcts);
            else
                rank_rows(static_cast<const float*>(src.buf), static_cast<float*>(out.buf),
                          H, W, h, w, r0, r1, pcts);
        } catch (const std::bad_alloc&) {
            oom = true;
        }
        Py_END_ALLOW_THREADS
        if (oom) PyErr_NoMemory();
        else result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&out);
    return result;
}

// ---- small-window medians (cpu_fallback.medians): a selection network over column blocks ----
//
// L.A.Cosmic's 3..9-wide medians: every window value of kBlock output pixels is copied into
// its own short array and the network's compare-exchanges (given by medians.py, which owns
// it) run over those arrays: loops the compiler vectorises, on data that stay in L1. The
// minimum and maximum pick `b` on ties, as NumPy's minimum and maximum do, so the results
// are NumPy's bit for bit (window elements: exact).

constexpr idx kBlock = 256;

struct Exchange {
    uint8_t i, j, keep_min, keep_max;
};

// Compiled for AVX-512, AVX2 and the baseline; the loader picks what the CPU has (GCC and
// Clang on x86-64; elsewhere the baseline only). min and max are exact: the same results.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void run_network(std::vector<float>& v, const std::vector<Exchange>& net, idx n) {
    for (const Exchange& e : net) {
        float* a = &v[e.i * kBlock];
        float* b = &v[e.j * kBlock];
        if (e.keep_min && e.keep_max) {
            for (idx t = 0; t < n; ++t) {
                const float x = a[t], y = b[t];
                a[t] = x < y ? x : y;
                b[t] = x > y ? x : y;
            }
        } else if (e.keep_min) {
            for (idx t = 0; t < n; ++t) a[t] = a[t] < b[t] ? a[t] : b[t];
        } else {
            for (idx t = 0; t < n; ++t) b[t] = a[t] > b[t] ? a[t] : b[t];
        }
    }
}

// Output rows r0..r1 (interior: h <= r0, r1 <= ny - h) of `frames` images ny × nx; columns
// h..nx-h. Separable: each row's 1 × size medians, then size × 1 medians of those.
void median_band(const float* src, float* out, idx frames, idx ny, idx nx, idx size,
                 bool separable, idx r0, idx r1, const std::vector<Exchange>& net) {
    const idx h = size / 2, cols = nx - 2 * h, mid = (separable ? size : size * size) / 2;
    std::vector<float> v((separable ? size : size * size) * kBlock);
    std::vector<float> rowmed(separable ? (r1 - r0 + 2 * h) * cols : 0);
    for (idx f = 0; f < frames; ++f) {
        const float* img = src + f * ny * nx;
        float* o = out + f * ny * nx;
        for (idx x0 = 0; x0 < cols; x0 += kBlock) {
            const idx n = std::min(kBlock, cols - x0);
            if (separable) {
                for (idx r = r0 - h; r < r1 + h; ++r) {
                    for (idx k = 0; k < size; ++k)
                        std::memcpy(&v[k * kBlock], img + r * nx + x0 + k, n * sizeof(float));
                    run_network(v, net, n);
                    std::memcpy(&rowmed[(r - r0 + h) * cols + x0], &v[mid * kBlock],
                                n * sizeof(float));
                }
                for (idx r = r0; r < r1; ++r) {
                    for (idx k = 0; k < size; ++k)
                        std::memcpy(&v[k * kBlock], &rowmed[(r - r0 + k) * cols + x0],
                                    n * sizeof(float));
                    run_network(v, net, n);
                    std::memcpy(o + r * nx + h + x0, &v[mid * kBlock], n * sizeof(float));
                }
            } else {
                for (idx r = r0; r < r1; ++r) {
                    for (idx dy = 0; dy < size; ++dy)
                        for (idx dx = 0; dx < size; ++dx)
                            std::memcpy(&v[(dy * size + dx) * kBlock],
                                        img + (r - h + dy) * nx + x0 + dx, n * sizeof(float));
                    run_network(v, net, n);
                    std::memcpy(o + r * nx + h + x0, &v[mid * kBlock], n * sizeof(float));
                }
            }
        }
    }
}

PyObject* py_median_band(PyObject*, PyObject* args) {
    Py_buffer src, out, net_buf;
    Py_ssize_t frames, ny, nx, size, r0, r1;
    int separable;
    if (!PyArg_ParseTuple(args, "y*w*nnnnpnny*", &src, &out, &frames, &ny, &nx, &size,
                          &separable, &r0, &r1, &net_buf))
        return nullptr;
    PyObject* result = nullptr;
    const idx h = size / 2, values = separable ? size : size * size;
    std::vector<Exchange> net(net_buf.len / 4);
    if (!net.empty()) std::memcpy(net.data(), net_buf.buf, net.size() * 4);
    bool bad_net = net_buf.len % 4 != 0;
    for (const Exchange& e : net) bad_net |= e.i >= values || e.j >= values;
    if (frames < 0 || size < 3 || size % 2 == 0 || size > 9 || ny <= 2 * h || nx <= 2 * h ||
        r0 < h || r1 > ny - h || r0 > r1 || bad_net) {
        PyErr_SetString(PyExc_ValueError, "median_band: bad shape, size, row range or network");
    } else if (src.len != frames * ny * nx * 4 || out.len != src.len) {
        PyErr_SetString(PyExc_ValueError, "median_band: buffer sizes do not match the shape");
    } else {
        bool oom = false;
        Py_BEGIN_ALLOW_THREADS
        try {
            median_band(static_cast<const float*>(src.buf), static_cast<float*>(out.buf), frames,
                        ny, nx, size, separable, r0, r1, net);
        } catch (const std::bad_alloc&) {
            oom = true;
        }
        Py_END_ALLOW_THREADS
        if (oom) PyErr_NoMemory();
        else result = Py_NewRef(Py_None);
    }
    for (Py_buffer* b : {&src, &out, &net_buf}) PyBuffer_Release(b);
    return result;
}

PyMethodDef methods[] = {
    {"rank_rows", py_rank_rows, METH_VARARGS,
     "rank_rows(src, out, H, W, h, w, r0, r1, is_double, percentiles): exact windowed "
     "rank statistics of rows r0..r1 (percentile < 0 means median)."},
    {"quantize", py_quantize, METH_VARARGS,
     "quantize(src, q, lo, hi, bmin, bmax, is_double): bin numbers of the spread test, "
     "and each bin's value range."},
    {"classify", py_classify, METH_VARARGS,
     "classify(src, q, state, H, W, h, w, r0, r1, p_lo, p_hi, bmin, bmax, lsigma, hsigma, "
     "spread, is_double): the spread test's certain answers (0, 1) and undecided pixels (2)."},
    {"median_band", py_median_band, METH_VARARGS,
     "median_band(src, out, frames, ny, nx, size, separable, r0, r1, network): small-window "
     "medians of output rows r0..r1 through the selection network (bytes: i, j, keep_min, "
     "keep_max per compare-exchange)."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rankfilter",
                      "Exact windowed rank statistics (see cpu_fallback.filters).", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__rankfilter() { return PyModule_Create(&module); }
