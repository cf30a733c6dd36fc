// gpucal: ccd_process's arithmetic for one pixel (overscan, deviation, gain, bias, dark,
// flat, final gain) with astropy's StdDevUncertainty propagation.
//
// The operations and their order are gpucal/_xp/arithmetic.py's, one for one, so that in
// IEEE arithmetic without fused multiply-add (NVRTC with --fmad=false) the results equal
// NumPy's bit for bit. An absent step is given neutral values (0 to subtract, 1 to multiply
// or divide by), which leave every value unchanged; flags cover what a neutral value cannot.
//
// Host and device alike (portable.cuh): the host test harness runs exactly this code on the
// CPU against the CPU backend.

#ifndef __CUDACC_RTC__
#include "portable.cuh"
#endif

template <typename T>
struct GpucalCalScalars {
    int has_sigma;       // the input has an uncertainty
    int make_deviation;  // create it from read noise and gain (replacing the input's)
    int disregard_nan;   // negative counts: deviation rn/g instead of NaN
    int has_flat_min;
    int has_flat_sigma;
    T readnoise, deviation_gain, gain, flat_scale, flat_min, final_gain;
};

template <typename T>
GPUCAL_FN void gpucal_calibrate_pixel(const GpucalCalScalars<T>& s, T raw, T sigma,
                                          T overscan, T bias, T bias_sigma, T bias_scale,
                                          T dark, T dark_sigma, T dark_scale, T flat,
                                          T flat_sigma, bool flat_masked, T& out,
                                          T& out_sigma) {
    T x = raw - overscan;
    T var = s.has_sigma ? sigma * sigma : T(0);
    if (s.make_deviation) {
        T counts = x * s.deviation_gain;
        if (counts < T(0)) counts = s.disregard_nan ? T(0) : gpucal_qnan<T>();
        var = (counts + s.readnoise * s.readnoise) / (s.deviation_gain * s.deviation_gain);
    }
    x = x * s.gain;
    var = var * (s.gain * s.gain);
    T b = bias_sigma * bias_scale;
    x = x - bias * bias_scale;
    var = var + b * b;
    T d = dark_sigma * dark_scale;
    x = x - dark * dark_scale;
    var = var + d * d;
    // the flat as it divides: raised to flat_min, normalised, 1 where masked
    T f = flat;
    if (s.has_flat_min && f < s.flat_min) f = s.flat_min;
    f = f * s.flat_scale;
    if (flat_masked) f = T(1);
    T f2 = f * f;
    var = var * f2;
    if (s.has_flat_sigma) {
        T e = x * (flat_sigma * fabs(s.flat_scale));
        var = var + e * e;
    }
    var = var / (f2 * f2);
    x = x / f;
    x = x * s.final_gain;
    var = var * (s.final_gain * s.final_gain);
    out = x;
    out_sigma = sqrt(var);
}
