using System.Numerics;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace IdDisentangle.Models;

/// <summary>
/// The stride-2 transposed 3x3 convolution that upsamples in StyleGAN2, by Winograd's minimal filtering on its
/// phases. Along each axis the even outputs z[2m] = w0 x[m] + w2 x[m-1] are a 2-tap filter of the input, computed
/// by F(4, 2) (5 products for 4 outputs), and the odd outputs z[2m+1] = w1 x[m] a single tap. A 4x4 tile of input
/// pixels gives the 8x8 block of outputs above it from 25 + 5x4 + 4x5 + 16 = 81 products per input-output channel
/// pair, where the transposed convolution makes 144. As in <see cref="WinogradConvolution"/>, the input tiles and
/// the outputs are transformed here in one pass over memory each, the style and demodulation folded in, and the
/// products are four batched matrix products: inference only, float32, channels-last activations.
/// </summary>
internal static class WinogradUpsampling
{
    /// <summary>The transformed weight's 36 slices: 25 for the even rows and columns (5r + c), 5 for even rows and
    /// odd columns, 5 for odd rows and even columns, 1 for odd rows and columns.</summary>
    const int EvenEven = 0,
        EvenOdd = 25,
        OddEven = 30,
        OddOdd = 35;

    /// <summary>
    /// U [36, in, out] of <paramref name="weight"/> [out, in, 3, 3] (as conv_transpose2d reads it transposed),
    /// computed in float64 and stored as float32. The 2-tap kernel of the even outputs is (w2, w0), and F(4, 2)'s
    /// G (interpolation points 0, 1, -1, 1/2 and infinity) turns it into 5 values.
    /// </summary>
    public static Tensor TransformWeight(Tensor weight)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long o = weight.shape[0],
            c = weight.shape[1];
        var g = tensor(
            new double[,]
            {
                { 1, 0 },
                { 1.0 / 2, 1.0 / 2 },
                { 1.0 / 6, -1.0 / 6 },
                { 8.0 / 3, 4.0 / 3 },
                { 0, 1.0 / 2 },
            },
            device: weight.device
        );
        var pick = tensor(
            new double[,]
            {
                { 0, 0, 1 },
                { 1, 0, 0 },
            },
            device: weight.device
        );
        var q = g.matmul(pick); // [5, 3]
        var w = weight.to(ScalarType.Float64);
        var evenEven = q.matmul(w).matmul(q.t()).reshape(o, c, 25);
        var evenOdd = q.matmul(w.narrow(3, 1, 1)).reshape(o, c, 5);
        var oddEven = w.narrow(2, 1, 1).matmul(q.t()).reshape(o, c, 5);
        var oddOdd = w.narrow(2, 1, 1).narrow(3, 1, 1).reshape(o, c, 1);
        return cat([evenEven, evenOdd, oddEven, oddOdd], 2)
            .permute(2, 1, 0)
            .to(ScalarType.Float32)
            .contiguous()
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// z[n, o] = outScale[n, o] * sum_i convT3x3(x[n, i] * inScale[n, i], W[o, i]) with stride 2 and no padding,
    /// [N, out, 2H + 1, 2W + 1] in channels-last memory, for <paramref name="x"/> [N, in, H, W] (any strides), the
    /// transformed weight <paramref name="u"/> and the scales [N, in] and [N, out].
    /// </summary>
    public static Tensor Convolve(Tensor x, Tensor u, Tensor inScale, Tensor outScale)
    {
        long n = x.shape[0],
            c = x.shape[1],
            h = x.shape[2],
            w = x.shape[3],
            o = u.shape[2];
        if (
            x.dtype != ScalarType.Float32
            || u.dtype != ScalarType.Float32
            || x.device_type != TorchSharp.DeviceType.CPU
        )
            throw new ArgumentException(
                $"Winograd's upsampling computes float32 on the CPU, not {x.dtype} on {x.device}"
            );
        if (c % Vector<float>.Count != 0 || o % Vector<float>.Count != 0 || u.shape[0] != 36 || u.shape[1] != c)
            throw new ArgumentException(
                $"Winograd's upsampling needs channels in whole vectors of {Vector<float>.Count} "
                    + $"and a weight [36, {c}, out]"
            );
        var g = new Geometry(n, h, w);
        long tiles = g.Tiles;
        using var nhwc = x.permute(0, 2, 3, 1).contiguous();
        using var inS = inScale.to(ScalarType.Float32).expand(n, c).contiguous();
        using var outS = outScale.to(ScalarType.Float32).expand(n, o).contiguous();
        using var v = empty(81, tiles, c);
        TransformInput(nhwc, v, inS, g, c);
        using var vEvenOdd = v.narrow(0, 25, 20).view(5, 4 * tiles, c);
        using var vOddEven = v.narrow(0, 45, 20).view(5, 4 * tiles, c);
        using var vOddOdd = v.narrow(0, 65, 16).view(16 * tiles, c);
        using var evenEven = bmm(v.narrow(0, 0, 25), u.narrow(0, EvenEven, 25));
        using var evenOdd = bmm(vEvenOdd, u.narrow(0, EvenOdd, 5));
        using var oddEven = bmm(vOddEven, u.narrow(0, OddEven, 5));
        using var oddOdd = mm(vOddOdd, u[OddOdd]);
        var z = empty(n, 2 * h + 1, 2 * w + 1, o);
        TransformOutput(new Products(evenEven, evenOdd, oddEven, oddOdd), z, outS, g, o);
        return z.permute(0, 3, 1, 2);
    }

    /// <summary>Tiles of 4x4 input pixels cover the H + 1 even output rows (and W + 1 columns).</summary>
    readonly record struct Geometry(long N, long H, long W)
    {
        public long TilesHigh => (H + 4) / 4;
        public long TilesWide => (W + 4) / 4;
        public long Tiles => N * TilesHigh * TilesWide;
    }

    static unsafe float* Pointer(Tensor t) => (float*)Unsafe.AsPointer(ref t.bytes[0]);

    static int Workers(long rows) => (int)Math.Max(1, Math.Min(rows, get_num_threads()));

    static unsafe void TransformInput(Tensor nhwc, Tensor v, Tensor inScale, Geometry g, long c)
    {
        nint src = (nint)Pointer(nhwc),
            dst = (nint)Pointer(v),
            scale = (nint)Pointer(inScale);
        long rows = g.N * g.TilesHigh;
        Parallel.For(
            0,
            rows,
            new ParallelOptions { MaxDegreeOfParallelism = Workers(rows) },
            row => InputRow((float*)src, (float*)dst, (float*)scale, g, c, row)
        );
    }

    /// <summary>
    /// For each tile of one row, d the 5x5 input patch at (4ty - 1, 4tx - 1) (zeros outside) times the style:
    /// B^T d B for the even outputs, B^T along one axis and the 4x4 interior rows or columns along the other for
    /// the mixed phases, and the interior itself for the odd outputs, laid out as <see cref="Convolve"/>'s products
    /// read them.
    /// </summary>
    static unsafe void InputRow(float* x, float* v, float* inScale, Geometry g, long c, long row)
    {
        int lanes = Vector<float>.Count;
        long batch = row / g.TilesHigh,
            ty = row % g.TilesHigh,
            tiles = g.Tiles,
            plane = tiles * c;
        var d = stackalloc Vector<float>[25];
        var t = stackalloc Vector<float>[45]; // 9 rows (5 transformed, 4 interior) of 5
        var r = stackalloc Vector<float>[5];
        for (long tx = 0; tx < g.TilesWide; tx++)
        {
            long tile = row * g.TilesWide + tx;
            long y0 = 4 * ty - 1,
                x0 = 4 * tx - 1;
            for (long ch = 0; ch < c; ch += lanes)
            {
                var s = Unsafe.Read<Vector<float>>(inScale + batch * c + ch);
                for (int i = 0; i < 5; i++)
                {
                    long yy = y0 + i;
                    bool rowInside = yy >= 0 && yy < g.H;
                    float* line = x + ((batch * g.H + yy) * g.W) * c + ch;
                    for (int j = 0; j < 5; j++)
                    {
                        long xx = x0 + j;
                        d[5 * i + j] =
                            rowInside && xx >= 0 && xx < g.W ? Unsafe.Read<Vector<float>>(line + xx * c) * s : default;
                    }
                }
                for (int j = 0; j < 5; j++)
                {
                    Combine(d[j], d[5 + j], d[10 + j], d[15 + j], d[20 + j], r);
                    for (int k = 0; k < 5; k++)
                        t[5 * k + j] = r[k];
                    for (int k = 0; k < 4; k++)
                        t[5 * (5 + k) + j] = d[5 * (k + 1) + j];
                }
                float* at = v + tile * c + ch;
                for (int i = 0; i < 9; i++)
                {
                    var line = t + 5 * i;
                    Combine(line[0], line[1], line[2], line[3], line[4], r);
                    // Row i < 5 is transformed: its 5 transformed columns are even-even, its interior even-odd.
                    // Row 5 + k is interior row k: its transformed columns are odd-even, its interior odd-odd.
                    for (int j = 0; j < 5; j++)
                    {
                        long p = i < 5 ? 5 * i + j : 45 + 4 * j + (i - 5);
                        Unsafe.Write(at + p * plane, r[j]);
                    }
                    for (int k = 0; k < 4; k++)
                    {
                        long p = i < 5 ? 25 + 4 * i + k : 65 + 4 * (i - 5) + k;
                        Unsafe.Write(at + p * plane, line[k + 1]);
                    }
                }
            }
        }
    }

    /// <summary>The five rows of F(4, 2)'s B^T applied to (a0, ..., a4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Combine(
        Vector<float> a0,
        Vector<float> a1,
        Vector<float> a2,
        Vector<float> a3,
        Vector<float> a4,
        Vector<float>* b
    )
    {
        var two = new Vector<float>(2f);
        var three = new Vector<float>(3f);
        var a13 = a1 - a3;
        b[0] = a0 - a2 - two * a13;
        b[1] = a2 - a1 + two * a3;
        b[2] = three * a2 - a1 - two * a3;
        b[3] = a13;
        b[4] = a13 - two * (a2 - a4);
    }

    /// <summary>The four batched products: even-even [25, T, out], even-odd and odd-even [5, 4T, out], odd-odd
    /// [16T, out].</summary>
    readonly record struct Products(Tensor EvenEven, Tensor EvenOdd, Tensor OddEven, Tensor OddOdd);

    static unsafe void TransformOutput(Products m, Tensor z, Tensor outScale, Geometry g, long o)
    {
        nint ee = (nint)Pointer(m.EvenEven),
            eo = (nint)Pointer(m.EvenOdd),
            oe = (nint)Pointer(m.OddEven),
            oo = (nint)Pointer(m.OddOdd),
            dst = (nint)Pointer(z),
            scale = (nint)Pointer(outScale);
        long rows = g.N * g.TilesHigh;
        Parallel.For(
            0,
            rows,
            new ParallelOptions { MaxDegreeOfParallelism = Workers(rows) },
            row =>
                OutputRow(
                    new OutputPointers((float*)ee, (float*)eo, (float*)oe, (float*)oo),
                    (float*)dst,
                    (float*)scale,
                    g,
                    o,
                    row
                )
        );
    }

    readonly unsafe struct OutputPointers(float* evenEven, float* evenOdd, float* oddEven, float* oddOdd)
    {
        public readonly float* EvenEven = evenEven;
        public readonly float* EvenOdd = evenOdd;
        public readonly float* OddEven = oddEven;
        public readonly float* OddOdd = oddOdd;
    }

    /// <summary>A^T m A (or A^T along the transformed axis alone) for the four phases of one row of tiles, times
    /// the output scale, interleaved into the 8x8 output blocks where the image has pixels.</summary>
    static unsafe void OutputRow(OutputPointers m, float* z, float* outScale, Geometry g, long o, long row)
    {
        int lanes = Vector<float>.Count;
        long batch = row / g.TilesHigh,
            ty = row % g.TilesHigh,
            tiles = g.Tiles,
            plane = tiles * o,
            outH = 2 * g.H + 1,
            outW = 2 * g.W + 1;
        var a = stackalloc Vector<float>[25];
        var t = stackalloc Vector<float>[20];
        var block = stackalloc Vector<float>[64];
        var r = stackalloc Vector<float>[4];
        for (long tx = 0; tx < g.TilesWide; tx++)
        {
            long tile = row * g.TilesWide + tx;
            long rowsHere = Math.Min(8, outH - 8 * ty),
                columnsHere = Math.Min(8, outW - 8 * tx);
            for (long ch = 0; ch < o; ch += lanes)
            {
                var s = Unsafe.Read<Vector<float>>(outScale + batch * o + ch);
                long at = tile * o + ch;
                // Even rows, even columns: A^T m A.
                for (int p = 0; p < 25; p++)
                    a[p] = Unsafe.Read<Vector<float>>(m.EvenEven + p * plane + at);
                for (int j = 0; j < 5; j++)
                {
                    Expand(a[j], a[5 + j], a[10 + j], a[15 + j], a[20 + j], r);
                    for (int i = 0; i < 4; i++)
                        t[5 * i + j] = r[i];
                }
                for (int i = 0; i < 4; i++)
                {
                    Expand(t[5 * i], t[5 * i + 1], t[5 * i + 2], t[5 * i + 3], t[5 * i + 4], r);
                    for (int j = 0; j < 4; j++)
                        block[8 * (2 * i) + 2 * j] = r[j];
                }
                // Even rows, odd columns: A^T down the 5 transformed rows of each interior column k.
                for (int k = 0; k < 4; k++)
                {
                    float* column = m.EvenOdd + (k * tiles) * o + at;
                    Expand(
                        Unsafe.Read<Vector<float>>(column),
                        Unsafe.Read<Vector<float>>(column + 4 * plane),
                        Unsafe.Read<Vector<float>>(column + 8 * plane),
                        Unsafe.Read<Vector<float>>(column + 12 * plane),
                        Unsafe.Read<Vector<float>>(column + 16 * plane),
                        r
                    );
                    for (int i = 0; i < 4; i++)
                        block[8 * (2 * i) + 2 * k + 1] = r[i];
                }
                // Odd rows, even columns: A^T along the 5 transformed columns of each interior row k.
                for (int k = 0; k < 4; k++)
                {
                    float* line = m.OddEven + (k * tiles) * o + at;
                    Expand(
                        Unsafe.Read<Vector<float>>(line),
                        Unsafe.Read<Vector<float>>(line + 4 * plane),
                        Unsafe.Read<Vector<float>>(line + 8 * plane),
                        Unsafe.Read<Vector<float>>(line + 12 * plane),
                        Unsafe.Read<Vector<float>>(line + 16 * plane),
                        r
                    );
                    for (int j = 0; j < 4; j++)
                        block[8 * (2 * k + 1) + 2 * j] = r[j];
                }
                // Odd rows, odd columns: the interior products themselves.
                for (int k = 0; k < 4; k++)
                for (int l = 0; l < 4; l++)
                    block[8 * (2 * k + 1) + 2 * l + 1] = Unsafe.Read<Vector<float>>(
                        m.OddOdd + (4 * k + l) * plane + at
                    );
                for (int i = 0; i < rowsHere; i++)
                {
                    float* line = z + ((batch * outH + 8 * ty + i) * outW + 8 * tx) * o + ch;
                    for (int j = 0; j < columnsHere; j++)
                        Unsafe.Write(line + j * o, block[8 * i + j] * s);
                }
            }
        }
    }

    /// <summary>The four rows of F(4, 2)'s A^T applied to (m0, ..., m4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Expand(
        Vector<float> m0,
        Vector<float> m1,
        Vector<float> m2,
        Vector<float> m3,
        Vector<float> m4,
        Vector<float>* y
    )
    {
        var p12 = m1 + m2;
        var d12 = m1 - m2;
        y[0] = m0 + p12 + m3;
        y[1] = d12 + m3 * new Vector<float>(0.5f);
        y[2] = p12 + m3 * new Vector<float>(0.25f);
        y[3] = d12 + m3 * new Vector<float>(0.125f) + m4;
    }
}
