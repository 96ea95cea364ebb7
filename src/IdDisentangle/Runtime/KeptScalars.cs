using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Runtime;

/// <summary>
/// Numbers for libtorch in Scalars that outlive the call. TorchSharp 0.107 wraps each number it passes (the 0.2 of
/// x * 0.2, the implicit alpha of x + y, the slope of leaky_relu) in a Scalar that only its finalizer frees, and the
/// wrapper is unreachable once its native handle has been read: a collection another thread triggers during the call
/// lets the finalizer free it before libtorch reads it (a crash in c10::Scalar::toFloat, or a wrong number).
/// These operations keep theirs until the call returns and then free it (no finalizer left to run); elsewhere a
/// number goes in a local Scalar disposed after the call (<c>using var s = v.ToScalar();</c>).
/// <c>ScalarLifetimeTests</c> reads the library's IL for any other.
/// </summary>
internal static class KeptScalars
{
    /// <summary>The alpha of an addition: x + y is x.add(y, One).</summary>
    public static readonly Scalar One = 1L.ToScalar();

    static readonly Scalar Two = 2L.ToScalar();

    static Tensor With(Scalar s, Func<Scalar, Tensor> op)
    {
        using (s)
            return op(s);
    }

    static Tensor With(Scalar a, Scalar b, Func<Scalar, Scalar, Tensor> op)
    {
        using (a)
        using (b)
            return op(a, b);
    }

    /// <summary>x + y.</summary>
    public static Tensor Plus(this Tensor x, Tensor y) => x.add(y, One);

    /// <summary>x += y.</summary>
    public static Tensor PlusInPlace(this Tensor x, Tensor y) => x.add_(y, One);

    /// <summary>x + v (a floating-point Scalar, as x + 0.5 makes).</summary>
    public static Tensor Plus(this Tensor x, double v) => With(v.ToScalar(), s => x.add(s, One));

    /// <summary>x + v (an integer Scalar, as x + 1 makes).</summary>
    public static Tensor Plus(this Tensor x, long v) => With(v.ToScalar(), s => x.add(s, One));

    /// <summary>x += v.</summary>
    public static Tensor PlusInPlace(this Tensor x, double v) => With(v.ToScalar(), s => x.add_(s, One));

    /// <summary>x - v.</summary>
    public static Tensor Minus(this Tensor x, double v) => With(v.ToScalar(), x.sub);

    /// <summary>x - v.</summary>
    public static Tensor Minus(this Tensor x, long v) => With(v.ToScalar(), x.sub);

    /// <summary>v - x, as TorchSharp computes it: -x + v.</summary>
    public static Tensor SubtractedFrom(this Tensor x, double v) => With(v.ToScalar(), s => x.negative().add(s, One));

    /// <summary>v - x, as TorchSharp computes it: -x + v.</summary>
    public static Tensor SubtractedFrom(this Tensor x, long v) => With(v.ToScalar(), s => x.negative().add(s, One));

    /// <summary>x * v.</summary>
    public static Tensor Times(this Tensor x, double v) => With(v.ToScalar(), x.mul);

    /// <summary>x * v.</summary>
    public static Tensor Times(this Tensor x, long v) => With(v.ToScalar(), x.mul);

    /// <summary>x *= v.</summary>
    public static Tensor TimesInPlace(this Tensor x, double v) => With(v.ToScalar(), x.mul_);

    /// <summary>x / v.</summary>
    public static Tensor DividedBy(this Tensor x, double v) => With(v.ToScalar(), s => x.div(s));

    /// <summary>x / v.</summary>
    public static Tensor DividedBy(this Tensor x, long v) => With(v.ToScalar(), s => x.div(s));

    /// <summary>x /= v.</summary>
    public static Tensor DividedByInPlace(this Tensor x, double v) => With(v.ToScalar(), s => x.div_(s));

    /// <summary>x /= v.</summary>
    public static Tensor DividedByInPlace(this Tensor x, long v) => With(v.ToScalar(), s => x.div_(s));

    /// <summary>x^2 (TorchSharp's square() is pow(2) with a temporary 2).</summary>
    public static Tensor Squared(this Tensor x) => x.pow(Two);

    /// <summary>x^p.</summary>
    public static Tensor Power(this Tensor x, double p) => With(p.ToScalar(), x.pow);

    /// <summary>leaky_relu(x) with the given negative slope.</summary>
    public static Tensor LeakyRelu(this Tensor x, double slope) => With(slope.ToScalar(), x.leaky_relu);

    /// <summary>leaky_relu(x) in place.</summary>
    public static Tensor LeakyReluInPlace(this Tensor x, double slope) => With(slope.ToScalar(), x.leaky_relu_);

    /// <summary>x clamped to [min, max].</summary>
    public static Tensor Clamp(this Tensor x, double min, double max) =>
        With(min.ToScalar(), max.ToScalar(), (lo, hi) => x.clamp(lo, hi));

    /// <summary>x clamped to [min, max] (integer Scalars, as clamp(0, 1) makes them).</summary>
    public static Tensor Clamp(this Tensor x, long min, long max) =>
        With(min.ToScalar(), max.ToScalar(), (lo, hi) => x.clamp(lo, hi));

    /// <summary>x clamped to [min, max] in place.</summary>
    public static Tensor ClampInPlace(this Tensor x, double min, double max) =>
        With(min.ToScalar(), max.ToScalar(), (lo, hi) => x.clamp_(lo, hi));

    /// <summary>x clamped to [min, max] in place (integer Scalars).</summary>
    public static Tensor ClampInPlace(this Tensor x, long min, long max) =>
        With(min.ToScalar(), max.ToScalar(), (lo, hi) => x.clamp_(lo, hi));

    /// <summary>max(x, min).</summary>
    public static Tensor ClampMin(this Tensor x, double min) => With(min.ToScalar(), x.clamp_min);

    /// <summary>x == v, elementwise.</summary>
    public static Tensor EqualTo(this Tensor x, double v) => With(v.ToScalar(), x.eq);

    /// <summary>x &gt; v, elementwise.</summary>
    public static Tensor GreaterThan(this Tensor x, double v) => With(v.ToScalar(), x.gt);

    /// <summary>torch.full(size, v).</summary>
    public static Tensor Full(long[] size, double v, ScalarType? dtype = null, Device? device = null) =>
        With(v.ToScalar(), s => torch.full(size, s, dtype: dtype, device: device));

    /// <summary>torch.full(size, v) with an integer v.</summary>
    public static Tensor Full(long[] size, long v, ScalarType? dtype = null, Device? device = null) =>
        With(v.ToScalar(), s => torch.full(size, s, dtype: dtype, device: device));

    /// <summary>torch.arange(n): 0, 1, ..., n - 1.</summary>
    public static Tensor Arange(long n, ScalarType? dtype = null, Device? device = null) => Arange(0, n, dtype, device);

    /// <summary>torch.arange(start, stop): start, start + 1, ..., stop - 1.</summary>
    public static Tensor Arange(long start, long stop, ScalarType? dtype = null, Device? device = null) =>
        With(start.ToScalar(), stop.ToScalar(), (a, b) => torch.arange(a, b, One, dtype: dtype, device: device));
}
