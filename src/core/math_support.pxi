# C helpers of the math ops' rows in the op table: the functions CPython's
# `math` computes with its own code rather than libm's (so that our data is
# bit-identical to math's), and polygamma, which gamma's and lgamma's chain
# rules need. The op table calls them; formulas stay in the op table.

cdef extern from *:
    """
    #include <math.h>

    /* ---- Ported from CPython 3.11, Modules/mathmodule.c ----------------------
       Copyright (c) 2001-2023 Python Software Foundation; All Rights Reserved.
       Used under the Python Software Foundation License Version 2. The code is
       CPython's (m_sinpi, lanczos_sum, m_tgamma, m_lgamma, m_atan2, m_remainder,
       vector_norm, math_fsum's msum), with errno replaced by an error code:
       1 = EDOM (ValueError), 2 = ERANGE (OverflowError where |result| >= 1.5). */

    static const double autograd_pi = 3.141592653589793238462643383279502884197;
    static const double autograd_logpi = 1.144729885849400174143427351353058711647;

    static double autograd_m_sinpi(double x) {
        double y, r;
        int n;
        y = fmod(fabs(x), 2.0);
        n = (int)round(2.0*y);
        switch (n) {
        case 0: r = sin(autograd_pi*y); break;
        case 1: r = cos(autograd_pi*(y-0.5)); break;
        case 2: r = sin(autograd_pi*(1.0-y)); break;
        case 3: r = -cos(autograd_pi*(y-1.5)); break;
        default: r = sin(autograd_pi*(y-2.0)); break;
        }
        return copysign(1.0, x)*r;
    }

    #define AUTOGRAD_LANCZOS_N 13
    static const double autograd_lanczos_g = 6.024680040776729583740234375;
    static const double autograd_lanczos_g_minus_half = 5.524680040776729583740234375;
    static const double autograd_lanczos_num_coeffs[AUTOGRAD_LANCZOS_N] = {
        23531376880.410759688572007674451636754734846804940,
        42919803642.649098768957899047001988850926355848959,
        35711959237.355668049440185451547166705960488635843,
        17921034426.037209699919755754458931112671403265390,
        6039542586.3520280050642916443072979210699388420708,
        1439720407.3117216736632230727949123939715485786772,
        248874557.86205415651146038641322942321632125127801,
        31426415.585400194380614231628318205362874684987640,
        2876370.6289353724412254090516208496135991145378768,
        186056.26539522349504029498971604569928220784236328,
        8071.6720023658162106380029022722506138218516325024,
        210.82427775157934587250973392071336271166969580291,
        2.5066282746310002701649081771338373386264310793408
    };
    static const double autograd_lanczos_den_coeffs[AUTOGRAD_LANCZOS_N] = {
        0.0, 39916800.0, 120543840.0, 150917976.0, 105258076.0, 45995730.0,
        13339535.0, 2637558.0, 357423.0, 32670.0, 1925.0, 66.0, 1.0};
    #define AUTOGRAD_NGAMMA_INTEGRAL 23
    static const double autograd_gamma_integral[AUTOGRAD_NGAMMA_INTEGRAL] = {
        1.0, 1.0, 2.0, 6.0, 24.0, 120.0, 720.0, 5040.0, 40320.0, 362880.0,
        3628800.0, 39916800.0, 479001600.0, 6227020800.0, 87178291200.0,
        1307674368000.0, 20922789888000.0, 355687428096000.0,
        6402373705728000.0, 121645100408832000.0, 2432902008176640000.0,
        51090942171709440000.0, 1124000727777607680000.0,
    };

    static double autograd_lanczos_sum(double x) {
        double num = 0.0, den = 0.0;
        int i;
        if (x < 5.0) {
            for (i = AUTOGRAD_LANCZOS_N; --i >= 0; ) {
                num = num * x + autograd_lanczos_num_coeffs[i];
                den = den * x + autograd_lanczos_den_coeffs[i];
            }
        }
        else {
            for (i = 0; i < AUTOGRAD_LANCZOS_N; i++) {
                num = num / x + autograd_lanczos_num_coeffs[i];
                den = den / x + autograd_lanczos_den_coeffs[i];
            }
        }
        return num/den;
    }

    static double autograd_tgamma(double x, int *err) {
        double absx, r, y, z, sqrtpow;
        if (!isfinite(x)) {
            if (isnan(x) || x > 0.0)
                return x;
            *err = 1;
            return NAN;
        }
        if (x == 0.0) {
            *err = 1;
            return copysign(HUGE_VAL, x);
        }
        if (x == floor(x)) {
            if (x < 0.0) {
                *err = 1;
                return NAN;
            }
            if (x <= AUTOGRAD_NGAMMA_INTEGRAL)
                return autograd_gamma_integral[(int)x - 1];
        }
        absx = fabs(x);
        if (absx < 1e-20) {
            r = 1.0/x;
            if (isinf(r))
                *err = 2;
            return r;
        }
        if (absx > 200.0) {
            if (x < 0.0) {
                return 0.0/autograd_m_sinpi(x);
            }
            else {
                *err = 2;
                return HUGE_VAL;
            }
        }
        y = absx + autograd_lanczos_g_minus_half;
        if (absx > autograd_lanczos_g_minus_half) {
            double q = y - absx;
            z = q - autograd_lanczos_g_minus_half;
        }
        else {
            double q = y - autograd_lanczos_g_minus_half;
            z = q - absx;
        }
        z = z * autograd_lanczos_g / y;
        if (x < 0.0) {
            r = -autograd_pi / autograd_m_sinpi(absx) / absx * exp(y) / autograd_lanczos_sum(absx);
            r -= z * r;
            if (absx < 140.0) {
                r /= pow(y, absx - 0.5);
            }
            else {
                sqrtpow = pow(y, absx / 2.0 - 0.25);
                r /= sqrtpow;
                r /= sqrtpow;
            }
        }
        else {
            r = autograd_lanczos_sum(absx) / exp(y);
            r += z * r;
            if (absx < 140.0) {
                r *= pow(y, absx - 0.5);
            }
            else {
                sqrtpow = pow(y, absx / 2.0 - 0.25);
                r *= sqrtpow;
                r *= sqrtpow;
            }
        }
        if (isinf(r))
            *err = 2;
        return r;
    }

    static double autograd_lgamma(double x, int *err) {
        double r;
        double absx;
        if (!isfinite(x)) {
            if (isnan(x))
                return x;
            else
                return HUGE_VAL;
        }
        if (x == floor(x) && x <= 2.0) {
            if (x <= 0.0) {
                *err = 1;
                return HUGE_VAL;
            }
            else {
                return 0.0;
            }
        }
        absx = fabs(x);
        if (absx < 1e-20)
            return -log(absx);
        r = log(autograd_lanczos_sum(absx)) - autograd_lanczos_g;
        r += (absx - 0.5) * (log(absx + autograd_lanczos_g - 0.5) - 1);
        if (x < 0.0)
            r = autograd_logpi - log(fabs(autograd_m_sinpi(absx))) - log(absx) - r;
        if (isinf(r))
            *err = 2;
        return r;
    }

    static double autograd_atan2(double y, double x) {
        if (isnan(x) || isnan(y))
            return NAN;
        if (isinf(y)) {
            if (isinf(x)) {
                if (copysign(1., x) == 1.)
                    return copysign(0.25*autograd_pi, y);
                else
                    return copysign(0.75*autograd_pi, y);
            }
            return copysign(0.5*autograd_pi, y);
        }
        if (isinf(x) || y == 0.) {
            if (copysign(1., x) == 1.)
                return copysign(0., y);
            else
                return copysign(autograd_pi, y);
        }
        return atan2(y, x);
    }

    static double autograd_remainder(double x, double y) {
        if (isfinite(x) && isfinite(y)) {
            double absx, absy, c, m, r;
            if (y == 0.0) {
                return NAN;
            }
            absx = fabs(x);
            absy = fabs(y);
            m = fmod(absx, absy);
            c = absy - m;
            if (m < c) {
                r = m;
            }
            else if (m > c) {
                r = -c;
            }
            else {
                r = m - 2.0 * fmod(0.5 * (absx - m), absy);
            }
            return copysign(1.0, x) * r;
        }
        if (isnan(x)) {
            return x;
        }
        if (isnan(y)) {
            return y;
        }
        if (isinf(x)) {
            return NAN;
        }
        return x;
    }

    /* math.hypot(*coords): vector_norm of the n coordinates, after math_hypot's
       fabs, max and nan scan (the coordinates are read, not changed). */
    static double autograd_vector_norm(const double *coords, Py_ssize_t n) {
        const double T27 = 134217729.0;
        double x, scale, oldcsum, csum = 1.0, frac1 = 0.0, frac2 = 0.0, frac3 = 0.0;
        double t, hi, lo, h, max = 0.0;
        int max_e, found_nan = 0;
        Py_ssize_t i;
        for (i = 0; i < n; i++) {
            x = fabs(coords[i]);
            found_nan |= isnan(x);
            if (x > max)
                max = x;
        }
        if (isinf(max)) {
            return max;
        }
        if (found_nan) {
            return NAN;
        }
        if (max == 0.0 || n <= 1) {
            return max;
        }
        frexp(max, &max_e);
        if (max_e >= -1023) {
            scale = ldexp(1.0, -max_e);
            for (i = 0; i < n; i++) {
                x = fabs(coords[i]);
                x *= scale;
                t = x * T27;
                hi = t - (t - x);
                lo = x - hi;
                x = hi * hi;
                oldcsum = csum;
                csum += x;
                frac1 += (oldcsum - csum) + x;
                x = 2.0 * hi * lo;
                oldcsum = csum;
                csum += x;
                frac2 += (oldcsum - csum) + x;
                frac3 += lo * lo;
            }
            h = sqrt(csum - 1.0 + (frac1 + frac2 + frac3));
            x = h;
            t = x * T27;
            hi = t - (t - x);
            lo = x - hi;
            x = -hi * hi;
            oldcsum = csum;
            csum += x;
            frac1 += (oldcsum - csum) + x;
            x = -2.0 * hi * lo;
            oldcsum = csum;
            csum += x;
            frac2 += (oldcsum - csum) + x;
            x = -lo * lo;
            oldcsum = csum;
            csum += x;
            frac3 += (oldcsum - csum) + x;
            x = csum - 1.0 + (frac1 + frac2 + frac3);
            return (h + x / (2.0 * h)) / scale;
        }
        for (i = 0; i < n; i++) {
            x = fabs(coords[i]);
            x /= max;
            x = x*x;
            oldcsum = csum;
            csum += x;
            frac1 += (oldcsum - csum) + x;
        }
        return max * sqrt(csum - 1.0 + frac1);
    }

    static double autograd_hypot(double a, double b) {
        double coords[2];
        coords[0] = a;
        coords[1] = b;
        return autograd_vector_norm(coords, 2);
    }

    /* math.fsum of n terms (math_fsum's msum): Shewchuk's exact partials, then
       the correctly rounded sum. Errors: 2 (OverflowError, "intermediate overflow
       in fsum"), 1 (ValueError, "-inf + inf in fsum"), 3 (MemoryError). The
       partials are nonoverlapping doubles, at most one per bit of the exponent
       range (2098); CPython grows its array as needed, this one is that size. */
    #define AUTOGRAD_FSUM_PARTIALS 2112
    static double autograd_fsum(const double *terms, Py_ssize_t count, int *err) {
        Py_ssize_t i, j, n = 0, k;
        double x, y, t, *p;
        double xsave, special_sum = 0.0, inf_sum = 0.0;
        double hi, yr, lo = 0.0;
        p = (double *)malloc(AUTOGRAD_FSUM_PARTIALS * sizeof(double));
        if (p == NULL) {
            *err = 3;
            return NAN;
        }
        for (k = 0; k < count; k++) {
            x = terms[k];
            xsave = x;
            for (i = j = 0; j < n; j++) {       /* for y in partials */
                y = p[j];
                if (fabs(x) < fabs(y)) {
                    t = x; x = y; y = t;
                }
                hi = x + y;
                yr = hi - x;
                lo = y - yr;
                if (lo != 0.0)
                    p[i++] = lo;
                x = hi;
            }
            n = i;                              /* ps[i:] = [x] */
            if (x != 0.0) {
                if (!isfinite(x)) {
                    /* a nonfinite x could arise either as a result of
                       intermediate overflow, or as a result of a nan or inf
                       in the summands */
                    if (isfinite(xsave)) {
                        free(p);
                        *err = 2;
                        return INFINITY;
                    }
                    if (isinf(xsave))
                        inf_sum += xsave;
                    special_sum += xsave;
                    /* reset partials */
                    n = 0;
                }
                else if (n >= AUTOGRAD_FSUM_PARTIALS) {     /* cannot happen (above) */
                    free(p);
                    *err = 3;
                    return NAN;
                }
                else
                    p[n++] = x;
            }
        }
        if (special_sum != 0.0) {
            free(p);
            if (isnan(inf_sum)) {
                *err = 1;
                return NAN;
            }
            return special_sum;
        }
        hi = 0.0;
        if (n > 0) {
            hi = p[--n];
            /* sum_exact(ps, hi) from the top, stop when the sum becomes
               inexact. */
            while (n > 0) {
                x = hi;
                y = p[--n];
                hi = x + y;
                yr = hi - x;
                lo = y - yr;
                if (lo != 0.0)
                    break;
            }
            /* Make half-even rounding work across multiple partials.
               Needed so that sum([1e-16, 1, 1e16]) will round-up the last
               digit to two instead of down to zero (the 1e-16 makes the 1
               slightly closer to two).  With a potential 1 ULP rounding
               error fixed-up, math.fsum() can guarantee commutativity. */
            if (n > 0 && ((lo < 0.0 && p[n-1] < 0.0) ||
                          (lo > 0.0 && p[n-1] > 0.0))) {
                y = lo * 2.0;
                x = hi + y;
                yr = x - hi;
                if (y == yr)
                    hi = x;
            }
        }
        free(p);
        return hi;
    }
    /* ---- end of the code ported from CPython ---------------------------- */

    /* polygamma(n, x) = d^(n+1)/dx^(n+1) lgamma(x), for the chain rules of
       gamma and lgamma (and of itself). n = 0 (digamma): reflection for x < 0,
       recurrence up to x >= 10, then the asymptotic series. n >= 1:
       (-1)^(n+1) n! zeta(n+1, x), the Hurwitz zeta summed directly up to
       x + k >= 10 + n, then Euler-Maclaurin's tail. About 1e-15 relative
       (the tests compare with torch.special.polygamma). */
    static double autograd_polygamma(double n_real, double x) {
        /* B_2j / (2j)! */
        static const double bern[9] = {
            1.0/6.0/2.0, -1.0/30.0/24.0, 1.0/42.0/720.0, -1.0/30.0/40320.0,
            5.0/66.0/3628800.0, -691.0/2730.0/479001600.0, 7.0/6.0/87178291200.0,
            -3617.0/510.0/20922789888000.0, 43867.0/798.0/6402373705728000.0};
        int n = (int)n_real;
        int k, j;
        double s, w, acc, term, fact, sgn, pw;
        if (isnan(x))
            return x;
        if (n == 0) {
            double result = 0.0, z;
            if (x == 0.0)
                return copysign(HUGE_VAL, -x);
            if (x < 0.0) {
                if (x == floor(x))
                    return NAN;
                /* psi(x) = psi(1 - x) - pi / tan(pi x) */
                return autograd_polygamma(0.0, 1.0 - x) - autograd_pi / tan(autograd_pi * x);
            }
            if (isinf(x))
                return x;
            while (x < 10.0) {
                result -= 1.0 / x;
                x += 1.0;
            }
            z = 1.0 / (x * x);
            /* ln x - 1/(2x) - sum B_2k / (2k x^2k) */
            acc = z * (1.0/12.0 - z * (1.0/120.0 - z * (1.0/252.0 - z * (1.0/240.0
                  - z * (1.0/132.0 - z * (691.0/32760.0 - z * (1.0/12.0)))))));
            return result + log(x) - 0.5 / x - acc;
        }
        if (x <= 0.0 && x == floor(x))
            return (n % 2) ? HUGE_VAL : NAN;
        if (isinf(x))
            return x > 0 ? 0.0 : NAN;
        s = n + 1.0;
        acc = 0.0;
        while (x < 10.0 + n) {
            acc += pow(x, -s);
            x += 1.0;
        }
        w = x;
        /* w^(1-s)/(s-1) + w^-s/2 + sum_j B_2j/(2j)! s(s+1)...(s+2j-2) w^(-s-2j+1) */
        acc += pow(w, 1.0 - s) / (s - 1.0) + 0.5 * pow(w, -s);
        fact = s;                         /* s (s+1) ... (s+2j-2) */
        pw = pow(w, -s - 1.0);
        for (j = 0; j < 9; j++) {
            term = bern[j] * fact * pw;
            acc += term;
            fact *= (s + 2*j + 1) * (s + 2*j + 2);
            pw /= w * w;
        }
        fact = 1.0;
        for (k = 2; k <= n; k++)
            fact *= k;
        sgn = (n % 2) ? 1.0 : -1.0;
        return sgn * fact * acc;
    }
    """
    double autograd_tgamma(double x, int* err) noexcept nogil
    double autograd_lgamma(double x, int* err) noexcept nogil
    double autograd_atan2(double y, double x) noexcept nogil
    double autograd_remainder(double x, double y) noexcept nogil
    double autograd_hypot(double a, double b) noexcept nogil
    double autograd_vector_norm(const double* coords, Py_ssize_t n) noexcept nogil
    double autograd_fsum(const double* terms, Py_ssize_t count, int* err) noexcept nogil
    double autograd_polygamma(double n, double x) noexcept nogil
