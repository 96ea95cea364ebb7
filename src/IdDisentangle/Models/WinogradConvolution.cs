using System.Numerics;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace IdDisentangle.Models;

/// <summary>
/// A 3x3 convolution with padding 1 by Winograd's minimal filtering F(4x4, 3x3) (Lavin and Gray 2016): each 4x4
/// output tile costs 36 multiplies per input-output channel pair instead of 144. The 6x6 input tiles (B^T d B) and
/// the 4x4 outputs (A^T m A) are transformed here in one pass over memory each, with the per-sample scales a
/// modulated convolution needs folded in; the 36 products of the transformed tiles with the transformed weight
/// (G g G^T) are one batched matrix product. Inference only (no autograd), float32, channels-last activations.
/// </summary>
internal static class WinogradConvolution
{
    /// <summary>Whether an input [N, C, H, W] to a 3x3 convolution with <paramref name="outCh"/> outputs can be
    /// computed here: float32 on the CPU without autograd, at least 16x16 px, channels in whole SIMD vectors. Where it
    /// is also faster is the caller's measurement (bench/README.md).</summary>
    public static bool Applies(Tensor x, int kernel, long outCh) =>
        kernel == 3
        && x.dtype == ScalarType.Float32
        && x.device_type == TorchSharp.DeviceType.CPU
        && !is_grad_enabled()
        && x.shape[2] * x.shape[3] >= MinPixels
        && x.shape[1] % Vector<float>.Count == 0
        && outCh % Vector<float>.Count == 0;

    /// <summary>The smallest image (pixels per channel) computed here: below, the tiles are mostly padding.</summary>
    internal const long MinPixels = 16 * 16;

    /// <summary>
    /// The transformed weight U [36, in, out] of <paramref name="weight"/> [out, in, 3, 3]: U[6i+j] = (G g G^T)[i, j],
    /// computed in float64 and stored as float32.
    /// </summary>
    public static Tensor TransformWeight(Tensor weight)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = tensor(
            new double[,]
            {
                { 1.0 / 4, 0, 0 },
                { -1.0 / 6, -1.0 / 6, -1.0 / 6 },
                { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
                { 1.0 / 24, 1.0 / 12, 1.0 / 6 },
                { 1.0 / 24, -1.0 / 12, 1.0 / 6 },
                { 0, 0, 1 },
            },
            device: weight.device
        );
        var w = weight.to(ScalarType.Float64);
        var u = g.matmul(w).matmul(g.t()); // [out, in, 6, 6]
        return u.permute(2, 3, 1, 0)
            .reshape(36, weight.shape[1], weight.shape[0])
            .to(ScalarType.Float32)
            .contiguous()
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// What a styled convolution does to the convolution's output, done as the output tile is written: y = act(y +
    /// noise weight * noise + bias), with act the leaky ReLU of <paramref name="Slope"/> and then the clamp to
    /// +-<paramref name="Clamp"/> when given. <paramref name="Noise"/> is [N or 1, 1, H, W], <paramref name="Bias"/>
    /// [out].
    /// </summary>
    internal sealed record Epilogue(Tensor Noise, float NoiseWeight, Tensor Bias, float Slope, float? Clamp);

    /// <summary>
    /// y[n, o] = outScale[n, o] * sum_i conv3x3(x[n, i] * inScale[n, i], W[o, i]) with padding 1, then the
    /// <paramref name="epilogue"/> if any, for <paramref name="x"/> [N, in, H, W] (any strides), the transformed
    /// weight <paramref name="u"/> [36, in, out] and the scales [N, in] and [N, out]. The result is channels-last.
    /// The 36 products are one grouped 1x1 convolution over the tiles or one batched matrix product
    /// (<paramref name="grouped"/>; by default <see cref="GroupsProducts"/>).
    /// </summary>
    public static Tensor Convolve(
        Tensor x,
        Tensor u,
        Tensor inScale,
        Tensor outScale,
        Epilogue? epilogue = null,
        bool? grouped = null
    )
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
                $"Winograd's convolution computes float32 on the CPU, not {x.dtype} on {x.device}"
            );
        if (c % Vector<float>.Count != 0 || o % Vector<float>.Count != 0 || u.shape[0] != 36 || u.shape[1] != c)
            throw new ArgumentException(
                $"Winograd's convolution needs channels in whole vectors of {Vector<float>.Count} "
                    + $"and a weight [36, {c}, out]"
            );
        var geometry = new Geometry(n, h, w);
        using var nhwc = x.permute(0, 2, 3, 1).contiguous();
        using var inS = inScale.to(ScalarType.Float32).expand(n, c).contiguous();
        using var outS = outScale.to(ScalarType.Float32).expand(n, o).contiguous();
        long tiles = geometry.Tiles;
        bool group = grouped ?? GroupsProducts(tiles);
        var layout = group ? new Layout(36 * c, c, 36 * o, o) : new Layout(c, tiles * c, o, tiles * o);
        using var v = group ? empty(tiles, 36, c) : empty(36, tiles, c);
        TransformInput(nhwc, v, inS, geometry, c, layout);
        using var m = group ? GroupedProducts(v, u) : bmm(v, u);
        var y = empty(n, h, w, o);
        if (epilogue is null)
            TransformOutput(m, y, outS, null, geometry, o, layout);
        else
        {
            using var noise = epilogue.Noise.to(ScalarType.Float32).expand(n, 1, h, w).contiguous();
            using var bias = epilogue.Bias.to(ScalarType.Float32).contiguous();
            TransformOutput(m, y, outS, (noise, bias, epilogue), geometry, o, layout);
        }
        return y.permute(0, 3, 1, 2);
    }

    /// <summary>The transformed weight <paramref name="u"/> [36, in, out] stored as [36, out, in], the layout the
    /// grouped products read without a copy (the batched product reads it only slowly).</summary>
    public static Tensor ForGroupedProducts(Tensor u) => u.transpose(1, 2).contiguous().transpose(1, 2);

    /// <summary>How many 4x4 output tiles an input [N, C, H, W] has.</summary>
    public static long Tiles(Tensor x) => new Geometry(x.shape[0], x.shape[2], x.shape[3]).Tiles;

    /// <summary>Whether the products of <paramref name="tiles"/> tiles are faster as oneDNN's grouped 1x1
    /// convolution than as the BLAS batched product: from 1024 tiles (128 px at batch 1; bench/README.md).</summary>
    internal static bool GroupsProducts(long tiles) => tiles >= 1024;

    /// <summary>The product of v [T, P, in] (tile-major) with u [P, in, out] (best stored [P, out, in]), as a 1x1
    /// convolution in P groups over an image of T pixels: m [T, P, out].</summary>
    internal static Tensor GroupedProducts(Tensor v, Tensor u)
    {
        long tiles = v.shape[0],
            positions = v.shape[1],
            c = v.shape[2],
            o = u.shape[2];
        using var image = v.view(1, tiles, 1, positions * c).permute(0, 3, 1, 2);
        using var weight = u.transpose(1, 2).contiguous().view(positions * o, c, 1, 1);
        using var y = nn.functional.conv2d(image, weight, groups: positions);
        return y.permute(0, 2, 3, 1).contiguous().view(tiles, positions, o);
    }

    /// <summary>Where transformed tiles live: element (tile, position, channel) of v at tile * InTile + position *
    /// InPosition + channel, and likewise in the products m.</summary>
    internal readonly record struct Layout(long InTile, long InPosition, long OutTile, long OutPosition);

    readonly record struct Geometry(long N, long H, long W)
    {
        public long TilesHigh => (H + 3) / 4;
        public long TilesWide => (W + 3) / 4;
        public long Tiles => N * TilesHigh * TilesWide;
    }

    static unsafe float* Pointer(Tensor t) => (float*)Unsafe.AsPointer(ref t.bytes[0]);

    static int Workers(long rows) => (int)Math.Max(1, Math.Min(rows, get_num_threads()));

    static unsafe void TransformInput(Tensor nhwc, Tensor v, Tensor inScale, Geometry g, long c, Layout layout)
    {
        nint src = (nint)Pointer(nhwc),
            dst = (nint)Pointer(v),
            scale = (nint)Pointer(inScale);
        long rows = g.N * g.TilesHigh;
        Parallel.For(
            0,
            rows,
            new ParallelOptions { MaxDegreeOfParallelism = Workers(rows) },
            row => InputRow((float*)src, (float*)dst, (float*)scale, g, c, layout, row)
        );
    }

    /// <summary>B^T d B for one row of tiles: d the 6x6 input patch at (4ty - 1, 4tx - 1), zeros outside.</summary>
    static unsafe void InputRow(float* x, float* v, float* inScale, Geometry g, long c, Layout layout, long row)
    {
        int lanes = Vector<float>.Count;
        long batch = row / g.TilesHigh,
            ty = row % g.TilesHigh;
        var d = stackalloc Vector<float>[36];
        var t = stackalloc Vector<float>[36];
        for (long tx = 0; tx < g.TilesWide; tx++)
        {
            long tile = row * g.TilesWide + tx;
            long y0 = 4 * ty - 1,
                x0 = 4 * tx - 1;
            for (long ch = 0; ch < c; ch += lanes)
            {
                for (int i = 0; i < 6; i++)
                {
                    long yy = y0 + i;
                    bool rowInside = yy >= 0 && yy < g.H;
                    float* line = x + ((batch * g.H + yy) * g.W) * c + ch;
                    for (int j = 0; j < 6; j++)
                    {
                        long xx = x0 + j;
                        d[6 * i + j] =
                            rowInside && xx >= 0 && xx < g.W ? Unsafe.Read<Vector<float>>(line + xx * c) : default;
                    }
                }
                // t = B^T d (down the columns), then v = t B (along the rows): the same six combinations.
                for (int j = 0; j < 6; j++)
                    Combine(d, t, j, 6);
                for (int i = 0; i < 6; i++)
                    Combine(t, d, 6 * i, 1);
                var s = Unsafe.Read<Vector<float>>(inScale + batch * c + ch);
                float* outBase = v + tile * layout.InTile + ch;
                for (int p = 0; p < 36; p++)
                    Unsafe.Write(outBase + p * layout.InPosition, d[p] * s);
            }
        }
    }

    /// <summary>The six rows of B^T applied to a[first + k step], k = 0..5, written to b at the same places.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Combine(Vector<float>* a, Vector<float>* b, int first, int step)
    {
        var a0 = a[first];
        var a1 = a[first + step];
        var a2 = a[first + 2 * step];
        var a3 = a[first + 3 * step];
        var a4 = a[first + 4 * step];
        var a5 = a[first + 5 * step];
        var four = new Vector<float>(4f);
        var two = new Vector<float>(2f);
        var five = new Vector<float>(5f);
        b[first] = four * a0 - five * a2 + a4;
        b[first + step] = a3 + a4 - four * (a1 + a2);
        b[first + 2 * step] = four * (a1 - a2) + a4 - a3;
        b[first + 3 * step] = two * (a3 - a1) + a4 - a2;
        b[first + 4 * step] = two * (a1 - a3) + a4 - a2;
        b[first + 5 * step] = four * a1 - five * a3 + a5;
    }

    static unsafe void TransformOutput(
        Tensor m,
        Tensor y,
        Tensor outScale,
        (Tensor Noise, Tensor Bias, Epilogue Spec)? epilogue,
        Geometry g,
        long o,
        Layout layout
    )
    {
        nint src = (nint)Pointer(m),
            dst = (nint)Pointer(y),
            scale = (nint)Pointer(outScale),
            noise = epilogue is { } e1 ? (nint)Pointer(e1.Noise) : 0,
            bias = epilogue is { } e2 ? (nint)Pointer(e2.Bias) : 0;
        var finish = epilogue is { Spec: var spec }
            ? new Finish(
                (float*)noise,
                spec.NoiseWeight,
                (float*)bias,
                spec.Slope,
                spec.Clamp ?? float.PositiveInfinity
            )
            : (Finish?)null;
        long rows = g.N * g.TilesHigh;
        Parallel.For(
            0,
            rows,
            new ParallelOptions { MaxDegreeOfParallelism = Workers(rows) },
            row => OutputRow((float*)src, (float*)dst, (float*)scale, finish, g, o, layout, row)
        );
    }

    /// <summary>The epilogue's operands for <see cref="OutputRow"/>: noise [N, H, W], bias [out].</summary>
    readonly unsafe struct Finish(float* noise, float noiseWeight, float* bias, float slope, float clamp)
    {
        readonly float* Noise = noise;
        readonly float NoiseWeight = noiseWeight;
        readonly float* Bias = bias;
        readonly float Slope = slope;
        readonly float Clamp = clamp;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Apply(Vector<float> value, long pixel, long channel)
        {
            var z = value + new Vector<float>(Noise[pixel] * NoiseWeight) + Unsafe.Read<Vector<float>>(Bias + channel);
            z = Vector.ConditionalSelect(Vector.LessThan(z, Vector<float>.Zero), z * new Vector<float>(Slope), z);
            return Vector.Min(Vector.Max(z, new Vector<float>(-Clamp)), new Vector<float>(Clamp));
        }
    }

    /// <summary>A^T m A for one row of tiles, times the output scale and through the epilogue if any, written where
    /// the image has pixels.</summary>
    static unsafe void OutputRow(
        float* m,
        float* y,
        float* outScale,
        Finish? finish,
        Geometry g,
        long o,
        Layout layout,
        long row
    )
    {
        int lanes = Vector<float>.Count;
        long batch = row / g.TilesHigh,
            ty = row % g.TilesHigh;
        var a = stackalloc Vector<float>[36];
        var t = stackalloc Vector<float>[24];
        var r = stackalloc Vector<float>[4];
        var two = new Vector<float>(2f);
        var four = new Vector<float>(4f);
        var eight = new Vector<float>(8f);
        for (long tx = 0; tx < g.TilesWide; tx++)
        {
            long tile = row * g.TilesWide + tx;
            long columns = Math.Min(4, g.W - 4 * tx);
            for (long ch = 0; ch < o; ch += lanes)
            {
                float* inBase = m + tile * layout.OutTile + ch;
                for (int p = 0; p < 36; p++)
                    a[p] = Unsafe.Read<Vector<float>>(inBase + p * layout.OutPosition);
                // t = A^T m (down the columns) [4 x 6], then the 4x4 tile = t A (along the rows).
                for (int j = 0; j < 6; j++)
                {
                    Vector<float> m0 = a[j],
                        m1 = a[6 + j],
                        m2 = a[12 + j],
                        m3 = a[18 + j],
                        m4 = a[24 + j];
                    Vector<float> m5 = a[30 + j];
                    Vector<float> p12 = m1 + m2,
                        d12 = m1 - m2,
                        p34 = m3 + m4,
                        d34 = m3 - m4;
                    t[j] = m0 + p12 + p34;
                    t[6 + j] = d12 + two * d34;
                    t[12 + j] = p12 + four * p34;
                    t[18 + j] = d12 + eight * d34 + m5;
                }
                var s = Unsafe.Read<Vector<float>>(outScale + batch * o + ch);
                for (int i = 0; i < 4; i++)
                {
                    long yy = 4 * ty + i;
                    if (yy >= g.H)
                        break;
                    Vector<float> m0 = t[6 * i],
                        m1 = t[6 * i + 1],
                        m2 = t[6 * i + 2],
                        m3 = t[6 * i + 3];
                    Vector<float> m4 = t[6 * i + 4],
                        m5 = t[6 * i + 5];
                    Vector<float> p12 = m1 + m2,
                        d12 = m1 - m2,
                        p34 = m3 + m4,
                        d34 = m3 - m4;
                    r[0] = (m0 + p12 + p34) * s;
                    r[1] = (d12 + two * d34) * s;
                    r[2] = (p12 + four * p34) * s;
                    r[3] = (d12 + eight * d34 + m5) * s;
                    long pixel = (batch * g.H + yy) * g.W + 4 * tx;
                    float* line = y + pixel * o + ch;
                    for (int k = 0; k < columns; k++)
                        Unsafe.Write(line + k * o, finish is { } f ? f.Apply(r[k], pixel + k, ch) : r[k]);
                }
            }
        }
    }
}
