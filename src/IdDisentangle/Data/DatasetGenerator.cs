using IdDisentangle.Imaging;
using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Data;

/// <summary>Which part of the index range a job writes: shard <c>Index</c> of <c>Count</c> (contiguous
/// blocks).</summary>
internal readonly record struct Shard(int Index, int Count)
{
    public static readonly Shard Whole = new(0, 1);

    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (
            parts.Length != 2
            || !int.TryParse(parts[0], out int i)
            || !int.TryParse(parts[1], out int n)
            || n <= 0
            || i < 0
            || i >= n
        )
            throw new SettingException(
                Setting.Shard,
                text,
                "expected i/n with 0 <= i < n (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)"
            );
        return new Shard(i, n);
    }

    /// <summary>[start, end) of this shard among <paramref name="total"/> indices; shards never overlap and cover
    /// all.</summary>
    public (long Start, long End) Range(long total) => (total * Index / Count, total * (Index + 1) / Count);
}

internal sealed record DatasetGenerationOptions
{
    public required string OutDir { get; init; }
    public required long NumImages { get; init; }
    public int BatchSize { get; init; } = 8;

    /// <summary>Truncation psi, applied on every layer (StyleGAN2) or with the model's own rule.</summary>
    public double Truncation { get; init; } = 0.7;

    /// <summary>Truncate only the W+ layers below this one (null: the generator family's rule, see
    /// IStyleGenerator.Truncate).</summary>
    public int? TruncationCutoff { get; init; }
    public long Seed { get; init; }
    public Shard Shard { get; init; } = Shard.Whole;
}

/// <summary>
/// Generates the training set: for each index k, z_k from a generator seeded by (seed, k), w = truncate(f(z_k)),
/// the image G(w) with the generator's stored noise, written in the paper's layout. Complete files are kept on a
/// rerun (writes are atomic, so a file is either complete or absent).
/// <para>
/// The kernels' rounding depends on how many samples they see at once, so index k is always rendered in the same
/// batch: block floor(k / B) of the whole index range, whatever the shard or the point where an earlier run
/// stopped. A shard or a resumed run renders a block it only partly owns or partly lacks in full and writes its own
/// missing indices: its files are byte for byte those of one uninterrupted job with the same batch size. Another
/// batch size gives the same images to rounding.
/// </para>
/// </summary>
internal static class DatasetGenerator
{
    /// <summary>z of index k: deterministic per (seed, k), independent of batching.</summary>
    public static Tensor ZFor(long seed, long k, int styleDim)
    {
        ulong s = StableSeed.SplitMix64((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)k);
        var rng = new torch.Generator(s & 0x7FFFFFFFFFFFFFFFUL);
        return torch.randn([1, styleDim], generator: rng);
    }

    /// <summary>Writes the missing indices of the shard; reports progress per image written or skipped. Returns the
    /// count written.</summary>
    public static long Generate(
        IStyleGenerator g,
        DatasetGenerationOptions o,
        Action<long, bool>? progress = null,
        CancellationToken cancellation = default
    )
    {
        if (o.NumImages <= 0)
            throw new SettingException(Setting.NumImages, o.NumImages.ToString(), "must be positive");
        if (o.BatchSize <= 0)
            throw new SettingException(Setting.BatchSize, o.BatchSize.ToString(), "must be positive");
        var layout = new DatasetLayout(o.OutDir);
        layout.RemoveLeftovers();
        var (start, end) = o.Shard.Range(o.NumImages);
        long written = 0;
        for (long block = start / o.BatchSize; block * o.BatchSize < end; block++)
        {
            long first = block * o.BatchSize,
                last = Math.Min(first + o.BatchSize, o.NumImages);
            var missing = new List<long>();
            for (long k = Math.Max(first, start); k < Math.Min(last, end); k++)
            {
                if (layout.IsComplete(k))
                    progress?.Invoke(k, false);
                else
                    missing.Add(k);
            }
            if (missing.Count == 0)
                continue;
            cancellation.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.inference_mode();
            var z = torch
                .cat(
                    Enumerable.Range(0, (int)(last - first)).Select(j => ZFor(o.Seed, first + j, g.StyleDim)).ToArray(),
                    0
                )
                .to(g.Device);
            var wplus = g.Truncate(g.ToWPlus(g.Map(z)), o.Truncation, o.TruncationCutoff);
            var images = GeneratorSampling.ToUnitRange(g.Synthesize(wplus, NoiseMode.Const)).cpu();
            var codes = wplus.cpu();
            foreach (long k in missing)
            {
                int j = (int)(k - first);
                // The code first: an index counts as complete only when its image, written last, exists.
                Npy.Write(layout.WPath(k), codes[j].contiguous());
                ImageIO.Write(layout.ImagePath(k), images[j]);
                written++;
                progress?.Invoke(k, true);
            }
        }
        return written;
    }
}
